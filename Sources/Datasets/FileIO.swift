import AtomicIO
import Foundation

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Opens a regular file for reading; errors carry the errno message. The caller closes `fd`.
///
/// NOTE: `open` on a FIFO blocks until a writer appears (a FIFO named `x.png` hung the loader), so
/// the file is opened non-blocking, checked with `fstat`, and only then switched to blocking reads.
/// Devices, sockets and FIFOs are refused as "not a regular file".
func openRegularFile(_ path: String) throws -> (fd: Int32, size: Int) {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else {
        let code = errno
        if code == ENOENT { throw DatasetError.notFound(path: path) }
        throw DatasetError.unreadable(path: path, reason: errnoMessage(code))
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        let reason = errnoMessage(errno)
        close(fd)
        throw DatasetError.unreadable(path: path, reason: reason)
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        throw DatasetError.unreadable(path: path, reason: "not a regular file (\(fileKind(info.st_mode)))")
    }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    return (fd, Int(info.st_size))
}

/// What a non-regular file is, for messages.
func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: "a directory"
    case S_IFIFO: "a FIFO"
    case S_IFSOCK: "a socket"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    case S_IFLNK: "a symbolic link"
    default: "not a plain file"
    }
}

/// Whether `path` (following symbolic links) is a regular file; nil when it cannot be stat'ed.
/// Never opens the file, so a FIFO cannot block the caller.
func regularFileKind(_ path: String) -> (isRegular: Bool, kind: String)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return ((info.st_mode & S_IFMT) == S_IFREG, fileKind(info.st_mode))
}

/// Whether a regular file's first 132 bytes are the DICOM preamble and "DICM"; false for anything
/// unreadable or not regular (opened non-blocking, so a FIFO cannot hang the scan).
func startsWithDICOMPreamble(_ path: String) -> Bool {
    guard let (fd, size) = try? openRegularFile(path) else { return false }
    defer { close(fd) }
    guard size >= 132 else { return false }
    var head = [UInt8](repeating: 0, count: 132)
    let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 132, 0) }
    return n == 132 && hasDICOMPreamble(head)
}

/// `.dcm` or `.dicom`, case-insensitive.
func hasDICOMExtension(_ path: String) -> Bool {
    let lower = path.lowercased()
    return lower.hasSuffix(".dcm") || lower.hasSuffix(".dicom")
}

/// Largest file `readFileBytes` reads by default (1 GiB): an image or dataset file beyond it is
/// refused before anything is allocated.
public let defaultMaxFileBytes = 1 << 30

/// Reads a whole regular file with POSIX calls so that failures carry the errno message;
/// refuses non-regular files (without blocking on a FIFO) and files above `limit` bytes.
public func readFileBytes(_ path: String, limit: Int = defaultMaxFileBytes) throws -> [UInt8] {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    guard size <= limit else { throw DatasetError.fileTooLarge(path: path, bytes: size, limit: limit) }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw DatasetError.unreadable(path: path, reason: errnoMessage(errno))
        }
        if n == 0 { break }  // the file shrank while we read it
        done += n
    }
    if done < size { bytes.removeLast(size - done) }
    return bytes
}

/// Writes `bytes` atomically (see `AtomicFile`): a reader never sees a half-written file.
public func writeFileAtomically(_ bytes: some Collection<UInt8>, to path: String) throws {
    do { try AtomicFile.write(bytes, to: path) } catch { throw DatasetError.writeFailed(path: path, reason: error.reason) }
}

/// A unique temporary path next to `path` (same folder, so `rename` is atomic).
func temporarySibling(of path: String) -> String { AtomicFile.temporarySibling(of: path) }

/// The C library's message for an errno value.
func errnoMessage(_ code: Int32) -> String { String(cString: strerror(code)) }
