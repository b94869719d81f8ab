import ArgumentParser
import CommandOptions
import Workflows

/// `medsynth train`: train a classifier, early-stop on val, score the best model on test.
struct TrainCommand: ParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a classifier on the train split, early-stop on val, evaluate the best model on test.")
    @OptionGroup var options: TrainOptions

    func spec(data: String) throws -> ClassifierRunSpec { try options.spec(data: data) }

    func run() throws {
        var progress = ProgressLine()
        // Under mpirun: data-parallel; ranks other than 0 train in step and report nothing.
        guard let (job, result) = try options.train({ progress.show($0) }) else { return }
        printReport(
            result.training.test, baseline: result.training.baseline, title: job.title(of: result), json: options.json,
            jsonValue: result.summary)
        job.closingNotes(of: result).forEach { progress.note($0) }
        if let runID = result.runID, !options.json { print("MEDSYNTH_RUN_ID=\(runID)") }
    }
}

/// `medsynth evaluate`: score a trained classifier on a test set.
struct EvaluateCommand: ParsableCommand, OptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a classifier on the test split of --data (rebuilt from the model's split seed) or on --test.")
    @OptionGroup var options: EvaluateOptions

    func run() throws {
        let (r, title) = try options.evaluate()
        printReport(r, baseline: nil, title: title, json: options.json, jsonValue: r)
    }
}
