import Experiments
import Foundation

/// The paper's two datasets.
public enum PaperDatasetName: String, CaseIterable, Codable, Sendable {
    case pneumonia, skin

    /// Comma-separated names, e.g. `pneumonia,skin`; refuses an unknown name, listing the known ones.
    public static func parseList(_ text: String) throws -> [PaperDatasetName] {
        try text.split(separator: ",").map { name in
            guard let dataset = PaperDatasetName(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw OptionRefusal("unknown dataset \"\(name)\" in --datasets: use pneumonia, skin")
            }
            return dataset
        }
    }
}

/// What `medsynth reproduce paper` runs: the source paper's replica on its two datasets, and
/// the experiment's arms beside it (the fixes).
public struct PaperRunSpec: Sendable {
    /// The full setting (3,000 GAN steps per class, 50 classifier epochs) instead of the reduced one.
    public var full = false
    /// The folder holding pneumoniamnist/ and dermamnist-jpeg/.
    public var dataRoot: String
    /// The datasets to run, in this order.
    public var datasets = PaperDatasetName.allCases
    /// Seeds the subsample and the split.
    public var seed: UInt64 = 0
    /// Overrides of the setting's GAN steps per class and classifier epochs.
    public var ganSteps: Int?
    public var epochs: Int?
    /// The fixes' arms and seeds; nil arms: no fixes.
    public var fixesArms: [Arm]? = PaperFixes().arms
    public var fixesSeeds = 3

    public init(dataRoot: String) { self.dataRoot = dataRoot }

    /// The replica (and its fixes) this spec describes, writing into `output`.
    func replica(output: URL) throws -> PaperReplica {
        var settings = full ? PaperSettings.full : PaperSettings.reduced
        if let ganSteps { settings.ganSteps = ganSteps }
        if let epochs { settings.epochs = epochs }
        let chosen = datasets.map { name -> PaperDataset in
            switch name {
            case .pneumonia: return .pneumonia(dataRoot: dataRoot, seed: seed)
            case .skin: return .skin(dataRoot: dataRoot, seed: seed)
            }
        }
        let replica = try PaperReplica(datasets: chosen, settings: settings, output: output)
        if let fixesArms {
            var fixes = PaperFixes()
            fixes.arms = fixesArms
            fixes.seeds = (0..<UInt64(fixesSeeds)).map { $0 }
            if full { fixes.epochs = 50; fixes.patience = 10; fixes.ganSteps = 600 }
            replica.fixes = fixes
        } else {
            replica.fixes = nil
        }
        return replica
    }

    /// A worker of `--jobs`: plain lines for its log; the parent shows progress and reports.
    public func work(output: URL, _ line: (String) -> Void) throws {
        endWithParent()
        try replica(output: output).work { event in
            if case .stage(let s) = event { line(s) }
        }
    }

    /// Runs the replica into `output` (report.html, report.md, report.json, GAN grids), reporting
    /// progress as text. With `jobs` above 1, first trains every piece (each dataset's replica,
    /// the fixes' generators and cells) in `jobs` worker processes (`executable` with
    /// `workerArguments`, each with cores/jobs threads), then reads them back.
    public func run(
        output: URL, jobs: Int = 1, executable: String = "/proc/self/exe", workerArguments: [String] = [],
        report observe: (WorkflowEvent) -> Void = { _ in }
    ) throws -> PaperReport {
        let replica = try replica(output: output)
        if jobs > 1 {
            let start = Date()
            replica.startedAt = start
            let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)
            observe(
                .note(
                    "\(jobs) workers, \(threads) thread\(threads == 1 ? "" : "s") each; logs in \(output.relativePath)/workers/"))
            try replica.runWorkers(executable: executable, arguments: workerArguments, count: jobs, threadsPerWorker: threads) {
                finished, total in
                observe(
                    .progress(
                        Double(finished) / Double(max(total, 1)),
                        "\(finished)/\(total) replicas, generators and cells finished, \(formatDuration(Date().timeIntervalSince(start)))"
                    ))
            }
            observe(.endProgress)
        }
        let report = try replica.run { event in
            switch event {
            case .stage(let s): observe(.note(s))
            case let .ganStep(name, step, total, eta):
                observe(
                    .progress(
                        Double(step) / Double(max(total, 1)), "\(name) GAN step \(step)/\(total) ETA \(formatDuration(eta))",
                        force: step == total))
            case let .epoch(run, epoch, epochs, trainAccuracy, valAccuracy):
                let scores =
                    trainAccuracy.isNaN ? "" : String(format: " train acc %.3f val acc %.3f", trainAccuracy, valAccuracy)
                observe(
                    .progress(
                        Double(epoch + 1) / Double(epochs), "\(run) epoch \(epoch + 1)/\(epochs)\(scores)",
                        force: epoch + 1 == epochs))
            }
        }
        observe(.endProgress)
        return report
    }
}
