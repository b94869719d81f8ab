import ArgumentParser
import Classification
import Datasets
import Evaluation
import Foundation
import NN
import Workflows

extension Architecture: ExpressibleByArgument {}
extension Monitor: ExpressibleByArgument {}
extension ScheduleName: ExpressibleByArgument {}

/// `train`'s options: a classifier, early-stopped on val, scored on test.
public struct TrainOptions: ParsableArguments {
    @Option(help: "Class-folder tree or MedMNIST .npz.") public var data: String?
    @OptionGroup public var selection: ClassSelectionOptions
    @Option(help: "An explicit test set (class folders or .npz); then --data is split train:val only.") public var test: String?
    @Option(help: "paper-cnn or resnet.") public var arch: Architecture = .resnet
    @Option(help: Ranges.imageSize.help("Image side.")) public var imageSize = 28
    @Option(help: "Channels: 1 or 3 (default: as the data).") public var channels: Int?
    @Option(help: Ranges.epochs.help("Most epochs.")) public var epochs = 30
    @Option(help: Ranges.batchSize.help("Images per step.")) public var batchSize = 64
    @Option(help: Ranges.learningRate.help("Learning rate.")) public var lr: Float = 1e-3
    @Option(help: "Learning-rate schedule: constant, or cosine (to lr/100 at the last epoch).")
    public var lrSchedule: ScheduleName = .constant
    @Flag(help: "Weight the loss by inverse class frequency.") public var classWeights = false
    @Option(help: Ranges.labelSmoothing.help("Label smoothing.")) public var labelSmoothing: Float = 0
    @Flag(help: "Draw class-balanced batches.") public var oversample = false
    @Flag(help: "Classic augmentation (flip, rotation, shift, zoom, brightness, contrast).") public var augment = false
    @Option(help: Ranges.patience.help("Epochs without a better validation score before stopping.")) public var patience = 8
    @Option(help: "Early-stopping score: macro-f1 or balanced-accuracy.") public var monitor: Monitor = .macroF1
    @OptionGroup public var split: SplitOptions
    @Option(help: "Seeds the weights, the batches and the augmentation (not the split: --split-seed).")
    public var seed: UInt64 = 0
    @Option(help: "Output folder: model.safetensors, history.json, metrics.json, manifest.jsonl (every image with its split).")
    public var out: String
    @OptionGroup public var tracking: TrackingOptions
    @OptionGroup public var limits: ReadLimits
    @Option(
        help: Ranges.noiseMultiplier.help(
            "DP-SGD with this noise multiplier (per-example clipping, Poisson batches; paper-cnn only: no batch norm)."))
    public var dpNoiseMultiplier: Double?
    @Option(help: Ranges.epsilon.help("DP-SGD with the noise multiplier that spends this epsilon over the planned epochs."))
    public var dpEpsilon: Double?
    @Option(help: Ranges.maxGradNorm.help("DP-SGD: clip each example's gradient to this L2 norm."))
    public var dpMaxGradNorm: Float = 1
    @Option(help: Ranges.delta.help("DP delta (default min(1e-5, 0.1 / n)).")) public var dpDelta: Double?
    @Flag(help: "Print the metrics as JSON on standard output.") public var json = false
    @Flag(help: "Run end to end on tiny fake data (CI).") public var dryRun = false

    public init() {}

    public func validate() throws {
        if !dryRun && data == nil { throw ValidationError("--data is required (or --dry-run)") }
        try Ranges.imageSize.check(imageSize, "--image-size"); try checkChannels(channels)
        try Ranges.epochs.check(epochs, "--epochs"); try Ranges.batchSize.check(batchSize, "--batch-size")
        try Ranges.learningRate.check(lr, "--lr"); try Ranges.labelSmoothing.check(labelSmoothing, "--label-smoothing")
        try Ranges.patience.check(patience, "--patience")
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier")
        try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
    }

    /// What the run does, as the library takes it (and the run store records it): every option
    /// that changes the result. `--dry-run` trains 2 epochs of batches of 8 on fake data.
    public func spec(data: String) throws -> ClassifierRunSpec {
        var spec = ClassifierRunSpec(data: data)
        spec.test = test
        let split = try self.split.choice()
        spec.selection = try selection.selection(seed: split.seed)
        spec.splitRatio = split.ratio
        spec.splitSeed = split.seed
        spec.arch = arch; spec.imageSize = imageSize; spec.channels = channels
        spec.maxReadBytes = limits.maxReadBytes
        var o = TrainingOptions()
        o.epochs = dryRun ? 2 : epochs; o.batchSize = dryRun ? 8 : batchSize
        o.learningRate = lr; o.schedule = lrSchedule.schedule(epochs: epochs, learningRate: lr); o.classWeights = classWeights
        o.labelSmoothing = labelSmoothing
        o.oversample = oversample; o.augmentation = augment ? AugmentationOptions() : nil
        o.patience = patience; o.monitor = monitor; o.seed = seed
        if dpNoiseMultiplier != nil || dpEpsilon != nil {
            guard dpNoiseMultiplier == nil || dpEpsilon == nil else {
                throw ValidationError("use either --dp-noise-multiplier or --dp-epsilon")
            }
            o.privacy = PrivateTrainingOptions(
                noiseMultiplier: dpNoiseMultiplier, targetEpsilon: dpEpsilon, maxGradNorm: dpMaxGradNorm,
                delta: dpDelta)
        }
        spec.training = o
        return spec
    }

    /// The job: refuses to overwrite a registered model, makes the output folder and (with
    /// `--dry-run`) the fake class folders in it. Under `mpirun` the ranks train data-parallel
    /// (`sync`); rank 0 makes the folders before the others read them.
    public func job(sync: GradientSync = .ranks) throws -> ClassifierRun {
        let outURL = URL(fileURLWithPath: out)
        try tracking.refuseOverwritingRegistered(outURL.appendingPathComponent("model.safetensors").path)
        let fake = outURL.appendingPathComponent("dry-run-data").path
        let spec = try spec(data: dryRun ? fake : data!)
        // Every rank refuses alike, before anything is written.
        if let refusal = spec.dataParallelRefusal(sync) { throw ValidationError(refusal) }
        try sync.rankZeroFirst {
            try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
            if dryRun { _ = try writeFakeClassFolders(in: fake, seed: seed) }
        }
        return try ClassifierRun(spec: spec, output: outURL, sync: sync)
    }

    /// Trains, tests and records the run unless `--no-track`; returns the job and its result, or
    /// nil on a data-parallel rank other than 0 (which trains in step but neither writes nor reports).
    public func train(
        sync: GradientSync = .ranks, _ observe: (WorkflowEvent) -> Void
    ) throws -> (job: ClassifierRun, result: ClassifierRunResult)? {
        let job = try job(sync: sync)
        let result = try job.runShowingProgress(store: sync.writesOutputs ? tracking.storeUnlessNoTrack() : nil) {
            if sync.writesOutputs { observe($0) }
        }
        return sync.writesOutputs ? (job, result) : nil
    }
}

/// `evaluate`'s options.
public struct EvaluateOptions: ParsableArguments {
    @Option(help: "A model.safetensors written by medsynth train.") public var model: String
    @Option(help: "Dataset whose test split (as the model was trained) to use.") public var data: String?
    @Option(help: "An explicit test set.") public var test: String?
    @Flag(help: "Print the report as JSON on standard output.") public var json = false

    public init() {}

    public func validate() throws {
        if (data == nil) == (test == nil) { throw ValidationError("give exactly one of --data and --test") }
    }

    /// The model's report on the test set, and its title.
    public func evaluate() throws -> (report: EvaluationReport, title: String) {
        try refusedAsInvalid { try ClassifierEvaluation.run(model: model, data: data, test: test) }
    }
}
