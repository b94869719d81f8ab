import Autodiff
import NN
import SeededRandom

/// Losses a GAN can train with.
public enum GANLoss: String, Codable, Sendable, CaseIterable {
    /// Non-saturating BCE on logits (Goodfellow et al. 2014; DCGAN).
    case bce
    /// Hinge loss (Lim and Ye 2017; used with spectral norm).
    case hinge
}

/// Hyperparameters of GAN training (paper defaults: Adam 2e-4, beta1 0.5).
public struct GANTrainingOptions: Codable, Equatable, Sendable {
    public var batchSize = 64
    public var generatorLearningRate: Float = 2e-4
    public var discriminatorLearningRate: Float = 2e-4
    public var beta1: Float = 0.5, beta2: Float = 0.999
    public var loss: GANLoss = .bce
    /// Differentiable augmentation of everything D sees (nil = off).
    public var diffAugment: DiffAugment? = DiffAugment()
    /// Decay of the exponential moving average of G's weights used for sampling (nil = off).
    public var emaDecay: Float? = 0.999
    public init() {}
}

/// What one training step measured.
public struct GANStepStats: Codable, Sendable {
    public var discriminatorLoss: Float
    public var generatorLoss: Float
    /// Mean D(x) and D(G(z)) as probabilities (sigmoid of the logits).
    public var realScore: Float
    public var fakeScore: Float
}

/// A DCGAN (or conditional DCGAN) with its optimizers: one `step` is a D update and a G update,
/// as in pytorch/examples dcgan.
public final class GANModel {
    public let config: DCGANConfig
    public var options: GANTrainingOptions
    public let generator: Generator
    public let discriminator: Discriminator
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    /// Noise, label and augmentation stream (saved in checkpoints for an exact resume).
    public var noise: SeededGenerator
    /// Exponential moving average of G's parameters, by name (nil when off).
    public private(set) var ema: [(String, Parameter)]?
    /// Data-parallel training over ranks (see NN's DataParallel.swift); one process by default.
    public var sync: GradientSync = .single

    public init(config: DCGANConfig, options: GANTrainingOptions = .init(), seed: UInt64) {
        self.config = config
        self.options = options
        var g = SeededGenerator(seed: seed)
        generator = Generator(config, generator: &g)
        discriminator = Discriminator(config, generator: &g)
        generatorOptimizer = Adam(
            generator.parameters, learningRate: options.generatorLearningRate,
            beta1: options.beta1, beta2: options.beta2)
        discriminatorOptimizer = Adam(
            discriminator.parameters, learningRate: options.discriminatorLearningRate,
            beta1: options.beta1, beta2: options.beta2)
        noise = g.fork(0x6E6F)
        ema = options.emaDecay.map { _ in generator.parameters.map { ($0.0, Parameter($0.1.value, requiresGrad: false)) } }
    }

    /// D's view of a batch (this rank's `shard` of it): DiffAugment when enabled.
    func augment(_ x: Tensor, _ shard: BatchShard? = nil) throws -> Tensor {
        guard let a = options.diffAugment else { return x }
        return try a(x, generator: &noise, shard: shard)
    }

    /// ema = decay * ema + (1 - decay) * weights, after each G update.
    /// NOTE: with decay 0.999 the average would remember the random initial weights for thousands
    /// of steps; small datasets train for few steps, so the decay ramps up as (1 + t) / (10 + t).
    func updateEMA() {
        guard let ema, let target = options.emaDecay else { return }
        let t = Float(generatorOptimizer.stepCount)
        let decay = min(target, (1 + t) / (10 + t))
        for ((_, shadow), (_, p)) in zip(ema, generator.parameters) {
            let s = shadow.pointer, w = p.pointer
            for i in 0..<p.count { s[i] = decay * s[i] + (1 - decay) * w[i] }
        }
    }

    /// Runs `body` with G's weights swapped for their moving average (if kept).
    public func withEMAWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let ema else { return try body() }
        let live = generator.parameters.map { $0.1.value.copy() }
        for ((_, shadow), (_, p)) in zip(ema, generator.parameters) { try! p.assign(shadow.value) }
        defer { for (t, (_, p)) in zip(live, generator.parameters) { try! p.assign(t) } }
        return try body()
    }

    /// Latent vectors (N, nz, 1, 1) from the noise stream.
    public func sampleLatent(_ n: Int) -> Tensor {
        Tensor.randomNormal([n, config.latent, 1, 1], generator: &noise)
    }

    /// One D step and one G step on a batch of real images (N, C, S, S) in [-1, 1].
    /// `labels` are the real images' classes (conditional model only); fakes get labels drawn
    /// from the same batch's labels, so class frequencies match.
    /// Data-parallel (`sync`): every rank passes the whole batch and draws z, the fake labels and
    /// DiffAugment for all of it, then trains on its shard; the losses and scores are the batch's.
    @discardableResult
    public func step(real: Tensor, labels: [Int]? = nil) throws -> GANStepStats {
        let n = real.shape[0]
        var z = sampleLatent(n)
        var fakeLabels: [Int]? = nil
        if let labels { fakeLabels = (0..<n).map { _ in labels[noise.int(below: labels.count)] } }
        let shard = sync.shard(of: n), share = Float(shard.rows.count) / Float(n)
        let real = try shard.take(real), labels = labels.map { shard.take($0) }
        z = try shard.take(z); fakeLabels = fakeLabels.map { shard.take($0) }
        generator.train(); discriminator.train()
        let fake = try generator(z, labels: fakeLabels)  // (n_r, C, S, S)

        // (1) D step: maximise log D(x) + log(1 - D(G(z))) (BCE), or the hinge objective.
        discriminator.zeroGrad()
        let realLogits = try discriminator(augment(real, shard), labels: labels)
        let fakeLogits = try discriminator(augment(fake.detached(), shard), labels: fakeLabels)
        let lossD: Tensor
        switch options.loss {
        case .bce:
            lossD =
                try Loss.binaryCrossEntropyWithLogits(realLogits, target: 1)
                + Loss.binaryCrossEntropyWithLogits(fakeLogits, target: 0)
        case .hinge:
            lossD = Loss.hingeDiscriminator(real: realLogits, fake: fakeLogits)
        }
        lossD.backward()
        var dStats = [lossD.item, realLogits.sigmoid().mean().item, fakeLogits.sigmoid().mean().item].map { $0 * share }
        sync.average(
            gradientsOf: discriminator.parameters, share: share, runningStatisticsOf: [discriminator, generator],
            extras: &dStats)
        discriminatorOptimizer.step()

        // (2) G step.
        let lossG = try generatorStep(fake: fake, labels: fakeLabels, shard: shard)

        // The whole batch's means (one process: share 1, nothing summed).
        return GANStepStats(discriminatorLoss: dStats[0], generatorLoss: lossG, realScore: dStats[1], fakeScore: dStats[2])
    }

    /// G step: maximise log D(G(z)) (non-saturating), gradients through the updated D; returns G's loss.
    /// D's parameters are frozen so no weight gradients are computed for them.
    func generatorStep(fake: Tensor, labels fakeLabels: [Int]?, shard: BatchShard? = nil) throws -> Float {
        let shard = shard ?? .whole(fake.shape[0]), share = Float(shard.rows.count) / Float(shard.total)
        generator.zeroGrad()
        discriminator.setRequiresGrad(false)
        defer { discriminator.setRequiresGrad(true) }
        let fakeLogitsG = try discriminator(augment(fake, shard), labels: fakeLabels)
        let lossG =
            options.loss == .bce
            ? try Loss.binaryCrossEntropyWithLogits(fakeLogitsG, target: 1)
            : Loss.hingeGenerator(fake: fakeLogitsG)
        lossG.backward()
        var gLoss = [lossG.item * share]
        sync.average(
            gradientsOf: generator.parameters, share: share, runningStatisticsOf: [generator, discriminator], extras: &gLoss)
        generatorOptimizer.step()
        updateEMA()
        return gLoss[0]
    }

    /// Images (N, C, S, S) in [-1, 1] from the generator's moving-average weights (when kept).
    /// Batch norm uses the batch's statistics, as in training (pytorch/examples dcgan), without
    /// touching the running ones; pass `batchStatistics: false` for the running statistics.
    public func sample(latent z: Tensor, labels: [Int]? = nil, batchStatistics: Bool = true) throws -> Tensor {
        let norms = generator.children.compactMap { $0.1 as? BatchNorm2d }
        generator.train(batchStatistics)
        norms.forEach { $0.tracksRunningStats = false }
        defer { generator.train(true); norms.forEach { $0.tracksRunningStats = true } }
        return try withEMAWeights { try noGrad { try generator(z, labels: labels) } }
    }
}
