import Datasets
import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import Diffusion
@testable import NN

// MARK: - Fixtures

func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-diffusion-\(UUID().uuidString)")
}

/// `count` real malignant breast-ultrasound images (28 x 28 gray) in [-1, 1], from shared/data.
func breastImages(count: Int) throws -> DiffusionTrainingData {
    let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/breastmnist-png")
    let root = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    // The loader wants two classes; one benign image rides along and is dropped below.
    for (name, n) in [("malignant", count), ("normal_or_benign", 1)] {
        let src = shared.appendingPathComponent(name), dst = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path).sorted().prefix(n) {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dst.appendingPathComponent(f))
        }
    }
    let all = try loadDataset(
        at: root.path,
        options: LoadOptions(
            preprocessing: Preprocessing(
                imageSize: 28, channels: 1,
                scaling: .symmetric))
    ).images
    let malignant = all.classNames.firstIndex(of: "malignant")!
    let set = all.subset(all.labels.indices.filter { all.labels[$0] == malignant })
    return DiffusionTrainingData(
        pixels: set.pixels, count: set.count, channels: 1, size: 28, labels: nil, classNames: ["malignant"])
}

/// Random images of two classes in [-1, 1].
func fakeData(count: Int = 12, size: Int = 28, channels: Int = 1, conditional: Bool = true) -> DiffusionTrainingData {
    var g = SeededGenerator(seed: 3)
    return DiffusionTrainingData(
        pixels: (0..<(count * channels * size * size)).map { _ in g.uniform() * 2 - 1 }, count: count,
        channels: channels, size: size, labels: conditional ? (0..<count).map { $0 % 2 } : nil,
        classNames: conditional ? ["a", "b"] : ["a"])
}

func tinyConfig(size: Int = 28, channels: Int = 1, classes: Int? = 2, attention: Bool = true) throws -> UNetConfig {
    try UNetConfig(imageSize: size, channels: channels, baseWidth: 8, attention: attention, classes: classes, groups: 4)
}

func tinyTrainer(
    _ dir: URL, maxSteps: Int, data: DiffusionTrainingData = fakeData(),
    change: (inout DiffusionOptions, inout DiffusionTrainingPlan) -> Void = { _, _ in }
) throws -> DiffusionTrainer {
    var options = DiffusionOptions()
    options.batchSize = 4
    options.samplingSteps = 2
    var plan = DiffusionTrainingPlan()
    plan.epochs = 100; plan.maxSteps = maxSteps; plan.seed = 7; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    change(&options, &plan)
    return try DiffusionTrainer(
        model: DiffusionModel(
            config: tinyConfig(classes: data.labels == nil ? nil : 2), options: options,
            seed: 7),
        data: data, plan: plan, outputDirectory: dir)
}

// MARK: - Schedule

@Test func linearScheduleMatchesDDPM() {
    let s = NoiseSchedule(.linear)
    // DDPM's linear schedule (1e-4 ... 0.02 over 1000 steps): abar_0 = 1 - 1e-4 and abar_999 = 4.036e-5
    // (the value diffusers and the DDPM code print for alphas_cumprod[-1]).
    #expect(abs(s.alphaBar[0] - (1 - 1e-4)) < 1e-12)
    #expect(abs(s.alphaBar[999] - 4.036e-5) < 1e-7)
}

@Test func cosineScheduleFollowsItsClosedForm() {
    let s = NoiseSchedule(.cosine)
    func f(_ t: Double) -> Double { let a = cos((t / 1000 + 0.008) / 1.008 * .pi / 2); return a * a }
    // Where no beta is capped, abar_t is f(t + 1) / f(0) (Nichol and Dhariwal 2021, eq. 17).
    for t in [0, 10, 250, 500, 900] { #expect(abs(s.alphaBar[t] - f(Double(t + 1)) / f(0)) < 1e-9, "t = \(t)") }
    #expect(zip(s.alphaBar, s.alphaBar.dropFirst()).allSatisfy { $0 > $1 })
    #expect(s.alphaBar[999] < 1e-6)
}

@Test func ddimTimestepsTrailFromTheLastStep() {
    let s = NoiseSchedule(.cosine)
    let t = s.samplingTimesteps(25)
    #expect(t.count == 25 && t.first == 39 && t.last == 999)
    #expect(zip(t, t.dropFirst()).allSatisfy { $1 - $0 == 40 })
    #expect(s.samplingTimesteps(1) == [999])
    #expect(s.samplingTimesteps(5000) == Array(0..<1000))
}

// MARK: - U-Net

@Test("U-Net output has the input's shape", arguments: [(28, 1, true), (32, 3, false), (64, 1, false)])
func unetShapes(_ c: (Int, Int, Bool)) throws {
    let (size, channels, attention) = c
    let config = try tinyConfig(size: size, channels: channels, attention: attention)
    var g = SeededGenerator(seed: 1)
    let unet = UNet(config, generator: &g)
    let x = Tensor.randomNormal([2, channels, size, size], generator: &g)
    #expect(try unet(x, timesteps: [0, 999], labels: [0, 2]).shape == [2, channels, size, size])
    #expect(unet.parameters.contains { $0.0 == "class_emb.weight" })
    #expect(unet.parameters.contains { $0.0 == "middle.attn.qkv.weight" } == attention)
}

@Test func unetRefusesMismatchedInputs() throws {
    var g = SeededGenerator(seed: 1)
    let conditional = UNet(try tinyConfig(), generator: &g), unconditional = UNet(try tinyConfig(classes: nil), generator: &g)
    let x = Tensor.zeros([2, 1, 28, 28])
    #expect(throws: DiffusionError.self) { try conditional(x, timesteps: [1, 2], labels: nil) }
    #expect(throws: DiffusionError.self) { try unconditional(x, timesteps: [1, 2], labels: [0, 1]) }
    #expect(throws: DiffusionError.self) { try conditional(x, timesteps: [1], labels: [0, 1]) }
    #expect(throws: DiffusionError.self) { try conditional(Tensor.zeros([2, 3, 28, 28]), timesteps: [1, 2], labels: [0, 1]) }
}

@Test func badConfigurationsAreNamed() {
    #expect(throws: DiffusionError.self) { try UNetConfig(imageSize: 48, channels: 1) }
    #expect(throws: DiffusionError.self) { try UNetConfig(imageSize: 28, channels: 2) }
    #expect(throws: DiffusionError.self) { try UNetConfig(imageSize: 28, channels: 1, channelMultipliers: [1, 2, 2, 2]) }
    #expect(throws: DiffusionError.self) { try UNetConfig(imageSize: 28, channels: 1, baseWidth: 12, groups: 8) }
    var o = DiffusionOptions()
    o.classDropProbability = 1
    #expect(throws: DiffusionError.self) { try o.validate() }
}

// MARK: - Training, resume, sampling

/// 6 steps straight, or 3 steps, a checkpoint, and 3 more in a fresh trainer: bit-identical
/// weights, EMA, Adam moments and random stream.
@Test func resumeIsExact() throws {
    let straight = try tinyTrainer(temporaryDirectory(), maxSteps: 6)
    try straight.run()

    let dir = temporaryDirectory()
    try tinyTrainer(dir, maxSteps: 3).run()
    let second = try tinyTrainer(dir, maxSteps: 6)
    try second.resume(from: second.checkpointURL)
    #expect(second.globalStep == 3)
    try second.run()

    func state(_ t: DiffusionTrainer) -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for (k, v) in t.model.unet.stateDict() { s["unet." + k] = v.scalars }
        for (k, v) in t.model.optimizer.stateTensors() { s["optim." + k] = v.scalars }
        for (k, p) in t.model.ema ?? [] { s["ema." + k] = p.value.scalars }
        return s
    }
    let a = state(straight), b = state(second)
    #expect(a.keys.sorted() == b.keys.sorted())
    #expect(a.keys.contains { $0.hasPrefix("ema.") } && a.keys.contains { $0.hasSuffix("exp_avg_sq") })
    let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
    #expect(differing.isEmpty, "tensors that differ: \(differing.prefix(5))")
    #expect(straight.model.noise == second.model.noise)
    let lines = try String(contentsOf: dir.appendingPathComponent("losses.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 6)
}

@Test func resumeRefusesAnotherModel() throws {
    let dir = temporaryDirectory()
    try tinyTrainer(dir, maxSteps: 1).run()
    var options = DiffusionOptions()
    options.batchSize = 4
    let other = try DiffusionTrainer(
        model: DiffusionModel(config: try tinyConfig(attention: false), options: options, seed: 1),
        data: fakeData(), plan: DiffusionTrainingPlan(), outputDirectory: temporaryDirectory())
    #expect(throws: DiffusionError.self) { try other.resume(from: dir.appendingPathComponent("checkpoint.safetensors")) }
    // The same model with other options, another seed or another split: refused, naming what differs.
    let cases: [(String, (inout DiffusionOptions, inout DiffusionTrainingPlan) -> Void)] = [
        ("learningRate", { o, _ in o.learningRate = 1e-3 }), ("--seed 7, not 8", { _, p in p.seed = 8 }),
        ("split seed 3", { _, p in p.split = SplitChoice(seed: 3) }),
    ]
    for (named, change) in cases {
        let changed = try tinyTrainer(temporaryDirectory(), maxSteps: 2, change: change)
        do {
            try changed.resume(from: dir.appendingPathComponent("checkpoint.safetensors"))
            Issue.record("resumed with \(named) changed")
        } catch { #expect("\(error)".contains(named), "\(error)") }
    }
    try tinyTrainer(temporaryDirectory(), maxSteps: 3).resume(from: dir.appendingPathComponent("checkpoint.safetensors"))
}

@Test func checkpointSamplesThroughTheImageSource() throws {
    let dir = temporaryDirectory()
    let trainer = try tinyTrainer(dir, maxSteps: 2)
    try trainer.run()
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("grid-final.png").path))
    let source = try DiffusionImageSource(checkpoint: trainer.checkpointURL)
    source.batchSize = 3
    let images = try source.generate(className: "b", count: 5, seed: 11)
    #expect(images.count == 5 * 28 * 28)
    #expect(images.allSatisfy { $0 >= -1 && $0 <= 1 })
    // A smaller count is a prefix of a larger one, whatever the batch size.
    source.batchSize = 2
    let prefix = try source.generate(className: "b", count: 2, seed: 11)
    let worst = zip(prefix, images).map { abs($0 - $1) }.max() ?? 0
    #expect(worst < 1e-4, "largest difference \(worst)")
    #expect(throws: DiffusionError.self) { try source.generate(className: nil, count: 1, seed: 0) }
    #expect(throws: DiffusionError.self) { try source.generate(className: "c", count: 1, seed: 0) }
    // Not a diffusion checkpoint: a file of other tensors.
    let foreign = dir.appendingPathComponent("foreign.safetensors")
    try SafeTensors.write(["w": .zeros([2])], metadata: ["format": "medsynth-gan-1"], to: foreign)
    #expect(throws: DiffusionError.self) { try DiffusionImageSource(checkpoint: foreign) }
}

/// Classifier-free guidance mixes the two halves of one batch as out(none) + w (out(class) - out(none)):
/// checked against two separate U-Net calls at w = 0, 1 and 3.
@Test func guidanceMixesConditionalAndUnconditionalOutputs() throws {
    let model = try DiffusionModel(config: try tinyConfig(), seed: 2)
    // The zero-initialised layers (each residual branch's last convolution, the output one) would
    // hide the class entirely; give them random weights so the two outputs differ.
    var g = SeededGenerator(seed: 4)
    for (_, p) in model.unet.parameters where p.value.scalars.allSatisfy({ $0 == 0 }) && p.shape.count == 4 {
        try p.assign(Tensor.randomNormal(p.shape, std: 0.1, generator: &g))
    }
    let x = Tensor.randomNormal([2, 1, 28, 28], generator: &g)
    let conditional = try noGrad { try model.unet(x, timesteps: [500, 500], labels: [0, 1]) }.scalars
    let unconditional = try noGrad { try model.unet(x, timesteps: [500, 500], labels: [2, 2]) }.scalars
    let gap = zip(conditional, unconditional).map { abs($0 - $1) }.max() ?? 0
    #expect(gap > 1e-3, "the class changes the output by only \(gap)")
    for w: Float in [0, 1, 3] {
        let guided = try noGrad { try model.guidedPrediction(x, t: [500, 500], labels: [0, 1], guidanceScale: w) }.scalars
        let expected = zip(conditional, unconditional).map { $1 + w * ($0 - $1) }
        let worst = zip(guided, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4 * max(1, gap), "w = \(w): largest difference \(worst)")
    }
}

/// A small model on 24 real malignant breast images: the denoising loss falls over 60 steps
/// (mean of the last 15 below 80% of the first 15), and DDIM samples have the data's shape and range.
@Test func trainsOnRealBreastImagesAndTheLossFalls() throws {
    let data = try breastImages(count: 24)
    #expect(data.count == 24)
    var options = DiffusionOptions()
    options.batchSize = 8
    options.samplingSteps = 5
    options.learningRate = 2e-3
    var plan = DiffusionTrainingPlan()
    plan.maxSteps = 60; plan.epochs = 1000; plan.gridEvery = 1000; plan.checkpointEvery = 1000
    let dir = temporaryDirectory()
    let config = try UNetConfig(imageSize: 28, channels: 1, baseWidth: 16, channelMultipliers: [1, 2, 2], groups: 4)
    let trainer = try DiffusionTrainer(
        model: DiffusionModel(config: config, options: options, seed: 1), data: data, plan: plan,
        outputDirectory: dir)
    var losses: [Float] = []
    try trainer.run { if case let .step(_, _, _, _, _, loss, _, _) = $0 { losses.append(loss) } }
    #expect(losses.count == 60)
    let first = losses.prefix(15).reduce(0, +) / 15, last = losses.suffix(15).reduce(0, +) / 15
    #expect(last < 0.8 * first, "loss \(first) -> \(last)")
    var g = SeededGenerator(seed: 9)
    let samples = try trainer.model.sample(count: 4, labels: nil, generator: &g)
    #expect(samples.shape == [4, 1, 28, 28])
    #expect(samples.scalars.allSatisfy { $0 >= -1 && $0 <= 1 && $0.isFinite })
}
