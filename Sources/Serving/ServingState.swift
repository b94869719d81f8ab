import Datasets
import Foundation
import Tracking

/// Limits that keep one client from taking the server down.
public struct ServingLimits: Sendable {
    /// Largest request body accepted (413 above).
    public var maxBodyBytes: Int
    /// Largest decoded image, in pixels, checked from the header before decoding (413 above).
    /// NOTE: decoding and resizing hold about 20 bytes per pixel, per request in flight.
    public var maxImagePixels: Int
    /// Most images in one `infer` request.
    public var maxBatch: Int
    /// Time allowed to receive a request body (408 after).
    public var requestTimeout: Duration
    /// A connection with no byte read or written for this long is closed (slow or stuck clients).
    public var idleTimeout: Duration
    /// Inference requests computed at once; more get 503 with `Retry-After` (no queue).
    public var maxConcurrentInferences: Int

    public init(maxBodyBytes: Int = 8 << 20, maxImagePixels: Int = 1024 * 1024, maxBatch: Int = 256,
                requestTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
                maxConcurrentInferences: Int = 16) {
        self.maxBodyBytes = maxBodyBytes
        self.maxImagePixels = maxImagePixels
        self.maxBatch = maxBatch
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.maxConcurrentInferences = maxConcurrentInferences
    }

    /// Throws unless every limit is positive (a negative body limit once took the server down on
    /// its first request).
    public func validate() throws {
        for (name, value) in [("maxBodyBytes", maxBodyBytes), ("maxImagePixels", maxImagePixels), ("maxBatch", maxBatch),
                              ("maxConcurrentInferences", maxConcurrentInferences)] where value < 1 {
            throw ServingError(status: 500, "serving limit \(name) is \(value); it must be at least 1")
        }
        for (name, value) in [("requestTimeout", requestTimeout), ("idleTimeout", idleTimeout)] where value <= .zero {
            throw ServingError(status: 500, "serving limit \(name) is \(value); it must be positive")
        }
    }
}

/// The model being served with its drift monitor: swapped as one value on reload.
public struct Deployment: Sendable {
    public var model: any InferenceModel
    /// Nil when the registered version has no reference statistics.
    public var monitor: DriftMonitor?
}

/// Everything the routes share: the registry, the deployed model, metrics, limits, admin token.
public final class ServingState: @unchecked Sendable {
    // NOTE: @unchecked: `current` and `inFlight` are guarded by `lock`; the rest is immutable.
    public let store: RunStore
    /// What `reload` resolves by default, e.g. `breast@champion`.
    public let modelReference: String
    public let limits: ServingLimits
    public let adminToken: String?
    public let metrics = ServerMetrics()
    /// Set when the server was given a retraining command.
    public let retrain: RetrainLauncher?
    let loader: ModelLoader
    let driftWindow: Int
    let thresholds: DriftThresholds
    private let lock = NSLock()
    private var current: Deployment
    private var inFlightCount = 0

    /// Resolves `modelReference` (`NAME@ALIAS`, `NAME@VERSION` or `NAME`) in `store` and loads it.
    public init(store: RunStore, modelReference: String, loader: @escaping ModelLoader, limits: ServingLimits = ServingLimits(),
                adminToken: String? = nil, retrainCommand: String? = nil, driftWindow: Int = 200,
                thresholds: DriftThresholds = DriftThresholds()) throws {
        try limits.validate()
        guard driftWindow >= thresholds.minimumSamples else {
            throw ServingError(status: 500, "drift window \(driftWindow) is below the \(thresholds.minimumSamples) predictions "
                               + "the monitor needs before it judges")
        }
        self.store = store
        self.modelReference = modelReference
        self.loader = loader
        self.limits = limits
        self.adminToken = adminToken
        self.driftWindow = driftWindow
        self.thresholds = thresholds
        let version = try store.resolve(modelReference)
        try store.verifyArtifact(version)
        current = try Self.deploy(version, loader: loader, window: driftWindow, thresholds: thresholds)
        retrain = retrainCommand.map { RetrainLauncher(command: $0, store: store, modelName: version.name) }
    }

    static func deploy(_ version: ModelVersion, loader: ModelLoader, window: Int, thresholds: DriftThresholds) throws -> Deployment {
        let model = try loader(version.name, version.version, version.artifactPath)
        let reference = try version.reference.map { try JSONDecoder().decode(ReferenceStats.self, from: Data($0.utf8)) }
        let monitor = reference.flatMap { stats in
            stats.classNames == model.classNames
                ? DriftMonitor(model: version.label, reference: stats, windowSize: window, thresholds: thresholds) : nil
        }
        return Deployment(model: model, monitor: monitor)
    }

    /// The deployment now; a request keeps the one it started with, whatever reloads happen.
    public var deployment: Deployment { lock.withLock { current } }

    /// The deployment, if `name` is the served model's name; else 404.
    func deployment(named name: String) throws -> Deployment {
        let deployment = deployment
        guard deployment.model.name == name else {
            throw ServingError(status: 404, "unknown model '\(name)'; this server serves '\(deployment.model.name)'")
        }
        return deployment
    }

    /// Loads `reference` (default: `modelReference`) and swaps it in atomically; requests in
    /// flight finish on the model they started with.
    public func reload(_ reference: String? = nil) throws -> ModelVersion {
        let version = try store.resolve(reference ?? modelReference)
        try store.verifyArtifact(version)
        let next = try Self.deploy(version, loader: loader, window: driftWindow, thresholds: thresholds)
        lock.withLock { current = next }
        return version
    }

    /// Inference requests being computed now.
    public var inFlight: Int { lock.withLock { inFlightCount } }

    /// Runs `body` (decoding and inference) in one of `maxConcurrentInferences` slots; 503 when
    /// all are taken (no queue: a client retries after `Retry-After`).
    func withInferenceSlot<T>(_ body: () throws -> T) throws -> T {
        try acquireInferenceSlot()
        defer { releaseInferenceSlot() }
        return try body()
    }

    /// Takes one inference slot, or throws 503; `releaseInferenceSlot` gives it back.
    func acquireInferenceSlot() throws {
        let admitted = lock.withLock {
            guard inFlightCount < limits.maxConcurrentInferences else { return false }
            inFlightCount += 1
            return true
        }
        guard admitted else {
            throw ServingError(status: 503, "server busy: \(limits.maxConcurrentInferences) inference requests in flight")
        }
    }

    func releaseInferenceSlot() { lock.withLock { inFlightCount -= 1 } }

    /// Runs the model on checked images, counts the predictions and feeds the drift monitor.
    func predict(_ deployment: Deployment, pixels: [Float], count: Int) throws -> [[Float]] {
        let model = deployment.model
        let rows = try model.predict(pixels, count: count)
        guard rows.count == count, rows.allSatisfy({ $0.count == model.classNames.count }) else {
            throw ServingError(status: 500, "model \(model.name)@\(model.version) returned \(rows.count) rows for \(count) images")
        }
        let perImage = pixels.count / count
        for (i, row) in rows.enumerated() {
            let predicted = row.indices.max { row[$0] < row[$1] } ?? 0
            metrics.recordPrediction(model: model.name, version: model.version, className: model.classNames[predicted])
            let mean = pixels[i * perImage..<(i + 1) * perImage].reduce(0, +) / Float(perImage)
            if let report = deployment.monitor?.observe(predicted: predicted, meanIntensity: mean) {
                driftDetected(report)
            }
        }
        return rows
    }

    /// Records a drift event and starts the retraining command (once).
    func driftDetected(_ report: DriftReport) {
        metrics.recordDriftEvent()
        let message = String(format: "class PSI %.3f, intensity PSI %.3f, chi-square p %.2g over %d predictions",
                             report.classPSI, report.intensityPSI, report.chiSquarePValue, report.samples)
        // NOTE: a failed event write must not fail the request that revealed the drift.
        _ = try? store.record(Event(model: report.model, kind: "drift", message: message))
        retrain?.launchOnce(reason: message)
    }
}
