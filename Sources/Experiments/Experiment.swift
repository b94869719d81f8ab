import AtomicIO
import Classification
import Datasets
import Evaluation
import Foundation
import GAN
import Kernels

/// Everything an experiment needs to know.
///
/// Codable: a run store records the options whole as the experiment run's configuration, so a
/// run can be repeated from `medsynth runs show`.
public struct ExperimentOptions: Codable, Equatable, Sendable {
    public var data: String
    public var test: String?
    /// Classes kept, merged or subsampled while loading (nil: every class as stored).
    public var selection: ClassSelection? = nil
    public var arms: [Arm] = Arm.defaults
    /// Every seed retrains everything random in an arm: its generators, the synthetic images and the classifier.
    public var seeds: [UInt64] = [0, 1, 2]
    public var imageSize = 28
    public var channels: Int? = nil
    public var classifier = TrainingOptions()
    public var arch: Architecture = .resnet
    public var splitRatio: SplitRatio = .standard
    /// Seed of the train/val/test split, fixed across seeds so every arm is tested on the same images.
    public var splitSeed: UInt64 = 0
    /// Split an npz's images anew with `splitRatio` instead of keeping its own train/val arrays.
    public var resplit = false
    /// GAN training steps per model (1...1,000,000), batch size, width (ngf = ndf).
    public var ganSteps = 600
    public var ganBatchSize = 64
    public var ganWidth = 32
    /// Diffusion arms: training steps (1...1,000,000), batch size and base width of the class-conditional
    /// U-Net, DDIM steps when sampling (1...1000) and the classifier-free guidance scale (0...20).
    public var diffusionSteps = 2000
    public var diffusionBatchSize = 32
    public var diffusionWidth = 32
    public var diffusionSamplingSteps = 25
    public var guidanceScale: Float = 2
    /// Cap synthetic images of a class at this multiple of its real images (nil: up to the majority count).
    public var maxSyntheticRatio: Double? = nil
    /// Also run `sweepArm` capped at each of these synthetic-per-real ratios; reported as a curve.
    public var ratioSweep: [Double] = []
    public var sweepArm: Arm = "cdcgan"
    /// Filtered synthesis: a synthetic image of class c is kept when the real-data classifier gives
    /// it p(c) at least the `filterQuantile`-quantile of p(c) over the real validation images of c (0...1).
    public var filterQuantile = 0.25
    /// Filtered synthesis: candidates generated per synthetic image wanted (1...20).
    public var filterCandidates = 3
    /// Pre-trained arms: learning rate of the fine-tuning on real images only.
    public var fineTuneLearningRate: Float = 1e-4
    /// Bootstrap resamples (200...100,000) and the familywise error rate of the comparisons (0.001...0.5).
    public var resamples = 2000
    public var alpha = 0.05
    /// Audit each generator of the first seed on every minority class (KID, FD, PRDC, copies).
    public var audit = true
    public var output: URL

    public init(data: String, output: URL) { self.data = data; self.output = output }

    /// Every arm run: the named ones, then the ratio sweep.
    public var allArms: [Arm] {
        var all = arms
        for r in ratioSweep {
            var a = sweepArm
            a.ratio = r
            if !all.contains(a) { all.append(a) }
        }
        return all
    }

    /// Checks every number against its documented range before any work.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any, _ range: String) throws {
            guard ok else { throw ExperimentError.invalidOption(name: name, value: "\(value)", reason: "must be in \(range)") }
        }
        try check(!seeds.isEmpty && seeds.count <= 100, "seeds", seeds.count, "1...100")
        try check((8...256).contains(imageSize), "image-size", imageSize, "8...256")
        try check((1...1_000_000).contains(ganSteps), "gan-steps", ganSteps, "1...1000000")
        try check((2...1024).contains(ganBatchSize), "gan-batch-size", ganBatchSize, "2...1024")
        try check((4...512).contains(ganWidth), "gan-width", ganWidth, "4...512")
        try check((1...1_000_000).contains(diffusionSteps), "diffusion-steps", diffusionSteps, "1...1000000")
        try check((1...1024).contains(diffusionBatchSize), "diffusion-batch-size", diffusionBatchSize, "1...1024")
        try check(
            (8...512).contains(diffusionWidth) && diffusionWidth % 8 == 0, "diffusion-width", diffusionWidth,
            "multiples of 8 in 8...512")
        try check((1...1000).contains(diffusionSamplingSteps), "diffusion-sampling-steps", diffusionSamplingSteps, "1...1000")
        try check(guidanceScale.isFinite && guidanceScale >= 0 && guidanceScale <= 20, "guidance-scale", guidanceScale, "[0, 20]")
        if allArms.contains(where: { $0.generator == .diffusion }) {
            try check([28, 32, 64].contains(imageSize), "image-size", imageSize, "28, 32 or 64 with diffusion arms")
        }
        try check(
            maxSyntheticRatio.map { $0.isFinite && $0 > 0 && $0 <= 1000 } ?? true, "max-synthetic-ratio",
            maxSyntheticRatio ?? 0, "(0, 1000]")
        for r in ratioSweep { try check(r.isFinite && r > 0 && r <= 1000, "ratio-sweep", r, "(0, 1000]") }
        try check(sweepArm.isGenerative && !sweepArm.syntheticOnly, "sweep-arm", sweepArm, "arms with dcgan, cdcgan or diffusion")
        try check(filterQuantile >= 0 && filterQuantile <= 1, "filter-quantile", filterQuantile, "[0, 1]")
        try check((1...20).contains(filterCandidates), "filter-candidates", filterCandidates, "1...20")
        try check(
            fineTuneLearningRate.isFinite && fineTuneLearningRate > 0 && fineTuneLearningRate < 1, "fine-tune-lr",
            fineTuneLearningRate, "(0, 1)")
        try check((200...100_000).contains(resamples), "resamples", resamples, "200...100000")
        try check(alpha >= 0.001 && alpha <= 0.5, "alpha", alpha, "[0.001, 0.5]")
        try check((1...10_000).contains(classifier.epochs), "epochs", classifier.epochs, "1...10000")
        try check((2...4096).contains(classifier.batchSize), "batch-size", classifier.batchSize, "2...4096")
        try check((1...10_000).contains(classifier.patience), "patience", classifier.patience, "1...10000")
        try check(
            classifier.learningRate.isFinite && classifier.learningRate > 0 && classifier.learningRate < 1, "lr",
            classifier.learningRate, "(0, 1)")
    }
}

/// Progress of an experiment, for the command line to draw.
public enum ExperimentEvent: Sendable {
    case stage(String)
    case ganStep(name: String, step: Int, total: Int, etaSeconds: Double)
    case classifierEpoch(arm: String, seed: UInt64, epoch: Int, maxEpochs: Int, valMacroF1: Double)
    case armFinished(String, balancedAccuracy: Double)
    /// A cell (generator or classifier) found finished on disk and not retrained.
    case resumed(String)
    case alarm(String)
}

/// Runs every arm on the same split, for every seed, and writes report.json, report.md and report.html.
///
/// The work is a grid of cells, each written to disk as it finishes: per seed, the generators
/// (`generators/seed-S/NAME/`), then one classifier per arm (`arms/ARM/seed-S/cell.json` and
/// `model.safetensors`). Run again on the same folder with the same settings and finished cells are
/// read back, not retrained, so an interrupted experiment resumes where it stopped; arms and seeds
/// may be added on a re-run.
public final class Experiment {
    public let options: ExperimentOptions
    /// When the experiment began, if before `run` (worker processes trained its grid first): the
    /// report's time counts from here.
    public var startedAt: Date?
    /// How many MPI ranks trained the grid (1 for one process, with or without `--jobs`); the
    /// report records it as `ranks`.
    public var ranks = 1
    let train: LabeledImages, val: LabeledImages, test: LabeledImages
    let testSource: String
    let splitCounts: [String: [String: Int]]
    let preprocessing: Preprocessing
    var cells: [String: Cell] = [:]
    var generatorCache: [UInt64: Generators] = [:]

    public init(options: ExperimentOptions) throws {
        try options.validate()
        self.options = options
        preprocessing = Preprocessing(imageSize: options.imageSize, channels: options.channels, scaling: .unit)
        let load = LoadOptions(preprocessing: preprocessing, selection: options.selection)
        let dataset = try loadDataset(at: options.data, options: load)
        let explicit = try options.test.map { try loadDataset(at: $0, options: load) }
        let split = try makeSplits(
            dataset, ratio: options.splitRatio, seed: options.splitSeed, resplit: options.resplit,
            explicitTest: explicit)
        train = split.subset(.train); val = split.subset(.val); test = split.subset(.test)
        for (name, set) in [("training", train), ("validation", val), ("test", test)] where set.count == 0 {
            throw ExperimentError.invalidOption(name: "data", value: options.data, reason: "the \(name) split is empty")
        }
        testSource = options.test ?? "test part of a stratified \(options.splitRatio) split, seed \(options.splitSeed)"
        var counts: [String: [String: Int]] = [:]
        for (name, set) in [("train", train), ("val", val), ("test", test)] {
            counts[name] = Dictionary(uniqueKeysWithValues: zip(set.classNames, set.classCounts))
        }
        splitCounts = counts
        var h: UInt64 = 0
        for (name, set) in [("train", train), ("val", val), ("test", test)] {
            for (source, label) in zip(set.sources, set.labels) { h = stableHash("\(h)/\(name)/\(source.location)/\(label)") }
        }
        splitFingerprint = String(h, radix: 16)
        manifest = split.manifest()
        selection = split.selection
        manifestHash = try Datasets.manifestHash(manifest)
    }

    /// Every image with its split (train, val, test), written as `OUT/manifest.jsonl` with the
    /// class selection in `OUT/selection.json`, as `train` writes its own.
    let manifest: [ManifestEntry]
    let selection: ClassSelection?

    /// A hash of every image's split, source and label: resumed cells must have seen the same split.
    let splitFingerprint: String

    /// SHA-256 of the split's manifest (JSON Lines), the data fingerprint a recorded run carries.
    public let manifestHash: String

    /// The real training split, in [0, 1] (for reference statistics).
    public var trainingSplit: LabeledImages { train }

    /// Classes with at most half the majority's training images (else the smallest class).
    var minorityClasses: [String] {
        let counts = train.classCounts, top = counts.max() ?? 0
        let small = train.classNames.indices.filter { Double(counts[$0]) <= 0.5 * Double(top) }
        let chosen = small.isEmpty ? [counts.indices.min { counts[$0] < counts[$1] }!] : small
        return chosen.map { train.classNames[$0] }
    }

    /// The settings that change results (arms and seeds may grow between runs of one folder).
    /// The diffusion settings are among them only when an arm uses diffusion, so folders of
    /// experiments without diffusion arms (and those made before it existed) keep resuming.
    var settings: [String: String] {
        var s = baseSettings
        if options.allArms.contains(where: { $0.generator == .diffusion }) {
            s["diffusion"] =
                "steps \(options.diffusionSteps), batch \(options.diffusionBatchSize), width \(options.diffusionWidth), "
                + "DDIM \(options.diffusionSamplingSteps), guidance \(options.guidanceScale)"
        }
        return s
    }

    private var baseSettings: [String: String] {
        let c = options.classifier
        return [
            "data": options.data, "test": options.test ?? "", "image_size": "\(options.imageSize)",
            "channels": options.channels.map { "\($0)" } ?? "auto", "arch": options.arch.rawValue,
            "classifier_epochs": "\(c.epochs)", "batch_size": "\(c.batchSize)", "learning_rate": "\(c.learningRate)",
            "patience": "\(c.patience)", "early_stopping": c.monitor.rawValue, "label_smoothing": "\(c.labelSmoothing)",
            "gan_steps": "\(options.ganSteps)", "gan_batch_size": "\(options.ganBatchSize)", "gan_width": "\(options.ganWidth)",
            "max_synthetic_ratio": options.maxSyntheticRatio.map { "\($0)" } ?? "none",
            "split": "\(options.splitRatio)\(options.resplit ? " resplit" : "")", "split_seed": "\(options.splitSeed)",
            "filter_quantile": "\(options.filterQuantile)", "filter_candidates": "\(options.filterCandidates)",
            "fine_tune_lr": "\(options.fineTuneLearningRate)",
            "split_fingerprint": splitFingerprint, "selection": options.selection.map { "\($0)" } ?? "",
            "train_images": "\(train.count)", "val_images": "\(val.count)", "test_images": "\(test.count)",
        ]
        // Keys added later appear only when set, so folders of earlier versions still resume.
        .merging(c.schedule.map { ["lr_schedule": "\($0)"] } ?? [:]) { a, _ in a }
        // bf16 convolutions (MEDSYNTH_CONV_PRECISION=bf16) change every number a cell computes, so
        // cells of both kinds never share a folder; f32 folders of earlier versions still resume.
        .merging(ConvPrecision.processDefault == .bf16 ? ["conv_precision": "bf16"] : [:]) { a, _ in a }
    }

    /// Writes `experiment.json` with the settings, or checks that an existing one matches; then
    /// the split's `manifest.jsonl` and `selection.json`.
    func claimOutputFolder() throws {
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        try claimSettings()
        try writeSplitManifest(
            manifest, selection: selection, to: options.output.appendingPathComponent("manifest.jsonl").path)
    }

    func claimSettings() throws {
        let url = options.output.appendingPathComponent("experiment.json")
        if let data = FileManager.default.contents(atPath: url.path) {
            guard let old = try? JSONDecoder().decode([String: String].self, from: data) else {
                throw ExperimentError.settingsChanged(folder: options.output.path, differences: ["unreadable experiment.json"])
            }
            // The diffusion settings are compared only when both runs have diffusion arms: they may
            // join a folder whose earlier runs had none, and a later run may leave those arms out.
            let joining = old["diffusion"] == nil && settings["diffusion"] != nil
            let differences = Set(old.keys).union(settings.keys).sorted().compactMap { key in
                old[key] == settings[key] || (key == "diffusion" && (old[key] == nil || settings[key] == nil))
                    ? nil
                    : "\(key): \(old[key] ?? "unset") -> \(settings[key] ?? "unset")"
            }
            guard differences.isEmpty else {
                throw ExperimentError.settingsChanged(folder: options.output.path, differences: differences)
            }
            guard joining else { return }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(settings)), to: url.path)
    }

    public func run(_ observe: (ExperimentEvent) -> Void = { _ in }) throws -> ExperimentReport {
        let start = startedAt ?? Date()
        try claimOutputFolder()
        var alarms: [String] = []
        let observeAlarms: (ExperimentEvent) -> Void = { event in
            if case .alarm(let text) = event { alarms.append(text) }
            observe(event)
        }
        let arms = options.allArms
        for seed in options.seeds {
            for arm in arms {
                observe(.stage("seed \(seed), arm \(arm.name): \(arm.summary)"))
                _ = try cell(arm, seed: seed, observeAlarms)
            }
            generatorCache[seed] = nil  // one seed's generators in memory at a time
        }
        var audits: [GeneratorAudit] = []
        if options.audit && arms.contains(where: \.isGenerative) {
            observe(.stage("auditing the generators of seed \(options.seeds[0])"))
            audits = try auditGenerators(seed: options.seeds[0], arms: arms, observeAlarms)
        }
        let report = try aggregate(arms: arms, audits: audits, alarms: alarms, seconds: Date().timeIntervalSince(start))
        for arm in report.arms { observe(.armFinished(arm.name, balancedAccuracy: arm.test.balancedAccuracy.mean)) }
        try write(report)
        return report
    }

    func write(_ report: ExperimentReport) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(report)), to: options.output.appendingPathComponent("report.json").path)
        try AtomicFile.write(Array(report.markdown().utf8), to: options.output.appendingPathComponent("report.md").path)
        try AtomicFile.write(Array(report.html().utf8), to: options.output.appendingPathComponent("report.html").path)
    }
}
