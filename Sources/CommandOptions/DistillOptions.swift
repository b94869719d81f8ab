import ArgumentParser
import Diffusion
import Foundation
import Workflows

/// `gan distill`'s options: progressive distillation of a diffusion checkpoint into a student that
/// samples in `--steps` DDIM steps without guidance rows. The data options are `gan train`'s, so
/// the split is the teacher's; image size, channels and classes follow the teacher.
public struct GANDistillOptions: ParsableArguments {
    @Option(help: "Diffusion checkpoint written by gan train --generator diffusion (its EMA weights are the teacher).")
    public var checkpoint: String
    @Option(help: "Class-folder tree or MedMNIST .npz the teacher was trained on.") public var data: String
    @OptionGroup public var selection: ClassSelectionOptions
    @Option(help: "Split seed (default: the teacher's recorded split; another is refused).") public var splitSeed: UInt64?
    @Option(help: "train:val:test ratio of the split (default: the teacher's).") public var ratio: String?
    @Option(help: "Seeds the student's batches and noise.") public var seed: UInt64 = 0
    @Option(help: "Image size (default and only accepted value: the teacher's).") public var imageSize: Int?
    @Option(help: "Channels (default and only accepted value: the teacher's).") public var channels: Int?
    @Option(help: Ranges.distilledSteps.help("DDIM steps of the distilled student.")) public var steps = 4
    @Option(help: Ranges.distillFromSteps.help("DDIM steps of the first (guided) teacher; steps x a power of 2."))
    public var fromSteps = 32
    @Option(help: Ranges.distillIterations.help("Student updates per stage (each halves the steps).")) public var iterations =
        500
    @Option(help: Ranges.diffusionBatchSize.help("Real images per update.")) public var batchSize = 32
    @Option(help: Ranges.learningRate.help("Adam learning rate at the start of each stage, decayed linearly to 0."))
    public var lr: Float = 1e-4
    @Option(help: Ranges.emaDecay.help("EMA decay of the student's weights (0 = off).")) public var emaDecay: Float = 0.999
    @Option(help: Ranges.every.help("Write a checkpoint every N updates.")) public var checkpointEvery = 100
    @Option(help: "Output folder (checkpoint, losses.jsonl, grid-final.png, manifest.jsonl).") public var out: String
    @Flag(help: "Continue from <out>/checkpoint.safetensors exactly where it stopped.") public var resume = false
    @OptionGroup public var limits: ReadLimits

    public init() {}

    public func validate() throws {
        try Ranges.distilledSteps.check(steps, "--steps"); try Ranges.distillFromSteps.check(fromSteps, "--from-steps")
        try Ranges.distillIterations.check(iterations, "--iterations")
        try Ranges.diffusionBatchSize.check(batchSize, "--batch-size"); try Ranges.learningRate.check(lr, "--lr")
        try Ranges.emaDecay.check(emaDecay, "--ema-decay"); try Ranges.every.check(checkpointEvery, "--checkpoint-every")
        try checkChannels(channels)
        _ = try parsedRatio(ratio)
        do { try spec().options.validate() } catch let error as DiffusionError {
            throw ValidationError("--from-steps \(fromSteps) --steps \(steps): \(error)")
        }
    }

    /// The run as the library takes it.
    public func spec() throws -> DistillationRunSpec {
        var spec = DistillationRunSpec(teacher: checkpoint, data: data)
        spec.selection = try selection.selection(seed: splitSeed ?? 0)
        spec.splitSeed = splitSeed; spec.splitRatio = try parsedRatio(ratio)
        spec.seed = seed; spec.imageSize = imageSize; spec.channels = channels; spec.maxReadBytes = limits.maxReadBytes
        spec.options.steps = steps; spec.options.fromSteps = fromSteps; spec.options.iterations = iterations
        spec.options.batchSize = batchSize; spec.options.learningRate = lr
        spec.options.emaDecay = emaDecay > 0 ? emaDecay : nil
        spec.checkpointEvery = checkpointEvery
        return spec
    }

    /// Distils as the options ask.
    public func distill(_ observe: (WorkflowEvent) -> Void) throws {
        _ = try refusedAsInvalid {
            try GeneratorRun.distill(spec(), output: URL(fileURLWithPath: out), resume: resume, observe)
        }
    }
}
