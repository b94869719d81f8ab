import ArgumentParser
import Classification
import Cluster
import Experiments
import Foundation
import Workflows

extension Arm: ExpressibleByArgument {
    /// An arm name as `Arm(parsing:)` reads it (e.g. `cdcgan+filter`, `dcgan@0.5`).
    public init?(argument: String) { try? self.init(parsing: argument) }
}

/// `experiment`'s options (named so as not to clash with the library's `ExperimentOptions`).
public struct ExperimentCommandOptions: ParsableArguments {
    @Option(help: "Class-folder tree or MedMNIST .npz.") public var data: String
    @Option(help: "An explicit test set (folder tree or .npz with test_* arrays).") public var test: String?
    @Option(
        help: ArgumentHelp(
            "Comma-separated arms: original, augment, weighted, oversample, dcgan[@R], cdcgan[@R], diffusion[@R], synthetic-only, and joins with + of filter, pretrain, augment, weighted, oversample (e.g. cdcgan+filter, diffusion+filter).",
            valueName: "arms")) public var arms = Arm.defaults.map(\.name).joined(separator: ",")
    @Option(help: "Number of seeds (0, 1, ...), 1...100; each retrains every generator and classifier.") public var seeds = 3
    @Option(help: "Image side length, 8...256.") public var imageSize = 28
    @Option(help: "Channels, 1 or 3 (default: as stored).") public var channels: Int?
    @Option(help: "paper-cnn or resnet.") public var arch: Architecture = .resnet
    @Option(help: "Classifier epochs, 1...10000 (early stopping on validation macro-F1).") public var epochs = 30
    @Option(help: "Classifier batch size, 2...4096.") public var batchSize = 64
    @Option(help: "Classifier learning rate, (0, 1).") public var lr: Float = 1e-3
    @Option(help: "Classifier learning-rate schedule: constant, or cosine (to lr/100 at the last epoch).")
    public var lrSchedule: ScheduleName = .constant
    @Option(help: "Epochs without improvement before stopping, 1...10000.") public var patience = 8
    @Option(help: "Training steps per GAN, 1...1000000.") public var ganSteps = 600
    @Option(help: "GAN width (ngf = ndf), 4...512.") public var ganWidth = 32
    @Option(help: Ranges.generatorSteps.help("Diffusion arms: training steps of the conditional diffusion model."))
    public var diffusionSteps = 2000
    @Option(help: Ranges.diffusionBatchSize.help("Diffusion arms: images per training step."))
    public var diffusionBatchSize = 32
    @Option(help: Ranges.diffusionWidth.help("Diffusion arms: U-Net base width, a multiple of 8.")) public var diffusionWidth = 32
    @Option(help: Ranges.samplingSteps.help("Diffusion arms: DDIM steps per synthetic image."))
    public var diffusionSamplingSteps = 25
    @Option(help: Ranges.guidanceScale.help("Diffusion arms: classifier-free guidance scale (1 = none)."))
    public var guidanceScale: Float = 2
    @Option(help: "At most this many synthetic images per real image of a class, (0, 1000].")
    public var maxSyntheticRatio: Double?
    @Option(
        help: "Also run --sweep-arm capped at each of these synthetic-per-real ratios (comma-separated), reported as a curve.")
    public var ratioSweep: String?
    @Option(help: "The arm the ratio sweep varies (a dcgan, cdcgan or diffusion arm).") public var sweepArm: Arm = "cdcgan"
    @Option(
        help: "Filter: keep a synthetic image when p(class) reaches this quantile of p(class) on real validation images, [0, 1].")
    public var filterQuantile = 0.25
    @Option(help: "Filter: candidates generated per image wanted, 1...20.") public var filterCandidates = 3
    @Option(help: "Pre-trained arms: fine-tuning learning rate on real images, (0, 1).") public var fineTuneLr: Float = 1e-4
    @Option(help: "Bootstrap resamples, 200...100000.") public var resamples = 2000
    @Option(help: "Familywise error rate of the Holm-corrected comparisons, [0.001, 0.5].") public var alpha = 0.05
    @Flag(help: "Skip the generator audit (KID, FD, PRDC, copies).") public var noAudit = false
    @Option public var splitSeed: UInt64 = 0
    @Flag(help: "Split an npz's images anew 8:1:1 instead of keeping its own train/val arrays.") public var resplit = false
    @Option(help: "Output folder: report.json, report.md, report.html, models, generators. Re-running on it resumes.")
    public var out: String
    @Option(
        help: Ranges.jobs.help(
            "Worker processes that train cells at once, each with cores/jobs threads "
                + "(2 on 2 cores: small models use two cores better as two one-thread processes)."))
    public var jobs = 1
    @Flag(help: .hidden) public var worker = false
    @OptionGroup public var selection: ClassSelectionOptions
    @OptionGroup public var tracking: TrackingOptions

    public init() {}

    /// Every range is checked before any work (`ExperimentOptions.validate`, no data is read).
    public func validate() throws {
        try Ranges.jobs.check(jobs, "--jobs")
        _ = try experimentOptions()
    }

    /// The arguments of a worker process: this command's own, without `--jobs`, with `--worker`.
    public static func workerArguments(_ arguments: [String]) -> [String] {
        var out: [String] = [], skipNext = false
        for a in arguments {
            if skipNext { skipNext = false; continue }
            if a == "--jobs" { skipNext = true; continue }
            if a.hasPrefix("--jobs=") { continue }
            out.append(a)
        }
        return out + ["--worker"]
    }

    /// The options as the library takes them; every range is checked by `ExperimentOptions.validate`.
    public func experimentOptions() throws -> ExperimentOptions {
        var o = ExperimentOptions(data: data, output: URL(fileURLWithPath: out))
        o.test = test
        o.selection = try selection.selection(seed: splitSeed)
        o.arms = try arms.split(separator: ",").map { try Arm(parsing: String($0)) }
        guard (1...100).contains(seeds) else { throw ValidationError("--seeds \(seeds): must be in 1...100") }
        o.seeds = (0..<UInt64(seeds)).map { $0 }
        o.imageSize = imageSize; o.channels = channels
        if let c = channels, c != 1 && c != 3 { throw ValidationError("--channels \(c): must be 1 or 3") }
        o.arch = arch
        o.classifier.epochs = epochs; o.classifier.batchSize = batchSize; o.classifier.patience = patience
        o.classifier.learningRate = lr
        o.classifier.schedule = lrSchedule.schedule(epochs: epochs, learningRate: lr)
        o.ganSteps = ganSteps; o.ganWidth = ganWidth; o.maxSyntheticRatio = maxSyntheticRatio; o.splitSeed = splitSeed
        try Ranges.generatorSteps.check(diffusionSteps, "--diffusion-steps")
        try Ranges.diffusionBatchSize.check(diffusionBatchSize, "--diffusion-batch-size")
        try Ranges.diffusionWidth.check(diffusionWidth, "--diffusion-width")
        try Ranges.samplingSteps.check(diffusionSamplingSteps, "--diffusion-sampling-steps")
        try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
        o.diffusionSteps = diffusionSteps; o.diffusionBatchSize = diffusionBatchSize; o.diffusionWidth = diffusionWidth
        o.diffusionSamplingSteps = diffusionSamplingSteps; o.guidanceScale = guidanceScale
        o.resplit = resplit
        o.ratioSweep = try (ratioSweep ?? "").split(separator: ",").map {
            guard let r = Double($0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--ratio-sweep: \"\($0)\" is not a number")
            }
            return r
        }
        o.sweepArm = sweepArm
        o.filterQuantile = filterQuantile; o.filterCandidates = filterCandidates; o.fineTuneLearningRate = fineTuneLr
        o.resamples = resamples; o.alpha = alpha; o.audit = !noAudit
        try o.validate()
        return o
    }

    /// Runs the experiment in this process's role: one of several MPI ranks, a `--jobs` worker
    /// (lines only), or the coordinator of `--jobs` workers. `arguments` are the command line's
    /// (without the program), `line` gets workers' and ranks' log lines; returns the outcome to
    /// report (nil on a worker and on ranks other than 0).
    public func run(arguments: [String], line: (String) -> Void, _ observe: (WorkflowEvent) -> Void) throws
        -> ExperimentOutcome?
    {
        if Ranks.size > 1 && (jobs > 1 || worker) {
            throw ValidationError(
                "--jobs \(jobs) under mpirun: each of the \(Ranks.size) ranks is one worker already; leave --jobs out")
        }
        let experiment = try Experiment(options: experimentOptions())
        if Ranks.size > 1 {
            return try experiment.runOverRanks(
                store: Ranks.rank == 0 ? tracking.storeUnlessNoTrack() : nil, line: line, report: observe)
        }
        if worker { try experiment.runAsWorker(line); return nil }
        return try experiment.runShowingProgress(
            store: tracking.storeUnlessNoTrack(), jobs: jobs, workerArguments: Self.workerArguments(arguments), report: observe)
    }
}

/// `reproduce paper`'s options.
public struct PaperOptions: ParsableArguments {
    @Option(help: "Output folder: report.html, report.md, report.json, GAN grids.") public var out: String
    @Flag(help: "The full setting: 3,000 GAN steps per class, 50 classifier epochs.") public var full = false
    @Option(help: "Folder holding pneumoniamnist/ and dermamnist-jpeg/.") public var dataRoot = "../shared/data"
    @Option(help: "Datasets to run, comma-separated: pneumonia, skin.") public var datasets = "pneumonia,skin"
    @Option(help: "Seeds the subsample and the split.") public var seed: UInt64 = 0
    @Option(help: "Override the GAN steps per class.") public var ganSteps: Int?
    @Option(help: "Override the classifier epochs.") public var epochs: Int?
    @Flag(help: "Skip the experiment's arms beside the replica (the fixes).") public var noFixes = false
    @Option(help: Ranges.seeds.help("Seeds of the fixes.")) public var fixesSeeds = 3
    @Option(help: "Arms of the fixes, comma-separated (see `medsynth experiment --help`).")
    public var fixesArms = PaperFixes().arms.map(\.name).joined(separator: ",")
    @Option(
        help: Ranges.jobs.help(
            "Worker processes that train the replicas and the fixes' generators and cells at once, each with "
                + "cores/jobs threads (2 on 2 cores)."))
    public var jobs = 1
    @Flag(help: .hidden) public var worker = false

    public init() {}

    public func validate() throws {
        try Ranges.jobs.check(jobs, "--jobs")
        try Ranges.seeds.check(fixesSeeds, "--fixes-seeds")
        try Ranges.steps.check(ganSteps, "--gan-steps"); try Ranges.epochs.check(epochs, "--epochs")
        _ = try spec()
    }

    /// The run as the library takes it; refuses an unknown dataset or arm.
    public func spec() throws -> PaperRunSpec {
        var spec = PaperRunSpec(dataRoot: dataRoot)
        spec.full = full; spec.seed = seed
        spec.datasets = try refusedAsInvalid { try PaperDatasetName.parseList(datasets) }
        spec.ganSteps = ganSteps; spec.epochs = epochs; spec.fixesSeeds = fixesSeeds
        spec.fixesArms = noFixes ? nil : try fixesArms.split(separator: ",").map { try Arm(parsing: String($0)) }
        return spec
    }

    /// Runs the replica and the fixes (or, with `--worker`, a worker's share, lines only); returns
    /// the report to print (nil on a worker).
    public func run(arguments: [String], line: (String) -> Void, _ observe: (WorkflowEvent) -> Void) throws
        -> PaperReport?
    {
        if worker { try spec().work(output: URL(fileURLWithPath: out), line); return nil }
        return try spec().run(
            output: URL(fileURLWithPath: out), jobs: jobs,
            workerArguments: ExperimentCommandOptions.workerArguments(arguments), report: observe)
    }
}
