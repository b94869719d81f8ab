import ArgumentParser
import Foundation
import GAN
import NN
import Workflows

struct GANCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Train and sample image generators: DCGANs, or diffusion models with --generator diffusion.",
        subcommands: [Train.self, Sample.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a generator on one class, or a class-conditional one on all classes, of a dataset's training split.")
        @Option(
            help: "dcgan, cdcgan (a DCGAN with --conditional) or diffusion (a U-Net denoiser; conditional with --conditional).")
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
            if isConditional && className != nil {
                throw ValidationError("use either --class or --conditional (or --generator cdcgan)")
            }
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
            var progress = ProgressLine()
            let sync = GradientSync.ranks  // under mpirun: data-parallel, rank 0 alone writes and reports
            _ = try refusedAsInvalid {
                try GeneratorRun.train(
                    spec(), output: URL(fileURLWithPath: out), resume: resume, overwrite: overwrite,
                    store: sync.writesOutputs ? tracking.storeUnlessNoTrack() : nil, sync: sync
                ) { if sync.writesOutputs { progress.show($0) } }
            }
        }

        /// What the run does, as the library takes it (and the run store records it): every option
        /// that changes the result. `--dry-run` trains models of width 8 on batches of 8 of fake data.
        func spec() throws -> GeneratorRunSpec {
            var spec = GeneratorRunSpec()
            spec.generator = generator; spec.data = dryRun ? nil : data
            spec.selection = try selection.selection(seed: seed)
            spec.className = className; spec.conditional = conditional
            spec.imageSize = imageSize; spec.channels = channels; spec.maxReadBytes = limits.maxReadBytes
            spec.seed = seed; spec.plan = plan
            if generator == .diffusion {
                spec.diffusion = diffusion.options(batchSize: dryRun ? 8 : batchSize ?? 32, emaDecay: emaDecay)
                if dryRun { spec.diffusion.samplingSteps = min(spec.diffusion.samplingSteps, 3) }
                spec.unetWidth = dryRun ? 8 : diffusion.width ?? 32; spec.attention = diffusion.attention
                return spec
            }
            spec.gan.batchSize = dryRun ? 8 : batchSize ?? 64
            spec.gan.loss = loss
            spec.gan.generatorLearningRate = lrG; spec.gan.discriminatorLearningRate = lrD
            spec.gan.diffAugment = noDiffAugment ? nil : DiffAugment()
            spec.gan.emaDecay = emaDecay > 0 ? emaDecay : nil
            spec.ganWidth = dryRun ? 8 : 64; spec.spectralNorm = spectralNorm
            spec.privacy = dp.spec
            return spec
        }

        /// Epochs, checkpoints and grids as the options ask.
        var plan: GANTrainingPlan {
            var plan = GANTrainingPlan()
            plan.epochs = dryRun && maxSteps == nil ? 2 : epochs; plan.maxSteps = maxSteps; plan.seed = seed
            plan.checkpointEvery = checkpointEvery ?? (dryRun ? 3 : 200); plan.gridEvery = dryRun ? 1 : gridEvery
            return plan
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
        @Option(name: .customLong("class"), help: "Class to sample (required for a conditional checkpoint).") var className:
            String?
        @Option(help: Ranges.sampleCount.help("Number of images.")) var count: Int
        @Option var seed: UInt64 = 0
        @Option(help: "A folder for PNGs, or FILE.npz (uint8 images, int64 labels).") var out: String
        @Option(help: Ranges.ganBatchSize.help("Images per generator call (batch norm uses full batches of this size)."))
        var batchSize = 64
        @Option(
            help: Ranges.label.help(
                "Label stored in the npz (default: the class's index in the checkpoint, 0 for a per-class model)."))
        var label: Int?
        @Option(help: Ranges.samplingSteps.help("Diffusion: DDIM steps (default: the checkpoint's).")) var samplingSteps: Int?
        @Option(
            help: Ranges.guidanceScale.help("Diffusion: classifier-free guidance scale (default: the checkpoint's; 1 = none)."))
        var guidanceScale: Float?

        func validate() throws {
            try Ranges.sampleCount.check(count, "--count"); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.label.check(label, "--label")
            try Ranges.samplingSteps.check(samplingSteps, "--sampling-steps");
            try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
            if let generator, generator != .diffusion, samplingSteps != nil || guidanceScale != nil {
                throw ValidationError("--sampling-steps and --guidance-scale apply to --generator diffusion only")
            }
        }

        func run() throws {
            var spec = SampleSpec(checkpoint: checkpoint, count: count)
            spec.generator = generator; spec.className = className; spec.seed = seed; spec.batchSize = batchSize
            spec.label = label; spec.samplingSteps = samplingSteps; spec.guidanceScale = guidanceScale
            ProgressLine().note(try refusedAsInvalid { try spec.write(to: out) })
        }
    }
}

/// `gan train` options for differentially private training of the discriminator.
struct PrivacyOptions: ParsableArguments {
    @Option(
        help: Ranges.noiseMultiplier.help(
            "DP-SGD on D's real-data gradients with this noise multiplier (turns D's batch norm off)."))
    var dpNoiseMultiplier: Double?
    @Option(help: Ranges.epsilon.help("DP-SGD with the noise multiplier that spends this epsilon over the planned steps."))
    var dpEpsilon: Double?
    @Option(help: Ranges.maxGradNorm.help("DP-SGD: clip each real example's D gradient to this L2 norm.")) var dpMaxGradNorm:
        Float = 1
    @Option(help: Ranges.delta.help("DP delta (default min(1e-5, 0.1 / n), below 1/n).")) var dpDelta: Double?

    var enabled: Bool { dpNoiseMultiplier != nil || dpEpsilon != nil }

    func validate() throws {
        if dpNoiseMultiplier != nil && dpEpsilon != nil {
            throw ValidationError("use either --dp-noise-multiplier or --dp-epsilon")
        }
        if !enabled && dpDelta != nil { throw ValidationError("--dp-delta needs --dp-noise-multiplier or --dp-epsilon") }
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier");
        try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
    }

    /// The library's DP-SGD options (nil: off).
    var spec: GANPrivacySpec? {
        guard enabled else { return nil }
        return GANPrivacySpec(
            noiseMultiplier: dpNoiseMultiplier, targetEpsilon: dpEpsilon, maxGradNorm: dpMaxGradNorm, delta: dpDelta)
    }
}
