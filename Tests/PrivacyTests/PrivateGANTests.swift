import Autodiff
import Foundation
import GAN
import NN
import SeededRandom
import Testing

@testable import Privacy

private func model(batchNorm: Bool = false) throws -> GANModel {
    var config = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4)
    config.discriminatorBatchNorm = batchNorm
    var options = GANTrainingOptions()
    options.batchSize = 4; options.diffAugment = nil; options.emaDecay = nil
    return GANModel(config: config, options: options, seed: 11)
}

private func images(_ n: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<(n * 28 * 28)).map { _ in g.uniform() * 2 - 1 }
}

/// Without noise and with a clip no gradient reaches, the private step must equal the ordinary
/// one: per-example real gradients summed over B plus the fake batch gradient is the batch loss's
/// gradient (D has no batch norm, so examples do not interact).
@Test func privateStepWithoutNoiseOrClippingEqualsTheOrdinaryStep() throws {
    let a = try model(), b = try model()
    let real = try Tensor(shape: [4, 1, 28, 28], scalars: images(4, seed: 1))
    let privacy = try DiscriminatorPrivacy(model: a, datasetSize: 40, noiseMultiplier: 0, maxGradNorm: 1e6, delta: 1e-5, seed: 0)
    let sa = try a.privateStep(real: real, labels: nil, privacy: privacy)
    let sb = try b.step(real: real)
    #expect(abs(sa.discriminatorLoss - sb.discriminatorLoss) < 1e-5 && abs(sa.generatorLoss - sb.generatorLoss) < 1e-5)
    for ((name, p), (_, q)) in zip(
        a.discriminator.parameters + a.generator.parameters,
        b.discriminator.parameters + b.generator.parameters)
    {
        let d = zip(p.value.scalars, q.value.scalars).map { abs($0 - $1) }.max()!
        #expect(d < 1e-6, "\(name) differs by \(d)")
    }
}

/// With a tiny clip and no noise, the real examples barely move D: D's gradient is the fake
/// batch's gradient plus at most C per example over B.
@Test func realExamplesAreClippedAndFakesAreNotCharged() throws {
    let a = try model(), b = try model()
    let real = try Tensor(shape: [4, 1, 28, 28], scalars: images(4, seed: 2))
    let privacy = try DiscriminatorPrivacy(model: a, datasetSize: 40, noiseMultiplier: 0, maxGradNorm: 1e-4, delta: 1e-5, seed: 0)
    // After privateStep, .grad holds the gradient Adam used. Model b (same seed, so the same
    // fakes) sees an empty real batch: a's and b's D gradients differ by the real part alone.
    try a.privateStep(real: real, labels: nil, privacy: privacy)
    let noReal = try DiscriminatorPrivacy(model: b, datasetSize: 40, noiseMultiplier: 0, maxGradNorm: 1e-4, delta: 1e-5, seed: 0)
    try b.privateStep(real: Tensor(shape: [0, 1, 28, 28], scalars: []), labels: nil, privacy: noReal)
    var squared: Float = 0
    for ((_, p), (_, q)) in zip(a.discriminator.parameters, b.discriminator.parameters) {
        for (x, y) in zip(p.grad!.scalars, q.grad!.scalars) { squared += (x - y) * (x - y) }
    }
    // 4 examples, each clipped to 1e-4, over B = 4: the real part's norm is at most 1e-4.
    #expect(squared.squareRoot() <= 1e-4 * 1.001, "real part of D's gradient has norm \(squared.squareRoot())")
    #expect(squared > 0)
}

@Test func privateGANRefusesBatchNormAndRecordsEpsilon() throws {
    #expect(throws: GANError.self) {
        try DiscriminatorPrivacy(
            model: model(batchNorm: true), datasetSize: 40, noiseMultiplier: 1, maxGradNorm: 1, delta: 1e-5, seed: 0)
    }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-dp-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    var plan = GANTrainingPlan()
    plan.epochs = 2; plan.seed = 3; plan.checkpointEvery = 1000; plan.gridEvery = 1000
    let data = GANTrainingData(pixels: images(16, seed: 4), count: 16, channels: 1, size: 28, labels: nil, classNames: ["x"])
    let trainer = try GANTrainer(model: model(), data: data, plan: plan, outputDirectory: dir)
    let sigma = try trainer.enablePrivacy(noiseMultiplier: nil, targetEpsilon: 3, maxGradNorm: 1, delta: 1e-5)
    try trainer.run()
    let meta = try SafeTensors.read(trainer.checkpointURL).metadata
    let eps = try #require(meta["dp_epsilon"].flatMap(Double.init))
    #expect(eps <= 3 && eps > 2.9, "epsilon \(eps) for target 3")
    #expect(meta["dp_delta"] == "1e-05" && meta["dp_noise_multiplier"] == "\(sigma)" && meta["dp_steps"] == "8")
    // A resumed private run continues the accountant; an ordinary trainer may not resume it.
    let again = try GANTrainer(model: model(), data: data, plan: plan, outputDirectory: dir)
    try again.enablePrivacy(noiseMultiplier: sigma, targetEpsilon: nil, maxGradNorm: 1, delta: 1e-5)
    try again.resume(from: trainer.checkpointURL)
    #expect(abs(try again.privacy!.epsilon() - eps) < 1e-12)
    let ordinary = try GANTrainer(model: model(), data: data, plan: plan, outputDirectory: dir)
    #expect(throws: GANError.self) { try ordinary.resume(from: trainer.checkpointURL) }
}
