import Autodiff
import Datasets
import Evaluation
import Foundation
import NN
import Privacy
import SeededRandom
import TestSupport
import Testing

@testable import Classification

/// 48 training and 16 validation ultrasound images (a third malignant), 28 px gray, in [0, 1].
func smallBreastSubset() throws -> (train: LabeledImages, val: LabeledImages) {
    let images = try loadDataset(at: sharedData("breastmnist-png")).images
    func take(_ label: Int, _ range: Range<Int>) -> [Int] {
        Array(images.labels.indices.filter { images.labels[$0] == label }[range])
    }
    return (images.subset(take(0, 0..<16) + take(1, 0..<32)), images.subset(take(0, 16..<22) + take(1, 32..<42)))
}

@Test("output shapes", arguments: Architecture.allCases, [(28, 1), (28, 3), (64, 1), (64, 3), (128, 3)])
func outputShapes(_ arch: Architecture, _ shape: (Int, Int)) throws {
    let (size, channels) = shape
    let config = try ClassifierConfig(arch: arch, imageSize: size, channels: channels, classes: 7)
    var g = SeededGenerator(seed: 1)
    let model = Classifier(config, generator: &g)
    let x = Tensor.randomUniform([2, channels, size, size], generator: &g)
    #expect(try model(x).shape == [2, 7])
    model.train(false)
    #expect(try noGrad { try model(x) }.shape == [2, 7])
}

@Test func paperCNNDepthFollowsImageSize() throws {
    #expect(try [28, 64, 128].map { try ClassifierConfig(arch: .paperCNN, imageSize: $0, classes: 2).paperBlocks } == [3, 4, 5])
    #expect(throws: ClassificationError.self) { try ClassifierConfig(arch: .resnet, imageSize: 16, classes: 2) }
    #expect(throws: ClassificationError.self) { try ClassifierConfig(arch: .resnet, channels: 2, classes: 2) }
}

@Test func classWeightsChangeTheLossAsDefined() throws {
    // w_c = N / (K n_c), K classes present: 4 examples, 3 of class 0 and 1 of class 1 -> 4/6 and 2.
    #expect(inverseFrequencyWeights(labels: [0, 0, 0, 1], classCount: 2) == [Float(4) / 6, 2])
    #expect(inverseFrequencyWeights(labels: [0, 0], classCount: 3) == [1, 0, 0])  // absent classes: 0, not in K
    let (train, val) = try smallBreastSubset()
    let config = try ClassifierConfig(arch: .paperCNN, classes: 2)
    var options = TrainingOptions()
    let plain = try ClassifierTrainer(config: config, options: options, train: train, val: val)
    options.classWeights = true
    let weighted = try ClassifierTrainer(config: config, options: options, train: train, val: val)
    #expect(weighted.classWeights == [Float(48) / 32, Float(48) / 64])  // 16 malignant, 32 benign
    let logits = try Tensor(shape: [3, 2], scalars: [2, 0, 0, 1, 1, 1])
    let labels = [0, 1, 1]
    // -log softmax of the true class, per row.
    let nll = [log(1 + exp(-2.0)), log(1 + exp(-1.0)), log(2.0)]
    let w = [1.5, 0.75, 0.75]
    let expected = zip(nll, w).map { $0 * $1 }.reduce(0, +) / w.reduce(0, +)
    #expect(abs(Double(try weighted.loss(logits: logits, labels: labels).item) - expected) < 1e-5)
    #expect(abs(Double(try plain.loss(logits: logits, labels: labels).item) - nll.reduce(0, +) / 3) < 1e-5)
}

@Test func trainingIsDeterministicForASeed() throws {
    let (train, val) = try smallBreastSubset()
    let config = try ClassifierConfig(arch: .resnet, classes: 2)
    var options = TrainingOptions()
    options.epochs = 2; options.batchSize = 16; options.seed = 3
    options.oversample = true; options.augmentation = AugmentationOptions()
    func run() throws -> (TrainingHistory, [Float]) {
        let trainer = try ClassifierTrainer(config: config, options: options, train: train, val: val)
        let history = try trainer.run()
        return (history, try predictProbabilities(trainer.model, pixels: val.pixels, count: val.count))
    }
    let (h1, p1) = try run(), (h2, p2) = try run()
    #expect(h1.epochs.map(\.trainLoss) == h2.epochs.map(\.trainLoss))
    #expect(h1.epochs.map(\.valLoss) == h2.epochs.map(\.valLoss))
    #expect(p1 == p2)
    options.seed = 4
    let (h3, _) = try run()
    #expect(h3.epochs.map(\.trainLoss) != h1.epochs.map(\.trainLoss))
}

@Test func batchesAreSeededAndOversamplingBalancesClasses() throws {
    let (train, val) = try smallBreastSubset()
    var options = TrainingOptions()
    options.batchSize = 16; options.oversample = true
    let trainer = try ClassifierTrainer(
        config: ClassifierConfig(arch: .paperCNN, classes: 2), options: options, train: train, val: val)
    let batches = trainer.batches(epoch: 0)
    #expect(batches.count == 3 && batches.allSatisfy { $0.count == 16 })
    #expect(batches == trainer.batches(epoch: 0) && batches != trainer.batches(epoch: 1))
    let malignant = batches.joined().filter { train.labels[$0] == 0 }.count
    #expect(malignant > 12 && malignant < 36, "about half of 48 draws should be the minority class, got \(malignant)")
}

@Test func earlyStoppingKeepsTheBestEpochAndTheCheckpointReloads() throws {
    let (train, val) = try smallBreastSubset()
    let test = val
    var options = TrainingOptions()
    options.epochs = 5; options.batchSize = 16; options.patience = 2; options.learningRate = 3e-3
    let config = try ClassifierConfig(arch: .paperCNN, classes: 2)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("model.safetensors")
    let result = try trainAndEvaluate(
        train: train, val: val, test: test, config: config, options: options, preprocessing: Preprocessing(channels: 1),
        data: nil, checkpoint: url)
    let h = result.history
    let scores = h.epochs.map { $0.valMacroF1 }
    #expect(scores[h.bestEpoch] == scores.max())
    // Among the epochs with the best score, the kept one has the lowest validation loss.
    let tied = h.epochs.filter { $0.valMacroF1 == scores.max() }
    #expect(h.epochs[h.bestEpoch].valLoss == tied.map { $0.valLoss }.min())
    #expect(h.stoppedEarly == (h.epochs.count < options.epochs))
    // The kept weights are the best epoch's: the test split here equals val, so its score is that epoch's.
    #expect(result.test.macroF1 == scores[h.bestEpoch])
    #expect(result.metadata.bestEpoch == h.bestEpoch)
    let predictor = try Predictor(checkpoint: url)
    #expect(predictor.metadata == result.metadata)
    #expect(try predictor.evaluate(test) == result.test)
    #expect(
        try predictor.probabilities(pixels: test.pixels, count: test.count)
            == predictProbabilities(result.model, pixels: test.pixels, count: test.count))
}

@Test func predictorProbabilitiesSumToOneAndAgreeAcrossTasks() async throws {
    let (train, val) = try smallBreastSubset()
    let config = try ClassifierConfig(arch: .resnet, classes: 2)
    var g = SeededGenerator(seed: 5)
    let model = Classifier(config, generator: &g)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("model.safetensors")
    try ClassifierCheckpoint.save(
        model,
        metadata: ClassifierMetadata(
            config: config, classNames: train.classNames,
            preprocessing: Preprocessing(channels: 1)), to: url)
    let predictor = try Predictor(checkpoint: url)
    let p = try predictor.probabilities(pixels: val.pixels, count: val.count)
    #expect(p.count == val.count * 2)
    for i in 0..<val.count { #expect(abs(p[2 * i] + p[2 * i + 1] - 1) < 1e-5) }
    let pixels = val.pixels, count = val.count
    let results = try await withThrowingTaskGroup(of: [Float].self) { group in
        for _ in 0..<4 { group.addTask { try predictor.probabilities(pixels: pixels, count: count) } }
        return try await group.reduce(into: [[Float]]()) { $0.append($1) }
    }
    #expect(results.count == 4 && results.allSatisfy { $0 == p })
    #expect(throws: ClassificationError.self) { try predictor.probabilities(pixels: [0, 1], count: 1) }
    // A safetensors file without classifier metadata is refused by name.
    let foreign = dir.appendingPathComponent("foreign.safetensors")
    try SafeTensors.write(model.stateDict(), to: foreign)
    #expect(throws: ClassificationError.notAClassifier(path: foreign.path, reason: "metadata format is missing")) {
        try Predictor(checkpoint: foreign)
    }
}

func runMedsynth(_ arguments: [String], withErrors: Bool = false) async throws -> (status: Int32, stdout: String) {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let p = Process()
    p.executableURL = exe
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = withErrors ? pipe : FileHandle.nullDevice
    try p.run()
    let out = await exited(p, reading: pipe)
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// `medsynth train --dry-run` end to end, then `medsynth evaluate` on what it wrote.
@Test func trainDryRunEndToEnd() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-train-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let train = try await runMedsynth(["train", "--dry-run", "--arch", "paper-cnn", "--out", dir.path, "--json"])
    #expect(train.status == 0)
    for file in ["model.safetensors", "history.json", "metrics.json"] {
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "missing \(file)")
    }
    let metrics =
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("metrics.json"))) as! [String: Any]
    let test = try #require(metrics["test"] as? [String: Any])
    #expect(test["balanced_accuracy"] != nil && test["per_class"] != nil && metrics["majority_baseline"] != nil)
    let history = try JSONDecoder().decode(
        TrainingHistory.self, from: Data(contentsOf: dir.appendingPathComponent("history.json")))
    #expect(history.epochs.count == 2)
    let evaluated = try await runMedsynth([
        "evaluate", "--model", dir.appendingPathComponent("model.safetensors").path,
        "--data", dir.appendingPathComponent("dry-run-data").path, "--json",
    ])
    #expect(evaluated.status == 0)
    let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(evaluated.stdout.utf8))
    let trained = try JSONDecoder().decode(EvaluationReport.self, from: JSONSerialization.data(withJSONObject: test))
    #expect(report == trained)
}

/// DP-SGD: a model with batch norm is refused by name; a paper-cnn run spends about the epsilon
/// it was asked for (the accountant solved the noise over the planned steps) and still learns.
@Test func privateTrainingSpendsTheRequestedEpsilon() throws {
    let (train, val) = try smallBreastSubset()
    var options = TrainingOptions()
    options.epochs = 2; options.batchSize = 16; options.patience = 2
    options.privacy = PrivateTrainingOptions(targetEpsilon: 8, maxGradNorm: 1, delta: 1e-4)
    let resnet = try ClassifierConfig(arch: .resnet, imageSize: 28, channels: 1, classes: 2)
    let refusal = #expect(throws: PrivacyError.self) {
        try ClassifierTrainer(config: resnet, options: options, train: train, val: val)
    }
    guard case .batchNormNotAllowed(let reason) = refusal else {
        Issue.record("not a batch-norm refusal: \(String(describing: refusal))"); return
    }
    #expect(reason.contains("is a BatchNorm2d: batch norm mixes examples"), "\(reason)")
    let cnn = try ClassifierConfig(arch: .paperCNN, imageSize: 28, channels: 1, classes: 2)
    let trainer = try ClassifierTrainer(config: cnn, options: options, train: train, val: val)
    let history = try trainer.run()
    let epsilon = try #require(history.privacyEpsilon)
    #expect(epsilon > 6 && epsilon <= 8.1, "spent \(epsilon)")
    #expect(history.noiseMultiplier! > 0 && history.epochs.count == 2)
}

@Test func cosineScheduleSetsEachEpochsRateAndConstantKeepsIt() throws {
    let (train, val) = try smallBreastSubset()
    let config = try ClassifierConfig(arch: .paperCNN, classes: 2)
    var options = TrainingOptions()
    options.epochs = 3; options.batchSize = 16; options.patience = 10; options.learningRate = 0.01
    options.schedule = ScheduleName.cosine.schedule(epochs: 3, learningRate: 0.01)
    let cosine = try ClassifierTrainer(config: config, options: options, train: train, val: val).run()
    // tMax = 2: 0.01, then (0.01 + 0.0001) / 2, then the minimum 0.0001.
    let rates = cosine.epochs.compactMap(\.learningRate)
    #expect(rates.count == 3)
    for (rate, want) in zip(rates, [Float(0.01), 0.00505, 0.0001]) { #expect(abs(rate - want) < 1e-7) }
    options.schedule = ScheduleName.constant.schedule(epochs: 3, learningRate: 0.01)
    #expect(options.schedule == nil)
    let constant = try ClassifierTrainer(config: config, options: options, train: train, val: val).run()
    #expect(constant.epochs.compactMap(\.learningRate) == [0.01, 0.01, 0.01])
}
