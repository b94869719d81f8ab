import Classification
import Datasets
import Foundation
import GAN
import Evaluation

/// The arms of the experiment: one classifier, the same hyperparameters and seeds, different
/// training data or loss.
public enum Arm: String, Codable, CaseIterable, Sendable {
    /// The imbalanced training split as it is.
    case original
    /// Classic augmentation (flips, rotation, shift, zoom, brightness, contrast).
    case augment
    /// Class-weighted cross-entropy (inverse frequency).
    case weighted
    /// Class-balanced batches (oversampling).
    case oversample
    /// Per-class DCGAN images added to every class below the majority count.
    case dcgan
    /// Conditional DCGAN images added to every class below the majority count.
    case cdcgan
    /// Train on conditional-DCGAN images only, test on real (classification accuracy score).
    case syntheticOnly = "synthetic-only"

    public var summary: String {
        switch self {
        case .original: return "the imbalanced training split as it is"
        case .augment: return "classic augmentation on the fly"
        case .weighted: return "class-weighted cross-entropy (inverse frequency)"
        case .oversample: return "class-balanced mini-batches"
        case .dcgan: return "real + per-class DCGAN images up to the majority count"
        case .cdcgan: return "real + conditional DCGAN images up to the majority count"
        case .syntheticOnly: return "conditional DCGAN images only, as many per class as the real split"
        }
    }
}

/// Everything an experiment needs to know.
public struct ExperimentOptions: Sendable {
    public var data: String
    public var test: String?
    public var arms: [Arm] = Arm.allCases
    public var seeds: [UInt64] = [0, 1, 2]
    public var imageSize = 28
    public var channels: Int? = nil
    public var classifier = TrainingOptions()
    public var arch: Architecture = .resnet
    public var splitRatio: SplitRatio = .standard
    /// Seed of the train/val/test split (fixed across seeds, so every arm is tested on the same images).
    public var splitSeed: UInt64 = 0
    /// GAN training steps per model, batch size, width (ngf = ndf).
    public var ganSteps = 1500
    public var ganBatchSize = 64
    public var ganWidth = 64
    /// Cap synthetic images of a class at this multiple of its real images (nil: up to the majority count).
    public var maxSyntheticRatio: Double? = nil
    public var output: URL

    public init(data: String, output: URL) { self.data = data; self.output = output }
}

/// Progress of an experiment, for the command line to draw.
public enum ExperimentEvent: Sendable {
    case stage(String)
    case ganStep(name: String, step: Int, total: Int, etaSeconds: Double)
    case classifierEpoch(arm: String, seed: UInt64, epoch: Int, maxEpochs: Int, valMacroF1: Double)
    case armFinished(String, balancedAccuracy: Double)
    case alarm(String)
}

/// Runs every arm on the same split and seeds and writes report.json, report.md and report.html.
public final class Experiment {
    public let options: ExperimentOptions
    let train: LabeledImages, val: LabeledImages, test: LabeledImages
    let testSource: String
    let splitCounts: [String: [String: Int]]
    let preprocessing: Preprocessing

    public init(options: ExperimentOptions) throws {
        self.options = options
        preprocessing = Preprocessing(imageSize: options.imageSize, channels: options.channels, scaling: .unit)
        let load = LoadOptions(preprocessing: preprocessing)
        let dataset = try loadDataset(at: options.data, options: load)
        let explicit = try options.test.map { try loadDataset(at: $0, options: load) }
        let split = try classifierSplits(dataset, ratio: options.splitRatio, seed: options.splitSeed, explicitTest: explicit)
        train = split.subset(.train); val = split.subset(.val); test = split.subset(.test)
        testSource = options.test ?? "test part of a stratified \(options.splitRatio) split, seed \(options.splitSeed)"
        var counts: [String: [String: Int]] = [:]
        for (name, set) in [("train", train), ("val", val), ("test", test)] {
            counts[name] = Dictionary(uniqueKeysWithValues: zip(set.classNames, set.classCounts))
        }
        splitCounts = counts
    }

    /// Classes with at most half the majority's training images (else the smallest class).
    var minorityClasses: [String] {
        let counts = train.classCounts, top = counts.max() ?? 0
        let small = train.classNames.indices.filter { Double(counts[$0]) <= 0.5 * Double(top) }
        let chosen = small.isEmpty ? [counts.indices.min { counts[$0] < counts[$1] }!] : small
        return chosen.map { train.classNames[$0] }
    }

    public func run(_ observe: (ExperimentEvent) -> Void = { _ in }) throws -> ExperimentReport {
        let start = Date()
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        var generatorAlarms: [String] = []
        let sources = try trainGenerators { event in
            if case .alarm(let text) = event { generatorAlarms.append(text) }
            observe(event)
        }
        var arms: [ArmReport] = []
        var originalPredictions: [ArmPredictions]? = nil
        for arm in options.arms {
            observe(.stage("arm \(arm.rawValue): \(arm.summary)"))
            let (report, predictions) = try runArm(arm, sources: sources, original: originalPredictions, observe)
            if arm == .original { originalPredictions = predictions }
            observe(.armFinished(arm.rawValue, balancedAccuracy: report.test.balancedAccuracy.mean))
            arms.append(report)
        }
        if originalPredictions == nil { observe(.alarm("no `original` arm: differences against it are not reported")) }
        let baseline = try majorityBaseline(trainLabels: train.labels, testLabels: test.labels, classNames: train.classNames)
        var alarms = generatorAlarms
        for arm in arms { alarms += arm.alarms.map { "\(arm.name): \($0)" } }
        let report = ExperimentReport(
            dataset: options.data, testSource: testSource, imageSize: options.imageSize, arch: options.arch.rawValue,
            seeds: options.seeds, classNames: train.classNames, minorityClasses: minorityClasses, splitCounts: splitCounts,
            majorityBaseline: try summarize([baseline]), arms: arms, alarms: alarms, seconds: Date().timeIntervalSince(start),
            settings: settings)
        try write(report)
        return report
    }

    var settings: [String: String] {
        let c = options.classifier
        return ["classifier_epochs": "\(c.epochs)", "batch_size": "\(c.batchSize)", "learning_rate": "\(c.learningRate)",
                "patience": "\(c.patience)", "early_stopping": c.monitor.rawValue, "gan_steps": "\(options.ganSteps)",
                "gan_width": "\(options.ganWidth)", "max_synthetic_ratio": options.maxSyntheticRatio.map { "\($0)" } ?? "none",
                "split_seed": "\(options.splitSeed)"]
    }

    func write(_ report: ExperimentReport) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(Array(try encoder.encode(report)), to: options.output.appendingPathComponent("report.json").path)
        try writeFileAtomically(Array(report.markdown().utf8), to: options.output.appendingPathComponent("report.md").path)
        try writeFileAtomically(Array(report.html().utf8), to: options.output.appendingPathComponent("report.html").path)
    }

    // MARK: Generators

    /// Trained generators by name: one per class below the majority (`dcgan`), one conditional
    /// (`cdcgan`, `synthetic-only`). Trained once (seed 0) and shared by every classifier seed.
    struct Generators {
        var perClass: [SyntheticImageSource] = []
        var conditional: SyntheticImageSource?
        var seconds: [String: Double] = [:]
        var grids: [String: String] = [:]
    }

    func trainGenerators(_ observe: (ExperimentEvent) -> Void) throws -> Generators {
        var g = Generators()
        let counts = train.classCounts, top = counts.max() ?? 0
        if options.arms.contains(.dcgan) {
            for (c, name) in train.classNames.enumerated() where counts[c] < top {
                let subset = train.subset(train.labels.indices.filter { train.labels[$0] == c })
                g.perClass.append(try trainGAN(name: "dcgan-\(name)", images: subset, conditional: false, into: &g, observe))
            }
        }
        if options.arms.contains(.cdcgan) || options.arms.contains(.syntheticOnly) {
            g.conditional = try trainGAN(name: "cdcgan", images: train, conditional: true, into: &g, observe)
        }
        return g
    }

    func trainGAN(name: String, images: LabeledImages, conditional: Bool, into g: inout Generators,
                  _ observe: (ExperimentEvent) -> Void) throws -> SyntheticImageSource {
        observe(.stage("training \(name) on \(images.count) images"))
        let start = Date()
        let config = try DCGANConfig(imageSize: options.imageSize, channels: images.channels, generatorWidth: options.ganWidth,
                                     discriminatorWidth: options.ganWidth, classes: conditional ? images.classNames.count : nil)
        var ganOptions = GANTrainingOptions()
        ganOptions.batchSize = min(options.ganBatchSize, images.count)
        var plan = GANTrainingPlan()
        plan.maxSteps = options.ganSteps
        let stepsPerEpoch = max(1, images.count / ganOptions.batchSize)
        plan.epochs = (options.ganSteps + stepsPerEpoch - 1) / stepsPerEpoch
        plan.gridEvery = max(1, plan.epochs / 4)
        plan.checkpointEvery = options.ganSteps
        let data = GANTrainingData(pixels: images.pixels.map { $0 * 2 - 1 }, count: images.count, channels: images.channels,
                                   size: options.imageSize, labels: conditional ? images.labels : nil,
                                   classNames: conditional ? images.classNames : [images.classNames[images.labels[0]]])
        let dir = options.output.appendingPathComponent("gan").appendingPathComponent(name)
        let trainer = try GANTrainer(model: GANModel(config: config, options: ganOptions, seed: 0), data: data, plan: plan,
                                     outputDirectory: dir)
        try trainer.run { event in
            switch event {
            case let .step(_, _, _, global, total, _, _, eta):
                observe(.ganStep(name: name, step: global, total: total, etaSeconds: eta))
            case let .alarm(text): observe(.alarm("\(name): \(text)"))
            default: break
            }
        }
        g.seconds[name] = Date().timeIntervalSince(start)
        g.grids[name] = dir.appendingPathComponent("grid-final.png").path
        return try SyntheticImageSource(checkpoint: trainer.checkpointURL)
    }

    // MARK: Arms

    /// The training set and options of an arm.
    func armData(_ arm: Arm, _ g: Generators) throws -> (LabeledImages, TrainingOptions, [String: ImageCounts], [String], Double?) {
        var o = options.classifier
        let real = Dictionary(uniqueKeysWithValues: zip(train.classNames, train.classCounts))
        var counts = real.mapValues { ImageCounts(real: $0, synthetic: 0) }
        switch arm {
        case .original: return (train, o, counts, [], nil)
        case .augment: o.augmentation = AugmentationOptions(); return (train, o, counts, [], nil)
        case .weighted: o.classWeights = true; return (train, o, counts, [], nil)
        case .oversample: o.oversample = true; return (train, o, counts, [], nil)
        case .dcgan, .cdcgan:
            let sources = arm == .dcgan ? g.perClass : [g.conditional!]
            var b = BalanceOptions()
            b.maxSyntheticRatio = options.maxSyntheticRatio
            let set = try balanceTrainingSet(train, scaling: .unit, sources: sources, options: b)
            for c in set.perClass { counts[c.className] = ImageCounts(real: c.real, synthetic: c.synthetic) }
            let images = LabeledImages(classNames: set.classNames, channels: set.channels, height: set.size, width: set.size,
                                       pixels: set.pixels, labels: set.labels,
                                       sources: set.realSources.enumerated().map { SampleSource(location: $1 ?? "synthetic #\($0)", sha256: "") })
            let names = arm == .dcgan ? g.perClass.map { "dcgan-\($0.classNames[0])" } : ["cdcgan"]
            return (images, o, counts, names.compactMap { g.grids[$0] }, names.compactMap { g.seconds[$0] }.reduce(0, +))
        case .syntheticOnly:
            let source = g.conditional!
            var pixels: [Float] = [], labels: [Int] = []
            for (c, name) in train.classNames.enumerated() {
                let n = train.classCounts[c]
                pixels += try source.generate(className: name, count: n, seed: 1000 + UInt64(c)).map { ($0 + 1) / 2 }
                labels += Array(repeating: c, count: n)
                counts[name] = ImageCounts(real: 0, synthetic: n)
            }
            let images = LabeledImages(classNames: train.classNames, channels: train.channels, height: train.height,
                                       width: train.width, pixels: pixels, labels: labels,
                                       sources: labels.indices.map { SampleSource(location: "synthetic #\($0)", sha256: "") })
            return (images, o, counts, g.grids["cdcgan"].map { [$0] } ?? [], g.seconds["cdcgan"])
        }
    }

    func runArm(_ arm: Arm, sources g: Generators, original: [ArmPredictions]?, _ observe: (ExperimentEvent) -> Void) throws
        -> (ArmReport, [ArmPredictions]) {
        let (trainSet, trainOptions, counts, grids, synthesisSeconds) = try armData(arm, g)
        let config = try ClassifierConfig(arch: options.arch, imageSize: options.imageSize, channels: train.channels,
                                          classes: train.classNames.count)
        var tests: [EvaluationReport] = [], predictions: [ArmPredictions] = []
        var trainAccuracy: [Double] = [], valAccuracy: [Double] = [], seconds: [Double] = [], curves: [[CurvePoint]] = []
        for seed in options.seeds {
            var o = trainOptions
            o.seed = seed
            let dir = options.output.appendingPathComponent("arms").appendingPathComponent(arm.rawValue)
                .appendingPathComponent("seed-\(seed)")
            let t0 = Date()
            let result = try trainAndEvaluate(train: trainSet, val: val, test: test, config: config, options: o,
                                              preprocessing: preprocessing, data: nil,
                                              checkpoint: dir.appendingPathComponent("model.safetensors")) { event in
                if case let .epoch(record, _) = event {
                    observe(.classifierEpoch(arm: arm.rawValue, seed: seed, epoch: record.epoch, maxEpochs: o.epochs,
                                             valMacroF1: record.valMacroF1))
                }
            }
            seconds.append(Date().timeIntervalSince(t0))
            tests.append(result.test)
            let best = result.history.epochs.first { $0.epoch == result.history.bestEpoch } ?? result.history.epochs.last!
            trainAccuracy.append(best.trainAccuracy); valAccuracy.append(best.valAccuracy)
            curves.append(result.history.epochs.map {
                CurvePoint(epoch: $0.epoch, trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy, valLoss: $0.valLoss,
                           valAccuracy: $0.valAccuracy, valMacroF1: $0.valMacroF1)
            })
            // The best epoch's model, as saved: per-example predictions for the paired bootstrap.
            let p = try Predictor(checkpoint: dir.appendingPathComponent("model.safetensors"))
                .probabilities(pixels: test.pixels, count: test.count)
            predictions.append(ArmPredictions(labels: test.labels, predictions: argmaxRows(p, classCount: train.classNames.count)))
        }
        var report = ArmReport(
            name: arm.rawValue, description: arm.summary, trainImages: counts, test: try summarize(tests),
            trainAccuracy: try Stat(trainAccuracy), valAccuracy: try Stat(valAccuracy),
            confusionMatrix: tests.map(\.confusionMatrix).reduce(into: Array(repeating: Array(repeating: 0, count: train.classNames.count),
                                                                              count: train.classNames.count)) { sum, m in
                for i in m.indices { for j in m[i].indices { sum[i][j] += m[i][j] } }
            },
            trainSeconds: try Stat(seconds), synthesisSeconds: synthesisSeconds, balancedAccuracyVsOriginal: nil,
            minorityRecallVsOriginal: nil, curves: curves, alarms: Array(Set(tests.flatMap(\.alarms))).sorted(), gridPaths: grids)
        if let original, arm != .original {
            let a = pooled(original), b = pooled(predictions), k = train.classNames.count
            let d = try Bootstrap.balancedAccuracyDifference(a, b, classCount: k, seed: 7)
            report.balancedAccuracyVsOriginal = Difference(mean: d.estimate, ci95: [d.lower, d.upper])
            var recall: [String: Difference] = [:]
            for name in minorityClasses {
                let c = train.classNames.firstIndex(of: name)!
                if let r = try? Bootstrap.recallDifference(a, b, classIndex: c, classCount: k, seed: 7) {
                    recall[name] = Difference(mean: r.estimate, ci95: [r.lower, r.upper])
                }
            }
            report.minorityRecallVsOriginal = recall
        }
        return (report, predictions)
    }

    /// All seeds' predictions of the same test set, end to end (pairs stay aligned across arms).
    func pooled(_ p: [ArmPredictions]) -> ArmPredictions {
        ArmPredictions(labels: p.flatMap(\.labels), predictions: p.flatMap(\.predictions))
    }

    /// Mean and spread over seeds of each metric.
    func summarize(_ reports: [EvaluationReport]) throws -> TestMetrics {
        func stat(_ f: (EvaluationReport) -> Double?) throws -> Stat? {
            let v = reports.compactMap(f)
            return v.isEmpty ? nil : try Stat(v)
        }
        var perClass: [String: ClassSummary] = [:]
        for name in reports[0].classNames {
            perClass[name] = ClassSummary(precision: try stat { $0.perClass[name]?.precision }!, recall: try stat { $0.perClass[name]?.recall }!,
                                          f1: try stat { $0.perClass[name]?.f1 }!, auc: try stat { $0.perClass[name]?.auc },
                                          support: reports[0].perClass[name]?.support ?? 0)
        }
        return TestMetrics(accuracy: try stat { $0.accuracy }!, balancedAccuracy: try stat { $0.balancedAccuracy }!,
                           macroF1: try stat { $0.macroF1 }!, macroAUC: try stat { $0.macroAUC }, loss: try stat { $0.loss },
                           perClass: perClass)
    }
}
