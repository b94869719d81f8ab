import Foundation
import Hummingbird
import NIOPosix
import Synchronization
import Testing

@testable import Serving

/// The ports a running server pair bound (port 0 given to both).
private final class BoundPorts: Sendable {
    let ports = Mutex<(service: Int?, health: Int?)>((nil, nil))
}

/// Threads that stall until released (10 s at most): how many have started, and the release.
private final class Stall: Sendable {
    let started = Atomic<Int>(0)
    let released = Atomic<Bool>(false)

    /// Run on a thread to stall: counts itself in, then waits for the release.
    func hold() {
        started.add(1, ordering: .relaxed)
        let deadline = Date().addingTimeInterval(10)
        while !released.load(ordering: .acquiring) && Date() < deadline { usleep(1000) }
    }
}

/// `serve --health-port`: the health routes and metrics answer on their own port, and nothing
/// else does (the service port's routes are the router tests' business: here the service port
/// may be starved by other tests that block the cooperative pool).
@Test func theHealthPortServesHealthAndMetricsOnly() async throws {
    try await withServerPair { _, health in
        let get = { (port: Int, path: String) in
            try RawHTTPClient.run(
                port: port, chunks: [Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)], pause: 0,
                readTimeout: 10)
        }
        #expect(try get(health, "/v2/health/live").status == 200)
        #expect(try get(health, "/v2/health/ready").json["ready"] as? Bool == true)
        #expect(try get(health, "/metrics").body.contains("medsynth_http_requests_total"))
        let notThere = try get(health, "/v2/models/breast")
        #expect(notThere.status == 404, "\(notThere.text)")
    }
}

/// The point of the health port: when every thread that serves the service port is busy (its
/// event loops and the cooperative pool, as in a storm of new connections on 2 cores), a health
/// probe on the health port is still answered at once, while one on the service port waits.
/// Without its own event loop, or without its own executor, the health probe waits too.
@Test func theHealthPortAnswersWhileTheServicePortsThreadsAreStalled() async throws {
    // The service port on event loops of its own, so that stalling them holds up no other test.
    let serviceLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    try await withServerPair(serviceLoops: serviceLoops) { service, health in
        let (viaHealth, viaService, releasedAt, answeredAt) = try await onOwnThread {
            // Every event loop of the service port, and every thread of the cooperative pool (the
            // test's own task is suspended meanwhile), stalls until released.
            let stall = Stall()
            let loops = Array(serviceLoops.makeIterator())
            for loop in loops { loop.execute { stall.hold() } }
            let pool = ProcessInfo.processInfo.activeProcessorCount
            for _ in 0..<pool { Task.detached { stall.hold() } }
            while stall.started.load(ordering: .relaxed) < loops.count + pool { usleep(1000) }
            let request = [Array("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)]
            // Both probes at once, the service port's on a thread of its own.
            let serviceProbe = Mutex<(sent: Date, result: Result<RawHTTPClient.Exchange, any Error>?, answered: Date?)>(
                (Date(), nil, nil))
            let sent = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                serviceProbe.withLock { $0.sent = Date() }
                sent.signal()
                let result = Result { try RawHTTPClient.run(port: service, chunks: request, pause: 0, readTimeout: 10) }
                serviceProbe.withLock {
                    $0.result = result
                    $0.answered = Date()
                }
                done.signal()
            }
            sent.wait()
            let viaHealth = try RawHTTPClient.run(port: health, chunks: request, pause: 0, readTimeout: 10)
            // The stall holds until half a second after the service probe went out, then ends.
            let holdUntil = serviceProbe.withLock { $0.sent }.addingTimeInterval(0.5)
            while Date() < holdUntil { usleep(1000) }
            let releasedAt = Date()
            stall.released.store(true, ordering: .releasing)
            done.wait()
            let probe = serviceProbe.withLock { $0 }
            return (viaHealth, try probe.result!.get(), releasedAt, probe.answered!)
        }
        #expect(viaHealth.status == 200, "\(viaHealth.text)")
        let healthSeconds = try #require(viaHealth.closedAfter)
        #expect(healthSeconds < 0.3, "the health port took \(healthSeconds) s")
        // The control: the stall was real. The service port's probe, sent at the same time, got no
        // answer while its threads were stalled. (A stall of fixed length was not enough: under
        // load the stalled threads started up to a second apart, and the first were done by the
        // time the probe went out.)
        #expect(
            answeredAt >= releasedAt,
            "the service port answered \(releasedAt.timeIntervalSince(answeredAt)) s before the stall ended")
        if viaService.closedAfter != nil { #expect(viaService.status == 200, "\(viaService.text)") }
    }
}

/// Runs the service and the health application (both on port 0) as `serve --health-port` does,
/// and gives `body` their bound ports.
private func withServerPair(
    serviceLoops: MultiThreadedEventLoopGroup? = nil,
    _ body: @escaping @Sendable (_ service: Int, _ health: Int) async throws -> Void
) async throws {
    let state = try makeState()
    let bound = BoundPorts()
    let loops: EventLoopGroupProvider = serviceLoops.map { .shared($0) } ?? .singleton
    let service = buildApplication(state: state, host: "127.0.0.1", port: 0, eventLoopGroup: loops) { port in
        bound.ports.withLock { $0.service = port }
    }
    let health = buildHealthApplication(state: state, host: "127.0.0.1", port: 0) { port in
        bound.ports.withLock { $0.health = port }
    }
    let server = Task { try await runServing(service, health: health) }
    // The servers end before the test does: cancelled, awaited, and the service port's own event
    // loops shut down (before, the cancelled servers and two loop threads outlived the test).
    func stop() async {
        server.cancel()
        _ = await server.result
        try? await serviceLoops?.shutdownGracefully()
    }
    for _ in 0..<1000 {
        if case let (service?, health?) = bound.ports.withLock({ $0 }) {
            do { try await body(service, health) } catch {
                await stop()
                throw error
            }
            return await stop()
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    await stop()
    Issue.record("the servers did not start within 10 s")
}

/// Runs `work` on a thread of its own (not the cooperative pool) and awaits its result.
private func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
