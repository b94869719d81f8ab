import Classification
import Datasets
import Experiments
import Foundation
import GAN
import TestSupport
import Testing
import Tracking

@testable import Workflows

/// The recorded configuration of a run, decoded as `T`.
func recordedConfig<T: Decodable>(_ type: T.Type, of runID: String, in store: RunStore) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(store.run(runID).config.utf8))
}

/// A classifier run records its spec whole (it decodes back to the same spec), the split's
/// manifest hash, metrics, and the model with its reference statistics, so that `models
/// register` takes it and the model card names the dataset.
@Test func aClassifierRunRecordsItsSpecAndItsModel() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    let data = try writeFakeClassFolders(in: root.appendingPathComponent("data").path, seed: 1)
    var spec = ClassifierRunSpec(data: data)
    spec.arch = .paperCNN
    spec.splitRatio = try SplitRatio(parsing: "6:2:2")
    spec.splitSeed = 3
    spec.training.epochs = 1; spec.training.batchSize = 8; spec.training.patience = 1; spec.training.seed = 4
    spec.training.labelSmoothing = 0.05
    let store = try RunStore(path: root.appendingPathComponent("runs.sqlite").path)
    let job = try ClassifierRun(spec: spec, output: root.appendingPathComponent("out"))
    let result = try job.run(store: store, commandLine: ["medsynth", "train"])
    let runID = try #require(result.runID)

    #expect(try recordedConfig(ClassifierRunSpec.self, of: runID, in: store) == spec)
    let run = try store.run(runID)
    #expect(run.kind == .train && run.status == .finished && run.seed == 4 && run.dataManifestHash == job.manifestHash)
    #expect(job.manifestHash == (try manifestHash(job.split.manifest())))
    let metrics = try store.lastMetricValues(of: runID)
    #expect(metrics["test.balanced_accuracy"] == result.training.test.balancedAccuracy && metrics["val.loss"] != nil)
    let kinds = try store.artifacts(of: runID).map(\.kind)
    #expect(kinds == ["model", "reference-stats"])
    for file in ["model.safetensors", "history.json", "metrics.json", "manifest.jsonl", "reference.json"] {
        #expect(FileManager.default.fileExists(atPath: job.output.appendingPathComponent(file).path), "\(file)")
    }
    let model = try store.register(runID: runID, name: "fake")
    #expect(model.reference != nil)
    let card = try store.modelCard(name: "fake", version: 1)
    #expect(card.contains("- Dataset: `\(data)`"), "\(card)")
    // Not recorded without a store.
    let unrecorded = try ClassifierRun(spec: spec, output: root.appendingPathComponent("out2")).run()
    #expect(try unrecorded.runID == nil && store.runs().count == 1)
}

/// An experiment run records its options whole, the split's manifest hash, the reports, the
/// reference statistics and every cell's classifier, any of which `models register` takes.
@Test func anExperimentRunRecordsItsOptionsAndEveryModel() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    let data = try writeFakeClassFolders(in: root.appendingPathComponent("data").path, perClass: 20, seed: 2)
    var options = ExperimentOptions(data: data, output: root.appendingPathComponent("out"))
    options.arms = ["original", "weighted"]
    options.seeds = [0, 1]
    options.arch = .paperCNN
    options.classifier.epochs = 1; options.classifier.batchSize = 8; options.classifier.patience = 3
    options.ganWidth = 8; options.maxSyntheticRatio = 0.5; options.resamples = 200
    let store = try RunStore(path: root.appendingPathComponent("runs.sqlite").path)
    let experiment = try Experiment(options: options)
    let (report, runID) = try experiment.run(store: store, commandLine: ["medsynth", "experiment"])
    let id = try #require(runID)
    #expect(report.arms.map(\.name) == ["original", "weighted"])

    #expect(try recordedConfig(ExperimentOptions.self, of: id, in: store) == options)
    let run = try store.run(id)
    #expect(run.kind == .experiment && run.status == .finished && run.dataManifestHash == experiment.manifestHash)
    let artifacts = try store.artifacts(of: id)
    let models = artifacts.filter { $0.kind == "model" }.map(\.path)
    #expect(
        models
            == ["original", "weighted"].flatMap { arm in
                [0, 1].map { options.output.appendingPathComponent("arms/\(arm)/seed-\($0)/model.safetensors").path }
            })
    #expect(artifacts.filter { $0.kind == "report" }.count == 3 && artifacts.contains { $0.kind == "reference-stats" })
    let chosen = try store.register(runID: id, name: "exp", artifactPath: models[0])
    #expect(chosen.artifactPath == models[0] && chosen.reference != nil)
    #expect(try store.register(runID: id, name: "exp").artifactPath == models.last)
    #expect(try store.modelCard(name: "exp", version: 1).contains("- Dataset: `\(data)`"))
    // The cell's checkpoint says where its data came from, so `evaluate --data` can rebuild the split.
    let (_, metadata) = try ClassifierCheckpoint.load(URL(fileURLWithPath: models[0]))
    #expect(metadata.data?.path == data && metadata.data?.splitSeed == options.splitSeed)
}

/// A tiny conditional GAN's checkpoint, trained for two steps on the fake classes.
func tinyConditionalCheckpoint(in folder: URL) throws -> URL {
    let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4, classes: 2)
    var options = GANTrainingOptions()
    options.batchSize = 4
    var plan = GANTrainingPlan()
    plan.maxSteps = 2; plan.seed = 5; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    let data = GANTrainingData(
        pixels: (0..<(8 * 28 * 28)).map { Float($0 % 7) / 3 - 1 }, count: 8, channels: 1, size: 28,
        labels: (0..<8).map { $0 % 2 }, classNames: ["dark", "bright"])
    let trainer = try GANTrainer(
        model: GANModel(config: config, options: options, seed: 5), data: data, plan: plan,
        outputDirectory: folder)
    try trainer.run()
    return trainer.checkpointURL
}

/// Sampling for an audit goes through full batches: one image is the first of many (a batch of
/// one would be normalised against itself by batch norm and differ).
@Test func auditSamplesAreFullBatchesAndTheAuditIsWritten() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    let checkpoint = try tinyConditionalCheckpoint(in: root.appendingPathComponent("gan"))
    let one = try SyntheticAudit.sample(
        checkpoint: checkpoint, className: "bright", count: 1, seed: 9, imageSize: 28, channels: 1)
    let many = try SyntheticAudit.sample(checkpoint: checkpoint, className: nil, count: 65, seed: 9, imageSize: 28, channels: 1)
    #expect(many.map(\.className) == ["dark", "bright"] && many.allSatisfy { $0.pixels.count == 65 * 784 })
    #expect(one.count == 1 && one[0].pixels == Array(many[1].pixels.prefix(784)))
    #expect(throws: SamplingError.self) {
        try SyntheticAudit.sample(checkpoint: checkpoint, className: nil, count: 1, seed: 9, imageSize: 32, channels: 1)
    }
    #expect(throws: SamplingError.unknownClass(path: checkpoint.path, className: "x", known: ["dark", "bright"])) {
        try SyntheticAudit.sample(checkpoint: checkpoint, className: "x", count: 1, seed: 9, imageSize: 28, channels: 1)
    }

    var spec = SyntheticAuditSpec(
        synthetic: checkpoint.path,
        data: try writeFakeClassFolders(in: root.appendingPathComponent("data").path, seed: 5))
    spec.count = 6; spec.seed = 5; spec.options.kidSubsets = 5
    let out = root.appendingPathComponent("audit")
    var seen: [String] = []
    let report = try SyntheticAudit.run(spec, output: out) { seen.append($0.className) }
    #expect(seen == ["dark", "bright"] && report.classes.map(\.syntheticCount) == [6, 6] && report.options.seed == 5)
    for file in ["audit.json", "audit.html", "neighbours-dark.png", "neighbours-bright.png"] {
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
    }
}

/// `audit` reads the npz `gan sample --out FILE.npz` writes (`images`, `labels`): a one-label
/// file as the class given with `--class`, several labels as the data's class indices; a label
/// outside the data's classes is refused naming the file.
@Test func auditReadsTheNPZThatGanSampleWrites() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { try? FileManager.default.removeItem(at: root) }
    let checkpoint = try tinyConditionalCheckpoint(in: root.appendingPathComponent("gan"))
    let data = try writeFakeClassFolders(in: root.appendingPathComponent("data").path, seed: 5)
    var sample = SampleSpec(checkpoint: checkpoint.path, count: 6)
    sample.className = "bright"
    let one = root.appendingPathComponent("bright.npz").path
    _ = try sample.write(to: one)
    var spec = SyntheticAuditSpec(synthetic: one, data: data)
    spec.className = "bright"; spec.options.kidSubsets = 5
    let report = try SyntheticAudit.run(spec, output: root.appendingPathComponent("audit-one"))
    #expect(report.classes.map(\.className) == ["bright"] && report.classes[0].syntheticCount == 6)

    let pixels = try SyntheticAudit.sample(checkpoint: checkpoint, className: nil, count: 7, seed: 1, imageSize: 28, channels: 1)
    let both = root.appendingPathComponent("both.npz").path
    try writeImages(
        pixels.flatMap(\.pixels), labels: Array(repeating: 0, count: 7) + Array(repeating: 1, count: 7), channels: 1, size: 28,
        to: both)
    spec = SyntheticAuditSpec(synthetic: both, data: data)
    spec.options.kidSubsets = 5
    let classes = try loadDataset(at: data).images.classNames
    let two = try SyntheticAudit.run(spec, output: root.appendingPathComponent("audit-two"))
    #expect(two.classes.map(\.className) == classes && two.classes.map(\.syntheticCount) == [7, 7])

    try writeImages(pixels[0].pixels, labels: [0, 1, 7, 0, 1, 0, 1], channels: 1, size: 28, to: both)
    #expect {
        try SyntheticAudit.run(spec, output: root.appendingPathComponent("audit-bad"))
    } throws: { "\($0)".contains(both) && "\($0)".contains("label 7 is not a class index") }
}
