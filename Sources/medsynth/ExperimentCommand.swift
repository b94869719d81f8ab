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
    @Option(help: "Comma-separated arms: \(Arm.allCases.map(\.rawValue).joined(separator: ","))") var arms = Arm.allCases.map(\.rawValue).joined(separator: ",")
    @Option(help: Ranges.seeds.help("Number of seeds (0, 1, ...).")) var seeds = 3
    @Option(help: Ranges.imageSize.help("Image side (GAN arms: 28, 32, 64 or 128).")) var imageSize = 28
    @Option(help: "Channels: 1 or 3 (default: as the data).") var channels: Int?
    @Option(help: "paper-cnn or resnet.") var arch = "resnet"
    @Option(help: Ranges.epochs.help("Classifier epochs (early stopping on validation macro-F1).")) var epochs = 30
    @Option(help: Ranges.batchSize.help("Classifier images per step.")) var batchSize = 64
    @Option(help: Ranges.patience.help("Classifier epochs without a better validation score before stopping.")) var patience = 8
    @Option(help: Ranges.steps.help("Training steps per GAN.")) var ganSteps = 1500
    @Option(help: Ranges.ganWidth.help("GAN width (ngf = ndf).")) var ganWidth = 64
    @Option(help: Ranges.ratio.help("At most this many synthetic images per real image of a class.")) var maxSyntheticRatio: Double?
    @Option var splitSeed: UInt64 = 0
    @Option(help: "Output folder: report.json, report.md, report.html, models, GAN grids.") var out: String
    @OptionGroup var tracking: TrackingOptions

    func validate() throws {
        try Ranges.seeds.check(seeds, "--seeds"); try Ranges.imageSize.check(imageSize, "--image-size"); try checkChannels(channels)
        try Ranges.epochs.check(epochs, "--epochs"); try Ranges.batchSize.check(batchSize, "--batch-size")
        try Ranges.patience.check(patience, "--patience"); try Ranges.steps.check(ganSteps, "--gan-steps")
        try Ranges.ganWidth.check(ganWidth, "--gan-width"); try Ranges.ratio.check(maxSyntheticRatio, "--max-synthetic-ratio")
    }

    func run() throws {
        var o = ExperimentOptions(data: data, output: URL(fileURLWithPath: out))
        o.test = test
        o.arms = try arms.split(separator: ",").map { name in
            guard let a = Arm(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown arm \"\(name)\": use \(Arm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return a
        }
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        o.seeds = (0..<UInt64(seeds)).map { $0 }
        o.imageSize = imageSize; o.channels = channels
        guard let a = Architecture(rawValue: arch) else { throw ValidationError("unknown --arch \(arch): use paper-cnn or resnet") }
        o.arch = a
        o.classifier.epochs = epochs; o.classifier.batchSize = batchSize; o.classifier.patience = patience
        o.ganSteps = ganSteps; o.ganWidth = ganWidth; o.maxSyntheticRatio = maxSyntheticRatio; o.splitSeed = splitSeed
        let experiment = try Experiment(options: o)
        var progress = ProgressLine()
        let start = Date()
        struct Recorded: Encodable { let data: String; let test: String?; let arms: String; let seeds: Int; let imageSize: Int
                                     let arch: String; let epochs: Int; let ganSteps: Int }
        let config = Recorded(data: data, test: test, arms: arms, seeds: seeds, imageSize: imageSize, arch: arch, epochs: epochs,
                              ganSteps: ganSteps)
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
