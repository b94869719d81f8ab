import Autodiff
import Foundation
import NN
import SeededRandom

/// Hyperparameters of diffusion training and the defaults of sampling.
public struct DiffusionOptions: Codable, Equatable, Sendable {
    public var batchSize = 32
    /// Adam; DDPM used 2e-4 for its 35.7M-parameter CIFAR model. A small U-Net on a few hundred
    /// images trains for only a few thousand steps, so a larger rate.
    public var learningRate: Float = 5e-4
    public var beta1: Float = 0.9, beta2: Float = 0.999
    /// Gradients are rescaled to at most this global L2 norm (DDPM's 1.0; nil = off).
    public var gradientClip: Float? = 1
    public var prediction: DiffusionPrediction = .v
    public var schedule: NoiseScheduleKind = .cosine
    /// T, the number of noise levels in training.
    public var timesteps = 1000
    /// Classifier-free guidance: the probability that a training image's class is replaced by
    /// "no class" (Ho and Salimans 2022 used 0.1-0.2). Conditional models only.
    public var classDropProbability: Float = 0.1
    /// Decay of the exponential moving average of the weights used for sampling (nil = off).
    public var emaDecay: Float? = 0.999
    /// DDIM steps for sampling and grids, and the guidance scale (1 = plain conditional, no
    /// unconditional pass).
    public var samplingSteps = 25
    public var guidanceScale: Float = 2
    public init() {}

    /// Throws unless every number is in its range.
    public func validate() throws {
        guard batchSize >= 1 else { throw DiffusionError.invalidOption("batch size \(batchSize) is below 1") }
        guard learningRate.isFinite, learningRate > 0 else {
            throw DiffusionError.invalidOption("learning rate \(learningRate) is not positive")
        }
        guard (2...100_000).contains(timesteps) else {
            throw DiffusionError.invalidOption("\(timesteps) timesteps: use 2...100000")
        }
        guard (0..<1).contains(classDropProbability) else {
            throw DiffusionError.invalidOption("class drop probability \(classDropProbability) is not in [0, 1)")
        }
        if let d = emaDecay, !(0..<1).contains(d) { throw DiffusionError.invalidOption("EMA decay \(d) is not in [0, 1)") }
        if let c = gradientClip, !(c > 0) { throw DiffusionError.invalidOption("gradient clip \(c) is not positive") }
        guard (1...timesteps).contains(samplingSteps) else {
            throw DiffusionError.invalidOption("\(samplingSteps) sampling steps: use 1...\(timesteps)")
        }
        guard guidanceScale.isFinite, guidanceScale >= 0 else {
            throw DiffusionError.invalidOption("guidance scale \(guidanceScale) is negative")
        }
    }
}

/// A denoising diffusion model (DDPM training, DDIM sampling) with its optimizer, the moving
/// average of its weights, and its random stream.
public final class DiffusionModel {
    public let config: UNetConfig
    public let options: DiffusionOptions
    public let schedule: NoiseSchedule
    public let unet: UNet
    public let optimizer: Adam
    /// Timesteps, noise and class drops (saved in checkpoints for an exact resume).
    public var noise: SeededGenerator
    /// Exponential moving average of the U-Net's parameters, by name (nil when off).
    public private(set) var ema: [(String, Parameter)]?

    public init(config: UNetConfig, options: DiffusionOptions = .init(), seed: UInt64) throws {
        try options.validate()
        self.config = config; self.options = options
        schedule = NoiseSchedule(options.schedule, steps: options.timesteps)
        var g = SeededGenerator(seed: seed)
        unet = UNet(config, generator: &g)
        optimizer = Adam(unet.parameters, learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2)
        noise = g.fork(0xD1FF)
        ema = options.emaDecay.map { _ in unet.parameters.map { ($0.0, Parameter($0.1.value, requiresGrad: false)) } }
    }

    /// (N) per-image coefficients as an (N, 1, 1, 1) tensor.
    static func perImage(_ values: [Float]) -> Tensor { try! Tensor(shape: [values.count, 1, 1, 1], scalars: values) }

    /// One DDPM step on clean images x0 (N, C, S, S) in [-1, 1] (with their classes when
    /// conditional): t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and
    /// the U-Net regresses the prediction target (eps or v) in mean squared error. Returns the loss.
    @discardableResult
    public func step(x0: Tensor, labels: [Int]?) throws -> Float {
        let n = x0.shape[0]
        let t = (0..<n).map { _ in noise.int(below: schedule.steps) }
        let eps = Tensor.randomNormal(x0.shape, generator: &noise)
        // Classifier-free guidance: some images train the "no class" row (Ho and Salimans 2022).
        let conditioning = try labels.map { labels -> [Int] in
            guard let null = unet.nullClass else { throw DiffusionError.invalidOption("an unconditional model takes no labels") }
            return labels.map { noise.uniform() < options.classDropProbability ? null : $0 }
        }
        let c = t.map { schedule.coefficients($0) }
        let a = Self.perImage(c.map(\.signal)), s = Self.perImage(c.map(\.noise))
        let xt = try x0 * a + eps * s  // (N, C, S, S)
        let target = options.prediction == .v ? try eps * a - x0 * s : eps  // v or eps
        unet.train(); unet.zeroGrad()
        let prediction = try unet(xt, timesteps: t.map(Float.init), labels: conditioning)
        let loss = try (prediction - target).squared().mean()
        loss.backward()
        if let clip = options.gradientClip { clipGradients(maxNorm: clip) }
        optimizer.step()
        updateEMA()
        return loss.item
    }

    /// Rescales every gradient by min(1, maxNorm / ||g||) with ||g|| the global L2 norm
    /// (torch.nn.utils.clip_grad_norm_). New tensors: a gradient's storage may be shared.
    func clipGradients(maxNorm: Float) {
        var total = 0.0
        for (_, p) in unet.parameters { if let g = p.grad { for v in g.scalars { total += Double(v) * Double(v) } } }
        let norm = Float(total.squareRoot())
        guard norm > maxNorm else { return }
        let factor = maxNorm / (norm + 1e-6)
        for (_, p) in unet.parameters {
            if let g = p.grad { p.grad = try! Tensor(shape: g.shape, scalars: g.scalars.map { $0 * factor }) }
        }
    }

    /// ema = decay * ema + (1 - decay) * weights after each update.
    /// NOTE: as for the GAN, the decay ramps up as (1 + t) / (10 + t), so a short run's average
    /// does not remember the random initial weights.
    func updateEMA() {
        guard let ema, let target = options.emaDecay else { return }
        let t = Float(optimizer.stepCount)
        let decay = min(target, (1 + t) / (10 + t))
        for ((_, shadow), (_, p)) in zip(ema, unet.parameters) {
            let s = shadow.pointer, w = p.pointer
            for i in 0..<p.count { s[i] = decay * s[i] + (1 - decay) * w[i] }
        }
    }

    /// Runs `body` with the U-Net's weights swapped for their moving average (if kept).
    public func withEMAWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let ema else { return try body() }
        let live = unet.parameters.map { $0.1.value.copy() }
        for ((_, shadow), (_, p)) in zip(ema, unet.parameters) { try! p.assign(shadow.value) }
        defer { for (t, (_, p)) in zip(live, unet.parameters) { try! p.assign(t) } }
        return try body()
    }

    /// The model's output at x_t (N, C, S, S), image k at timestep `t[k]`, with classifier-free
    /// guidance: for a conditional model and scale w != 1, out = out(no class) + w (out(class) -
    /// out(no class)), both halves in one batch of 2N.
    func guidedPrediction(_ x: Tensor, t: [Int], labels: [Int]?, guidanceScale w: Float) throws -> Tensor {
        let n = x.shape[0]
        let steps = t.map(Float.init)
        guard let labels, let null = unet.nullClass, w != 1 else { return try unet(x, timesteps: steps, labels: labels) }
        let both = try unet(
            Tensor.concat([x, x], axis: 0), timesteps: steps + steps,
            labels: labels + [Int](repeating: null, count: n))  // (2N, C, S, S)
        let conditional = try both.slice(axis: 0, start: 0, length: n),
            unconditional = try both.slice(axis: 0, start: n, length: n)
        return try unconditional + (conditional - unconditional) * w
    }

    /// sqrt(abar) and sqrt(1 - abar) of each timestep (nil: the clean image, 1 and 0) as (N, 1, 1, 1) tensors.
    func perImageCoefficients(_ t: [Int?]) -> (signal: Tensor, noise: Tensor) {
        let c = t.map { $0.map { schedule.coefficients($0) } ?? (signal: 1, noise: 0) }
        return (Self.perImage(c.map(\.signal)), Self.perImage(c.map(\.noise)))
    }

    /// 1 / values as an (N, 1, 1, 1) tensor: dividing by a Float multiplies by its reciprocal, and
    /// so does `ddimStep`, so per-image steps round as the scalar ones always have.
    static func perImageReciprocal(_ values: Tensor) -> Tensor { perImage(values.scalars.map { 1 / $0 }) }

    /// One DDIM step (eta = 0) with the U-Net's current weights: image k of x (N, C, S, S) from
    /// timestep `t[k]` to `next[k]` (nil: to the clean image). The model output gives x0, clipped to
    /// [-1, 1], and the eps consistent with it, eps = (x_t - alpha x0) / sigma; then
    /// x_next = alpha_next x0 + sigma_next eps (= x0 at the clean image). Returns x0 and x_next.
    /// `sample` runs exactly this; so does a distillation teacher.
    /// NOTE: sigma > 0 at every t >= 0 (abar_0 < 1), so eps never divides by zero.
    func ddimStep(_ x: Tensor, t: [Int], to next: [Int?], labels: [Int]?, guidanceScale w: Float) throws -> (
        x0: Tensor, next: Tensor
    ) {
        let out = try guidedPrediction(x, t: t, labels: labels, guidanceScale: w)
        let (a, s) = perImageCoefficients(t), (aNext, sNext) = perImageCoefficients(next)
        let x0: Tensor
        switch options.prediction {  // x0 from the output
        case .v: x0 = try (x * a - out * s).clamped(-1, 1)
        case .epsilon: x0 = try ((x - out * s) * Self.perImageReciprocal(a)).clamped(-1, 1)
        }
        let eps = try (x - x0 * a) * Self.perImageReciprocal(s)  // eps consistent with x0
        return (x0, try x0 * aNext + eps * sNext)
    }

    /// DDIM sampling (Song et al. 2021, eta = 0: deterministic given the starting noise) with the
    /// EMA weights: `count` images (count, C, S, S) in [-1, 1] of `labels` (conditional; the
    /// "no class" label samples unconditionally) from noise drawn from `generator`, by `ddimStep`
    /// from each timestep to the previous one, and from the first to the clean image.
    public func sample(
        count: Int, labels: [Int]?, steps: Int? = nil, guidanceScale: Float? = nil,
        generator: inout SeededGenerator
    ) throws -> Tensor {
        if let labels, labels.count != count { throw DiffusionError.invalidOption("\(labels.count) labels for \(count) images") }
        let timesteps = schedule.samplingTimesteps(steps ?? options.samplingSteps)
        let w = guidanceScale ?? options.guidanceScale
        var x = Tensor.randomNormal([count, config.channels, config.imageSize, config.imageSize], generator: &generator)
        unet.train(false)
        defer { unet.train(true) }
        return try withEMAWeights {
            try noGrad {
                for (i, t) in timesteps.enumerated().reversed() {
                    let next = i > 0 ? timesteps[i - 1] : nil
                    let step = try ddimStep(
                        x, t: Array(repeating: t, count: count), to: Array(repeating: next, count: count), labels: labels,
                        guidanceScale: w)
                    x = next == nil ? step.x0 : step.next
                }
                return x
            }
        }
    }
}
