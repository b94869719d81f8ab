import Datasets
import Dispatch
import Foundation
import Kernels
import Tracking

#if canImport(Glibc)
    import Glibc
#endif

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
    /// Time allowed to receive a request's line and headers, counted from the moment the
    /// connection can take a request (accepted, or the previous response sent); after it the
    /// server answers 408 and closes. So it is also how long an idle keep-alive connection lives.
    public var headerTimeout: Duration
    /// A connection with no request part read or response part written for this long is closed.
    public var idleTimeout: Duration
    /// Inference requests admitted at once: receiving their body, waiting for an inference
    /// thread or computing. More get 503 with `Retry-After` at once, before their body is read,
    /// so this also bounds the memory that bodies and decoding hold.
    public var maxConcurrentInferences: Int
    /// Threads that decode bodies and run the model, off the cooperative pool that answers
    /// health checks and metrics.
    public var inferenceThreads: Int
    /// Most images in one model run: requests waiting for the model are run together up to this
    /// many (`InferenceBatcher`); 1 runs every request on its own.
    public var maxBatchImages: Int
    /// Longest a batch waits for more requests after a batch of several requests (0: never); a
    /// lone client never waits.
    public var maxBatchDelay: Duration

    public init(
        maxBodyBytes: Int = 8 << 20, maxImagePixels: Int = 1024 * 1024, maxBatch: Int = 256,
        requestTimeout: Duration = .seconds(10), headerTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60), maxConcurrentInferences: Int = 16,
        inferenceThreads: Int = ServingLimits.defaultInferenceThreads, maxBatchImages: Int = 32,
        maxBatchDelay: Duration = .microseconds(500)
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxImagePixels = maxImagePixels
        self.maxBatch = maxBatch
        self.requestTimeout = requestTimeout
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxConcurrentInferences = maxConcurrentInferences
        self.inferenceThreads = inferenceThreads
        self.maxBatchImages = maxBatchImages
        self.maxBatchDelay = maxBatchDelay
    }

    /// One inference thread per core, at most 8 (oneDNN parallelises each layer by itself).
    public static var defaultInferenceThreads: Int { min(8, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Throws unless every limit is positive, the batch delay at least 0 (a negative body limit
    /// once took the server down on its first request).
    public func validate() throws {
        for (name, value) in [
            ("maxBodyBytes", maxBodyBytes), ("maxImagePixels", maxImagePixels), ("maxBatch", maxBatch),
            ("maxConcurrentInferences", maxConcurrentInferences), ("inferenceThreads", inferenceThreads),
            ("maxBatchImages", maxBatchImages),
        ]
        where value < 1 {
            throw ServingError(status: 500, "serving limit \(name) is \(value); it must be at least 1")
        }
        for (name, value) in [("requestTimeout", requestTimeout), ("headerTimeout", headerTimeout), ("idleTimeout", idleTimeout)]
        where value <= .zero {
            throw ServingError(status: 500, "serving limit \(name) is \(value); it must be positive")
        }
        guard maxBatchDelay >= .zero else {
            throw ServingError(status: 500, "serving limit maxBatchDelay is \(maxBatchDelay); it must not be negative")
        }
    }
}

/// The model being served with its drift monitor: swapped as one value on reload.
public struct Deployment: Sendable {
    public var model: any InferenceModel
    /// Nil when the registered version has no reference statistics.
    public var monitor: DriftMonitor?
    /// Tells deployments apart (a reload, even of the same version, makes a new one), so that a
    /// batch never mixes them.
    private let token = Token()
    var identity: ObjectIdentifier { ObjectIdentifier(token) }
    private final class Token: Sendable {}
}

/// Where the served model stands; `/v2/health/ready` answers 200 only when `ready`.
public enum ModelStatus: Sendable, Equatable {
    /// No version loaded yet; the first load is under way.
    case loading
    /// A version is loaded and answering.
    case ready
    /// The first load failed (the message says why); nothing is served until a reload succeeds.
    case failed(String)
}

/// Everything the routes share: the registry, the deployed model, metrics, limits, admin token,
/// the admission count and the inference threads.
public final class ServingState: @unchecked Sendable {
    // NOTE: @unchecked: `current`, `status` and `inFlightCount` are guarded by `lock`; the rest is immutable.
    public let store: RunStore
    /// What `load` resolves by default, e.g. `breast@champion`.
    public let modelReference: String
    public let limits: ServingLimits
    public let adminToken: String?
    public let metrics = ServerMetrics()
    /// Set when the server was given a retraining command.
    public let retrain: RetrainLauncher?
    let loader: ModelLoader
    let driftWindow: Int
    let thresholds: DriftThresholds
    /// Decoding, inference and loading run here, never on the cooperative pool.
    let queue: InferenceQueue
    /// Runs the images of requests waiting for the same deployment as one batch.
    let batcher: InferenceBatcher
    private let lock = NSLock()
    private var current: Deployment?
    private var currentStatus = ModelStatus.loading
    private var inFlightCount = 0
    /// Inferences were served since the last trim, and during the current tick of the trim timer.
    private var servedSinceTrim = false, servedThisTick = false
    private var trimPolicy = HeapTrimPolicy()
    /// glibc's trim threshold is `HeapTrimPolicy.idleTrimThreshold` (from a trim to the next
    /// admitted inference), else `HostMemory.trainingTrimThreshold`.
    private var idleTrimThreshold = false
    private var trimTimer: (any DispatchSourceTimer)?

    /// Checks the limits; loads nothing: call `load()` (blocking) or `startLoading()`. Until a
    /// version is loaded, `/v2/health/ready` and the model routes answer 503.
    public init(
        store: RunStore, modelReference: String, loader: @escaping ModelLoader, limits: ServingLimits = ServingLimits(),
        adminToken: String? = nil, retrainCommand: String? = nil, driftWindow: Int = 200,
        thresholds: DriftThresholds = DriftThresholds()
    ) throws {
        try limits.validate()
        guard driftWindow >= thresholds.minimumSamples else {
            throw ServingError(
                status: 500,
                "drift window \(driftWindow) is below the \(thresholds.minimumSamples) predictions "
                    + "the monitor needs before it judges")
        }
        self.store = store
        self.modelReference = modelReference
        self.loader = loader
        self.limits = limits
        self.adminToken = adminToken
        self.driftWindow = driftWindow
        self.thresholds = thresholds
        queue = InferenceQueue(threads: limits.inferenceThreads)
        batcher = InferenceBatcher(
            maxImages: limits.maxBatchImages, maxDelay: limits.maxBatchDelay, queue: queue, metrics: metrics)
        let name = Self.modelName(of: modelReference)
        retrain = retrainCommand.map { RetrainLauncher(command: $0, store: store, modelName: name) }
        trimTimer = startHeapTrimming(every: .seconds(2))
    }

    deinit { trimTimer?.cancel() }

    /// Hands freed heap memory back to the system every `interval`, as `HeapTrimPolicy` decides.
    private func startHeapTrimming(every interval: DispatchTimeInterval) -> (any DispatchSourceTimer)? {
        #if canImport(Glibc)
            let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in
                guard let self,
                    lock.withLock({ () -> Bool in
                        defer { servedThisTick = false }
                        guard
                            trimPolicy.shouldTrim(
                                inferenceServedSinceTrim: servedSinceTrim, busy: servedThisTick || inFlightCount > 0)
                        else { return false }
                        servedSinceTrim = false
                        return true
                    })
                else { return }
                let before = residentBytes() ?? 0
                let lowered = lock.withLock {
                    guard !idleTrimThreshold else { return false }
                    HostMemory.setTrimThreshold(HeapTrimPolicy.idleTrimThreshold)
                    idleTrimThreshold = true
                    return true
                }
                if lowered {
                    // The inference threads, idle now, free a block each so that glibc trims their arenas' tops.
                    queue.submitToEveryWorker(releaseArenaTop)
                }
                _ = mallocTrim?(0)
                let released = before - (residentBytes() ?? 0)
                lock.withLock { trimPolicy.trimmed(released: released) }
            }
            timer.resume()
            return timer
        #else
            return nil
        #endif
    }

    /// `breast` for `breast@champion`, `breast@3` or `breast`.
    static func modelName(of reference: String) -> String {
        String(reference.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// The name of the model this server serves (known before its weights are loaded).
    public var modelName: String { lock.withLock { current?.model.name } ?? Self.modelName(of: modelReference) }

    static func deploy(_ version: ModelVersion, loader: ModelLoader, window: Int, thresholds: DriftThresholds) throws
        -> Deployment
    {
        let model = try loader(version.name, version.version, version.artifactPath)
        let reference = try version.reference.map { try JSONDecoder().decode(ReferenceStats.self, from: Data($0.utf8)) }
        let monitor = reference.flatMap { stats in
            stats.classNames == model.classNames
                ? DriftMonitor(model: version.label, reference: stats, windowSize: window, thresholds: thresholds) : nil
        }
        return Deployment(model: model, monitor: monitor)
    }

    /// The deployment now, nil until a version is loaded; a request keeps the one it started
    /// with, whatever reloads happen.
    public var deployment: Deployment? { lock.withLock { current } }

    /// Where the served model stands.
    public var modelStatus: ModelStatus { lock.withLock { currentStatus } }

    /// The deployment, if `name` is the served model's name; 503 while none is loaded, else 404.
    func deployment(named name: String) throws -> Deployment {
        let (deployment, status) = lock.withLock { (current, currentStatus) }
        guard let deployment else {
            let served = Self.modelName(of: modelReference)
            guard served == name else {
                throw ServingError(status: 404, "unknown model '\(name)'; this server serves '\(served)'")
            }
            throw Self.notReady(status)
        }
        guard deployment.model.name == name else {
            throw ServingError(status: 404, "unknown model '\(name)'; this server serves '\(deployment.model.name)'")
        }
        return deployment
    }

    /// The deployment; 503 while none is loaded.
    func servedDeployment() throws -> Deployment {
        let (deployment, status) = lock.withLock { (current, currentStatus) }
        guard let deployment else { throw Self.notReady(status) }
        return deployment
    }

    static func notReady(_ status: ModelStatus) -> ServingError {
        switch status {
        case .failed(let message): ServingError(status: 503, "no model loaded: \(message)")
        default: ServingError(status: 503, "the model is loading")
        }
    }

    /// Resolves `reference` (default: `modelReference`: `NAME@ALIAS`, `NAME@VERSION` or `NAME`),
    /// checks the artifact's hash, loads it and swaps it in atomically; requests in flight
    /// finish on the model they started with. On failure the version served so far stays;
    /// with none, the status becomes `failed`.
    ///
    /// NOTE: blocks (hashing, reading, building the model): call it from a thread, or through
    /// `startLoading` / the admin route, which run it on the inference threads.
    @discardableResult
    public func load(_ reference: String? = nil) throws -> ModelVersion {
        do {
            let version = try store.resolve(reference ?? modelReference)
            try store.verifyArtifact(version)
            let next = try Self.deploy(version, loader: loader, window: driftWindow, thresholds: thresholds)
            lock.withLock {
                current = next
                currentStatus = .ready
            }
            return version
        } catch {
            lock.withLock { if current == nil { currentStatus = .failed("\(error)") } }
            throw error
        }
    }

    /// Loads `modelReference` on an inference thread and returns at once; `completion` runs
    /// there with the outcome.
    public func startLoading(completion: @escaping @Sendable (Result<ModelVersion, any Error>) -> Void = { _ in }) {
        queue.submit { [self] in completion(Result { try load() }) }
    }

    /// `load` on an inference thread, for the admin route.
    func reload(_ reference: String?) async throws -> ModelVersion {
        try await queue.run { [self] in try load(reference) }
    }

    /// Inference requests admitted now (receiving, waiting or computing).
    public var inFlight: Int { lock.withLock { inFlightCount } }

    /// Admits a request for `body` (which receives its body and calls `predict`), in one of
    /// `maxConcurrentInferences` places; 503 at once when all are taken.
    func withInferenceSlot<T>(_ body: () async throws -> T) async throws -> T {
        try acquireInferenceSlot()
        defer { releaseInferenceSlot() }
        return try await body()
    }

    /// Takes one place, or throws 503; `releaseInferenceSlot` gives it back.
    func acquireInferenceSlot() throws {
        let admitted = lock.withLock {
            guard inFlightCount < limits.maxConcurrentInferences else { return false }
            inFlightCount += 1
            if idleTrimThreshold {
                HostMemory.setTrimThreshold(HostMemory.trainingTrimThreshold)
                idleTrimThreshold = false
            }
            return true
        }
        guard admitted else {
            throw ServingError(status: 503, "server busy: \(limits.maxConcurrentInferences) inference requests in flight")
        }
    }

    func releaseInferenceSlot() {
        lock.withLock {
            inFlightCount -= 1
            (servedSinceTrim, servedThisTick) = (true, true)
        }
    }

    /// Runs `prepare` (decoding and checking a request) on an inference thread, then the model on
    /// the images it returns, in a batch with other requests' images for the same deployment
    /// (`InferenceBatcher`); answers `prepare`'s value and one row of probabilities per image.
    /// The calling task is suspended, not blocked, meanwhile.
    func predict<T: Sendable>(
        _ deployment: Deployment, prepare: @escaping @Sendable () throws -> (T, pixels: [Float], count: Int)
    ) async throws -> (T, [[Float]]) {
        try await withCheckedThrowingContinuation { continuation in
            queue.submit { [self] in
                do {
                    let (value, pixels, count) = try prepare()
                    let item = InferenceBatcher.Item(
                        deployment: deployment, pixels: pixels, count: count,
                        run: { [self] in try runModel(deployment, pixels: $0, count: $1) },
                        finish: { continuation.resume(with: $0.map { (value, $0) }) })
                    batcher.submit(item)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Runs the model on checked images (one request's or a batch's), counts the predictions and
    /// feeds the drift monitor, image by image.
    func runModel(_ deployment: Deployment, pixels: [Float], count: Int) throws -> [[Float]] {
        let model = deployment.model
        let rows = try model.predict(pixels, count: count)
        guard rows.count == count, rows.allSatisfy({ $0.count == model.classNames.count }) else {
            throw ServingError(
                status: 500, "model \(model.name)@\(model.version) returned \(rows.count) rows for \(count) images")
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
        let message = String(
            format: "class PSI %.3f, intensity PSI %.3f, chi-square p %.2g over %d predictions",
            report.classPSI, report.intensityPSI, report.chiSquarePValue, report.samples)
        // NOTE: a failed event write must not fail the request that revealed the drift.
        _ = try? store.record(Event(model: report.model, kind: "drift", message: message))
        retrain?.launchOnce(reason: message)
    }
}

#if canImport(Glibc)
    /// glibc's `malloc_trim`, which Swift's Glibc module does not import (malloc.h's extensions).
    private let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
#endif
