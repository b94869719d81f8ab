import ArgumentParser
import Classification
import Datasets
import Foundation
import Tracking
import Evaluation
import SeededRandom

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
    @Option(help: "Learning-rate schedule: constant, or cosine (to lr/100 at the last epoch).") var lrSchedule: ScheduleName = .constant
    @Flag(help: "Weight the loss by inverse class frequency.") var classWeights = false
    @Option(help: Ranges.labelSmoothing.help("Label smoothing.")) var labelSmoothing: Float = 0
    @Flag(help: "Draw class-balanced batches.") var oversample = false
    @Flag(help: "Classic augmentation (flip, rotation, shift, zoom, brightness, contrast).") var augment = false
    @Option(help: Ranges.patience.help("Epochs without a better validation score before stopping.")) var patience = 8
    @Option(help: "Early-stopping score: macro-f1 or balanced-accuracy.") var monitor: Monitor = .macroF1
    @Option(help: "train:val:test ratio for data without its own splits.") var ratio = "8:1:1"
    @Option(help: "Seeds the split, the weights and the batches.") var seed: UInt64 = 0
    @Option(help: "Output folder: model.safetensors, history.json, metrics.json, manifest.jsonl (every image with its split).") var out: String
    @OptionGroup var tracking: TrackingOptions
    @OptionGroup var limits: DataCommand.ReadLimits
    @Option(help: Ranges.noiseMultiplier.help(
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
        try Ranges.noiseMultiplier.check(dpNoiseMultiplier, "--dp-noise-multiplier"); try Ranges.epsilon.check(dpEpsilon, "--dp-epsilon")
        try Ranges.maxGradNorm.check(dpMaxGradNorm, "--dp-max-grad-norm"); try Ranges.delta.check(dpDelta, "--dp-delta")
        _ = try SplitRatio(parsing: ratio)
    }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        try tracking.refuseOverwritingRegistered(outURL.appendingPathComponent("model.safetensors").path)
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        let dataPath = try dryRun ? writeFakeData(in: outURL.appendingPathComponent("dry-run-data")) : data!
        let preprocessing = Preprocessing(imageSize: imageSize, channels: channels, scaling: .unit)
        let classSelection = try selection.selection(seed: seed)
        let dataset = try loadDataset(at: dataPath, options: LoadOptions(preprocessing: preprocessing, selection: classSelection,
                                                                         maxReadBytes: limits.maxReadBytes))
        var testSelection = classSelection
        testSelection?.caps = []                  // an explicit test set keeps every image of the selected classes
        let testSet = try test.map {
            try loadDataset(at: $0, options: LoadOptions(preprocessing: preprocessing, selection: testSelection,
                                                         maxReadBytes: limits.maxReadBytes))
        }
        ProgressLine().noteLoadProblems(dataset)
        if let testSet { ProgressLine().noteLoadProblems(testSet) }
        let splitRatio = try SplitRatio(parsing: ratio)
        let split = try makeSplits(dataset, ratio: splitRatio, seed: seed, explicitTest: testSet)
        try writeSplitManifest(split, to: outURL.appendingPathComponent("manifest.jsonl").path)
        let images = split.images
        let config = try ClassifierConfig(arch: arch, imageSize: imageSize, channels: images.channels,
                                          classes: images.classNames.count)
        var options = TrainingOptions()
        options.epochs = dryRun ? 2 : epochs; options.batchSize = dryRun ? 8 : batchSize
        options.learningRate = lr; options.schedule = lrSchedule.schedule(epochs: epochs, learningRate: lr); options.classWeights = classWeights; options.labelSmoothing = labelSmoothing
        options.oversample = oversample; options.augmentation = augment ? AugmentationOptions() : nil
        options.patience = patience; options.monitor = monitor; options.seed = seed
        if dpNoiseMultiplier != nil || dpEpsilon != nil {
            guard dpNoiseMultiplier == nil || dpEpsilon == nil else { throw ValidationError("use either --dp-noise-multiplier or --dp-epsilon") }
            let n = split.indices(of: .train).count
            options.privacy = PrivateTrainingOptions(noiseMultiplier: dpNoiseMultiplier, targetEpsilon: dpEpsilon, maxGradNorm: dpMaxGradNorm,
                                             delta: dpDelta ?? min(1e-5, 0.1 / Double(n)))
        }

        var progress = ProgressLine()
        let counts = Split.allCases.map { "\($0.rawValue) \(split.indices(of: $0).count)" }.joined(separator: ", ")
        progress.note("\(arch.rawValue) on \(dataPath): \(images.classNames.count) classes, \(counts), "
                      + "\(images.channels)x\(imageSize)x\(imageSize)")
        split.warnings.prefix(5).forEach { progress.note("warning: \($0)") }
        // The run is recorded (config, code version, data manifest, metrics, artifacts) so that
        // `models register RUN` can version it; the last line names it for retrain commands.
        let runID = try tracking.record(kind: .train, config: options, dataManifestHash: try manifestHash(split.manifest()),
                                        seed: seed) { recorder -> String? in
        let start = Date()
        let result = try trainAndEvaluate(
            train: split.subset(.train), val: split.subset(.val), test: split.subset(.test), config: config, options: options, preprocessing: Preprocessing(imageSize: imageSize, channels: images.channels),
            data: DataProvenance(path: dataPath, testPath: test, splitRatio: splitRatio, splitSeed: seed, selection: classSelection),
            checkpoint: outURL.appendingPathComponent("model.safetensors")) { event in
                switch event {
                case let .batch(epoch, batch, batches, loss):
                    progress.update(fraction: (Double(epoch) + Double(batch) / Double(batches)) / Double(options.epochs),
                                    String(format: "epoch %d/%d batch %d/%d loss %.4f", epoch + 1, options.epochs, batch, batches, loss))
                case let .epoch(r, improved):
                    progress.note(String(format: "epoch %2d  train loss %.4f acc %.3f | val loss %.4f acc %.3f macro-F1 %.3f bal-acc %.3f  %.1fs%@",
                                         r.epoch + 1, r.trainLoss, r.trainAccuracy, r.valLoss, r.valAccuracy, r.valMacroF1,
                                         r.valBalancedAccuracy, r.seconds, improved ? "  *" : ""))
                case let .earlyStop(epoch, best):
                    progress.note("early stop after epoch \(epoch + 1): no better \(monitor.rawValue) since epoch \(best + 1)")
                }
            }
        progress.finish()
        let seconds = Date().timeIntervalSince(start)
        let summary = RunSummary(test: result.test, baseline: result.baseline, bestEpoch: result.history.bestEpoch,
                                 validation: result.metadata.validation, seconds: seconds)
        try writeJSON(result.history, to: outURL.appendingPathComponent("history.json"))
        try writeJSON(summary, to: outURL.appendingPathComponent("metrics.json"))
        let title = "test split, best epoch \(result.history.bestEpoch + 1), trained in \(formatDuration(seconds))"
        report(result.test, baseline: result.baseline, title: title, json: json, jsonValue: summary)
        progress.note("wrote \(outURL.path)/model.safetensors, history.json, metrics.json, manifest.jsonl")
        for r in result.history.epochs {
            try recorder?.log(["train.loss": r.trainLoss, "train.accuracy": r.trainAccuracy, "val.loss": r.valLoss,
                               "val.accuracy": r.valAccuracy, "val.macro_f1": r.valMacroF1], step: r.epoch)
        }
        var testMetrics = ["test.accuracy": result.test.accuracy, "test.balanced_accuracy": result.test.balancedAccuracy,
                           "test.macro_f1": result.test.macroF1]
        testMetrics["test.macro_auc"] = result.test.macroAUC
        try recorder?.log(testMetrics, step: result.history.bestEpoch)
        for alarm in result.test.alarms { try recorder?.alarm(alarm) }
        if let epsilon = result.history.privacyEpsilon, let delta = result.history.privacyDelta {
            progress.note(String(format: "differential privacy: epsilon %.3f at delta %.3g (noise multiplier %.4g, clip %.3g)",
                                 epsilon, delta, result.history.noiseMultiplier ?? 0, dpMaxGradNorm))
            try recorder?.log(["privacy.epsilon": epsilon], step: result.history.bestEpoch)
        }
        let train = split.subset(.train)
        let stats = ReferenceStats(pixels: train.pixels, count: train.count, labels: train.labels, classNames: train.classNames)
        let statsPath = outURL.appendingPathComponent("reference.json").path
        try writeFileAtomically(Array(try JSONEncoder().encode(stats)), to: statsPath)
        _ = try recorder?.artifact(path: outURL.appendingPathComponent("model.safetensors").path, kind: "model")
        _ = try recorder?.artifact(path: statsPath, kind: "reference-stats")
        return recorder?.runID
        }
        if let runID, !json { print("MEDSYNTH_RUN_ID=\(runID)") }
    }

    /// Two classes of 16 PNGs each (dark and bright noise), 28 px gray, as a class-folder tree.
    func writeFakeData(in dir: URL) throws -> String {
        var g = SeededGenerator(seed: seed)
        for (k, name) in ["dark", "bright"].enumerated() {
            let classDir = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: classDir, withIntermediateDirectories: true)
            for i in 0..<16 {
                let pixels = (0..<(28 * 28)).map { _ in UInt8(min(255, Float(k * 120) + g.uniform() * 120)) }
                try writePNG(to: classDir.appendingPathComponent("\(i).png").path, pixels: pixels, width: 28, height: 28, channels: 1)
            }
        }
        return dir.path
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
        let predictor = try Predictor(checkpoint: URL(fileURLWithPath: model))
        let m = predictor.metadata
        // The model's own class selection when it was trained with one (caps only on its training data).
        let selection = m.data?.selection
        var testSelection = selection
        testSelection?.caps = []
        let options = selection == nil ? LoadOptions(preprocessing: m.preprocessing, classes: m.classNames)
                                       : LoadOptions(preprocessing: m.preprocessing, selection: selection)
        let testOptions = selection == nil ? options : LoadOptions(preprocessing: m.preprocessing, selection: testSelection)
        let set: LabeledImages
        if let test {
            set = try loadDataset(at: test, options: testOptions).images
        } else {
            guard let provenance = m.data else { throw ValidationError("\(model) does not record its split; use --test") }
            let explicitTest = try provenance.testPath.map { try loadDataset(at: $0, options: testOptions) }
            let split = try makeSplits(loadDataset(at: data!, options: options), ratio: provenance.splitRatio,
                                             seed: provenance.splitSeed, explicitTest: explicitTest)
            set = split.subset(.test)
        }
        let r = try predictor.evaluate(set)
        report(r, baseline: nil, title: "\(set.count) test images, \(m.config.arch.rawValue) \(model)", json: json, jsonValue: r)
    }
}

/// What `metrics.json` holds.
struct RunSummary: Codable {
    var test: EvaluationReport
    var baseline: EvaluationReport
    var bestEpoch: Int
    var validation: EvaluationReport?
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case test, baseline = "majority_baseline", bestEpoch = "best_epoch", validation, seconds
    }
}

extension Architecture: ExpressibleByArgument {}
extension Monitor: ExpressibleByArgument {}
extension ScheduleName: ExpressibleByArgument {}

func writeJSON(_ value: some Encodable, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeFileAtomically(try encoder.encode(value), to: url.path)
}

/// Prints a report: JSON on standard output, or a per-class table; alarms go to standard error, loudly.
func report(_ r: EvaluationReport, baseline: EvaluationReport?, title: String, json: Bool, jsonValue: some Encodable) {
    for alarm in r.alarms {
        FileHandle.standardError.write(Data("!!! ALARM: \(alarm.uppercased()) !!!\n".utf8))
    }
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: (try? encoder.encode(jsonValue)) ?? Data(), as: UTF8.self))
        return
    }
    func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "  -  " }
    let width = max(10, (r.classNames.map(\.count).max() ?? 0) + 2)
    func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
    print(title)
    print(pad("class", width) + "precision  recall      f1     auc  support")
    for name in r.classNames {
        let c = r.perClass[name]!
        print(pad(name, width) + "    \(f(c.precision))   \(f(c.recall))   \(f(c.f1))   \(f(c.auc))  " + String(format: "%7d", c.support))
    }
    print("accuracy \(f(r.accuracy))  balanced accuracy \(f(r.balancedAccuracy))  macro-F1 \(f(r.macroF1))  "
          + "macro AUC \(f(r.macroAUC))  loss \(f(r.loss))  min recall \(f(r.minimumRecall))")
    if let b = baseline {
        print("majority baseline: accuracy \(f(b.accuracy))  balanced accuracy \(f(b.balancedAccuracy))  macro-F1 \(f(b.macroF1))")
    }
    print("confusion matrix (rows true, columns predicted): \(r.confusionMatrix)")
}
