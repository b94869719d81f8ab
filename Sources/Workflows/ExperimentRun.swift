import Datasets
import Experiments
import Foundation
import Tracking

/// An experiment (`medsynth experiment`), recorded when given a store.
extension Experiment {
    /// Runs every arm and seed and writes the reports (see `Experiment.run`); with a store,
    /// inside a recorded run of kind `experiment` whose configuration is `options` whole and whose
    /// data fingerprint is the split's manifest hash. The run carries each arm's mean scores,
    /// the alarms, the three reports, the training split's reference statistics
    /// (`reference.json`, for drift monitoring) and every cell's classifier as a `model`
    /// artifact: `models register RUN --name N --artifact OUT/arms/ARM/seed-S/model.safetensors`
    /// registers one (without `--artifact`, the last arm's last seed).
    public func run(
        store: RunStore?, commandLine: [String] = CommandLine.arguments,
        _ observe: (ExperimentEvent) -> Void = { _ in }
    ) throws -> (report: ExperimentReport, runID: String?) {
        guard let store else { return (try run(observe), nil) }
        return try RunRecorder.recording(
            store: store, kind: .experiment, config: options, commandLine: commandLine,
            dataManifestHash: manifestHash, seed: options.splitSeed
        ) { recorder in
            let report = try run(observe)
            for (i, arm) in report.arms.enumerated() {
                try recorder.log(
                    [
                        "\(arm.name).balanced_accuracy": arm.test.balancedAccuracy.mean,
                        "\(arm.name).macro_f1": arm.test.macroF1.mean,
                    ], step: i)
            }
            for alarm in report.alarms { try recorder.alarm(alarm) }
            for name in ["report.html", "report.md", "report.json"] {
                try recorder.artifact(path: options.output.appendingPathComponent(name).path, kind: "report")
            }
            let train = trainingSplit
            let stats = ReferenceStats(
                pixels: train.pixels, count: train.count, labels: train.labels, classNames: train.classNames)
            let statsURL = options.output.appendingPathComponent("reference.json")
            try writeJSON(stats, to: statsURL)
            try recorder.artifact(path: statsURL.path, kind: "reference-stats")
            for arm in options.allArms {
                for seed in options.seeds { try recorder.artifact(path: modelURL(arm, seed: seed).path, kind: "model") }
            }
            return (report, recorder.runID)
        }
    }
}
