import Datasets
import Foundation

/// A one-line progress bar on standard error, redrawn in place on a terminal and printed every
/// few seconds otherwise (logs, CI).
struct ProgressLine {
    private let isTerminal = isatty(2) != 0
    private var lastPrint = Date.distantPast

    mutating func update(fraction: Double, _ text: String, force: Bool = false) {
        let width = 24
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: min(filled, width)) + String(repeating: ".", count: max(0, width - filled))
        let line = "[\(bar)] \(String(format: "%3.0f%%", 100 * fraction)) \(text)"
        if isTerminal {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
        } else if force || Date().timeIntervalSince(lastPrint) > 5 {
            FileHandle.standardError.write(Data("\(line)\n".utf8))
            lastPrint = Date()
        }
    }

    /// Ends the in-place line so the next message starts on a fresh one.
    func finish() { if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) } }

    /// A message on its own line (alarms, files written).
    func note(_ text: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[2K" : "") + text + "\n").utf8))
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}

extension ProgressLine {
    /// Lists what loading left out or changed (skipped files, colour among gray images), as
    /// `data inspect` does, so that no image disappears without a word.
    func noteLoadProblems(_ dataset: LoadedDataset) {
        if !dataset.skipped.isEmpty { note("skipped \(dataset.skipped.count) unreadable file(s):") }
        for file in dataset.skipped { note("  \(file.reason)") }
        for warning in dataset.warnings { note("warning: \(warning)") }
    }
}
