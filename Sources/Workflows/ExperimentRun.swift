import Cluster
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

/// What an experiment leaves to show after its report: alarms, the files written, the run.
public struct ExperimentOutcome {
    public var report: ExperimentReport
    public var runID: String?
    /// Lines for after the report: each alarm, the files written, how to register a model.
    public var closingNotes: [String]
}

extension Experiment {
    /// A worker of `--jobs`: plain lines for its log (stages, cells finished earlier, alarms);
    /// the parent shows progress and writes the reports.
    public func runAsWorker(_ line: (String) -> Void) throws {
        endWithParent()
        try work { event in
            switch event {
            case .stage(let s): line(s)
            case .resumed(let s): line("finished earlier: \(s)")
            case .alarm(let s): line("ALARM: \(s)")
            default: return
            }
        }
    }

    /// Runs the experiment as `run(store:)` does, reporting as text; with `jobs` above 1, first
    /// trains the grid in `jobs` worker processes (`executable` with `workerArguments`, each with
    /// cores/jobs threads), showing how many cells have finished.
    public func runShowingProgress(
        store: RunStore?, jobs: Int = 1, executable: String = "/proc/self/exe", workerArguments: [String] = [],
        commandLine: [String] = CommandLine.arguments, report observe: (WorkflowEvent) -> Void
    ) throws -> ExperimentOutcome {
        let start = Date()
        let out = options.output.relativePath
        if jobs > 1 {
            startedAt = start
            let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)
            let note = "\(jobs) workers, \(threads) thread\(threads == 1 ? "" : "s") each; logs in \(out)/workers/"
            try runWorkers(
                executable: executable, arguments: workerArguments, count: jobs, threadsPerWorker: threads,
                started: { observe(.note(note)) }
            ) {
                let (finished, total) = gridProgress()
                observe(
                    .progress(
                        Double(finished) / Double(max(total, 1)),
                        "\(finished)/\(total) generators and cells finished, \(formatDuration(Date().timeIntervalSince(start)))"
                    ))
            }
            observe(.endProgress)
        }
        // Recorded whole (every option), with the split's manifest hash, the reports and every cell's model.
        let (report, runID) = try run(store: store, commandLine: commandLine) { event in
            switch event {
            case .stage(let s): observe(.note(s))
            case let .ganStep(name, step, total, eta):
                observe(
                    .progress(
                        Double(step) / Double(max(total, 1)), "\(name) step \(step)/\(total) ETA \(formatDuration(eta))",
                        force: step == total))
            case let .classifierEpoch(arm, seed, epoch, maxEpochs, f1):
                observe(
                    .progress(
                        Double(epoch + 1) / Double(maxEpochs),
                        String(format: "%@ seed %d epoch %d/%d val macro-F1 %.3f", arm, seed, epoch + 1, maxEpochs, f1)))
            case let .armFinished(arm, ba):
                observe(.note(String(format: "%@: test balanced accuracy %.3f (mean over seeds)", arm, ba)))
            case .resumed(let s): observe(.note("resumed: \(s) (finished earlier)"))
            case .alarm(let s): observe(.note("ALARM: \(s)"))
            }
        }
        observe(.endProgress)
        var notes = report.alarms.map { "ALARM: \($0)" }
        notes.append(
            String(
                format: "done in %@: %@/report.html, report.md, report.json", formatDuration(Date().timeIntervalSince(start)),
                out))
        if let runID {
            notes.append(
                "run \(runID): models register \(runID) --name NAME --artifact \(out)/arms/ARM/seed-S/model.safetensors")
        }
        return ExperimentOutcome(report: report, runID: runID, closingNotes: notes)
    }
}

extension Experiment {
    /// `mpirun -np N medsynth experiment`: every rank is a worker of the grid, as a `--jobs` worker
    /// is; rank 0 then reads every piece back and writes the reports, with `ranks` = N.
    ///
    /// The ranks share the output folder and take pieces (each seed's generators, then each (arm,
    /// seed) cell) through its claim files: a rank that finishes a piece takes the next free one,
    /// so cells that differ in cost balance themselves, and each piece is written as it finishes.
    /// Before any rank starts, rank 0 checks the folder's settings and removes every claim an
    /// earlier run left (`removeClaims`: under mpirun all old claims are stale). The ranks wait
    /// for each other at barriers that sleep (`Ranks.barrier`), not spin. Returns the outcome on
    /// rank 0 and nil on the others; `line` gets each rank's worker lines (stages, resumed pieces,
    /// alarms), prefixed with its rank.
    public func runOverRanks(
        store: RunStore?, commandLine: [String] = CommandLine.arguments, line: (String) -> Void,
        report observe: (WorkflowEvent) -> Void
    ) throws -> ExperimentOutcome? {
        let start = Date()
        let me = "rank \(Ranks.rank)/\(Ranks.size)"
        if Ranks.rank == 0 {
            let stale = try removeClaims()
            if stale > 0 { line("\(me): removed \(stale) claim\(stale == 1 ? "" : "s") left by an earlier run") }
        }
        Ranks.barrier()
        try work { event in
            switch event {
            case .stage(let s): line("\(me): \(s)")
            case .resumed(let s): line("\(me): finished earlier: \(s)")
            case .alarm(let s): line("\(me): ALARM: \(s)")
            default: return
            }
        }
        line("\(me): no piece left; waiting for the other ranks")
        Ranks.barrier()
        guard Ranks.rank == 0 else { return nil }
        startedAt = start
        ranks = Ranks.size
        return try runShowingProgress(store: store, commandLine: commandLine, report: observe)
    }
}
