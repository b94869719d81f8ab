import ArgumentParser
import Diffusion
import Foundation
import GAN
import NN
import Workflows

// `gan train` and `gan sample`, for GANs and diffusion models.
//
// Why one command with a `--generator` option rather than a sibling `medsynth diffusion ...`: the
// issue asks for one generator interface, and everything around the model is shared -- the data,
// class selection, split and manifest, the output folder's layout (checkpoint, losses.jsonl,
// grids), resume and overwrite, run tracking, and `gan sample` reading either kind of checkpoint
// (it tells them apart by the checkpoint's metadata). The options that only one family has are
// refused with the other, by name, so no option is silently ignored.

extension GANLoss: ExpressibleByArgument {}
extension GeneratorFamily: ExpressibleByArgument {}
extension DiffusionPrediction: ExpressibleByArgument {}
extension NoiseScheduleKind: ExpressibleByArgument {}

/// `gan train`'s options.
public struct GANTrainOptions: ParsableArguments {
    @Option(
        help: "dcgan, cdcgan (a DCGAN with --conditional) or diffusion (a U-Net denoiser; conditional with --conditional).")
    public var generator: GeneratorFamily = .dcgan
    @Option(help: "Class-folder tree or MedMNIST .npz.") public var data: String?
    @OptionGroup public var selection: ClassSelectionOptions
    @Option(name: .customLong("class"), help: "Train on this class only (a name after --classes).") public var className: String?
    @Flag(help: "One conditional model for all classes.") public var conditional = false
    @Option(help: "Image size: 28, 32, 64 or 128.") public var imageSize = 28
    @Option(help: "Channels: 1 or 3 (default: as the data).") public var channels: Int?
    @Option(help: Ranges.epochs.help("Passes over the training images.")) public var epochs = 100
    @Option(help: Ranges.steps.help("Stop after this many steps in all.")) public var maxSteps: Int?
    @Option(help: Ranges.ganBatchSize.help("Real images per step (default 64; 32 for diffusion).")) public var batchSize: Int?
    @OptionGroup public var split: SplitOptions
    @Option(help: "Seeds the weights, the batches and the noise (not the split: --split-seed).") public var seed: UInt64 = 0
    @Option(help: "Output folder (grids, losses.jsonl, checkpoint, manifest.jsonl of the training images).") public var out:
        String
    @Flag(help: "Continue from <out>/checkpoint.safetensors exactly where it stopped.") public var resume = false
    @Flag(help: "Start afresh in an --out folder that already holds a run, replacing its checkpoint and losses.")
    public var overwrite = false
    @Option(help: Ranges.every.help("Write a checkpoint every N steps (default 200; 3 with --dry-run)."))
    public var checkpointEvery: Int?
    @Option(help: Ranges.every.help("Write a sample grid every N epochs.")) public var gridEvery = 10
    @Option(help: "bce or hinge.") public var loss: GANLoss = .bce
    @Option(help: Ranges.learningRate.help("Generator learning rate.")) public var lrG: Float = 2e-4
    @Option(help: Ranges.learningRate.help("Discriminator learning rate.")) public var lrD: Float = 2e-4
    @Flag(help: "Turn DiffAugment off.") public var noDiffAugment = false
    @Flag(help: "Spectral norm on D's convolutions, without D's batch norms (SN-GAN; pairs well with --loss hinge).")
    public var spectralNorm = false
    @Option(help: Ranges.emaDecay.help("EMA decay of G's weights for sampling (0 = off).")) public var emaDecay: Float = 0.999
    @Flag(help: "Run end to end on tiny fake data (CI).") public var dryRun = false
    @OptionGroup public var limits: ReadLimits
    @OptionGroup public var dp: PrivacyOptions
    @OptionGroup(title: "Diffusion options (with --generator diffusion)") public var diffusion: DiffusionTrainOptions
    @OptionGroup public var tracking: TrackingOptions

    public init() {}

    /// One model for every class, conditioned on the class.
    public var isConditional: Bool { conditional || generator == .cdcgan }

    public func validate() throws {
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

    /// Refuses what the chosen family cannot use, naming the option.
    func validateFamily() throws {
        guard generator == .diffusion else {
            if let first = diffusion.given.first { throw ValidationError("\(first) applies to --generator diffusion only") }
            return
        }
        var ganOnly: [String] = []
        if loss != .bce { ganOnly.append("--loss") }
        if lrG != 2e-4 || lrD != 2e-4 { ganOnly.append("--lr-g/--lr-d (use --lr)") }
        if noDiffAugment { ganOnly.append("--no-diff-augment") }
        if spectralNorm { ganOnly.append("--spectral-norm") }
        if dp.enabled { ganOnly.append("differential privacy (--dp-*)") }
        if let first = ganOnly.first { throw ValidationError("\(first) applies to GANs, not to --generator diffusion") }
        guard [28, 32, 64].contains(imageSize) else {
            throw ValidationError("--image-size \(imageSize) is not supported by --generator diffusion: use 28, 32 or 64")
        }
    }

    /// Trains as the options ask, recording the run unless `--no-track`. Under `mpirun` the ranks
    /// train data-parallel (`sync`); rank 0 alone writes, records and reports.
    public func train(sync: GradientSync = .ranks, _ observe: (WorkflowEvent) -> Void) throws {
        _ = try refusedAsInvalid {
            try GeneratorRun.train(
                spec(), output: URL(fileURLWithPath: out), resume: resume, overwrite: overwrite,
                store: sync.writesOutputs ? tracking.storeUnlessNoTrack() : nil, sync: sync
            ) { if sync.writesOutputs { observe($0) } }
        }
    }

    /// What the run does, as the library takes it (and the run store records it): every option
    /// that changes the result. `--dry-run` trains models of width 8 on batches of 8 of fake data.
    public func spec() throws -> GeneratorRunSpec {
        var spec = GeneratorRunSpec()
        spec.generator = generator; spec.data = dryRun ? nil : data
        spec.split = try split.choice()
        spec.selection = try selection.selection(seed: spec.split.seed)
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
    public var plan: GANTrainingPlan {
        var plan = GANTrainingPlan()
        plan.epochs = dryRun && maxSteps == nil ? 2 : epochs; plan.maxSteps = maxSteps; plan.seed = seed
        plan.split = try? split.choice()  // a malformed --ratio is refused by validate()
        plan.checkpointEvery = checkpointEvery ?? (dryRun ? 3 : 200); plan.gridEvery = dryRun ? 1 : gridEvery
        return plan
    }
}

/// `gan sample`'s options.
public struct GANSampleOptions: ParsableArguments {
    @Option(help: "Checkpoint written by gan train (a GAN's or a diffusion model's; told apart by its metadata).")
    public var checkpoint: String
    @Option(help: "dcgan, cdcgan or diffusion: refuse a checkpoint of another family (default: whatever it holds).")
    public var generator: GeneratorFamily?
    @Option(name: .customLong("class"), help: "Class to sample (required for a conditional checkpoint).")
    public var className: String?
    @Option(help: Ranges.sampleCount.help("Number of images.")) public var count: Int
    @Option public var seed: UInt64 = 0
    @Option(help: "A folder for PNGs, or FILE.npz (uint8 images, int64 labels).") public var out: String
    @Option(help: Ranges.ganBatchSize.help("Images per generator call (batch norm uses full batches of this size)."))
    public var batchSize = 64
    @Option(
        help: Ranges.label.help(
            "Label stored in the npz (default: the class's index in the checkpoint, 0 for a per-class model)."))
    public var label: Int?
    @Option(help: Ranges.samplingSteps.help("Diffusion: DDIM steps (default: the checkpoint's).")) public var samplingSteps: Int?
    @Option(
        help: Ranges.guidanceScale.help("Diffusion: classifier-free guidance scale (default: the checkpoint's; 1 = none)."))
    public var guidanceScale: Float?

    public init() {}

    public func validate() throws {
        try Ranges.sampleCount.check(count, "--count"); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
        try Ranges.label.check(label, "--label")
        try Ranges.samplingSteps.check(samplingSteps, "--sampling-steps")
        try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
        if let generator, generator != .diffusion, samplingSteps != nil || guidanceScale != nil {
            throw ValidationError("--sampling-steps and --guidance-scale apply to --generator diffusion only")
        }
    }

    /// The sampling as the library takes it.
    public var spec: SampleSpec {
        var spec = SampleSpec(checkpoint: checkpoint, count: count)
        spec.generator = generator; spec.className = className; spec.seed = seed; spec.batchSize = batchSize
        spec.label = label; spec.samplingSteps = samplingSteps; spec.guidanceScale = guidanceScale
        return spec
    }

    /// Samples and writes the images; returns what was written.
    public func write() throws -> String { try refusedAsInvalid { try spec.write(to: out) } }
}

/// `gan train` options for differentially private training of the discriminator.
public struct PrivacyOptions: ParsableArguments {
    @Option(
        help: Ranges.noiseMultiplier.help(
            "DP-SGD on D's real-data gradients with this noise multiplier (turns D's batch norm off)."))
    public var dpNoiseMultiplier: Double?
    @Option(help: Ranges.epsilon.help("DP-SGD with the noise multiplier that spends this epsilon over the planned steps."))
    public var dpEpsilon: Double?
    @Option(help: Ranges.maxGradNorm.help("DP-SGD: clip each real example's D gradient to this L2 norm."))
    public var dpMaxGradNorm: Float = 1
    @Option(help: Ranges.delta.help("DP delta (default min(1e-5, 0.1 / n), below 1/n).")) public var dpDelta: Double?

    public init() {}

    public var enabled: Bool { dpNoiseMultiplier != nil || dpEpsilon != nil }

    public func validate() throws {
        if dpNoiseMultiplier != nil && dpEpsilon != nil {
            throw ValidationError("use either --dp-noise-multiplier or --dp-epsilon")
        }
        if !enabled && dpDelta != nil { throw ValidationError("--dp-delta needs --dp-noise-multiplier or --dp-epsilon") }
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier")
        try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
    }

    /// The library's DP-SGD options (nil: off).
    public var spec: GANPrivacySpec? {
        guard enabled else { return nil }
        return GANPrivacySpec(
            noiseMultiplier: dpNoiseMultiplier, targetEpsilon: dpEpsilon, maxGradNorm: dpMaxGradNorm, delta: dpDelta)
    }
}

/// `gan train` options of diffusion models (nil: the library's default).
public struct DiffusionTrainOptions: ParsableArguments {
    @Option(help: Ranges.diffusionWidth.help("U-Net base width, a multiple of 8 (default 32; levels 1x, 2x, 2x)."))
    public var width: Int?
    @Flag(help: "Self-attention at the U-Net's lowest resolution.") public var attention = false
    @Option(help: "What the U-Net predicts: v or epsilon (default v).") public var prediction: DiffusionPrediction?
    @Option(help: "Noise schedule: cosine or linear (default cosine).") public var schedule: NoiseScheduleKind?
    @Option(help: Ranges.learningRate.help("Adam learning rate (default 5e-4).")) public var lr: Float?
    @Option(
        help: Ranges.classDrop.help("Probability of training without the class, for guidance (default 0.1; with --conditional)."))
    public var classDrop: Float?
    @Option(help: Ranges.samplingSteps.help("DDIM steps of the grids and of sampling (default 25).")) public var samplingSteps:
        Int?
    @Option(help: Ranges.guidanceScale.help("Classifier-free guidance scale of the grids and of sampling (default 2; 1 = none)."))
    public var guidanceScale: Float?

    public init() {}

    /// The options given, by name (to refuse them with a GAN).
    public var given: [String] {
        [
            ("--width", width != nil), ("--attention", attention), ("--prediction", prediction != nil),
            ("--schedule", schedule != nil),
            ("--lr", lr != nil), ("--class-drop", classDrop != nil), ("--sampling-steps", samplingSteps != nil),
            ("--guidance-scale", guidanceScale != nil),
        ].filter(\.1).map(\.0)
    }

    public func validate() throws {
        try Ranges.diffusionWidth.check(width, "--width")
        if let width, width % 8 != 0 {
            throw ValidationError("--width \(width) is not a multiple of 8 (the group norms' 8 groups)")
        }
        try Ranges.learningRate.check(lr, "--lr"); try Ranges.classDrop.check(classDrop, "--class-drop")
        try Ranges.samplingSteps.check(samplingSteps, "--sampling-steps")
        try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
    }

    /// The library's options with these applied.
    public func options(batchSize: Int, emaDecay: Float) -> DiffusionOptions {
        var o = DiffusionOptions()
        o.batchSize = batchSize
        o.emaDecay = emaDecay > 0 ? emaDecay : nil
        if let prediction { o.prediction = prediction }
        if let schedule { o.schedule = schedule }
        if let lr { o.learningRate = lr }
        if let classDrop { o.classDropProbability = classDrop }
        if let samplingSteps { o.samplingSteps = samplingSteps }
        if let guidanceScale { o.guidanceScale = guidanceScale }
        return o
    }
}
