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

/// Threads that have started to stall.
private final class Started: Sendable {
    let count = Atomic<Int>(0)
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
        let stall = 1.0
        let (viaHealth, viaService) = try await onOwnThread {
            // Every event loop of the service port, and every thread of the cooperative pool (the
            // test's own task is suspended meanwhile), sleeps `stall` seconds.
            let started = Started()
            let loops = Array(serviceLoops.makeIterator())
            for loop in loops {
                loop.execute {
                    started.count.add(1, ordering: .relaxed); usleep(UInt32(stall * 1e6))
                }
            }
            let pool = ProcessInfo.processInfo.activeProcessorCount
            for _ in 0..<pool {
                Task.detached {
                    started.count.add(1, ordering: .relaxed); usleep(UInt32(stall * 1e6))
                }
            }
            while started.count.load(ordering: .relaxed) < loops.count + pool { usleep(1000) }
            let request = [Array("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)]
            // Both probes at once, each on a thread of its own.
            let serviceProbe = Mutex<Result<RawHTTPClient.Exchange, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                let result = Result { try RawHTTPClient.run(port: service, chunks: request, pause: 0, readTimeout: 10) }
                serviceProbe.withLock { $0 = result }
                done.signal()
            }
            let viaHealth = try RawHTTPClient.run(port: health, chunks: request, pause: 0, readTimeout: 10)
            done.wait()
            return (viaHealth, try serviceProbe.withLock { $0! }.get())
        }
        #expect(viaHealth.status == 200, "\(viaHealth.text)")
        let healthSeconds = try #require(viaHealth.closedAfter)
        #expect(healthSeconds < 0.3, "the health port took \(healthSeconds) s")
        // The control: the stall was real (the service port's probe, sent at the same time, waited).
        // No answer within its 10 s read timeout is a wait too: in a loaded full suite other tests
        // hold the cooperative pool after the stall, and the service port, which runs on it, can
        // stay silent that long (seen once); the health port is not allowed that excuse.
        let serviceSeconds = viaService.closedAfter ?? 10
        #expect(serviceSeconds > 0.7, "the service port took \(serviceSeconds) s: the threads were not stalled")
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
