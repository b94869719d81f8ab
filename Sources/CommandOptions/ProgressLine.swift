import Evaluation
import Foundation
import Workflows

/// A one-line progress bar on standard error, redrawn in place on a terminal and printed every
/// few seconds otherwise (logs, CI).
public struct ProgressLine {
    private let isTerminal = isatty(2) != 0
    private var lastPrint = Date.distantPast

    public init() {}

    public mutating func update(fraction: Double, _ text: String, force: Bool = false) {
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
    public func finish() { if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) } }

    /// A message on its own line (alarms, files written).
    public func note(_ text: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[2K" : "") + text + "\n").utf8))
    }

    /// Draws what a workflow reports.
    public mutating func show(_ event: WorkflowEvent) {
        switch event {
        case .note(let text): note(text)
        case let .progress(fraction, text, force): update(fraction: fraction, text, force: force)
        case .endProgress: finish()
        }
    }
}

/// A line on standard output, unbuffered (worker logs are read while they run).
public func printLine(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// Prints a report: JSON on standard output, or a per-class table; alarms go to standard error, loudly.
public func printReport(
    _ r: EvaluationReport, baseline: EvaluationReport?, title: String, json: Bool, jsonValue: some Encodable
) {
    for alarm in r.alarms {
        FileHandle.standardError.write(Data("!!! ALARM: \(alarm.uppercased()) !!!\n".utf8))
    }
    print(json ? (try? prettyJSON(jsonValue)) ?? "" : r.table(title: title, baseline: baseline))
}
