import ArgumentParser
import Classification
import Cluster
import Datasets
import Experiments
import Foundation
import Workflows

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract:
            "The paper's experiment done right: every arm with the same classifier and seeds, honest baselines, every class counted."
    )

    @Option(help: "Class-folder tree or MedMNIST .npz.") var data: String
    @Option(help: "An explicit test set (folder tree or .npz with test_* arrays).") var test: String?
    @Option(
        help: ArgumentHelp(
            "Comma-separated arms: original, augment, weighted, oversample, dcgan[@R], cdcgan[@R], diffusion[@R], synthetic-only, and joins with + of filter, pretrain, augment, weighted, oversample (e.g. cdcgan+filter, diffusion+filter).",
            valueName: "arms")) var arms = Arm.defaults.map(\.name).joined(separator: ",")
    @Option(help: "Number of seeds (0, 1, ...), 1...100; each retrains every generator and classifier.") var seeds = 3
    @Option(help: "Image side length, 8...256.") var imageSize = 28
    @Option(help: "Channels, 1 or 3 (default: as stored).") var channels: Int?
    @Option(help: "paper-cnn or resnet.") var arch: Architecture = .resnet
    @Option(help: "Classifier epochs, 1...10000 (early stopping on validation macro-F1).") var epochs = 30
    @Option(help: "Classifier batch size, 2...4096.") var batchSize = 64
    @Option(help: "Classifier learning rate, (0, 1).") var lr: Float = 1e-3
    @Option(help: "Classifier learning-rate schedule: constant, or cosine (to lr/100 at the last epoch).") var lrSchedule:
        ScheduleName = .constant
    @Option(help: "Epochs without improvement before stopping, 1...10000.") var patience = 8
    @Option(help: "Training steps per GAN, 1...1000000.") var ganSteps = 600
    @Option(help: "GAN width (ngf = ndf), 4...512.") var ganWidth = 32
    @Option(help: Ranges.generatorSteps.help("Diffusion arms: training steps of the conditional diffusion model."))
    var diffusionSteps = 2000
    @Option(help: Ranges.diffusionBatchSize.help("Diffusion arms: images per training step.")) var diffusionBatchSize = 32
    @Option(help: Ranges.diffusionWidth.help("Diffusion arms: U-Net base width, a multiple of 8.")) var diffusionWidth = 32
    @Option(help: Ranges.samplingSteps.help("Diffusion arms: DDIM steps per synthetic image.")) var diffusionSamplingSteps = 25
    @Option(help: Ranges.guidanceScale.help("Diffusion arms: classifier-free guidance scale (1 = none).")) var guidanceScale:
        Float = 2
    @Option(help: "At most this many synthetic images per real image of a class, (0, 1000].") var maxSyntheticRatio: Double?
    @Option(
        help: "Also run --sweep-arm capped at each of these synthetic-per-real ratios (comma-separated), reported as a curve.")
    var ratioSweep: String?
    @Option(help: "The arm the ratio sweep varies (a dcgan, cdcgan or diffusion arm).") var sweepArm: Arm = "cdcgan"
    @Option(
        help: "Filter: keep a synthetic image when p(class) reaches this quantile of p(class) on real validation images, [0, 1].")
    var filterQuantile = 0.25
    @Option(help: "Filter: candidates generated per image wanted, 1...20.") var filterCandidates = 3
    @Option(help: "Pre-trained arms: fine-tuning learning rate on real images, (0, 1).") var fineTuneLr: Float = 1e-4
    @Option(help: "Bootstrap resamples, 200...100000.") var resamples = 2000
    @Option(help: "Familywise error rate of the Holm-corrected comparisons, [0.001, 0.5].") var alpha = 0.05
    @Flag(help: "Skip the generator audit (KID, FD, PRDC, copies).") var noAudit = false
    @Option var splitSeed: UInt64 = 0
    @Flag(help: "Split an npz's images anew 8:1:1 instead of keeping its own train/val arrays.") var resplit = false
    @Option(help: "Output folder: report.json, report.md, report.html, models, generators. Re-running on it resumes.") var out:
        String
    @Option(
        help: Ranges.jobs.help(
            "Worker processes that train cells at once, each with cores/jobs threads "
                + "(2 on 2 cores: small models use two cores better as two one-thread processes)."))
    var jobs = 1
    @Flag(help: .hidden) var worker = false
    @OptionGroup var selection: ClassSelectionOptions
    @OptionGroup var tracking: TrackingOptions

    /// Every range is checked before any work (`ExperimentOptions.validate`, no data is read).
    func validate() throws {
        try Ranges.jobs.check(jobs, "--jobs")
        _ = try experimentOptions()
    }

    /// The arguments of a worker process: this command's own, without `--jobs`, with `--worker`.
    static func workerArguments(_ arguments: [String]) -> [String] {
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
    func experimentOptions() throws -> ExperimentOptions {
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

    func run() throws {
        if Ranks.size > 1 && (jobs > 1 || worker) {
            throw ValidationError(
                "--jobs \(jobs) under mpirun: each of the \(Ranks.size) ranks is one worker already; leave --jobs out")
        }
        let experiment = try Experiment(options: experimentOptions())
        if Ranks.size > 1 {
            // Unbuffered lines from every rank (mpirun merges them); rank 0 also shows progress and the report.
            var progress = ProgressLine()
            let outcome = try experiment.runOverRanks(
                store: Ranks.rank == 0 ? tracking.storeUnlessNoTrack() : nil,
                line: { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
            ) { progress.show($0) }
            guard let outcome else { return }
            print(outcome.report.markdown())
            outcome.closingNotes.forEach { progress.note($0) }
            return
        }
        if worker {
            // Unbuffered: the log is read while it runs.
            return try experiment.runAsWorker { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        }
        var progress = ProgressLine()
        let outcome = try experiment.runShowingProgress(
            store: tracking.storeUnlessNoTrack(), jobs: jobs,
            workerArguments: Self.workerArguments(Array(CommandLine.arguments.dropFirst()))
        ) { progress.show($0) }
        print(outcome.report.markdown())
        outcome.closingNotes.forEach { progress.note($0) }
    }
}

extension Arm: ExpressibleByArgument {
    /// An arm name as `Arm(parsing:)` reads it (e.g. `cdcgan+filter`, `dcgan@0.5`).
    public init?(argument: String) { try? self.init(parsing: argument) }
}
