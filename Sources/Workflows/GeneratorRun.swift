import Datasets
import Diffusion
import Foundation
import GAN
import NN
import SeededRandom
import Tracking

// `gan train`: a DCGAN, a conditional DCGAN or a diffusion model on the training split of a
// dataset (or on tiny fake data for the dry run). One spec for every family because everything
// around the model is shared: the data, class selection, split and manifest, the output folder's
// layout (checkpoint, losses.jsonl, grids), resume and overwrite, and the recorded run.

/// The generator families `gan train` trains.
public enum GeneratorFamily: String, Codable, CaseIterable, Sendable {
    case dcgan, cdcgan, diffusion
}

/// DP-SGD on the discriminator's real-data gradients (GANs only): a noise multiplier, or the
/// one that spends `targetEpsilon` over the planned steps.
public struct GANPrivacySpec: Codable, Equatable, Sendable {
    public var noiseMultiplier: Double?
    public var targetEpsilon: Double?
    /// Each real example's D gradient is clipped to this L2 norm.
    public var maxGradNorm: Float = 1
    /// nil: min(1e-5, 0.1 / n), below 1/n.
    public var delta: Double?

    public init(noiseMultiplier: Double?, targetEpsilon: Double?, maxGradNorm: Float = 1, delta: Double? = nil) {
        self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon
        self.maxGradNorm = maxGradNorm; self.delta = delta
    }
}

/// Everything that decides what `gan train` produces. A run store records it whole (with the
/// model configuration it resolves to), so an option that changes the result belongs here.
public struct GeneratorRunSpec: Codable, Equatable, Sendable {
    public var generator: GeneratorFamily = .dcgan
    /// Class-folder tree or MedMNIST `.npz`; nil: 24 images of fake data (the dry run).
    public var data: String?
    /// Classes kept, merged or capped while loading (drawn with the split's seed).
    public var selection: ClassSelection?
    /// The split the training images come from (recorded in the checkpoint as `plan.split`).
    public var split = SplitChoice()
    /// Train on this class only.
    public var className: String?
    /// One model for every class, conditioned on the class (also with `generator == .cdcgan`).
    public var conditional = false
    public var imageSize = 28
    /// Channels (nil: as the data).
    public var channels: Int?
    /// Most bytes read from one image file or inflated from one `.npz`.
    public var maxReadBytes = defaultMaxArchiveBytes
    /// Seeds the weights, the batches and the noise (not the split: `split`).
    public var seed: UInt64 = 0
    /// Epochs, steps, checkpoint and grid intervals (`plan.seed` and `plan.split` are set from
    /// `seed` and `split`).
    public var plan = GANTrainingPlan()
    /// GANs: batch size, loss, learning rates, DiffAugment, EMA.
    public var gan = GANTrainingOptions()
    /// GANs: generator and discriminator width (ngf = ndf).
    public var ganWidth = 64
    /// GANs: spectral norm on D's convolutions, without D's batch norms.
    public var spectralNorm = false
    /// GANs: DP-SGD on D (nil: off); turns D's batch norms off.
    public var privacy: GANPrivacySpec?
    /// Diffusion: batch size, prediction, schedule, learning rate, guidance, EMA.
    public var diffusion = DiffusionOptions()
    /// Diffusion: the U-Net's base width.
    public var unetWidth = 32
    /// Diffusion: self-attention at the U-Net's lowest resolution.
    public var attention = false

    public init() {}

    /// One model for every class, conditioned on the class.
    public var isConditional: Bool { conditional || generator == .cdcgan }
}

/// What a `gan train` run records as its configuration: the spec and the model it resolved to.
public struct GeneratorRunRecord: Codable, Equatable, Sendable {
    public var spec: GeneratorRunSpec
    /// The DCGAN's configuration (GANs), or the U-Net's (diffusion).
    public var dcgan: DCGANConfig?
    public var unet: UNetConfig?
}

/// What a `gan train` run leaves behind.
public struct GeneratorRunResult: Sendable {
    public var checkpoint: URL
    /// Steps trained in all (resumed runs included).
    public var steps: Int
    /// The privacy spent (DP-SGD runs only).
    public var epsilon: Double?
    /// The recorded run, nil when not recorded.
    public var runID: String?
}

/// Trains a generator as `spec` says into `output`: checkpoint, `losses.jsonl`, grids and the
/// training images' `manifest.jsonl`.
public enum GeneratorRun {
    /// Refuses an `output` that already holds a run unless `resume` (continue it from its
    /// checkpoint exactly) or `overwrite`; records the run in `store` when given one.
    /// Over several ranks (`sync`, DCGANs only, no DP-SGD) every rank loads the same data (and
    /// the same checkpoint when resuming) and trains on its shard of each batch; rank 0 alone
    /// writes the manifest, losses, grids, checkpoints and the recorded run.
    public static func train(
        _ spec: GeneratorRunSpec, output: URL, resume: Bool = false, overwrite: Bool = false, store: RunStore? = nil,
        sync: GradientSync = .single, commandLine: [String] = CommandLine.arguments,
        _ observe: (WorkflowEvent) -> Void = { _ in }
    ) throws -> GeneratorRunResult {
        var spec = spec
        spec.plan.seed = spec.seed
        spec.plan.split = spec.split  // the checkpoint's split, which `balance` and `audit` take
        if sync.isDataParallel && (spec.generator == .diffusion || spec.privacy != nil) {
            throw OptionRefusal(
                "\(spec.generator == .diffusion ? "diffusion training" : "DP-SGD") does not run data-parallel over "
                    + "\(sync.size) MPI ranks: run it as one process (without mpirun)")
        }
        // Before the data is loaded or anything written (the trainer checks the same against the data's count).
        if sync.isDataParallel && spec.gan.batchSize < sync.size {
            throw OptionRefusal(
                "batch size \(spec.gan.batchSize) over \(sync.size) ranks: every rank needs at least one image of each batch")
        }
        let existing =
            spec.generator == .diffusion ? DiffusionTrainer.existingRun(in: output) : GANTrainer.existingRun(in: output)
        // Every rank has looked before rank 0 writes anything.
        sync.barrier()
        if !resume && !overwrite && !existing.isEmpty {
            throw OptionRefusal(
                "\(output.relativePath) already holds a run (\(existing.joined(separator: ", "))): "
                    + "pass --resume to continue it or --overwrite to start afresh")
        }
        let (data, manifestHash) = try trainingData(spec, output: output, writes: sync.writesOutputs, observe)
        let recording = Recording(
            store: sync.writesOutputs ? store : nil, commandLine: commandLine, manifestHash: manifestHash, seed: spec.seed)
        if spec.generator == .diffusion {
            return try trainDiffusion(spec, data: data, output: output, resume: resume, recording: recording, observe)
        }
        return try trainGAN(spec, data: data, output: output, resume: resume, recording: recording, sync: sync, observe)
    }

    /// Where and how a run is recorded (nil store: not recorded).
    struct Recording {
        var store: RunStore?
        var commandLine: [String]
        var manifestHash: String?
        var seed: UInt64

        func callAsFunction<T>(_ config: GeneratorRunRecord, _ body: (RunRecorder?) throws -> T) throws -> T {
            guard let store else { return try body(nil) }
            return try RunRecorder.recording(
                store: store, kind: .gan, config: config, commandLine: commandLine, dataManifestHash: manifestHash,
                seed: seed
            ) { try body($0) }
        }
    }

    /// The training split of the chosen class(es) in [-1, 1] (its manifest written to
    /// `output/manifest.jsonl`, a class selection to `output/selection.json`), or fake data for the dry run; with the manifest's hash.
    static func trainingData(_ spec: GeneratorRunSpec, output: URL, writes: Bool = true, _ observe: (WorkflowEvent) -> Void)
        throws
        -> (GANTrainingData, String?)
    {
        guard let path = spec.data else { return (fakeData(spec), nil) }
        let options = LoadOptions(
            preprocessing: Preprocessing(imageSize: spec.imageSize, channels: spec.channels),
            selection: spec.selection, maxReadBytes: spec.maxReadBytes)
        let set = try loadGANTrainingSet(
            at: path, options: options, className: spec.className, conditional: spec.isConditional,
            ratio: spec.split.ratio, seed: spec.split.seed)
        for note in set.notes { observe(.note(note)) }
        if writes {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            try writeSplitManifest(
                set.manifest, selection: set.selection, to: output.appendingPathComponent("manifest.jsonl").path)
        }
        return (set.data, try manifestHash(set.manifest))
    }

    /// 24 uniform-noise images of the spec's size (two classes "a" and "b" when conditional).
    static func fakeData(_ spec: GeneratorRunSpec) -> GANTrainingData {
        var g = SeededGenerator(seed: spec.seed)
        let (c, n, size) = (spec.channels ?? 1, 24, spec.imageSize)
        let pixels = (0..<(n * c * size * size)).map { _ in g.uniform() * 2 - 1 }
        return GANTrainingData(
            pixels: pixels, count: n, channels: c, size: size, labels: spec.isConditional ? (0..<n).map { $0 % 2 } : nil,
            classNames: spec.isConditional ? ["a", "b"] : ["a"])
    }

    static func trainGAN(
        _ spec: GeneratorRunSpec, data: GANTrainingData, output: URL, resume: Bool, recording: Recording,
        sync: GradientSync = .single, _ observe: (WorkflowEvent) -> Void
    ) throws -> GeneratorRunResult {
        var config = try DCGANConfig(
            imageSize: spec.imageSize, channels: data.channels, generatorWidth: spec.ganWidth,
            discriminatorWidth: spec.ganWidth, classes: spec.isConditional ? data.classNames.count : nil,
            spectralNorm: spec.spectralNorm)
        // Batch norm mixes examples: no per-example privacy.
        config.discriminatorBatchNorm = spec.privacy == nil && !spec.spectralNorm
        let plan = spec.plan
        let model = GANModel(config: config, options: spec.gan, seed: spec.seed)
        model.sync = sync
        let trainer = try GANTrainer(model: model, data: data, plan: plan, outputDirectory: output)
        if let dp = spec.privacy {
            let delta = dp.delta ?? min(1e-5, 0.1 / Double(data.count))
            let sigma = try trainer.enablePrivacy(
                noiseMultiplier: dp.noiseMultiplier, targetEpsilon: dp.targetEpsilon, maxGradNorm: dp.maxGradNorm,
                delta: delta)
            observe(
                .note(
                    String(
                        format: "differential privacy: noise multiplier %.4g, clip %.3g, delta %.3g, Poisson rate %.4g",
                        sigma, dp.maxGradNorm, delta, trainer.privacy?.dpsgd.samplingRate ?? 0)))
        }
        if resume {
            guard FileManager.default.fileExists(atPath: trainer.checkpointURL.path) else {
                throw OptionRefusal("--resume: no checkpoint at \(trainer.checkpointURL.path)")
            }
            try trainer.resume(from: trainer.checkpointURL)
            observe(.note("resumed at epoch \(trainer.epoch), step \(trainer.globalStep)"))
            if !trainer.resumedChecksumVerified {
                observe(
                    .note(
                        "note: \(trainer.checkpointURL.path) has no checksum (written before checksums); loaded unverified"))
            }
        }
        observe(
            .note(
                "training \(spec.isConditional ? "a conditional DCGAN" : "a DCGAN") on \(data.count) images "
                    + "(\(data.classNames.joined(separator: ", "))), \(config.channels)x\(config.imageSize)x\(config.imageSize)"
            ))
        let start = Date()
        let runID = try recording(GeneratorRunRecord(spec: spec, dcgan: config)) { recorder -> String? in
            try trainer.run { event in
                report(
                    event, recorder: recorder, globalStep: trainer.globalStep, checkpointEvery: plan.checkpointEvery,
                    metrics: {
                        [
                            "loss_d": Double($0.discriminatorLoss), "loss_g": Double($0.generatorLoss),
                            "d_real": Double($0.realScore), "d_fake": Double($0.fakeScore),
                        ]
                    },
                    text: { s, ips in
                        String(
                            format: "D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f  %.0f img/s", s.discriminatorLoss,
                            s.generatorLoss, s.realScore, s.fakeScore, ips)
                    }, observe)
            }
            _ = try recorder?.artifact(path: trainer.checkpointURL.path, kind: "checkpoint")
            if let privacy = trainer.privacy {
                try recorder?.log(["privacy.epsilon": try privacy.epsilon()], step: trainer.globalStep)
            }
            return recorder?.runID
        }
        finished(steps: trainer.globalStep, since: start, checkpoint: trainer.checkpointURL, observe)
        var epsilon: Double?
        if let privacy = trainer.privacy {
            epsilon = try privacy.epsilon()
            observe(
                .note(
                    String(
                        format: "differential privacy: epsilon %.3f at delta %.3g (noise multiplier %.4g, clip %.3g)",
                        epsilon ?? 0, privacy.delta, privacy.dpsgd.noiseMultiplier, privacy.dpsgd.maxGradNorm)))
        }
        if let runID { observe(.note("run \(runID)")) }
        return GeneratorRunResult(
            checkpoint: trainer.checkpointURL, steps: trainer.globalStep, epsilon: epsilon, runID: runID)
    }

    /// A trainer's event as both families report it: a progress line ("epoch E step S/N", then
    /// `text` of the step's result and images per second, then the ETA), the step's `metrics`
    /// recorded every 10 steps and at the last, grids noted and recorded, the final checkpoint noted
    /// (`globalStep`: the trainer's now), alarms noted and recorded.
    static func report<Step>(
        _ event: GeneratorEvent<Step>, recorder: RunRecorder?, globalStep: Int, checkpointEvery: Int,
        metrics: (Step) -> [String: Double], text: (Step, Double) -> String, _ observe: (WorkflowEvent) -> Void
    ) {
        switch event {
        case let .step(epoch, step, perEpoch, global, total, result, ips, eta):
            if global % 10 == 0 || global == total { try? recorder?.log(metrics(result), step: global) }
            observe(
                .progress(
                    Double(global) / Double(max(total, 1)),
                    String(format: "epoch %d step %d/%d  ", epoch + 1, step, perEpoch) + text(result, ips) + "  ETA "
                        + formatDuration(eta), force: global == total))
        case let .grid(path, _):
            observe(.note("grid: \(path)"))
            _ = try? recorder?.artifact(path: path, kind: "grid")
        case let .checkpoint(path, step):
            if step == globalStep && step % checkpointEvery != 0 { observe(.note("checkpoint: \(path)")) }
        case let .alarm(text):
            observe(.note("ALARM: \(text)"))
            try? recorder?.alarm(text)
        case .resumed: break
        }
    }

    /// Ends the progress line and says how long the run took and where its checkpoint is.
    static func finished(steps: Int, since start: Date, checkpoint: URL, _ observe: (WorkflowEvent) -> Void) {
        observe(.endProgress)
        observe(
            .note(
                String(
                    format: "done: %d steps in %@; checkpoint %@", steps, formatDuration(Date().timeIntervalSince(start)),
                    checkpoint.path)))
    }

    static func trainDiffusion(
        _ spec: GeneratorRunSpec, data g: GANTrainingData, output: URL, resume: Bool, recording: Recording,
        _ observe: (WorkflowEvent) -> Void
    ) throws -> GeneratorRunResult {
        let data = DiffusionTrainingData(
            pixels: g.pixels, count: g.count, channels: g.channels, size: g.size,
            labels: spec.isConditional ? g.labels : nil, classNames: g.classNames)
        let config = try UNetConfig(
            imageSize: spec.imageSize, channels: data.channels, baseWidth: spec.unetWidth, attention: spec.attention,
            classes: spec.isConditional ? data.classNames.count : nil)
        let options = spec.diffusion
        let plan = spec.plan
        let trainer = try DiffusionTrainer(
            model: DiffusionModel(config: config, options: options, seed: spec.seed), data: data, plan: plan,
            outputDirectory: output)
        if resume {
            guard FileManager.default.fileExists(atPath: trainer.checkpointURL.path) else {
                throw OptionRefusal("--resume: no checkpoint at \(trainer.checkpointURL.path)")
            }
            try trainer.resume(from: trainer.checkpointURL)
            observe(.note("resumed at epoch \(trainer.epoch), step \(trainer.globalStep)"))
        }
        observe(
            .note(
                "training \(spec.isConditional ? "a conditional" : "a") diffusion model "
                    + "(\(trainer.model.unet.parameterCount) parameters) on "
                    + "\(data.count) images (\(data.classNames.joined(separator: ", "))), \(config.channels)x\(config.imageSize)"
                    + "x\(config.imageSize), \(options.prediction.rawValue)-prediction, \(options.schedule.rawValue) schedule"))
        let start = Date()
        let runID = try recording(GeneratorRunRecord(spec: spec, unet: config)) { recorder -> String? in
            try trainer.run { event in
                report(
                    event, recorder: recorder, globalStep: trainer.globalStep, checkpointEvery: plan.checkpointEvery,
                    metrics: { ["loss": Double($0)] }, text: { String(format: "loss %.4f  %.1f img/s", $0, $1) }, observe)
            }
            _ = try recorder?.artifact(path: trainer.checkpointURL.path, kind: "checkpoint")
            return recorder?.runID
        }
        finished(steps: trainer.globalStep, since: start, checkpoint: trainer.checkpointURL, observe)
        if let runID { observe(.note("run \(runID)")) }
        return GeneratorRunResult(checkpoint: trainer.checkpointURL, steps: trainer.globalStep, epsilon: nil, runID: runID)
    }
}

/// The generator stored in a checkpoint: a GAN or a diffusion model, told apart by the
/// checkpoint's metadata; `expected` (the user's --generator) must agree when given.
public func openGenerator(checkpoint path: String, expected: GeneratorFamily?) throws -> any SyntheticImages {
    let url = URL(fileURLWithPath: path)
    let isDiffusion = DiffusionImageSource.holdsDiffusionModel(url)
    if let expected, (expected == .diffusion) != isDiffusion {
        throw OptionRefusal(
            "--generator \(expected.rawValue): \(path) holds \(isDiffusion ? "a diffusion model" : "a GAN")")
    }
    return isDiffusion ? try DiffusionImageSource(checkpoint: url) : try SyntheticImageSource(checkpoint: url)
}
