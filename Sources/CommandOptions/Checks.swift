import ArgumentParser
import Foundation
import Workflows

// The option ranges (`Ranges`, in Workflows) in ArgumentParser's terms: a range in each
// option's help, a refusal as a `ValidationError` (usage shown, exit code 64).

extension OptionRange {
    /// `help` with the range appended, for `@Option(help:)`.
    public func help(_ help: String) -> ArgumentHelp { ArgumentHelp(helpText(help)) }

    /// Throws a `ValidationError` naming `option` unless `value` lies in the range.
    public func check(_ value: Value?, _ option: String) throws {
        if let refusal = refusal(value, option) { throw ValidationError(refusal) }
    }
}

/// Runs `body`, reporting a library's refusal of the options (`OptionRefusal`) as a refused
/// option is reported: with the usage, exit code 64.
@discardableResult
public func refusedAsInvalid<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let refusal as OptionRefusal { throw ValidationError(refusal.message) }
}

/// Refuses a `--channels` other than 1 or 3 (nil: as the data).
public func checkChannels(_ channels: Int?, _ option: String = "--channels") throws {
    guard let channels, channels != 1, channels != 3 else { return }
    throw ValidationError("\(option) \(channels) is not supported: use 1 or 3")
}

/// Refuses a GAN image size other than 28, 32, 64 or 128.
public func checkGANImageSize(_ size: Int, _ option: String = "--image-size") throws {
    guard ![28, 32, 64, 128].contains(size) else { return }
    throw ValidationError("\(option) \(size) is not supported: use 28, 32, 64 or 128")
}

/// A file-system error as a person reads it: the path and the system's reason ("PATH: Not a
/// directory"), where Foundation's own text is `Error Domain=NSCocoaErrorDomain Code=512 "(null)"
/// UserInfo={...}`.
public struct FileProblem: Error, CustomStringConvertible {
    public var path: String, reason: String
    public var description: String { "\(path): \(reason)" }
}

/// `error` as a `FileProblem` when it is a Foundation file error that names its path; else unchanged.
public func plainFileError(_ error: any Error) -> any Error {
    guard let e = error as? CocoaError, let path = e.filePath ?? (e.userInfo[NSURLErrorKey] as? URL)?.path else {
        return error
    }
    let reason: String
    if let posix = e.userInfo[NSUnderlyingErrorKey] as? POSIXError {
        reason = String(cString: strerror(posix.code.rawValue))
    } else if let underlying = e.userInfo[NSUnderlyingErrorKey] as? any Error {
        reason = (underlying as NSError).localizedDescription
    } else {
        switch e.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "No such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: reason = "Permission denied"
        case .fileWriteOutOfSpace: reason = "No space left on device"
        default: reason = "file error \(e.code.rawValue)"
        }
    }
    return FileProblem(path: path, reason: reason)
}
