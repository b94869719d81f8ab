import Datasets
import Foundation
import NN
import SeededRandom
import Testing

@testable import GAN

/// A trainer like `tinyTrainer` whose data names other classes, or a conditional one.
func trainer(
    _ dir: URL, classNames: [String] = ["x"], conditional: Bool = false, maxSteps: Int = 2,
    change: (inout GANTrainingOptions, inout GANTrainingPlan) -> Void = { _, _ in }
) throws -> GANTrainer {
    let config = try DCGANConfig(
        imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4,
        classes: conditional ? classNames.count : nil)
    var options = GANTrainingOptions()
    options.batchSize = 4
    var plan = GANTrainingPlan()
    plan.maxSteps = maxSteps; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    change(&options, &plan)
    var data = tinyData()
    data.classNames = classNames
    if conditional { data.labels = (0..<data.count).map { $0 % classNames.count } }
    return try GANTrainer(
        model: GANModel(config: config, options: options, seed: 7), data: data, plan: plan, outputDirectory: dir)
}

@Test func resumeRefusesACheckpointOfAnotherClass() throws {
    let dir = temporaryDirectory()
    try trainer(dir, classNames: ["malignant"]).run()
    let other = try trainer(temporaryDirectory(), classNames: ["normal_or_benign"])
    do {
        try other.resume(from: dir.appendingPathComponent("checkpoint.safetensors"))
        Issue.record("resumed on another class")
    } catch let error as GANError {
        #expect(error.description.contains("trained on class(es) malignant, not normal_or_benign"), "\(error)")
    }
    #expect(other.globalStep == 0)
}

/// Issue #13: `--resume` with other training options (or another seed or split) used to continue
/// silently under the new ones and overwrite the checkpoint's record of the old. Epochs and
/// steps may change: that is how a run is extended.
@Test func resumeRefusesOtherOptionsSeedOrSplitNamingThem() throws {
    let dir = temporaryDirectory()
    try trainer(dir).run()
    let checkpoint = dir.appendingPathComponent("checkpoint.safetensors")
    let cases: [(String, (inout GANTrainingOptions, inout GANTrainingPlan) -> Void)] = [
        (
            "batchSize, generatorLearningRate",
            { o, _ in
                o.batchSize = 2; o.generatorLearningRate = 0.01
            }
        ),
        ("emaDecay", { o, _ in o.emaDecay = nil }),
        ("--seed 0, not 3", { _, p in p.seed = 3 }),
        ("split seed 5", { _, p in p.split = SplitChoice(seed: 5) }),
    ]
    for (named, change) in cases {
        let other = try trainer(temporaryDirectory(), change: change)
        #expect(throws: GANError.self, "\(named)") { try other.resume(from: checkpoint) }
        do { try other.resume(from: checkpoint) } catch { #expect("\(error)".contains(named), "\(error)") }
        #expect(other.globalStep == 0)
    }
    let longer = try trainer(temporaryDirectory(), maxSteps: 4)  // same options, a longer run
    try longer.resume(from: checkpoint)
    #expect(longer.globalStep == 2)
}

@Test func resumeRefusesAConditionalCheckpointForAPerClassRunNamingBoth() throws {
    let dir = temporaryDirectory()
    try trainer(dir, classNames: ["a", "b"], conditional: true).run()
    let other = try trainer(temporaryDirectory(), classNames: ["a"])
    do {
        try other.resume(from: dir.appendingPathComponent("checkpoint.safetensors"))
        Issue.record("resumed a conditional checkpoint into a per-class run")
    } catch let error as GANError {
        #expect(error.description.contains("a conditional DCGAN of 2 classes on 1x28x28 images"), "\(error)")
        #expect(error.description.contains("a per-class DCGAN on 1x28x28"), "\(error)")
    }
}

@Test(arguments: [("global_step", "-5"), ("epoch", "-1"), ("step_in_epoch", "-2"), ("global_step", "0")])
func resumeRefusesANegativeOrInconsistentPosition(_ key: String, _ value: String) throws {
    let dir = temporaryDirectory()
    let first = try trainer(dir, maxSteps: 5)
    try first.run()
    var file = try SafeTensors.read(first.checkpointURL)
    file.metadata[key] = value
    if key == "global_step" && value == "0" { file.metadata["step_in_epoch"] = "3" }
    try SafeTensors.write(file.tensors, metadata: file.metadata, to: first.checkpointURL)
    let second = try trainer(dir, maxSteps: 10)
    #expect(throws: CheckpointError.self) { try second.resume(from: second.checkpointURL) }
    #expect(second.globalStep == 0)
}

@Test func aPlanWithAZeroIntervalIsRefusedBeforeTraining() throws {
    for change in [
        { (p: inout GANTrainingPlan) in p.checkpointEvery = 0 }, { $0.gridEvery = -1 }, { $0.epochs = 0 }, { $0.maxSteps = 0 },
    ] {
        var plan = GANTrainingPlan()
        change(&plan)
        let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4)
        #expect(throws: GANError.self) {
            try GANTrainer(
                model: GANModel(config: config, seed: 1), data: tinyData(), plan: plan, outputDirectory: temporaryDirectory())
        }
    }
}

@Test func aRunFolderIsRecognised() throws {
    let dir = temporaryDirectory()
    #expect(GANTrainer.existingRun(in: dir).isEmpty)
    try trainer(dir).run()
    #expect(GANTrainer.existingRun(in: dir) == ["checkpoint.safetensors", "losses.jsonl"])
}

@Test func samplingARidiculousCountIsRefusedBeforeAllocating() throws {
    let dir = temporaryDirectory()
    try trainer(dir).run()
    let source = try SyntheticImageSource(checkpoint: dir.appendingPathComponent("checkpoint.safetensors"))
    #expect(throws: SamplingError.self) { try source.generate(className: nil, count: 1_000_000_000_000, seed: 0) }
    #expect(try source.generate(className: nil, count: 3, seed: 0).count == 3 * 28 * 28)
}
