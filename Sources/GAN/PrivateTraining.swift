import Autodiff
import NN
import Privacy
import SeededRandom

/// Differential privacy for a GAN (as in DP-GAN, Xie et al. 2018, and Opacus's DCGAN example):
/// only the discriminator reads real images, so only D's gradients from real examples are
/// clipped per example and noised (DP-SGD); D's gradients from fake images involve no real data
/// and are neither clipped nor charged; the generator, trained only through D, is private by
/// post-processing. Real batches are Poisson samples (rate q = batch size / n), which the RDP
/// accountant assumes. D must not use batch norm (`DCGANConfig.discriminatorBatchNorm = false`).
public final class DiscriminatorPrivacy {
    /// DP-SGD over D's parameters, with its accountant.
    public let dpsgd: DPSGD
    public let delta: Double

    /// Private training of `model`'s discriminator on `datasetSize` real images.
    public init(
        model: GANModel, datasetSize: Int, noiseMultiplier: Double, maxGradNorm: Float, delta: Double,
        seed: UInt64
    ) throws {
        guard !model.config.discriminatorBatchNorm else {
            throw GANError.invalidOption(
                "differentially private training needs a discriminator without batch norm "
                    + "(DCGANConfig.discriminatorBatchNorm = false)")
        }
        guard delta > 0, delta < 1 else { throw GANError.invalidOption("DP delta \(delta) must lie in (0, 1)") }
        dpsgd = try DPSGD(
            module: model.discriminator, noiseMultiplier: noiseMultiplier, maxGradNorm: maxGradNorm,
            expectedBatchSize: min(model.options.batchSize, datasetSize), datasetSize: datasetSize,
            seed: seed ^ 0xD1FF_5EED)
        self.delta = delta
    }

    /// Epsilon spent so far at `delta`.
    public func epsilon() throws -> Double { try dpsgd.epsilon(delta: delta) }

    /// What a checkpoint records: `dp_epsilon`, `dp_delta`, `dp_noise_multiplier`, `dp_max_grad_norm`,
    /// `dp_sampling_rate`, `dp_steps`.
    public func metadata() throws -> [String: String] {
        [
            "dp_epsilon": "\(try epsilon())", "dp_delta": "\(delta)", "dp_noise_multiplier": "\(dpsgd.noiseMultiplier)",
            "dp_max_grad_norm": "\(dpsgd.maxGradNorm)", "dp_sampling_rate": "\(dpsgd.samplingRate)",
            "dp_steps": "\(dpsgd.stepCount)",
        ]
    }
}

extension GANTrainer {
    /// Turns on private training for the whole run: `noiseMultiplier` as given, or solved so that
    /// the planned number of steps spends `targetEpsilon` at `delta`. Call before `run` (and before
    /// `resume`). Returns the noise multiplier used.
    @discardableResult
    public func enablePrivacy(noiseMultiplier: Double?, targetEpsilon: Double?, maxGradNorm: Float, delta: Double)
        throws -> Double
    {
        guard (noiseMultiplier == nil) != (targetEpsilon == nil) else {
            throw GANError.invalidOption("give either a DP noise multiplier or a target epsilon, not both or neither")
        }
        let totalSteps = plan.totalSteps(stepsPerEpoch: stepsPerEpoch)
        let rate = Double(min(model.options.batchSize, data.count)) / Double(data.count)
        let sigma =
            try noiseMultiplier
            ?? RDPAccountant.noiseMultiplier(
                targetEpsilon: targetEpsilon!, delta: delta, samplingRate: rate, steps: totalSteps)
        privacy = try DiscriminatorPrivacy(
            model: model, datasetSize: data.count, noiseMultiplier: sigma,
            maxGradNorm: maxGradNorm, delta: delta, seed: plan.seed)
        return sigma
    }

    /// On resume: a private run continues its accountant; private and ordinary runs do not mix.
    func resumePrivacy(metadata m: [String: String], atStep steps: Int, path: String) throws {
        let saved = m["dp_noise_multiplier"].flatMap(Double.init)
        switch (privacy, saved) {
        case (nil, nil): return
        case let (p?, s?) where s == p.dpsgd.noiseMultiplier: try p.dpsgd.resume(atStep: steps)
        case (nil, _?):
            throw GANError.invalidOption("\(path) was trained with differential privacy; resume it with the same DP options")
        case let (p?, s):
            throw GANError.invalidOption(
                "\(path) was trained with DP noise multiplier \(s.map { "\($0)" } ?? "none"), "
                    + "not \(p.dpsgd.noiseMultiplier)")
        }
    }
}

extension GANModel {
    /// One private D step and one ordinary G step. `real` is a Poisson sample (N may be 0).
    /// Fakes number the expected batch size; their class labels are drawn uniformly.
    /// NOTE: `step` draws fake labels from the real batch's labels; here that would release the
    /// real batch's label counts without noise, so fake labels are uniform instead.
    @discardableResult
    public func privateStep(real: Tensor, labels: [Int]?, privacy: DiscriminatorPrivacy) throws -> GANStepStats {
        let n = real.shape[0], b = privacy.dpsgd.expectedBatchSize
        let z = sampleLatent(b)
        let fakeLabels = config.classes.map { c in (0..<b).map { _ in noise.int(below: c) } }
        generator.train(); discriminator.train()
        let fake = try generator(z, labels: fakeLabels)  // (B, C, S, S)

        // (1) D step, fake half: an ordinary batch gradient (no real data, nothing to charge).
        discriminator.zeroGrad()
        let fakeLogits = try discriminator(augment(fake.detached()), labels: fakeLabels)
        let lossFake =
            options.loss == .bce
            ? try Loss.binaryCrossEntropyWithLogits(fakeLogits, target: 0)
            : (fakeLogits + 1).relu().mean()
        lossFake.backward()
        // D step, real half: each real example's gradient clipped, summed, noised, over B; added
        // to the fake half's gradient by DP-SGD.
        var realLoss: Float = 0, realScore: Float = 0
        try privacy.dpsgd.step(examples: Array(0..<n)) { i in
            let x = try real.slice(axis: 0, start: i, length: 1)  // (1, C, S, S)
            let logit = try discriminator(augment(x), labels: labels.map { [$0[i]] })
            let loss =
                options.loss == .bce
                ? try Loss.binaryCrossEntropyWithLogits(logit, target: 1)
                : (logit * -1 + 1).relu().mean()
            realLoss += loss.item; realScore += logit.sigmoid().item
            return loss
        }
        discriminatorOptimizer.step()

        // (2) G step, as in `step`.
        let lossG = try generatorStep(fake: fake, labels: fakeLabels)
        let count = Float(max(n, 1))
        return GANStepStats(
            discriminatorLoss: realLoss / count + lossFake.item, generatorLoss: lossG,
            realScore: realScore / count, fakeScore: fakeLogits.sigmoid().mean().item)
    }
}
