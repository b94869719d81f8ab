import Datasets
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing
import Tracking

@testable import Serving

/// A tiny CNN trained for a few steps on real ultrasound images, saved as safetensors with the
/// training set's reference statistics; built once for all tests.
struct TrainedModel: Sendable {
    let directory: URL
    let weights: URL
    let referenceStats: URL
    let images: LabeledImages
    /// PNG files of each class, by class name.
    let files: [String: [String]]

    static let shared: Result<TrainedModel, any Error> = Result { try TrainedModel() }

    private init() throws {
        let loaded = try loadDataset(at: sharedData("breastmnist-png"))
        images = loaded.images
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-serving-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let model = TinyCNN(name: "breast", classNames: images.classNames, channels: 1, height: 28, width: 28, seed: 1)
        let losses = try model.train(on: images, steps: 150, batchSize: 32, seed: 1)
        precondition(losses.last! < losses.first!, "training did not lower the loss: \(losses)")
        weights = directory.appendingPathComponent("model.safetensors")
        try model.save(to: weights)
        referenceStats = directory.appendingPathComponent("reference.json")
        let stats = ReferenceStats(
            pixels: images.pixels, count: images.count, labels: images.labels, classNames: images.classNames)
        try JSONEncoder().encode(stats).write(to: referenceStats)
        var files: [String: [String]] = [:]
        for name in images.classNames {
            let folder = sharedData("breastmnist-png/\(name)")
            files[name] = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { "\(folder)/\($0)" }
        }
        self.files = files
    }
}

/// A store in its own folder holding one finished training run of the trained model,
/// registered as `breast` version 1 and champion.
func makeStore() throws -> (store: RunStore, runID: String, model: TrainedModel) {
    let model = try TrainedModel.shared.get()
    let store = try RunStore(path: model.directory.appendingPathComponent("store-\(UUID().uuidString).sqlite").path)
    let runID = try recordTrainingRun(in: store, model: model)
    _ = try store.register(runID: runID, name: "breast")
    try store.setAlias(.champion, name: "breast", version: 1)
    return (store, runID, model)
}

/// A finished run with the trained weights and reference statistics as artifacts.
func recordTrainingRun(in store: RunStore, model: TrainedModel) throws -> String {
    let recorder = try RunRecorder.start(store: store, kind: .train, config: ["data": "breastmnist-png"])
    try recorder.artifact(path: model.weights.path, kind: "model")
    try recorder.artifact(path: model.referenceStats.path, kind: "reference-stats")
    try recorder.finish(status: .finished)
    return recorder.runID
}

/// A state serving the trained model as `breast@champion`, loaded (unless `load` is false).
func makeState(
    limits: ServingLimits = ServingLimits(), adminToken: String? = "secret", retrainCommand: String? = nil,
    driftWindow: Int = 200, load: Bool = true
) throws -> ServingState {
    let (store, _, _) = try makeStore()
    let state = try ServingState(
        store: store, modelReference: "breast@champion", loader: TinyCNN.loader, limits: limits,
        adminToken: adminToken, retrainCommand: retrainCommand, driftWindow: driftWindow,
        thresholds: DriftThresholds(minimumSamples: min(50, driftWindow)))
    if load { try state.load() }
    return state
}

/// A JSON body.
func body(_ object: Any) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
}

func object(_ buffer: ByteBuffer) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
}

func fileBuffer(_ path: String) throws -> ByteBuffer { ByteBuffer(bytes: try readFileBytes(path)) }

/// `count` pseudo-random bytes (xorshift64; cheap even in a debug build).
func noise(_ count: Int) -> [UInt8] {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            buffer[i] = UInt8(truncatingIfNeeded: state)
        }
        initialized = count
    }
}
