import AtomicIO
import Classification
import Datasets
import Evaluation
import Foundation
import NN
import Tracking

/// Everything that decides what a classifier run (`medsynth train`) produces: the data and its
/// split, the model, the training. A run store records it whole as the run's configuration, so
/// the run can be repeated from `medsynth runs show`: an option that changes the result belongs here.
public struct ClassifierRunSpec: Codable, Equatable, Sendable {
    /// Class-folder tree or MedMNIST `.npz` (a model card's "Dataset").
    public var data: String
    /// An explicit test set (class folders or `.npz`); then `data` is split train:val only.
    public var test: String?
    /// Classes kept, merged or capped while loading (nil: every class as stored). An explicit
    /// test set keeps every image of the selected classes (no caps).
    public var selection: ClassSelection?
    /// train:val:test ratio for data without its own splits.
    public var splitRatio: SplitRatio = .standard
    /// Seeds the split (weights and batches: `training.seed`).
    public var splitSeed: UInt64 = 0
    public var arch: Architecture = .resnet
    /// Image side after resizing.
    public var imageSize = 28
    /// Channels (nil: as the data).
    public var channels: Int?
    /// Epochs, batch size, learning rate, early stopping, balancing, augmentation, DP-SGD, seed.
    public var training = TrainingOptions()
    /// Most bytes read from one image file or inflated from one `.npz` (a larger one is refused).
    public var maxReadBytes = defaultMaxArchiveBytes

    /// A run of `data` with every other setting at its default.
    public init(data: String) { self.data = data }
}

/// What a classifier run writes to its output folder and returns.
public struct ClassifierRunResult {
    /// The training result: best model, history, test and baseline reports.
    public var training: TrainingResult
    /// What `metrics.json` holds.
    public var summary: ClassifierRunSummary
    /// The recorded run, nil when not recorded.
    public var runID: String?
}

/// `metrics.json` of a classifier run: the best model on the test split, the majority baseline,
/// the best epoch, its validation report, the training time.
public struct ClassifierRunSummary: Codable {
    public var test: EvaluationReport
    public var baseline: EvaluationReport
    public var bestEpoch: Int
    public var validation: EvaluationReport?
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case test, baseline = "majority_baseline", bestEpoch = "best_epoch", validation, seconds
    }
}

/// One classifier run: created from a spec, it loads and splits the data (writing the split's
/// manifest); `run` trains, early-stops on validation, scores the best model on test and writes
/// `model.safetensors`, `history.json`, `metrics.json` and `reference.json` (training-split
/// statistics for drift monitoring) beside `manifest.jsonl`, recording the run when given a store.
public final class ClassifierRun {
    public let spec: ClassifierRunSpec
    public let output: URL
    /// The loaded data (and explicit test set), with what loading skipped or changed.
    public let dataset: LoadedDataset
    public let testSet: LoadedDataset?
    /// Every image with its split.
    public let split: SplitDataset
    /// SHA-256 of the split's manifest (JSON Lines): the data fingerprint the run carries.
    public let manifestHash: String
    /// Data-parallel training over ranks (`GradientSync.ranks` under mpirun); rank 0 alone writes.
    public let sync: GradientSync

    /// The weights file in `output`.
    public var modelURL: URL { output.appendingPathComponent("model.safetensors") }

    /// Loads and splits the data and writes `output/manifest.jsonl`; creates `output`. Over
    /// several ranks (`sync`) every rank loads and splits alike, and rank 0 alone writes.
    public init(spec: ClassifierRunSpec, output: URL, sync: GradientSync = .single) throws {
        if let refusal = spec.dataParallelRefusal(sync) { throw OptionRefusal(refusal) }
        self.spec = spec
        self.output = output
        self.sync = sync
        if sync.writesOutputs { try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true) }
        let preprocessing = Preprocessing(imageSize: spec.imageSize, channels: spec.channels, scaling: .unit)
        dataset = try loadDataset(
            at: spec.data,
            options: LoadOptions(
                preprocessing: preprocessing, selection: spec.selection,
                maxReadBytes: spec.maxReadBytes))
        var testSelection = spec.selection
        testSelection?.caps = []
        testSet = try spec.test.map {
            try loadDataset(
                at: $0,
                options: LoadOptions(
                    preprocessing: preprocessing, selection: testSelection,
                    maxReadBytes: spec.maxReadBytes))
        }
        split = try makeSplits(dataset, ratio: spec.splitRatio, seed: spec.splitSeed, explicitTest: testSet)
        if sync.writesOutputs {
            try writeSplitManifest(
                split.manifest(), selection: split.selection, to: output.appendingPathComponent("manifest.jsonl").path)
        }
        manifestHash = try Datasets.manifestHash(split.manifest())
    }

    /// Trains and writes the outputs; with a store, inside a recorded run of kind `train` whose
    /// configuration is `spec`: per-epoch and test metrics, alarms, the privacy spent, and the
    /// model and reference statistics as artifacts (what `models register` takes).
    public func run(
        store: RunStore? = nil, commandLine: [String] = CommandLine.arguments,
        progress: (TrainingEvent) -> Void = { _ in }
    ) throws -> ClassifierRunResult {
        guard let store, sync.writesOutputs else { return try run(recorder: nil, progress) }
        return try RunRecorder.recording(
            store: store, kind: .train, config: spec, commandLine: commandLine,
            dataManifestHash: manifestHash, seed: spec.training.seed
        ) {
            try run(recorder: $0, progress)
        }
    }

    func run(recorder: RunRecorder?, _ progress: (TrainingEvent) -> Void) throws -> ClassifierRunResult {
        let images = split.images
        let config = try ClassifierConfig(
            arch: spec.arch, imageSize: spec.imageSize, channels: images.channels,
            classes: images.classNames.count)
        let start = Date()
        let train = split.subset(.train)
        let result = try trainAndEvaluate(
            train: train, val: split.subset(.val), test: split.subset(.test), config: config, options: spec.training,
            preprocessing: Preprocessing(imageSize: spec.imageSize, channels: images.channels),
            data: DataProvenance(
                path: spec.data, testPath: spec.test, splitRatio: spec.splitRatio, splitSeed: spec.splitSeed,
                selection: spec.selection),
            checkpoint: modelURL, sync: sync, progress: progress)
        let summary = ClassifierRunSummary(
            test: result.test, baseline: result.baseline, bestEpoch: result.history.bestEpoch,
            validation: result.metadata.validation, seconds: Date().timeIntervalSince(start))
        guard sync.writesOutputs else { return ClassifierRunResult(training: result, summary: summary, runID: nil) }
        try writeJSON(result.history, to: output.appendingPathComponent("history.json"))
        try writeJSON(summary, to: output.appendingPathComponent("metrics.json"))
        let stats = ReferenceStats(pixels: train.pixels, count: train.count, labels: train.labels, classNames: train.classNames)
        let statsURL = output.appendingPathComponent("reference.json")
        try writeJSON(stats, to: statsURL)
        if let recorder {
            for r in result.history.epochs {
                try recorder.log(
                    [
                        "train.loss": r.trainLoss, "train.accuracy": r.trainAccuracy, "val.loss": r.valLoss,
                        "val.accuracy": r.valAccuracy, "val.macro_f1": r.valMacroF1,
                    ], step: r.epoch)
            }
            var test = [
                "test.accuracy": result.test.accuracy, "test.balanced_accuracy": result.test.balancedAccuracy,
                "test.macro_f1": result.test.macroF1,
            ]
            test["test.macro_auc"] = result.test.macroAUC
            test["privacy.epsilon"] = result.history.privacyEpsilon
            try recorder.log(test, step: result.history.bestEpoch)
            for alarm in result.test.alarms { try recorder.alarm(alarm) }
            try recorder.artifact(path: modelURL.path, kind: "model")
            try recorder.artifact(path: statsURL.path, kind: "reference-stats")
        }
        return ClassifierRunResult(training: result, summary: summary, runID: recorder?.runID)
    }
}

/// Pretty, sorted-key JSON written atomically.
func writeJSON(_ value: some Encodable, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try AtomicFile.write(try encoder.encode(value), to: url.path)
}

extension ClassifierRunSpec {
    /// Why this run cannot train over `sync`'s ranks, or nil: DP-SGD does not run data-parallel,
    /// and every rank needs at least 2 images of each batch (batch norm). Asked before any file
    /// is written (`ClassificationTrainer` refuses the same, later).
    public func dataParallelRefusal(_ sync: GradientSync) -> String? {
        guard sync.isDataParallel else { return nil }
        if training.privacy != nil {
            return "DP-SGD does not run data-parallel over \(sync.size) MPI ranks: "
                + "train a private classifier as one process (without mpirun)"
        }
        if training.batchSize < 2 * sync.size {
            return "batch size \(training.batchSize) over \(sync.size) ranks: "
                + "every rank needs at least 2 images of each batch (batch norm)"
        }
        return nil
    }
}
