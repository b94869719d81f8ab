import Foundation
import Workflows

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

extension ProgressLine {
    /// Draws what a workflow reports.
    mutating func show(_ event: WorkflowEvent) {
        switch event {
        case .note(let text): note(text)
        case let .progress(fraction, text, force): update(fraction: fraction, text, force: force)
        case .endProgress: finish()
        }
    }
}
