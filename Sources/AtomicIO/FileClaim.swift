import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive claim on a piece of work, held as a file that names its holder's process: several
/// processes working on one folder (the experiment's `--jobs` workers) take each piece at most once.
///
/// The file is created with `O_EXCL`, so exactly one process gets it. A claim whose holder died
/// (killed, crashed) is stale: the next process to ask removes it and takes it over, so an
/// interrupted run never blocks the next one. Claims are for processes on one machine (liveness
/// is checked with `kill(pid, 0)`); the holder's host is written too, and a claim of another host
/// is treated as live.
public final class FileClaim {
    public let path: String
    private var held = true

    private init(path: String) { self.path = path }

    /// Who holds a claim: the text of its file.
    public struct Holder: Equatable, Sendable {
        public var pid: Int32
        public var host: String
    }

    /// Takes the claim at `path` when it is free or stale; nil when a live process holds it.
    /// The folder must exist.
    public static func take(_ path: String) -> FileClaim? {
        for _ in 0..<2 {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let text = "\(getpid())\n\(hostName())\n"
                _ = text.withCString { Foundation.write(fd, $0, strlen($0)) }
                close(fd)
                return FileClaim(path: path)
            }
            guard errno == EEXIST else { return nil }
            guard isStale(path) else { return nil }
            unlink(path)  // a dead holder's claim: take it over
        }
        return nil
    }

    /// The holder written in the claim file at `path`, if it can be read.
    public static func holder(_ path: String) -> Holder? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, let pid = Int32(lines[0]), pid > 0 else { return nil }
        return Holder(pid: pid, host: String(lines[1]))
    }

    /// True when the claim at `path` is absent, unreadable (a holder killed mid-write), or held by
    /// a process of this host that no longer runs (or by this very process: a claim left by a
    /// failed earlier attempt).
    public static func isStale(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return true }
        guard let holder = holder(path) else {
            // Written by `take` in one call right after creation: give a live writer a moment.
            let age =
                (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
                .map { Date().timeIntervalSince($0) } ?? 0
            return age > 5
        }
        guard holder.host == hostName() else { return false }
        if holder.pid == getpid() { return true }
        return kill(holder.pid, 0) != 0 && errno == ESRCH
    }

    /// Gives the claim up (its file is removed). Called again, or after `deinit`, it does nothing.
    public func release() {
        guard held else { return }
        held = false
        unlink(path)
    }

    deinit { release() }

    /// This machine's name, as claims record it.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
