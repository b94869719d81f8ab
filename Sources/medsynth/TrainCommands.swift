import ArgumentParser
import Classification
import Datasets
import Evaluation
import Foundation
import NN
import Tracking
import Workflows

/// `medsynth train`: train a classifier, early-stop on val, score the best model on test.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a classifier on the train split, early-stop on val, evaluate the best model on test.")

    @Option(help: "Class-folder tree or MedMNIST .npz.") var data: String?
    @OptionGroup var selection: ClassSelectionOptions
    @Option(help: "An explicit test set (class folders or .npz); then --data is split train:val only.") var test: String?
    @Option(help: "paper-cnn or resnet.") var arch: Architecture = .resnet
    @Option(help: Ranges.imageSize.help("Image side.")) var imageSize = 28
    @Option(help: "Channels: 1 or 3 (default: as the data).") var channels: Int?
    @Option(help: Ranges.epochs.help("Most epochs.")) var epochs = 30
    @Option(help: Ranges.batchSize.help("Images per step.")) var batchSize = 64
    @Option(help: Ranges.learningRate.help("Learning rate.")) var lr: Float = 1e-3
    @Option(help: "Learning-rate schedule: constant, or cosine (to lr/100 at the last epoch).") var lrSchedule: ScheduleName =
        .constant
    @Flag(help: "Weight the loss by inverse class frequency.") var classWeights = false
    @Option(help: Ranges.labelSmoothing.help("Label smoothing.")) var labelSmoothing: Float = 0
    @Flag(help: "Draw class-balanced batches.") var oversample = false
    @Flag(help: "Classic augmentation (flip, rotation, shift, zoom, brightness, contrast).") var augment = false
    @Option(help: Ranges.patience.help("Epochs without a better validation score before stopping.")) var patience = 8
    @Option(help: "Early-stopping score: macro-f1 or balanced-accuracy.") var monitor: Monitor = .macroF1
    @Option(help: "train:val:test ratio for data without its own splits.") var ratio = "8:1:1"
    @Option(help: "Seeds the split, the weights and the batches.") var seed: UInt64 = 0
    @Option(help: "Output folder: model.safetensors, history.json, metrics.json, manifest.jsonl (every image with its split).")
    var out: String
    @OptionGroup var tracking: TrackingOptions
    @OptionGroup var limits: DataCommand.ReadLimits
    @Option(
        help: Ranges.noiseMultiplier.help(
            "DP-SGD with this noise multiplier (per-example clipping, Poisson batches; paper-cnn only: no batch norm)."))
    var dpNoiseMultiplier: Double?
    @Option(help: Ranges.epsilon.help("DP-SGD with the noise multiplier that spends this epsilon over the planned epochs."))
    var dpEpsilon: Double?
    @Option(help: Ranges.maxGradNorm.help("DP-SGD: clip each example's gradient to this L2 norm.")) var dpMaxGradNorm: Float = 1
    @Option(help: Ranges.delta.help("DP delta (default min(1e-5, 0.1 / n)).")) var dpDelta: Double?
    @Flag(help: "Print the metrics as JSON on standard output.") var json = false
    @Flag(help: "Run end to end on tiny fake data (CI).") var dryRun = false

    func validate() throws {
        if !dryRun && data == nil { throw ValidationError("--data is required (or --dry-run)") }
        try Ranges.imageSize.check(imageSize, "--image-size"); try checkChannels(channels)
        try Ranges.epochs.check(epochs, "--epochs"); try Ranges.batchSize.check(batchSize, "--batch-size")
        try Ranges.learningRate.check(lr, "--lr"); try Ranges.labelSmoothing.check(labelSmoothing, "--label-smoothing")
        try Ranges.patience.check(patience, "--patience")
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier");
        try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
        _ = try SplitRatio(parsing: ratio)
    }

    /// What the run does, as the library takes it (and the run store records it): every option
    /// that changes the result. `--dry-run` trains 2 epochs of batches of 8 on fake data.
    func spec(data: String) throws -> ClassifierRunSpec {
        var spec = ClassifierRunSpec(data: data)
        spec.test = test
        spec.selection = try selection.selection(seed: seed)
        spec.splitRatio = try SplitRatio(parsing: ratio)
        spec.splitSeed = seed
        spec.arch = arch; spec.imageSize = imageSize; spec.channels = channels
        spec.maxReadBytes = limits.maxReadBytes
        var o = TrainingOptions()
        o.epochs = dryRun ? 2 : epochs; o.batchSize = dryRun ? 8 : batchSize
        o.learningRate = lr; o.schedule = lrSchedule.schedule(epochs: epochs, learningRate: lr); o.classWeights = classWeights;
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

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        try tracking.refuseOverwritingRegistered(outURL.appendingPathComponent("model.safetensors").path)
        // Under mpirun: data-parallel, rank 0 alone writes and reports.
        let sync = GradientSync.ranks
        let fake = outURL.appendingPathComponent("dry-run-data").path
        try sync.rankZeroFirst {
            try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
            if dryRun { _ = try writeFakeClassFolders(in: fake, seed: seed) }
        }
        let job = try ClassifierRun(spec: spec(data: dryRun ? fake : data!), output: outURL, sync: sync)
        var progress = ProgressLine()
        let result = try job.runShowingProgress(store: sync.writesOutputs ? tracking.storeUnlessNoTrack() : nil) {
            if sync.writesOutputs { progress.show($0) }
        }
        guard sync.writesOutputs else { return }
        printReport(
            result.training.test, baseline: result.training.baseline, title: job.title(of: result), json: json,
            jsonValue: result.summary)
        job.closingNotes(of: result).forEach { progress.note($0) }
        if let runID = result.runID, !json { print("MEDSYNTH_RUN_ID=\(runID)") }
    }
}

/// `medsynth evaluate`: score a trained classifier on a test set.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a classifier on the test split of --data (rebuilt from the model's split seed) or on --test.")

    @Option(help: "A model.safetensors written by medsynth train.") var model: String
    @Option(help: "Dataset whose test split (as the model was trained) to use.") var data: String?
    @Option(help: "An explicit test set.") var test: String?
    @Flag(help: "Print the report as JSON on standard output.") var json = false

    func validate() throws {
        if (data == nil) == (test == nil) { throw ValidationError("give exactly one of --data and --test") }
    }

    func run() throws {
        let (r, title) = try refusedAsInvalid { try ClassifierEvaluation.run(model: model, data: data, test: test) }
        printReport(r, baseline: nil, title: title, json: json, jsonValue: r)
    }
}

extension Architecture: ExpressibleByArgument {}
extension Monitor: ExpressibleByArgument {}
extension ScheduleName: ExpressibleByArgument {}

/// Prints a report: JSON on standard output, or a per-class table; alarms go to standard error, loudly.
func printReport(_ r: EvaluationReport, baseline: EvaluationReport?, title: String, json: Bool, jsonValue: some Encodable) {
    for alarm in r.alarms {
        FileHandle.standardError.write(Data("!!! ALARM: \(alarm.uppercased()) !!!\n".utf8))
    }
    print(json ? (try? prettyJSON(jsonValue)) ?? "" : r.table(title: title, baseline: baseline))
}
