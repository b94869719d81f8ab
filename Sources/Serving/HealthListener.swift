import Dispatch
import Hummingbird
import NIOCore
import NIOPosix

/// The health listener (`serve --health-port`): `/v2/health/live`, `/v2/health/ready` and
/// `/metrics` on a port of their own, accepted and answered apart from the service port.
///
/// NOTE: why a port of its own. On the service port every connection costs an accept on the
/// event loops and a task on the cooperative pool before its route is known, in arrival order:
/// when a thousand connections open at once (clients reconnecting together after their header
/// deadline), a health probe waits behind all of them, 100 to 200 ms on 2 cores. Here the probes
/// have their own accept queue, their own event loop thread and their own executor thread, so a
/// storm on the service port delays them by CPU scheduling alone. The routes stay on the service
/// port too.
public func buildHealthApplication(
    state: ServingState, host: String = "127.0.0.1", port: Int,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
    router.add(middleware: MetricsMiddleware(metrics: state.metrics))
    router.add(middleware: JSONErrorMiddleware())
    addHealthRoutes(to: router, state: state)
    let headerBytes = ConnectionGuard.maxHeaderBytes
    return Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionGuard(headerTimeout: state.limits.headerTimeout)],
                idleTimeout: .seconds(max(1, state.limits.idleTimeout.components.seconds)),
                httpDecoderConfiguration: .init(maxHeaderFieldSize: headerBytes, maxHeaderListSize: headerBytes))),
        configuration: .init(address: .hostname(host, port: port), serverName: "medsynth", backlog: 256),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        eventLoopGroupProvider: .shared(HealthListener.eventLoop))
}

/// Runs the service application and, if there is one, the health application beside it, the
/// latter with every task on the health executor; returns (or throws) when the service
/// application ends (a signal, or an error), after stopping the health application.
public func runServing(_ service: some ApplicationProtocol, health: (any ApplicationProtocol)?) async throws {
    guard let health else { return try await service.runService() }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await withTaskExecutorPreference(HealthListener.executor) { try await health.run() } }
        try await service.runService()
        group.cancelAll()
    }
}

/// The threads the health listener runs on.
enum HealthListener {
    /// One event loop thread, apart from the service port's.
    static let eventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The health listener's connection tasks inherit it (task groups keep their parent's executor
    /// preference), so they never queue behind the service port's tasks on the cooperative pool.
    static let executor = SerialQueueExecutor(label: "medsynth.health")
}

/// A task executor backed by one serial dispatch queue of high priority.
final class SerialQueueExecutor: TaskExecutor {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label, qos: .userInteractive) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
