import AtomicIO
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Opens a regular file for reading; errors carry the errno message. The caller closes `fd`.
func openRegularFile(_ path: String) throws -> (fd: Int32, size: Int) {
    let fd = open(path, O_RDONLY)
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
        throw DatasetError.unreadable(path: path, reason: "not a regular file")
    }
    return (fd, Int(info.st_size))
}

/// Reads a whole file with POSIX calls so that failures carry the errno message.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
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

/// Lower-case hex SHA-256 of some bytes.
public func sha256Hex(_ bytes: some DataProtocol) -> String {
    hex(SHA256.hash(data: bytes))
}

func hex(_ digest: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
