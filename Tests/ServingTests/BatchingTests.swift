import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import Tracking

@testable import Serving

/// A model that records how many images each of its runs took, and waits at a gate first (when
/// it has one).
struct RecordingModel: InferenceModel {
    let inner: any InferenceModel
    let gate: Gate?
    let runs: Runs
    var name: String { inner.name }
    var version: Int { inner.version }
    var classNames: [String] { inner.classNames }
    var inputShape: (channels: Int, height: Int, width: Int) { inner.inputShape }
    func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        runs.record(count)
        gate?.pass()
        return try inner.predict(pixels, count: count)
    }
}

/// Image counts of a model's runs, in order.
final class Runs: @unchecked Sendable {
    // NOTE: @unchecked: `counts` is guarded by `lock`.
    private let lock = NSLock()
    private var counts: [Int] = []
    func record(_ count: Int) { lock.withLock { counts.append(count) } }
    var all: [Int] { lock.withLock { counts } }
}

/// The one-at-a-time answer for image `i` of the fixture's probes: the checkpoint alone, batch 1.
func oneAtATime(_ fixture: TrainedClassifier, _ checkpoint: URL, image i: Int) throws -> [Float] {
    let model = try ServedClassifier(name: "breast", version: 1, checkpoint: checkpoint)
    return try model.predict(Array(fixture.probePixels[i * 784..<(i + 1) * 784]), count: 1)[0]
}

/// Requests waiting for the model run together: with the first run held at a gate until every
/// request has been decoded and queued, the trained ResNet runs the rest in batches of at most
/// `maxBatchImages` (image PNGs and 2-image OIP requests mixed), the batch-size histogram counts
/// them, and every answer equals the one-at-a-time prediction.
@Test func concurrentRequestsRunInBatchesAndAnswerAsOneAtATime() async throws {
    let fixture = try TrainedClassifier.shared.get()
    let gate = Gate()
    defer { gate.open() }
    let runs = Runs()
    let store = try RunStore(
        path: fixture.unitCheckpoint.deletingLastPathComponent().appendingPathComponent("store-\(UUID().uuidString).sqlite").path)
    try register(fixture.unitCheckpoint, in: store)
    let loader: ModelLoader = { name, version, path in
        RecordingModel(inner: try ServedClassifier.loader(name, version, path), gate: gate, runs: runs)
    }
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: loader,
        limits: ServingLimits(maxConcurrentInferences: 64, inferenceThreads: 2, maxBatchImages: 8))
    try state.load()
    let expected = try (0..<fixture.probeFiles.count).map { try oneAtATime(fixture, fixture.unitCheckpoint, image: $0) }
    // 18 PNG requests (each probe 3 times) and 3 OIP requests of probes (0, 1), (2, 3), (4, 5).
    let pngs = (0..<18).map { $0 % fixture.probeFiles.count }
    let pairs = [0, 2, 4]
    let (requests, images) = (pngs.count + pairs.count, pngs.count + 2 * pairs.count)
    try await buildApplication(state: state).test(.router) { client in
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in pngs {
                group.addTask {
                    try await client.execute(
                        uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(fixture.probeFiles[i])
                    ) { response in
                        #expect(response.status == .ok)
                        let answer = try JSONDecoder().decode(PredictResponse.self, from: Data(buffer: response.body))
                        for (c, name) in fixture.classNames.enumerated() {
                            #expect(abs(answer.probabilities[name]! - Double(expected[i][c])) < 1e-5, "probe \(i)")
                        }
                    }
                }
            }
            for i in pairs {
                group.addTask {
                    let pixels = Array(fixture.probePixels[i * 784..<(i + 2) * 784])
                    let body = try inferBody(pixels, count: 2)
                    try await client.execute(uri: "/v2/models/breast/infer", method: .post, body: body) { response in
                        #expect(response.status == .ok)
                        let answer = try JSONDecoder().decode(InferResponse.self, from: Data(buffer: response.body))
                        let got = answer.outputs[0].data!.numbers
                        for (j, want) in (expected[i] + expected[i + 1]).enumerated() {
                            #expect(abs(got[j] - Double(want)) < 1e-5, "probes \(i), \(i + 1)")
                        }
                    }
                }
            }
            gate.open(after: 900)
            // The first run is at the gate; every other image is decoded and waits for a batch.
            let queued = try await eventually(600) {
                gate.arrived == 1 && state.inFlight == requests
                    && state.batcher.waitingImages + (runs.all.first ?? 0) == images
            }
            #expect(queued, "arrived \(gate.arrived), in flight \(state.inFlight), waiting \(state.batcher.waitingImages)")
            gate.open()
            try await group.waitForAll()
        }
        let counts = runs.all
        // Fewer runs than requests (one a request is what no batching gives), none over 8 images.
        #expect(counts.reduce(0, +) == images && counts.allSatisfy { $0 <= 8 }, "\(counts)")
        #expect(counts.count < requests && counts.max()! > 1, "\(counts)")
        try await client.execute(uri: "/metrics", method: .get) { response in
            let lines = Set(String(buffer: response.body).split(separator: "\n").map(String.init))
            #expect(lines.contains("medsynth_inference_batch_images_count \(counts.count)"))
            #expect(lines.contains("medsynth_inference_batch_images_sum \(images)"))
            #expect(lines.contains("medsynth_inference_batch_images_bucket{le=\"8\"} \(counts.count)"))
            #expect(lines.contains("medsynth_inference_batch_images_bucket{le=\"4\"} \(counts.filter { $0 <= 4 }.count)"))
        }
    }
}

/// A batch never mixes deployments: requests that started on version 1 (held at its gate) and
/// requests after a reload to version 2 (the same weights declared as trained on [-1, 1] pixels,
/// so every answer tells which model computed it) each run on their own model, and answer it.
@Test func requestsForDifferentDeploymentsNeverShareABatch() async throws {
    let fixture = try TrainedClassifier.shared.get()
    let gate = Gate()
    defer { gate.open() }
    let (first, second) = (Runs(), Runs())
    let store = try RunStore(
        path: fixture.unitCheckpoint.deletingLastPathComponent().appendingPathComponent("store-\(UUID().uuidString).sqlite").path)
    try register(fixture.unitCheckpoint, in: store)
    let loader: ModelLoader = { name, version, path in
        let inner = try ServedClassifier.loader(name, version, path)
        return version == 1
            ? RecordingModel(inner: inner, gate: gate, runs: first) : RecordingModel(inner: inner, gate: nil, runs: second)
    }
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: loader, limits: ServingLimits(inferenceThreads: 2),
        adminToken: "secret")
    try state.load()
    let unit = try (0..<6).map { try oneAtATime(fixture, fixture.unitCheckpoint, image: $0) }
    let symmetric = try (0..<6).map { try oneAtATime(fixture, fixture.symmetricCheckpoint, image: $0) }
    #expect(unit != symmetric)
    try await buildApplication(state: state).test(.router) { client in
        func predict(_ i: Int, expecting rows: [[Float]], version: Int) async throws {
            try await client.execute(
                uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(fixture.probeFiles[i])
            ) { response in
                let answer = try JSONDecoder().decode(PredictResponse.self, from: Data(buffer: response.body))
                #expect(answer.version == version)
                for (c, name) in fixture.classNames.enumerated() {
                    #expect(abs(answer.probabilities[name]! - Double(rows[i][c])) < 1e-5, "version \(version), probe \(i)")
                }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<6 { group.addTask { try await predict(i, expecting: unit, version: 1) } }
            gate.open(after: 900)
            #expect(try await eventually(600) { gate.arrived == 1 && state.batcher.waitingImages + first.all[0] == 6 })
            try register(fixture.symmetricCheckpoint, in: store)  // version 2, champion
            let reloaded = try await client.execute(
                uri: "/admin/reload", method: .post, headers: [.authorization: "Bearer secret"]
            ) { $0.status == .ok }
            #expect(reloaded)
            if !reloaded { gate.open() }  // or version 2's requests would wait at version 1's gate
            // Version 2's requests are answered while version 1's still wait at the gate (a batcher
            // that mixed them would hold them there too: a minute, then the gate opens).
            let answered = Runs()
            for i in 0..<6 {
                group.addTask {
                    try await predict(i, expecting: symmetric, version: 2)
                    answered.record(i)
                }
            }
            #expect(try await eventually(60) { answered.all.count == 6 }, "version 2 answered \(answered.all)")
            #expect(!gate.opened)
            gate.open()
            try await group.waitForAll()
        }
    }
    #expect(first.all.reduce(0, +) == 6 && second.all.reduce(0, +) == 6, "version 1 \(first.all), version 2 \(second.all)")
}

/// A batch never mixes image sizes: while a run of 784-value images is held at the gate, images
/// of 784 and of 3 x 784 values arrive; the larger ones run (on the other thread), the others wait,
/// and each run gets images of one size only.
@Test func imagesOfDifferentSizesNeverShareABatch() async throws {
    let (deployment, queue, batcher, gate) = try batcherWithGate(maxImages: 64)
    defer { gate.open() }
    let (sizes, counts) = (Runs(), Runs())  // of each run: values per image (-1: not a whole number), images
    let run: @Sendable ([Float], Int) throws -> [[Float]] = { pixels, count in
        sizes.record(pixels.count % count == 0 ? pixels.count / count : -1)
        counts.record(count)
        if sizes.all.count == 1 { gate.pass() }  // the first run only
        return Array(repeating: [0.5, 0.5], count: count)
    }
    let submissions = [784, 784, 2352, 784, 2352, 2352, 784]
    try await withThrowingTaskGroup(of: Int.self) { group in
        for (i, size) in submissions.enumerated() {
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    queue.submit {
                        let item = InferenceBatcher.Item(
                            deployment: deployment, pixels: [Float](repeating: Float(i), count: size), count: 1, run: run,
                            finish: { continuation.resume(with: $0.map { $0.count }) })
                        batcher.submit(item)
                    }
                }
            }
            if i == 0 { #expect(try await eventually(600) { gate.arrived == 1 }) }
        }
        gate.open(after: 900)
        // The three later 784-value images wait behind the gated run (the 2352-value ones run meanwhile).
        #expect(try await eventually(600) { batcher.waitingImages >= 3 })
        gate.open()
        for try await rows in group { #expect(rows == 1) }
    }
    let runs = Array(zip(sizes.all, counts.all))
    #expect(runs.allSatisfy { [784, 2352].contains($0.0) }, "\(runs)")
    #expect(runs.filter { $0.0 == 784 }.map(\.1).reduce(0, +) == 4, "\(runs)")
    #expect(runs.filter { $0.0 == 2352 }.map(\.1).reduce(0, +) == 3, "\(runs)")
}

/// A request as large as a batch runs at once on its own thread, beside a batch of the same
/// deployment that is still running (it used to wait for it, and small requests waited for it).
@Test func aRequestAsLargeAsABatchRunsBesideTheBatches() async throws {
    let (deployment, queue, batcher, gate) = try batcherWithGate(maxImages: 4)
    defer { gate.open() }
    let counts = Runs()
    let run: @Sendable ([Float], Int) throws -> [[Float]] = { _, count in
        counts.record(count)
        if count == 1 { gate.pass() }  // the small request's batch holds at the gate
        return Array(repeating: [0.5, 0.5], count: count)
    }
    func submit(count: Int) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            queue.submit {
                batcher.submit(
                    InferenceBatcher.Item(
                        deployment: deployment, pixels: [Float](repeating: 0, count: 784 * count), count: count,
                        run: run, finish: { continuation.resume(with: $0.map { $0.count }) }))
            }
        }
    }
    async let small = submit(count: 1)
    #expect(try await eventually(600) { gate.arrived == 1 })
    gate.open(after: 30)  // a batcher that made it wait fails here instead of hanging
    let large = try await submit(count: 4)  // answered while the small one's batch is held
    #expect(large == 4)
    #expect(!gate.opened && counts.all == [1, 4], "waited for the held batch: \(counts.all)")
    gate.open()
    #expect(try await small == 1)
}

/// A deployment of the trained ResNet, a batcher of `maxImages` over two inference threads, and a
/// closed gate for the tests' model runs to hold at.
private func batcherWithGate(maxImages: Int) throws -> (Deployment, InferenceQueue, InferenceBatcher, Gate) {
    let fixture = try TrainedClassifier.shared.get()
    let deployment = Deployment(
        model: try ServedClassifier(name: "breast", version: 1, checkpoint: fixture.unitCheckpoint), monitor: nil)
    let queue = InferenceQueue(threads: 2)
    return (deployment, queue, InferenceBatcher(maxImages: maxImages, queue: queue, metrics: ServerMetrics()), Gate())
}
