import ArgumentParser
import Experiments
import Foundation
import Workflows

/// `medsynth reproduce paper`: the source paper's experiment on the shared data, in one command.
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce", abstract: "Reproduce a published experiment.", subcommands: [Paper.self])

    struct Paper: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ismail et al. 2023: a plain DCGAN per class, the paper CNN on original and synthetic-augmented images.",
            discussion: """
                Builds the paper's two datasets from --data-root: pneumonia (235 normal + 127 pneumonia from \
                pneumoniamnist) and skin (benign = 1,800 melanocytic nevi, malignant = melanoma, vascular_lesion, \
                dermatofibroma from dermamnist-jpeg); pixels / 255, a stratified 8:1:1 split from --seed; trains one \
                DCGAN per class (no DiffAugment, no EMA), adds 2,500 (pneumonia) or 3,800 (skin) synthetic images \
                spread equally over the classes, and trains the paper CNN on the original and on the augmented \
                training part, reporting the last epoch. Writes report.html (self-contained), report.md and report.json.
                Default: the reduced setting (300 GAN steps per class, 15 epochs; about 10 minutes on 2 cores); \
                --full: 3,000 steps, 50 epochs.
                """)

        @Option(help: "Output folder: report.html, report.md, report.json, GAN grids.") var out: String
        @Flag(help: "The full setting: 3,000 GAN steps per class, 50 classifier epochs.") var full = false
        @Option(help: "Folder holding pneumoniamnist/ and dermamnist-jpeg/.") var dataRoot = "../shared/data"
        @Option(help: "Datasets to run, comma-separated: pneumonia, skin.") var datasets = "pneumonia,skin"
        @Option(help: "Seeds the subsample and the split.") var seed: UInt64 = 0
        @Option(help: "Override the GAN steps per class.") var ganSteps: Int?
        @Option(help: "Override the classifier epochs.") var epochs: Int?
        @Flag(help: "Skip the experiment's arms beside the replica (the fixes).") var noFixes = false
        @Option(help: Ranges.seeds.help("Seeds of the fixes.")) var fixesSeeds = 3
        @Option(help: "Arms of the fixes, comma-separated (see `medsynth experiment --help`).")
        var fixesArms = PaperFixes().arms.map(\.name).joined(separator: ",")
        @Option(
            help: Ranges.jobs.help(
                "Worker processes that train the replicas and the fixes' generators and cells at once, each with "
                    + "cores/jobs threads (2 on 2 cores)."))
        var jobs = 1
        @Flag(help: .hidden) var worker = false

        func validate() throws {
            try Ranges.jobs.check(jobs, "--jobs")
            try Ranges.seeds.check(fixesSeeds, "--fixes-seeds")
            try Ranges.steps.check(ganSteps, "--gan-steps"); try Ranges.epochs.check(epochs, "--epochs")
            _ = try spec()
        }

        /// The run as the library takes it; refuses an unknown dataset or arm.
        func spec() throws -> PaperRunSpec {
            var spec = PaperRunSpec(dataRoot: dataRoot)
            spec.full = full; spec.seed = seed
            spec.datasets = try refusedAsInvalid { try PaperDatasetName.parseList(datasets) }
            spec.ganSteps = ganSteps; spec.epochs = epochs; spec.fixesSeeds = fixesSeeds
            spec.fixesArms = noFixes ? nil : try fixesArms.split(separator: ",").map { try Arm(parsing: String($0)) }
            return spec
        }

        func run() throws {
            if worker {
                // Unbuffered: the log is read while it runs.
                return try spec().work(output: URL(fileURLWithPath: out)) {
                    FileHandle.standardOutput.write(Data(($0 + "\n").utf8))
                }
            }
            var progress = ProgressLine()
            let report = try spec().run(
                output: URL(fileURLWithPath: out), jobs: jobs,
                workerArguments: ExperimentCommand.workerArguments(Array(CommandLine.arguments.dropFirst()))
            ) { progress.show($0) }
            print(report.markdown())
            progress.note(
                String(format: "done in %@: %@/report.html, report.md, report.json", formatDuration(report.seconds), out))
        }
    }
}
