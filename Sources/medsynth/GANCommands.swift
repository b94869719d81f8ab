import ArgumentParser
import Autodiff
import Datasets
import Diffusion
import Foundation
import GAN
import SeededRandom

struct GANCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gan",
                                                    abstract: "Train and sample image generators: DCGANs, or diffusion models with --generator diffusion.",
                                                    subcommands: [Train.self, Sample.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a generator on one class, or a class-conditional one on all classes, of a dataset's training split.")
        @Option(help: "dcgan, cdcgan (a DCGAN with --conditional) or diffusion (a U-Net denoiser; conditional with --conditional).")
        var generator: GeneratorFamily = .dcgan
        @Option(help: "Class-folder tree or MedMNIST .npz.") var data: String?
        @OptionGroup var selection: ClassSelectionOptions
        @Option(name: .customLong("class"), help: "Train on this class only (a name after --classes).") var className: String?
        @Flag(help: "One conditional model for all classes.") var conditional = false
        @Option(help: "Image size: 28, 32, 64 or 128.") var imageSize = 28
        @Option(help: "Channels: 1 or 3 (default: as the data).") var channels: Int?
        @Option(help: Ranges.epochs.help("Passes over the training images.")) var epochs = 100
        @Option(help: Ranges.steps.help("Stop after this many steps in all.")) var maxSteps: Int?
        @Option(help: Ranges.ganBatchSize.help("Real images per step (default 64; 32 for diffusion).")) var batchSize: Int?
        @Option var seed: UInt64 = 0
        @Option(help: "Output folder (grids, losses.jsonl, checkpoint, manifest.jsonl of the training images).") var out: String
        @Flag(help: "Continue from <out>/checkpoint.safetensors exactly where it stopped.") var resume = false
        @Flag(help: "Start afresh in an --out folder that already holds a run, replacing its checkpoint and losses.")
        var overwrite = false
        @Option(help: Ranges.every.help("Write a checkpoint every N steps (default 200; 3 with --dry-run)."))
        var checkpointEvery: Int?
        @Option(help: Ranges.every.help("Write a sample grid every N epochs.")) var gridEvery = 10
        @Option(help: "bce or hinge.") var loss: GANLoss = .bce
        @Option(help: Ranges.learningRate.help("Generator learning rate.")) var lrG: Float = 2e-4
        @Option(help: Ranges.learningRate.help("Discriminator learning rate.")) var lrD: Float = 2e-4
        @Flag(help: "Turn DiffAugment off.") var noDiffAugment = false
        @Flag(help: "Spectral norm on D's convolutions, without D's batch norms (SN-GAN; pairs well with --loss hinge).")
        var spectralNorm = false
        @Option(help: Ranges.emaDecay.help("EMA decay of G's weights for sampling (0 = off).")) var emaDecay: Float = 0.999
        @Flag(help: "Run end to end on tiny fake data (CI).") var dryRun = false
        @OptionGroup var limits: DataCommand.ReadLimits
        @OptionGroup var dp: PrivacyOptions
        @OptionGroup(title: "Diffusion options (with --generator diffusion)") var diffusion: DiffusionTrainOptions
        @OptionGroup var tracking: TrackingOptions

        /// One model for every class, conditioned on the class.
        var isConditional: Bool { conditional || generator == .cdcgan }

        func validate() throws {
            if !dryRun && data == nil { throw ValidationError("--data is required (or --dry-run)") }
            if isConditional && className != nil { throw ValidationError("use either --class or --conditional (or --generator cdcgan)") }
            try validateFamily()
            if resume && overwrite { throw ValidationError("use either --resume or --overwrite") }
            try checkGANImageSize(imageSize); try checkChannels(channels)
            try Ranges.epochs.check(epochs, "--epochs"); try Ranges.steps.check(maxSteps, "--max-steps")
            try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.every.check(checkpointEvery, "--checkpoint-every"); try Ranges.every.check(gridEvery, "--grid-every")
            try Ranges.learningRate.check(lrG, "--lr-g"); try Ranges.learningRate.check(lrD, "--lr-d")
            try Ranges.emaDecay.check(emaDecay, "--ema-decay")
            try dp.validate()
        }

        func run() throws {
            if generator == .diffusion { return try runDiffusion() }
            let existing = GANTrainer.existingRun(in: URL(fileURLWithPath: out))
            if !resume && !overwrite && !existing.isEmpty {
                throw ValidationError("\(out) already holds a run (\(existing.joined(separator: ", "))): "
                                      + "pass --resume to continue it or --overwrite to start afresh")
            }
            let trainingData = try dryRun ? fakeData() : loadTrainingData()
            var config = try DCGANConfig(imageSize: imageSize, channels: trainingData.channels,
                                         generatorWidth: dryRun ? 8 : 64, discriminatorWidth: dryRun ? 8 : 64,
                                         classes: isConditional ? trainingData.classNames.count : nil,
                                         spectralNorm: spectralNorm)
            config.discriminatorBatchNorm = !dp.enabled && !spectralNorm   // batch norm mixes examples: no per-example privacy
            var options = GANTrainingOptions()
            options.batchSize = dryRun ? 8 : batchSize ?? 64
            options.loss = loss
            options.generatorLearningRate = lrG; options.discriminatorLearningRate = lrD
            options.diffAugment = noDiffAugment ? nil : DiffAugment()
            options.emaDecay = emaDecay > 0 ? emaDecay : nil
            let plan = self.plan
            let model = GANModel(config: config, options: options, seed: seed)
            let trainer = try GANTrainer(model: model, data: trainingData, plan: plan, outputDirectory: URL(fileURLWithPath: out))
            var progress = ProgressLine()
            if dp.enabled { try dp.enable(on: trainer, progress: progress) }
            if resume {
                guard FileManager.default.fileExists(atPath: trainer.checkpointURL.path) else {
                    throw ValidationError("--resume: no checkpoint at \(trainer.checkpointURL.path)")
                }
                try trainer.resume(from: trainer.checkpointURL)
                progress.note("resumed at epoch \(trainer.epoch), step \(trainer.globalStep)")
                if !trainer.resumedChecksumVerified {
                    progress.note("note: \(trainer.checkpointURL.path) has no checksum (written before checksums); loaded unverified")
                }
            }
            progress.note("training \(isConditional ? "a conditional DCGAN" : "a DCGAN") on \(trainingData.count) images "
                          + "(\(trainingData.classNames.joined(separator: ", "))), \(config.channels)x\(config.imageSize)x\(config.imageSize)")
            let start = Date()
            struct Recorded: Encodable { let config: DCGANConfig; let options: GANTrainingOptions; let plan: GANTrainingPlan; let data: String?
                                         let selection: ClassSelection? }
            let recorded = Recorded(config: config, options: options, plan: plan, data: data, selection: try selection.selection(seed: seed))
            let runID = try tracking.record(kind: .gan, config: recorded,
                                            seed: seed) { recorder -> String? in
            try trainer.run { event in
                switch event {
                case let .step(epoch, step, perEpoch, global, total, s, ips, eta):
                    if global % 10 == 0 || global == total {
                        try? recorder?.log(["loss_d": Double(s.discriminatorLoss), "loss_g": Double(s.generatorLoss),
                                            "d_real": Double(s.realScore), "d_fake": Double(s.fakeScore)], step: global)
                    }
                    progress.update(fraction: Double(global) / Double(max(total, 1)), String(
                        format: "epoch %d step %d/%d  D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f  %.0f img/s  ETA %@",
                        epoch + 1, step, perEpoch, s.discriminatorLoss, s.generatorLoss, s.realScore, s.fakeScore, ips,
                        formatDuration(eta)), force: global == total)
                case let .grid(path, _): progress.note("grid: \(path)"); _ = try? recorder?.artifact(path: path, kind: "grid")
                case let .checkpoint(path, step): if step == trainer.globalStep && trainer.globalStep % plan.checkpointEvery != 0 { progress.note("checkpoint: \(path)") }
                case let .alarm(text): progress.note("ALARM: \(text)"); try? recorder?.alarm(text)
                case .resumed: break
                }
            }
            _ = try recorder?.artifact(path: trainer.checkpointURL.path, kind: "checkpoint")
            if let privacy = trainer.privacy { try recorder?.log(["privacy.epsilon": try privacy.epsilon()], step: trainer.globalStep) }
            return recorder?.runID
            }
            progress.finish()
            progress.note(String(format: "done: %d steps in %@; checkpoint %@", trainer.globalStep,
                                 formatDuration(Date().timeIntervalSince(start)), trainer.checkpointURL.path))
            if let privacy = trainer.privacy {
                progress.note(String(format: "differential privacy: epsilon %.3f at delta %.3g (noise multiplier %.4g, clip %.3g)",
                                     try privacy.epsilon(), privacy.delta, privacy.dpsgd.noiseMultiplier, privacy.dpsgd.maxGradNorm))
            }
            if let runID { progress.note("run \(runID)") }
        }

        /// Epochs, checkpoints and grids as the options ask.
        var plan: GANTrainingPlan {
            var plan = GANTrainingPlan()
            plan.epochs = dryRun && maxSteps == nil ? 2 : epochs; plan.maxSteps = maxSteps; plan.seed = seed
            plan.checkpointEvery = checkpointEvery ?? (dryRun ? 3 : 200); plan.gridEvery = dryRun ? 1 : gridEvery
            return plan
        }

        /// The training split of the chosen class(es), scaled to [-1, 1] as DCGAN's tanh output;
        /// its manifest goes to `<out>/manifest.jsonl`; skipped files and warnings are listed.
        func loadTrainingData() throws -> GANTrainingData {
            let options = LoadOptions(preprocessing: Preprocessing(imageSize: imageSize, channels: channels),
                                      selection: try selection.selection(seed: seed), maxReadBytes: limits.maxReadBytes)
            let set = try loadGANTrainingSet(at: data!, options: options, className: className, conditional: isConditional, seed: seed)
            for warning in set.warnings { ProgressLine().note("warning: \(warning)") }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try writeManifest(set.manifest, to: URL(fileURLWithPath: out).appendingPathComponent("manifest.jsonl").path)
            return set.data
        }

        func fakeData() throws -> GANTrainingData {
            var g = SeededGenerator(seed: seed)
            let c = channels ?? 1, n = 24
            let pixels = (0..<(n * c * imageSize * imageSize)).map { _ in g.uniform() * 2 - 1 }
            return GANTrainingData(pixels: pixels, count: n, channels: c, size: imageSize,
                                   labels: isConditional ? (0..<n).map { $0 % 2 } : nil,
                                   classNames: isConditional ? ["a", "b"] : ["a"])
        }
    }
}

extension GANLoss: ExpressibleByArgument {}

extension GANCommand {
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sample images from a trained GAN or diffusion checkpoint (EMA weights) as numbered PNGs or an .npz.")
        @Option(help: "Checkpoint written by gan train (a GAN's or a diffusion model's; told apart by its metadata).")
        var checkpoint: String
        @Option(help: "dcgan, cdcgan or diffusion: refuse a checkpoint of another family (default: whatever it holds).")
        var generator: GeneratorFamily?
        @Option(name: .customLong("class"), help: "Class to sample (required for a conditional checkpoint).") var className: String?
        @Option(help: Ranges.sampleCount.help("Number of images.")) var count: Int
        @Option var seed: UInt64 = 0
        @Option(help: "A folder for PNGs, or FILE.npz (uint8 images, int64 labels).") var out: String
        @Option(help: Ranges.ganBatchSize.help("Images per generator call (batch norm uses full batches of this size)."))
        var batchSize = 64
        @Option(help: Ranges.label.help("Label stored in the npz (default: the class's index in the checkpoint, 0 for a per-class model)."))
        var label: Int?
        @Option(help: Ranges.samplingSteps.help("Diffusion: DDIM steps (default: the checkpoint's).")) var samplingSteps: Int?
        @Option(help: Ranges.guidanceScale.help("Diffusion: classifier-free guidance scale (default: the checkpoint's; 1 = none)."))
        var guidanceScale: Float?

        func validate() throws {
            try Ranges.sampleCount.check(count, "--count"); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.label.check(label, "--label")
            try Ranges.samplingSteps.check(samplingSteps, "--sampling-steps"); try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
            if let generator, generator != .diffusion, samplingSteps != nil || guidanceScale != nil {
                throw ValidationError("--sampling-steps and --guidance-scale apply to --generator diffusion only")
            }
        }

        func run() throws {
            let source = try openGenerator(checkpoint: checkpoint, expected: generator)
            source.batchSize = batchSize
            if let diffusion = source as? DiffusionImageSource {
                if let samplingSteps { diffusion.steps = samplingSteps }
                if let guidanceScale { diffusion.guidanceScale = guidanceScale }
            } else if samplingSteps != nil || guidanceScale != nil {
                throw ValidationError("--sampling-steps and --guidance-scale apply to diffusion checkpoints; \(checkpoint) holds a GAN")
            }
            let label = try self.label ?? source.label(for: className) ?? 0
            let pixels = try source.generate(className: className, count: count, seed: seed)
            let files = try writeImages(pixels, labels: Array(repeating: label, count: count), channels: source.channels,
                                        size: source.imageSize, to: out)
            let name = className ?? source.classNames[0]
            ProgressLine().note("\(count) images of \(name) (\(source.channels)x\(source.imageSize)x"
                                + "\(source.imageSize)) -> \(files.count == 1 ? files[0] : out)")
        }
    }
}

/// `gan train` options for differentially private training of the discriminator.
struct PrivacyOptions: ParsableArguments {
    @Option(help: Ranges.noiseMultiplier.help("DP-SGD on D's real-data gradients with this noise multiplier (turns D's batch norm off)."))
    var dpNoiseMultiplier: Double?
    @Option(help: Ranges.epsilon.help("DP-SGD with the noise multiplier that spends this epsilon over the planned steps."))
    var dpEpsilon: Double?
    @Option(help: Ranges.maxGradNorm.help("DP-SGD: clip each real example's D gradient to this L2 norm.")) var dpMaxGradNorm: Float = 1
    @Option(help: Ranges.delta.help("DP delta (default min(1e-5, 0.1 / n), below 1/n).")) var dpDelta: Double?

    var enabled: Bool { dpNoiseMultiplier != nil || dpEpsilon != nil }

    func validate() throws {
        if dpNoiseMultiplier != nil && dpEpsilon != nil { throw ValidationError("use either --dp-noise-multiplier or --dp-epsilon") }
        if !enabled && dpDelta != nil { throw ValidationError("--dp-delta needs --dp-noise-multiplier or --dp-epsilon") }
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier"); try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
    }

    func enable(on trainer: GANTrainer, progress: ProgressLine) throws {
        let delta = dpDelta ?? min(1e-5, 0.1 / Double(trainer.data.count))
        let sigma = try trainer.enablePrivacy(noiseMultiplier: dpNoiseMultiplier, targetEpsilon: dpEpsilon,
                                              maxGradNorm: dpMaxGradNorm, delta: delta)
        progress.note(String(format: "differential privacy: noise multiplier %.4g, clip %.3g, delta %.3g, Poisson rate %.4g",
                             sigma, dpMaxGradNorm, delta, trainer.privacy!.dpsgd.samplingRate))
    }
}
