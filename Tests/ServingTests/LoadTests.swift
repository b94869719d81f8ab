import Dispatch
import Foundation
import Hummingbird
import HummingbirdTesting
import NN
import Testing
import Tracking

@testable import Serving

/// A gate that threads wait at until it opens (a blocked model, a slow load).
final class Gate: @unchecked Sendable {
    // NOTE: @unchecked: `isOpen` and `count` are guarded by `condition`.
    private let condition = NSCondition()
    private var isOpen = false
    private var count = 0
    private var workers: [Bool] = []

    /// Blocks the calling thread until `open()`.
    func pass() {
        let onWorker = InferenceQueue.onWorkerThread
        condition.withLock {
            count += 1
            workers.append(onWorker)
            while !isOpen { condition.wait() }
        }
    }

    /// For each thread that reached the gate, whether it was an inference thread.
    var onInferenceThreads: [Bool] { condition.withLock { workers } }

    func open() {
        condition.withLock {
            isOpen = true; condition.broadcast()
        }
    }

    var opened: Bool { condition.withLock { isOpen } }

    /// Threads that have reached the gate so far.
    var arrived: Int { condition.withLock { count } }

    /// Opens the gate after `seconds` whatever happens, so that a broken server, which blocks
    /// the test's own tasks, cannot hang the test run.
    func open(after seconds: Double) { DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { self.open() } }
}

/// A model whose `predict` waits at a gate first.
struct GatedModel: InferenceModel {
    let inner: any InferenceModel
    let gate: Gate
    var name: String { inner.name }
    var version: Int { inner.version }
    var classNames: [String] { inner.classNames }
    var inputShape: (channels: Int, height: Int, width: Int) { inner.inputShape }
    func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        gate.pass()
        return try inner.predict(pixels, count: count)
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Inference runs on its own threads: with more requests stuck inside the model than the
/// cooperative pool has threads, health checks and metrics still answer, the queue is bounded
/// (the next request gets 503 with Retry-After and the JSON error), and every admitted request
/// is answered once the model moves again.
///
/// NOTE: "answer while stuck" is checked by order, not by a clock: the health checks must
/// return while the gate is still shut (a server that computes on the cooperative pool answers
/// them only after the gate's safety timer), and the model must have run on an inference
/// thread. Wall-clock bounds belong to the load test (bench/load-test.sh, README): here the
/// other test targets share the two cores and the pool, and can hold both for minutes.
@Test func healthAndMetricsAnswerWhileEveryInferenceIsStuck() async throws {
    let gate = Gate()
    defer { gate.open() }
    let stuck = ProcessInfo.processInfo.activeProcessorCount + 2
    let (store, _, model) = try makeStore()
    let loader: ModelLoader = { name, version, path in GatedModel(inner: try TinyCNN.loader(name, version, path), gate: gate) }
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: loader,
        // Batching off: one request in the model, the others each a job waiting (batching would
        // run them together once the first is decoded, and the count below would vary).
        limits: ServingLimits(maxConcurrentInferences: stuck, inferenceThreads: 1, maxBatchImages: 1))
    try state.load()
    let png = try fileBuffer(model.files["malignant"]![0])
    try await buildApplication(state: state).test(.router) { client in
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<stuck {
                group.addTask {
                    try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: png) {
                        #expect($0.status == .ok)
                    }
                }
            }
            gate.open(after: 900)
            // One request inside the model on the one inference thread, the others queued.
            let settled = try await eventually(600) {
                gate.arrived == 1 && state.inFlight == stuck && state.queue.waiting == stuck - 1
            }
            #expect(settled, "arrived \(gate.arrived), in flight \(state.inFlight), waiting \(state.queue.waiting)")
            for uri in ["/v2/health/live", "/v2/health/ready", "/metrics"] {
                let start = ContinuousClock.now
                try await client.execute(uri: uri, method: .get) { #expect($0.status == .ok) }
                #expect(!gate.opened, "\(uri) answered only after the model moved again, \(ContinuousClock.now - start)")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let lines = Set(String(buffer: response.body).split(separator: "\n").map(String.init))
                #expect(lines.contains("medsynth_http_requests_in_flight \(stuck)"))
                #expect(lines.contains("medsynth_inference_jobs_waiting \(stuck - 1)"))
            }
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: png) { response in
                #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "1")
                #expect((object(response.body)["error"] as? String)?.contains("server busy") == true)
            }
            #expect(!gate.opened)
            gate.open()
            try await group.waitForAll()
        }
        #expect(state.inFlight == 0)
        #expect(gate.onInferenceThreads == Array(repeating: true, count: stuck), "\(gate.onInferenceThreads)")
    }
}

/// `/v2/health/ready` follows the model: 503 `loading` while the weights load (in the
/// background: live answers meanwhile), 200 once they are in.
@Test func readinessFollowsTheModelsState() async throws {
    let gate = Gate()
    defer { gate.open() }  // no timer: the loading thread waits, never the test's tasks
    let (store, _, _) = try makeStore()
    let slowLoader: ModelLoader = { name, version, path in
        gate.pass()
        return try TinyCNN.loader(name, version, path)
    }
    let state = try ServingState(store: store, modelReference: "breast@champion", loader: slowLoader)
    let (loaded, done) = AsyncStream.makeStream(of: Bool.self)
    state.startLoading { done.yield((try? $0.get()) != nil) }
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/health/live", method: .get) { #expect($0.status == .ok) }
        try await client.execute(uri: "/v2/health/ready", method: .get) { response in
            #expect(response.status == .serviceUnavailable)
            #expect(object(response.body)["ready"] as? Bool == false && object(response.body)["state"] as? String == "loading")
        }
        for uri in ["/v2/models/breast", "/v2/models/breast/ready", "/v1/monitor"] {
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .serviceUnavailable, "\(uri)")
                #expect((object(response.body)["error"] as? String)?.contains("loading") == true, "\(uri)")
            }
        }
        try await client.execute(uri: "/v2/models/lung", method: .get) { #expect($0.status == .notFound) }
        try await client.execute(uri: "/metrics", method: .get) { response in
            let text = String(buffer: response.body)
            #expect(text.contains("medsynth_model_ready 0") && !text.contains("medsynth_model_info"))
        }
        try await client.execute(uri: "/", method: .get) {
            #expect(String(buffer: $0.body).contains(#"const model = "breast";"#))
        }
        gate.open()
        #expect(await loaded.first { _ in true } == true)
        try await client.execute(uri: "/v2/health/ready", method: .get) { response in
            #expect(response.status == .ok && object(response.body)["ready"] as? Bool == true)
        }
        try await client.execute(uri: "/v2/models/breast/ready", method: .get) { #expect($0.status == .ok) }
        try await client.execute(uri: "/metrics", method: .get) {
            #expect(String(buffer: $0.body).contains("medsynth_model_ready 1"))
        }
    }
}

/// A reference that names no registered model: not ready, with the registry's reason.
@Test func aMissingModelIsNotReady() async throws {
    let (store, _, _) = try makeStore()
    let state = try ServingState(store: store, modelReference: "lung@champion", loader: TinyCNN.loader)
    #expect(throws: TrackingError.self) { try state.load() }
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/health/ready", method: .get) { response in
            #expect(response.status == .serviceUnavailable && object(response.body)["state"] as? String == "failed")
            #expect((object(response.body)["error"] as? String)?.contains("lung") == true)
        }
    }
}

/// Issue #13: a registered file that changed after registration (here still a valid checkpoint:
/// only its metadata differs, so only the registry's hash can tell) is refused when the server
/// loads it: not ready, `failed`, naming the change.
@Test func aRegisteredFileThatChangedLeavesTheServerNotReady() async throws {
    let model = try TrainedModel.shared.get()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-tamper-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let weights = dir.appendingPathComponent("model.safetensors")
    let stats = dir.appendingPathComponent(model.referenceStats.lastPathComponent)
    try FileManager.default.copyItem(at: model.weights, to: weights)
    try FileManager.default.copyItem(at: model.referenceStats, to: stats)
    let store = try RunStore(path: dir.appendingPathComponent("store.sqlite").path)
    let recorder = try RunRecorder.start(store: store, kind: .train, config: ["data": "breastmnist-png"])
    try recorder.artifact(path: weights.path, kind: "model")
    try recorder.artifact(path: stats.path, kind: "reference-stats")
    try recorder.finish(status: .finished)
    _ = try store.register(runID: recorder.runID, name: "breast")
    try store.setAlias(.champion, name: "breast", version: 1)
    var file = try SafeTensors.read(weights)
    file.metadata["note"] = "changed after registration"
    try SafeTensors.write(file.tensors, metadata: file.metadata, to: weights)
    _ = try TinyCNN.loader("breast", 1, weights.path)  // still a loadable model

    let state = try ServingState(store: store, modelReference: "breast@champion", loader: TinyCNN.loader)
    let error = #expect(throws: TrackingError.self) { try state.load() }
    guard case .artifactChanged = error else {
        Issue.record("not the registry's hash check: \(String(describing: error))"); return
    }
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/health/ready", method: .get) { response in
            #expect(response.status == .serviceUnavailable && object(response.body)["state"] as? String == "failed")
            #expect((object(response.body)["error"] as? String)?.contains("has changed since it was registered") == true)
        }
    }
}
