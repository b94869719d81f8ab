import ArgumentParser
import Classification
import Datasets
import Experiments
import Foundation

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "The paper's experiment done right: every arm with the same classifier and seeds, honest baselines, every class counted.")

    @Option(help: "Class-folder tree or MedMNIST .npz.") var data: String
    @Option(help: "An explicit test set (folder tree or .npz with test_* arrays).") var test: String?
    @Option(help: ArgumentHelp("Comma-separated arms: original, augment, weighted, oversample, dcgan[@R], cdcgan[@R], diffusion[@R], synthetic-only, and joins with + of filter, pretrain, augment, weighted, oversample (e.g. cdcgan+filter, diffusion+filter).",
                               valueName: "arms")) var arms = Arm.defaults.map(\.name).joined(separator: ",")
    @Option(help: "Number of seeds (0, 1, ...), 1...100; each retrains every generator and classifier.") var seeds = 3
    @Option(help: "Image side length, 8...256.") var imageSize = 28
    @Option(help: "Channels, 1 or 3 (default: as stored).") var channels: Int?
    @Option(help: "paper-cnn or resnet.") var arch: Architecture = .resnet
    @Option(help: "Classifier epochs, 1...10000 (early stopping on validation macro-F1).") var epochs = 30
    @Option(help: "Classifier batch size, 2...4096.") var batchSize = 64
    @Option(help: "Classifier learning rate, (0, 1).") var lr: Float = 1e-3
    @Option(help: "Epochs without improvement before stopping, 1...10000.") var patience = 8
    @Option(help: "Training steps per GAN, 1...1000000.") var ganSteps = 600
    @Option(help: "GAN width (ngf = ndf), 4...512.") var ganWidth = 32
    @Option(help: Ranges.generatorSteps.help("Diffusion arms: training steps of the conditional diffusion model.")) var diffusionSteps = 2000
    @Option(help: Ranges.diffusionBatchSize.help("Diffusion arms: images per training step.")) var diffusionBatchSize = 32
    @Option(help: Ranges.diffusionWidth.help("Diffusion arms: U-Net base width, a multiple of 8.")) var diffusionWidth = 32
    @Option(help: Ranges.samplingSteps.help("Diffusion arms: DDIM steps per synthetic image.")) var diffusionSamplingSteps = 25
    @Option(help: Ranges.guidanceScale.help("Diffusion arms: classifier-free guidance scale (1 = none).")) var guidanceScale: Float = 2
    @Option(help: "At most this many synthetic images per real image of a class, (0, 1000].") var maxSyntheticRatio: Double?
    @Option(help: "Also run --sweep-arm capped at each of these synthetic-per-real ratios (comma-separated), reported as a curve.")
    var ratioSweep: String?
    @Option(help: "The arm the ratio sweep varies (a dcgan, cdcgan or diffusion arm).") var sweepArm = "cdcgan"
    @Option(help: "Filter: keep a synthetic image when p(class) reaches this quantile of p(class) on real validation images, [0, 1].")
    var filterQuantile = 0.25
    @Option(help: "Filter: candidates generated per image wanted, 1...20.") var filterCandidates = 3
    @Option(help: "Pre-trained arms: fine-tuning learning rate on real images, (0, 1).") var fineTuneLr: Float = 1e-4
    @Option(help: "Bootstrap resamples, 200...100000.") var resamples = 2000
    @Option(help: "Familywise error rate of the Holm-corrected comparisons, [0.001, 0.5].") var alpha = 0.05
    @Flag(help: "Skip the generator audit (KID, FD, PRDC, copies).") var noAudit = false
    @Option var splitSeed: UInt64 = 0
    @Flag(help: "Split an npz's images anew 8:1:1 instead of keeping its own train/val arrays.") var resplit = false
    @Option(help: "Output folder: report.json, report.md, report.html, models, generators. Re-running on it resumes.") var out: String
    @OptionGroup var selection: ClassSelectionOptions
    @OptionGroup var tracking: TrackingOptions

    /// Every range is checked before any work (`ExperimentOptions.validate`, no data is read).
    func validate() throws { _ = try experimentOptions() }

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
            guard let r = Double($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--ratio-sweep: \"\($0)\" is not a number") }
            return r
        }
        o.sweepArm = try Arm(parsing: sweepArm)
        o.filterQuantile = filterQuantile; o.filterCandidates = filterCandidates; o.fineTuneLearningRate = fineTuneLr
        o.resamples = resamples; o.alpha = alpha; o.audit = !noAudit
        try o.validate()
        return o
    }

    func run() throws {
        let o = try experimentOptions()
        let experiment = try Experiment(options: o)
        var progress = ProgressLine()
        let start = Date()
        struct Recorded: Encodable {
            let data: String; let test: String?; let arms: [String]; let seeds: Int; let imageSize: Int; let channels: Int?
            let arch: String; let epochs: Int; let batchSize: Int; let lr: Float; let patience: Int; let ganSteps: Int
            let ganWidth: Int; let maxSyntheticRatio: Double?; let ratioSweep: [Double]; let sweepArm: String
            let filterQuantile: Double; let filterCandidates: Int; let fineTuneLr: Float; let resamples: Int; let alpha: Double
            let splitSeed: UInt64
        }
        let config = Recorded(data: data, test: test, arms: o.allArms.map(\.name), seeds: seeds, imageSize: imageSize, channels: channels,
                              arch: arch.rawValue, epochs: epochs, batchSize: batchSize, lr: lr, patience: patience, ganSteps: ganSteps,
                              ganWidth: ganWidth, maxSyntheticRatio: maxSyntheticRatio, ratioSweep: o.ratioSweep, sweepArm: o.sweepArm.name,
                              filterQuantile: filterQuantile, filterCandidates: filterCandidates, fineTuneLr: fineTuneLr,
                              resamples: resamples, alpha: alpha, splitSeed: splitSeed)
        let report = try tracking.record(kind: .experiment, config: config, seed: splitSeed) { recorder in
        let report = try experiment.run { event in
            switch event {
            case .stage(let s): progress.note(s)
            case let .ganStep(name, step, total, eta):
                progress.update(fraction: Double(step) / Double(max(total, 1)), "\(name) step \(step)/\(total) ETA \(formatDuration(eta))",
                                force: step == total)
            case let .classifierEpoch(arm, seed, epoch, maxEpochs, f1):
                progress.update(fraction: Double(epoch + 1) / Double(maxEpochs),
                                String(format: "%@ seed %d epoch %d/%d val macro-F1 %.3f", arm, seed, epoch + 1, maxEpochs, f1))
            case let .armFinished(arm, ba):
                progress.note(String(format: "%@: test balanced accuracy %.3f (mean over seeds)", arm, ba))
            case .resumed(let s): progress.note("resumed: \(s) (finished earlier)")
            case .alarm(let s): progress.note("ALARM: \(s)")
            }
        }
        for (i, arm) in report.arms.enumerated() {
            try recorder?.log(["\(arm.name).balanced_accuracy": arm.test.balancedAccuracy.mean, "\(arm.name).macro_f1": arm.test.macroF1.mean],
                              step: i)
        }
        for alarm in report.alarms { try recorder?.alarm(alarm) }
        for f in ["report.html", "report.md", "report.json"] { _ = try recorder?.artifact(path: "\(out)/\(f)", kind: "report") }
        return report
        }
        progress.finish()
        print(report.markdown())
        for alarm in report.alarms { progress.note("ALARM: \(alarm)") }
        progress.note(String(format: "done in %@: %@/report.html, report.md, report.json", formatDuration(Date().timeIntervalSince(start)), out))
    }
}
