import Foundation
import Hummingbird
import Tracking

/// What `medsynth serve` does: serves `model` (`NAME@ALIAS`, `NAME@VERSION` or `NAME`, the
/// latest) from `store` with the production classifier loader until the task is cancelled.
///
/// A wrong name is refused before listening. The weights load in the background:
/// `/v2/health/live` answers at once, `/v2/health/ready` once they are in. `log` receives what
/// the server has to say (loaded, could not load, listening on which port).
public func serve(
    model: String, store: RunStore, host: String, port: Int, healthPort: Int? = nil, limits: ServingLimits,
    adminToken: String?, retrainCommand: String?, driftWindow: Int, log: @escaping @Sendable (String) -> Void
) async throws {
    let state = try ServingState(
        store: store, modelReference: model, loader: ServedClassifier.loader, limits: limits, adminToken: adminToken,
        retrainCommand: retrainCommand, driftWindow: driftWindow)
    let version = try state.store.resolve(model)  // a wrong name stops here, before listening
    state.startLoading { result in
        switch result {
        case .success(let version): log("loaded \(version.label); ready")
        case .failure(let error):
            log("could not load \(version.label): \(error); not ready (fix it, then POST /admin/reload)")
        }
    }
    let app = buildApplication(state: state, host: host, port: port) { port in
        log("serving \(version.label) on http://\(host):\(port)")
    }
    let health = healthPort.map { healthPort in
        buildHealthApplication(state: state, host: host, port: healthPort) { port in
            log("health checks and metrics also on http://\(host):\(port)")
        }
    }
    try await runServing(app, health: health)
}
