import Classification
import Datasets
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import Tracking

@testable import Serving

/// The production loader's fixture: the experiment's ResNet trained for a few steps on real
/// ultrasound images, saved as classifier checkpoints, and what the in-memory model answers for
/// a few held-out images (computed before any file is written, so independent of the loader).
struct TrainedClassifier: Sendable {
    /// Pixels in [0, 1] (the checkpoint's preprocessing is `.unit`).
    let unitCheckpoint: URL
    /// The same weights, declared as trained on [-1, 1] pixels.
    let symmetricCheckpoint: URL
    let classNames: [String]
    /// Held-out images, NCHW in [0, 1], and their PNG files.
    let probePixels: [Float]
    let probeFiles: [String]
    /// The in-memory model's probabilities (N, K) for the probes, and for the probes rescaled to [-1, 1].
    let expectedUnit: [Float]
    let expectedSymmetric: [Float]

    static let shared: Result<TrainedClassifier, any Error> = Result { try TrainedClassifier() }

    private init() throws {
        let images = try TrainedModel.shared.get().images
        let directory = try TrainedModel.shared.get().directory.appendingPathComponent("classifier-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Even indices train (256 images, 8 steps of 32), odd ones validate and probe.
        let odd = Array(stride(from: 1, to: images.count, by: 2))
        let config = try ClassifierConfig(arch: .resnet, imageSize: 28, channels: 1, classes: images.classNames.count)
        var options = TrainingOptions()
        (options.epochs, options.batchSize, options.seed) = (1, 32, 7)
        let trainer = try ClassifierTrainer(
            config: config, options: options,
            train: images.subset(Array(stride(from: 0, to: images.count, by: 2).prefix(256))),
            val: images.subset(Array(odd.prefix(64))))
        _ = try trainer.run()
        // Probes from both classes.
        let probes = Array(odd.filter { images.labels[$0] == 0 }.suffix(3) + odd.filter { images.labels[$0] == 1 }.suffix(3))
        classNames = images.classNames
        probePixels = images.gather(probes).pixels
        probeFiles = probes.map { images.sources[$0].location }
        expectedUnit = try predictProbabilities(trainer.model, pixels: probePixels, count: probes.count)
        expectedSymmetric = try predictProbabilities(trainer.model, pixels: probePixels.map { $0 * 2 - 1 }, count: probes.count)
        unitCheckpoint = directory.appendingPathComponent("unit.safetensors")
        symmetricCheckpoint = directory.appendingPathComponent("symmetric.safetensors")
        for (url, scaling) in [(unitCheckpoint, PixelScaling.unit), (symmetricCheckpoint, .symmetric)] {
            let metadata = ClassifierMetadata(
                config: config, classNames: classNames,
                preprocessing: Preprocessing(imageSize: 28, channels: 1, scaling: scaling))
            try ClassifierCheckpoint.save(trainer.model, metadata: metadata, to: url)
        }
    }
}

/// Registers `file` as the next version of `breast` (from a finished run of its own).
@discardableResult
func register(_ file: URL, in store: RunStore, champion: Bool = true) throws -> ModelVersion {
    let recorder = try RunRecorder.start(store: store, kind: .train, config: ["data": "breastmnist-png"])
    try recorder.artifact(path: file.path, kind: "model")
    try recorder.finish(status: .finished)
    let version = try store.register(runID: recorder.runID, name: "breast")
    if champion { try store.setAlias(.champion, name: "breast", version: version.version) }
    return version
}

func classifierState(_ checkpoint: URL) throws -> ServingState {
    let store = try RunStore(
        path: checkpoint.deletingLastPathComponent().appendingPathComponent("store-\(UUID().uuidString).sqlite").path)
    try register(checkpoint, in: store)
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: ServedClassifier.loader, adminToken: "secret")
    try state.load()
    return state
}

func inferBody(_ pixels: [Float], count: Int) throws -> ByteBuffer {
    try body(["inputs": [["name": "images", "shape": [count, 1, 28, 28], "datatype": "FP32", "data": pixels.map(Double.init)]]])
}

/// `medsynth serve`'s loader opens a real classifier checkpoint: the metadata route shows its
/// input and classes, and both inference routes answer what the trained model itself answers.
@Test func theProductionLoaderServesARealClassifier() async throws {
    let fixture = try TrainedClassifier.shared.get()
    let state = try classifierState(fixture.unitCheckpoint)
    let n = fixture.probeFiles.count, k = fixture.classNames.count
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/models/breast", method: .get) { response in
            let metadata = try JSONDecoder().decode(ModelMetadata.self, from: Data(buffer: response.body))
            #expect(metadata.inputs == [.init(name: "images", datatype: "FP32", shape: [-1, 1, 28, 28])])
            #expect(
                metadata.outputs == [
                    .init(name: "probabilities", datatype: "FP32", shape: [-1, k]),
                    .init(name: "label", datatype: "BYTES", shape: [-1]),
                ])
            #expect(metadata.classNames == fixture.classNames && metadata.versions == ["1"])
        }
        try await client.execute(
            uri: "/v2/models/breast/infer", method: .post, body: try inferBody(fixture.probePixels, count: n)
        ) { response in
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(InferResponse.self, from: Data(buffer: response.body))
            #expect(answer.outputs[0].shape == [n, k])
            for (got, want) in zip(answer.outputs[0].data!.numbers, fixture.expectedUnit) {
                #expect(abs(got - Double(want)) < 1e-5)
            }
        }
        // The PNG files themselves, decoded by the server.
        for (i, file) in fixture.probeFiles.enumerated() {
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(file)) { response in
                #expect(response.status == .ok)
                let answer = try JSONDecoder().decode(PredictResponse.self, from: Data(buffer: response.body))
                for (c, name) in fixture.classNames.enumerated() {
                    #expect(abs(answer.probabilities[name]! - Double(fixture.expectedUnit[i * k + c])) < 1e-5, "\(file)")
                }
            }
        }
    }
}

/// A classifier trained on [-1, 1] pixels gets the protocol's [0, 1] pixels rescaled.
@Test func aClassifierTrainedOnSymmetricPixelsGetsThemRescaled() throws {
    let fixture = try TrainedClassifier.shared.get()
    let model = try ServedClassifier(name: "breast", version: 1, checkpoint: fixture.symmetricCheckpoint)
    let n = fixture.probeFiles.count
    let rows = try model.predict(fixture.probePixels, count: n)
    for (got, want) in zip(rows.flatMap { $0 }, fixture.expectedSymmetric) { #expect(abs(got - want) < 1e-5) }
    #expect(rows.flatMap { $0 } != fixture.expectedUnit)  // the two differ, so the test can tell them apart
}

/// A registered file that is not a classifier leaves the server up but not ready, with the
/// reason; registering a classifier and reloading makes it ready.
@Test func aFileThatIsNotAClassifierLeavesTheServerNotReadyUntilAReload() async throws {
    let fixture = try TrainedClassifier.shared.get()
    let (store, _, _) = try makeStore()  // breast@1 is the tiny stand-in's weights
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: ServedClassifier.loader, adminToken: "secret")
    #expect(throws: ClassificationError.self) { try state.load() }
    try await buildApplication(state: state).test(.router) { client in
        try await client.execute(uri: "/v2/health/ready", method: .get) { response in
            #expect(response.status == .serviceUnavailable)
            #expect(object(response.body)["state"] as? String == "failed")
            #expect((object(response.body)["error"] as? String)?.contains("is not a medsynth classifier") == true)
        }
        try await client.execute(
            uri: "/v2/models/breast/infer", method: .post, body: try inferBody(Array(fixture.probePixels.prefix(784)), count: 1)
        ) { response in
            #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "1")
            #expect((object(response.body)["error"] as? String)?.contains("no model loaded") == true)
        }
        try register(fixture.unitCheckpoint, in: store)  // breast@2, champion
        try await client.execute(uri: "/admin/reload", method: .post, headers: [.authorization: "Bearer secret"]) { response in
            #expect(response.status == .ok && object(response.body)["version"] as? String == "2")
        }
        try await client.execute(uri: "/v2/health/ready", method: .get) { #expect($0.status == .ok) }
        try await client.execute(
            uri: "/v2/models/breast/infer", method: .post, body: try inferBody(fixture.probePixels, count: 6)
        ) {
            #expect($0.status == .ok)
        }
    }
}

/// Model runs are padded to powers of two (so a server keeps at most 9 sizes of oneDNN primitives,
/// not one per request size), and the padding changes no answer: 3, 5 and 7 images at once give
/// what each image alone gives (the probe images, repeated where there are fewer).
@Test func modelRunsArePaddedToPowersOfTwoWithoutChangingAnswers() throws {
    #expect(
        [1, 2, 3, 4, 5, 8, 9, 31, 32, 33, 255, 256].map(ServedClassifier.paddedCount) == [
            1, 2, 4, 4, 8, 8, 16, 32, 32, 64, 256, 256,
        ])
    let fixture = try TrainedClassifier.shared.get()
    let model = try ServedClassifier(name: "breast", version: 1, checkpoint: fixture.unitCheckpoint)
    let perImage = 28 * 28, n = fixture.probePixels.count / perImage
    try #require(n >= 3)
    let image = { (i: Int) in Array(fixture.probePixels[((i % n) * perImage)..<((i % n + 1) * perImage)]) }
    let alone = try (0..<7).map { try model.predict(image($0), count: 1)[0] }
    for count in [3, 5, 7] {
        let rows = try model.predict((0..<count).flatMap(image), count: count)
        #expect(rows.count == count)
        for (row, want) in zip(rows, alone) { #expect(zip(row, want).allSatisfy { abs($0 - $1) < 1e-5 }, "\(row) \(want)") }
    }
}
