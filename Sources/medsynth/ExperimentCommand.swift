import ArgumentParser
import CommandOptions
import Experiments
import Workflows

/// `medsynth experiment`: every arm and seed, plainly, under `--jobs` workers or `mpirun` ranks.
struct ExperimentCommand: ParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract:
            "The paper's experiment done right: every arm with the same classifier and seeds, honest baselines, every class counted."
    )
    @OptionGroup var options: ExperimentCommandOptions

    static func workerArguments(_ arguments: [String]) -> [String] { ExperimentCommandOptions.workerArguments(arguments) }
    func experimentOptions() throws -> ExperimentOptions { try options.experimentOptions() }

    func run() throws {
        var progress = ProgressLine()
        guard let outcome = try options.run(arguments: commandArguments, line: printLine, { progress.show($0) }) else {
            return
        }
        print(outcome.report.markdown())
        outcome.closingNotes.forEach { progress.note($0) }
    }
}

/// `medsynth reproduce paper`: the source paper's experiment on the shared data, in one command.
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce", abstract: "Reproduce a published experiment.", subcommands: [Paper.self])

    struct Paper: ParsableCommand, OptionsCommand {
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
        @OptionGroup var options: PaperOptions

        func spec() throws -> PaperRunSpec { try options.spec() }

        func run() throws {
            var progress = ProgressLine()
            guard let report = try options.run(arguments: commandArguments, line: printLine, { progress.show($0) }) else {
                return
            }
            print(report.markdown())
            progress.note(
                "done in \(formatDuration(report.seconds)): \(options.out)/report.html, report.md, report.json")
        }
    }
}
