import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import GAN
@testable import NN

@Test("generator and discriminator shapes", arguments: [(28, 1), (32, 3), (64, 3), (128, 1)])
func shapes(_ sc: (Int, Int)) throws {
    let (size, channels) = sc
    let config = try DCGANConfig(imageSize: size, channels: channels, generatorWidth: 4, discriminatorWidth: 4)
    var g = SeededGenerator(seed: 1)
    let gen = Generator(config, generator: &g), disc = Discriminator(config, generator: &g)
    let x = try gen(Tensor.randomNormal([2, 100, 1, 1], generator: &g))
    #expect(x.shape == [2, channels, size, size])
    #expect(x.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
    #expect(try disc(x).shape == [2])
}

@Test func conditionalModelTakesLabels() throws {
    let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4, classes: 3)
    var g = SeededGenerator(seed: 2)
    let gen = Generator(config, generator: &g), disc = Discriminator(config, generator: &g)
    let x = try gen(Tensor.randomNormal([3, 100], generator: &g), labels: [0, 1, 2])
    #expect(try disc(x, labels: [0, 1, 2]).shape == [3])
    #expect(throws: GANError.self) { try gen(Tensor.randomNormal([3, 100], generator: &g)) }
    #expect(
        gen.parameters.contains { $0.0 == "main.0.class_scale.weight" }
            && disc.parameters.contains { $0.0 == "projection.weight" })
}

@Test func badConfigurationsAreNamed() {
    #expect(throws: GANError.unsupportedImageSize(48)) { try DCGANConfig(imageSize: 48, channels: 1) }
    #expect(throws: GANError.unsupportedChannels(2)) { try DCGANConfig(imageSize: 28, channels: 2) }
}

func tinyData(count: Int = 16, seed: UInt64 = 3) -> GANTrainingData {
    var g = SeededGenerator(seed: seed)
    return GANTrainingData(
        pixels: (0..<(count * 28 * 28)).map { _ in g.uniform() * 2 - 1 }, count: count, channels: 1,
        size: 28, labels: nil, classNames: ["x"])
}

func tinyTrainer(_ dir: URL, maxSteps: Int) throws -> GANTrainer {
    let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4)
    var options = GANTrainingOptions()
    options.batchSize = 4
    var plan = GANTrainingPlan()
    plan.epochs = 100; plan.maxSteps = maxSteps; plan.seed = 7; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    return try GANTrainer(
        model: GANModel(config: config, options: options, seed: 7), data: tinyData(), plan: plan,
        outputDirectory: dir)
}

func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-gan-\(UUID().uuidString)")
}

/// 10 steps, checkpoint, a fresh process-like trainer resumes for 10 more: the same weights,
/// optimizer moments and EMA as 20 steps in one go.
@Test func resumeIsExact() throws {
    let straight = try tinyTrainer(temporaryDirectory(), maxSteps: 20)
    try straight.run()

    let dir = temporaryDirectory()
    let first = try tinyTrainer(dir, maxSteps: 10)
    try first.run()
    let second = try tinyTrainer(dir, maxSteps: 20)
    try second.resume(from: second.checkpointURL)
    #expect(second.globalStep == 10)
    try second.run()

    func state(_ t: GANTrainer) -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for (k, v) in t.model.generator.stateDict() { s["g." + k] = v.scalars }
        for (k, v) in t.model.discriminator.stateDict() { s["d." + k] = v.scalars }
        for (k, v) in t.model.generatorOptimizer.stateTensors() { s["og." + k] = v.scalars }
        for (k, v) in t.model.discriminatorOptimizer.stateTensors() { s["od." + k] = v.scalars }
        for (k, p) in t.model.ema ?? [] { s["ema." + k] = p.value.scalars }
        return s
    }
    let a = state(straight), b = state(second)
    #expect(a.keys.sorted() == b.keys.sorted())
    var worst: Float = 0
    for (k, v) in a { for (x, y) in zip(v, b[k]!) { worst = max(worst, abs(x - y)) } }
    #expect(worst <= 1e-6, "largest difference \(worst)")
    // The loss log holds each step once.
    let lines = try String(contentsOf: dir.appendingPathComponent("losses.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 20)
}

@Test func resumeRefusesAnotherModel() throws {
    let dir = temporaryDirectory()
    let t = try tinyTrainer(dir, maxSteps: 2)
    try t.run()
    let config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 8, discriminatorWidth: 8)
    let other = try GANTrainer(
        model: GANModel(config: config, seed: 1), data: tinyData(), plan: GANTrainingPlan(),
        outputDirectory: temporaryDirectory())
    let error = #expect(throws: GANError.self) { try other.resume(from: t.checkpointURL) }
    // Refused by the configuration check, before any weight is loaded, naming both widths.
    #expect(error?.description.contains("--resume: \(t.checkpointURL.path) holds") == true, "\(String(describing: error))")
    #expect(
        error?.description.contains("(widths 4/4)") == true && error?.description.contains("(widths 8/8)") == true,
        "\(String(describing: error))")
}

@Test func diffAugmentKeepsShapesAndPassesGradients() throws {
    var g = SeededGenerator(seed: 5)
    let x = Tensor.randomNormal([4, 3, 16, 16], generator: &g).requiringGrad()
    let y = try DiffAugment()(x, generator: &g)
    #expect(y.shape == x.shape)
    y.sum().backward()
    #expect(x.grad != nil && x.grad!.scalars.contains { $0 != 0 })
    // Translation moves pixels and zero-fills.
    let t = try Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6]).translated(dy: [1], dx: [-1])
    #expect(t.scalars == [0, 0, 0, 2, 3, 0])
}
