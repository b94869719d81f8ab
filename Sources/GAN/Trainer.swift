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
    /// Noise and label sampling stream (saved in checkpoints for an exact resume).
    public var noise: SeededGenerator

    public init(config: DCGANConfig, options: GANTrainingOptions = .init(), seed: UInt64) {
        self.config = config
        self.options = options
        var g = SeededGenerator(seed: seed)
        generator = Generator(config, generator: &g)
        discriminator = Discriminator(config, generator: &g)
        generatorOptimizer = Adam(generator.parameters, learningRate: options.generatorLearningRate,
                                  beta1: options.beta1, beta2: options.beta2)
        discriminatorOptimizer = Adam(discriminator.parameters, learningRate: options.discriminatorLearningRate,
                                      beta1: options.beta1, beta2: options.beta2)
        noise = g.fork(0x6E6F)
    }

    /// Latent vectors (N, nz, 1, 1) from the noise stream.
    public func sampleLatent(_ n: Int) -> Tensor {
        Tensor.randomNormal([n, config.latent, 1, 1], generator: &noise)
    }

    /// One D step and one G step on a batch of real images (N, C, S, S) in [-1, 1].
    /// `labels` are the real images' classes (conditional model only); fakes get labels drawn
    /// from the same batch's labels, so class frequencies match.
    @discardableResult
    public func step(real: Tensor, labels: [Int]? = nil) throws -> GANStepStats {
        let n = real.shape[0]
        let z = sampleLatent(n)
        var fakeLabels: [Int]? = nil
        if let labels { fakeLabels = (0..<n).map { _ in labels[noise.int(below: labels.count)] } }
        generator.train(); discriminator.train()
        let fake = try generator(z, labels: fakeLabels)                       // (N, C, S, S)

        // (1) D step: maximise log D(x) + log(1 - D(G(z))) (BCE), or the hinge objective.
        discriminator.zeroGrad()
        let realLogits = try discriminator(real, labels: labels)
        let fakeLogits = try discriminator(fake.detached(), labels: fakeLabels)
        let lossD: Tensor
        switch options.loss {
        case .bce:
            lossD = try Loss.binaryCrossEntropyWithLogits(realLogits, target: 1)
                + Loss.binaryCrossEntropyWithLogits(fakeLogits, target: 0)
        case .hinge:
            lossD = Loss.hingeDiscriminator(real: realLogits, fake: fakeLogits)
        }
        lossD.backward()
        discriminatorOptimizer.step()

        // (2) G step: maximise log D(G(z)) (non-saturating), gradients through the updated D.
        // D's parameters are frozen so no weight gradients are computed for them.
        generator.zeroGrad()
        discriminator.setRequiresGrad(false)
        defer { discriminator.setRequiresGrad(true) }
        let fakeLogitsG = try discriminator(fake, labels: fakeLabels)
        let lossG = options.loss == .bce ? try Loss.binaryCrossEntropyWithLogits(fakeLogitsG, target: 1)
                                         : Loss.hingeGenerator(fake: fakeLogitsG)
        lossG.backward()
        generatorOptimizer.step()

        return GANStepStats(discriminatorLoss: lossD.item, generatorLoss: lossG.item,
                            realScore: realLogits.sigmoid().mean().item, fakeScore: fakeLogits.sigmoid().mean().item)
    }

    /// Images from the generator in evaluation mode (running batch-norm statistics).
    public func sample(latent z: Tensor, labels: [Int]? = nil) throws -> Tensor {
        generator.train(false)
        defer { generator.train(true) }
        return try noGrad { try generator(z, labels: labels) }
    }
}
