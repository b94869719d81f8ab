import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A raw TCP client for what an HTTP client library will not send: bytes trickled one at a
/// time, malformed chunks, oversized request lines. Blocking socket calls run on a thread of
/// their own, never on the cooperative pool the server under test needs.
struct RawHTTPClient {
    let port: Int

    /// What came back: the whole text the server sent before closing (or before `readTimeout`),
    /// and when the connection ended, in seconds after connecting.
    struct Exchange: Sendable {
        var text: String
        var closedAfter: Double?
        /// The status code of the first response, if one came.
        var status: Int? {
            guard text.hasPrefix("HTTP/1.1 ") else { return nil }
            return Int(text.dropFirst(9).prefix(3))
        }
        /// The first response's body.
        var body: String {
            guard let range = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[range.upperBound...])
        }
        /// The first response's body as a JSON object.
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    /// Connects, sends each of `chunks` (waiting `pause` seconds before each after the first),
    /// keeps reading, and returns once the server closes or `readTimeout` seconds have passed
    /// since connecting. Sending stops when the server has closed.
    func exchange(_ chunks: [[UInt8]], pause: Double = 0, readTimeout: Double = 15) async throws -> Exchange {
        let port = self.port
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try Self.run(port: port, chunks: chunks, pause: pause, readTimeout: readTimeout) })
            }
        }
    }

    /// `text` split into one-byte chunks.
    static func bytes(_ text: String) -> [[UInt8]] { text.utf8.map { [$0] } }

    static func run(port: Int, chunks: [[UInt8]], pause: Double, readTimeout: Double) throws -> Exchange {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let start = Date()
        var received: [UInt8] = []
        var closedAfter: Double?

        /// Reads what is there (waiting at most `seconds`); false once the server has closed.
        func drain(for seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let left = deadline.timeIntervalSinceNow
                var fds = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&fds, 1, Int32(max(0, left) * 1000))
                if ready <= 0 { return true }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 {
                    closedAfter = Date().timeIntervalSince(start)
                    return false
                }
                received += buffer[..<n]
            }
        }

        for (i, chunk) in chunks.enumerated() {
            if i > 0, pause > 0, !drain(for: pause) { break }
            let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 { break }  // closed by the server
        }
        if closedAfter == nil { _ = drain(for: max(0, readTimeout - Date().timeIntervalSince(start))) }
        return Exchange(text: String(decoding: received, as: UTF8.self), closedAfter: closedAfter)
    }
}
