import Foundation

/// What a workflow reports while it runs, as text ready to show. The command line draws it
/// (a progress bar and lines on standard error); libraries never print.
public enum WorkflowEvent: Sendable, Equatable {
    /// A line of its own: a file written, a warning, an alarm, a summary.
    case note(String)
    /// The progress bar: the fraction done and a status line; `force` shows it even when the
    /// display would skip it (the last step).
    case progress(Double, String, force: Bool = false)
    /// The progress bar is done: the next line starts afresh.
    case endProgress
}

/// The user's options cannot run as given (a folder that already holds a run, a checkpoint of
/// another kind, a resume without a checkpoint); the message names the option. The command line
/// reports it as a refused option.
public struct OptionRefusal: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `42s`, `3m7s` or `1h2m`; `?` when not finite.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}

/// Pretty, sorted-key JSON (dates as ISO 8601), as the commands print it with `--json`.
public func prettyJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
