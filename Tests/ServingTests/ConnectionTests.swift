import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Serving

// The connection guard lives in the channel pipeline, which the router tests bypass: these run
// the real server on 127.0.0.1 and talk to it over raw TCP.

/// Runs the real server (port 0) with `limits` and gives `body` a raw client on its port.
func withLiveServer(limits: ServingLimits = ServingLimits(), _ body: @escaping @Sendable (RawHTTPClient) async throws -> Void)
    async throws
{
    let state = try makeState(limits: limits)
    try await buildApplication(state: state, host: "127.0.0.1", port: 0).test(.live) { client in
        try await body(RawHTTPClient(port: client.port!))
    }
}

/// The case, scaled down: a client trickling a request's headers one byte every 0.25 s
/// (it would need 9 s) is answered 408 with a JSON error and cut off after the 1 s deadline.
@Test func tricklingHeadersAreCutOffAtTheDeadline() async throws {
    try await withLiveServer(limits: ServingLimits(headerTimeout: .seconds(1))) { client in
        let request = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        let exchange = try await client.exchange(RawHTTPClient.bytes(request), pause: 0.25)
        #expect(exchange.status == 408, "\(exchange.text)")
        #expect(
            (exchange.json["error"] as? String)?.contains("request headers not received within 1.0 seconds") == true,
            "\(exchange.body)")
        let closed = try #require(exchange.closedAfter)
        #expect(closed >= 0.9 && closed < 4, "closed after \(closed) s")
    }
}

/// A connection that sends nothing, or goes quiet after a response (keep-alive), ends the same
/// way; a prompt request on a fresh connection is served.
@Test func silentAndKeptAliveConnectionsEndAtTheDeadline() async throws {
    try await withLiveServer(limits: ServingLimits(headerTimeout: .seconds(1))) { client in
        let silent = try await client.exchange([])
        #expect(silent.status == 408 && silent.closedAfter.map { $0 < 4 } == true, "\(silent)")

        // One request answered at once, then the next one trickled: the deadline starts again
        // after the response and cuts the second request off.
        let first = Array("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let exchange = try await client.exchange([first] + RawHTTPClient.bytes("GET /v2/health/live HTTP/1.1\r\n"), pause: 0.25)
        #expect(exchange.status == 200, "\(exchange.text)")
        #expect(exchange.text.contains("HTTP/1.1 408"), "\(exchange.text)")
        #expect(exchange.closedAfter.map { $0 < 5 } == true)
    }
}

/// A bad chunk size inside a request body answers 400 with the JSON error (it was a 500). The
/// server closes after answering; the 30 s read limit only matters on a starved machine (5 s
/// failed twice in full suites, with the pool busy).
@Test func anInvalidChunkSizeAnswers400() async throws {
    try await withLiveServer { client in
        let head =
            "POST /v2/models/breast/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        let exchange = try await client.exchange([Array((head + "zz\r\n{}\r\n0\r\n\r\n").utf8)], readTimeout: 30)
        #expect(exchange.status == 400, "\(exchange.text)")
        #expect((exchange.json["error"] as? String)?.contains("invalid chunk size") == true, "\(exchange.body)")
    }
}

/// Oversized request lines and headers, and garbage, answer with the JSON error every route
/// gives (they were empty bodies).
@Test(arguments: [
    ("long URL", "GET /" + String(repeating: "a", count: 20_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, "exceed 16 KiB"),
    (
        "long header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 20_000) + "\r\n\r\n", 431,
        "exceed 16 KiB"
    ),
    ("garbage", "HELLO THERE\r\n\r\n", 400, "malformed HTTP request"),
])
func malformedRequestsGetTheJSONError(_ label: String, _ request: String, _ status: Int, _ message: String) async throws {
    try await withLiveServer { client in
        let exchange = try await client.exchange([Array(request.utf8)], readTimeout: 30)
        #expect(exchange.status == status, "\(label): \(exchange.text.prefix(300))")
        #expect(exchange.text.lowercased().contains("content-type: application/json"), "\(label)")
        #expect((exchange.json["error"] as? String)?.contains(message) == true, "\(label): \(exchange.body)")
    }
}
