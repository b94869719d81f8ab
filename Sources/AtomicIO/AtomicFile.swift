import Foundation

/// Crash-safe file replacement: write a temporary file in the same folder, fsync it, rename it
/// over the destination, fsync the folder. A crash (even SIGKILL or power loss after the rename
/// is durable) leaves either the old file or the new one, never a mix.
public enum AtomicFile {
    /// A failed atomic write; names the destination and the system's reason.
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// A unique temporary path next to `path` (same folder, so `rename` is atomic).
    public static func temporarySibling(of path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Folders already cleaned of leftovers by this process.
    nonisolated(unsafe) private static var cleanedFolders = Set<String>()
    private static let cleanedLock = NSLock()

    /// Removes the temporary files of writes killed before their rename (`.<name>.tmp-<pid>-<n>`
    /// whose process is gone) from `folder`, once per folder and process: the next write to a
    /// folder tidies up after a crash. Files of live processes (other writers) are left alone.
    public static func removeLeftovers(in folder: String) {
        let first = cleanedLock.withLock { cleanedFolders.insert(folder).inserted }
        guard first, let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: ".tmp-", options: .backwards) else { continue }
            let parts = name[range.upperBound...].split(separator: "-")
            guard parts.count == 2, let pid = Int32(parts[0]), UInt32(parts[1]) != nil, pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + name) }
        }
    }

    /// Replaces `path` with `bytes` atomically; the folder must exist.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(WriteError) {
        removeLeftovers(in: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let tmp = temporarySibling(of: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw WriteError(path: path, reason: message(errno)) }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = message(errno)
                close(fd); unlink(tmp)
                throw WriteError(path: path, reason: reason)
            }
            done += n
        }
        let synced = fsync(fd) == 0
        let syncReason = synced ? "" : message(errno)
        close(fd)
        guard synced else { unlink(tmp); throw WriteError(path: path, reason: syncReason) }
        guard rename(tmp, path) == 0 else {
            let reason = message(errno)
            unlink(tmp)
            throw WriteError(path: path, reason: reason)
        }
        // NOTE: the rename is durable only once the folder's entry is on disk.
        let dir = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    /// Replaces `path` with `bytes` atomically.
    public static func write(_ bytes: some Collection<UInt8>, to path: String) throws(WriteError) {
        var failure: WriteError?
        Array(bytes).withUnsafeBytes { raw in
            do { try write(raw, to: path) } catch { failure = error as? WriteError }
        }
        if let failure { throw failure }
    }

    /// The C library's message for an errno value.
    public static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}
