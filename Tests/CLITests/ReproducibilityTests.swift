import ArgumentParser
import Classification
import Datasets
import Experiments
import Foundation
import TestSupport
import Testing
import Tracking
import Workflows

@testable import medsynth

/// The long options a command's help lists.
func options(of command: any ParsableCommand.Type) -> Set<String> {
    let help = command.helpMessage(includeHidden: true, columns: 10_000)
    let regex = try! NSRegularExpression(pattern: #"(?<![A-Za-z0-9-])--[a-z][a-z0-9-]*"#)
    return Set(
        regex.matches(in: help, range: NSRange(help.startIndex..., in: help)).map { String(help[Range($0.range, in: help)!]) })
}

/// Arguments with `option` set to `value` (nil: a flag), replacing it when `base` has it.
func arguments(_ base: [String], _ option: String, _ value: String?) -> [String] {
    var args = base
    if let i = args.firstIndex(of: option) { args.removeSubrange(i...(value == nil ? i : i + 1)) }
    return args + [option] + (value.map { [$0] } ?? [])
}

/// Every option of a recording command either changes what the run records (the options that
/// change the result) or is one of the few that only say where to write or what to print. A new
/// option fails here until it is put in one list or the other.
func checkEveryOptionChangesTheRecord<Recorded: Equatable>(
    of command: any ParsableCommand.Type, base: [String], changes: [String: String?], noEffect: Set<String>,
    recorded: ([String]) throws -> Recorded, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let listed = Set(changes.keys).union(noEffect)
    #expect(
        options(of: command).subtracting(listed).isEmpty,
        "options neither recorded nor listed as without effect: \(options(of: command).subtracting(listed).sorted())",
        sourceLocation: sourceLocation)
    #expect(
        listed.subtracting(options(of: command)).isEmpty, "no such options: \(listed.subtracting(options(of: command)).sorted())",
        sourceLocation: sourceLocation)
    let reference = try recorded(base)
    for (option, value) in changes.sorted(by: { $0.key < $1.key }) {
        let changed = try recorded(arguments(base, option, value))
        #expect(
            changed != reference, "\(option) \(value ?? "") does not change the recorded configuration",
            sourceLocation: sourceLocation)
    }
}

@Test func trainRecordsEveryOptionThatChangesItsResult() throws {
    let base = ["--data", "/d", "--out", "/o", "--dp-noise-multiplier", "1"]
    try checkEveryOptionChangesTheRecord(
        of: TrainCommand.self, base: base,
        changes: [
            "--data": "/other", "--test": "/t", "--classes": "a,b", "--subsample": "a=3", "--arch": "paper-cnn",
            "--image-size": "32", "--channels": "3", "--epochs": "5", "--batch-size": "16", "--lr": "0.01",
            "--class-weights": nil, "--label-smoothing": "0.1", "--oversample": nil, "--augment": nil, "--patience": "3",
            "--monitor": "balanced-accuracy", "--lr-schedule": "cosine", "--ratio": "7:2:1", "--seed": "5",
            "--split-seed": "4",
            "--dp-noise-multiplier": "2",
            "--dp-epsilon": "3", "--dp-max-grad-norm": "2", "--dp-delta": "1e-6", "--max-read-bytes": "1000000",
            "--dry-run": nil,
        ],
        noEffect: ["--out", "--json", "--store", "--no-track", "--help"]
    ) { args in
        var args = args
        if args.contains("--dp-epsilon"), let i = args.firstIndex(of: "--dp-noise-multiplier") {
            args.removeSubrange(i...(i + 1))  // one of the two
        }
        let command = try TrainCommand.parse(args)
        return try command.spec(data: command.data ?? "dry-run-data")
    }
}

@Test func experimentRecordsEveryOptionThatChangesItsResult() throws {
    try checkEveryOptionChangesTheRecord(
        of: ExperimentCommand.self, base: ["--data", "/d", "--out", "/o"],
        changes: [
            "--data": "/other", "--test": "/t", "--arms": "original,dcgan", "--seeds": "2", "--image-size": "32",
            "--channels": "3", "--arch": "paper-cnn", "--epochs": "5", "--batch-size": "16", "--lr": "0.01",
            "--patience": "3", "--gan-steps": "10", "--gan-width": "16", "--max-synthetic-ratio": "0.5",
            "--ratio-sweep": "0.5", "--sweep-arm": "dcgan", "--filter-quantile": "0.5", "--filter-candidates": "4",
            "--fine-tune-lr": "0.001", "--resamples": "500", "--alpha": "0.1", "--no-audit": nil, "--split-seed": "3",
            "--resplit": nil, "--classes": "a,b", "--subsample": "a=3", "--lr-schedule": "cosine",
            "--diffusion-steps": "10", "--diffusion-batch-size": "8", "--diffusion-width": "16",
            "--diffusion-sampling-steps": "10", "--guidance-scale": "3",
        ],
        // NOTE: --jobs and --worker choose how many processes (and so OpenMP threads per cell) run the
        // grid; like OMP_NUM_THREADS they move weights at float-rounding level only (2.9e-7 measured
        // on a tiny run), never the method or the split.
        noEffect: ["--out", "--store", "--no-track", "--help", "--jobs", "--worker"]
    ) { args in
        try ExperimentCommand.parse(args).experimentOptions()
    }
}

/// A store in a fresh folder, and the one run a command recorded in it.
func onlyRun(in store: String) throws -> Run {
    let runs = try RunStore(path: store).runs()
    try #require(runs.count == 1)
    return runs[0]
}

/// End to end: what `runs show` prints for a `train` run holds its whole spec, which decodes to
/// the spec the command ran; `models register` takes its model and the card names the dataset.
@Test func trainRunsShowTheirWholeSpec() throws {
    let folder = try makeTemporaryFolder()
    let store = folder + "/runs.sqlite", out = folder + "/out"
    let args = [
        "train", "--dry-run", "--arch", "paper-cnn", "--patience", "1", "--label-smoothing", "0.1", "--seed", "3",
        "--out", out, "--store", store,
    ]
    var command = try MedSynth.parseAsRoot(args)
    try command.run()
    let run = try onlyRun(in: store)
    let expected = try TrainCommand.parse(Array(args.dropFirst())).spec(data: out + "/dry-run-data")
    #expect(try JSONDecoder().decode(ClassifierRunSpec.self, from: Data(run.config.utf8)) == expected)
    let shown = RunReport.detail(run, metrics: [:], artifacts: [], events: [])
    #expect(shown.contains(#""data":"\#(out)/dry-run-data""#) && shown.contains(#""labelSmoothing":0.1"#), "\(shown)")
    var register = try MedSynth.parseAsRoot(["models", "register", run.id, "--name", "dry", "--store", store])
    try register.run()
    #expect(try RunStore(path: store).modelCard(name: "dry", version: 1).contains("- Dataset: `\(out)/dry-run-data`"))
}

/// End to end: an `experiment` run records the experiment's options whole.
@Test func experimentRunsShowTheirWholeOptions() throws {
    let folder = try makeTemporaryFolder()
    let data = try writeFakeClassFolders(in: folder + "/data", seed: 3)
    let store = folder + "/runs.sqlite"
    let args = [
        "experiment", "--data", data, "--arms", "original", "--seeds", "1", "--epochs", "1", "--batch-size", "8",
        "--arch", "paper-cnn", "--resamples", "200", "--gan-width", "8", "--max-synthetic-ratio", "2", "--no-audit",
        "--out", folder + "/out", "--store", store,
    ]
    var command = try MedSynth.parseAsRoot(args)
    try command.run()
    let run = try onlyRun(in: store)
    let expected = try ExperimentCommand.parse(Array(args.dropFirst())).experimentOptions()
    var decoded = try JSONDecoder().decode(ExperimentOptions.self, from: Data(run.config.utf8))
    // NOTE: URL(fileURLWithPath:) adds a "/" when the folder exists, as it does after the run.
    #expect(decoded.output.path == expected.output.path)
    decoded.output = expected.output
    #expect(decoded == expected)
    #expect(try RunStore(path: store).artifacts(of: run.id).contains { $0.kind == "model" })
}

/// `gan train` of a GAN: every option that changes the result is in the spec the run records.
/// The diffusion options are refused with a GAN (DiffusionCLITests) and checked below.
@Test func ganTrainSpecHoldsEveryOptionThatChangesItsResult() throws {
    let diffusionOnly: Set = [
        "--width", "--attention", "--prediction", "--schedule", "--lr", "--class-drop", "--sampling-steps", "--guidance-scale",
    ]
    try checkEveryOptionChangesTheRecord(
        of: GANCommand.Train.self, base: ["--data", "/d", "--out", "/o", "--dp-noise-multiplier", "1"],
        changes: [
            "--generator": "cdcgan", "--data": "/other", "--classes": "a,b", "--subsample": "a=3", "--class": "a",
            "--conditional": nil, "--image-size": "32", "--channels": "3", "--epochs": "5", "--max-steps": "10",
            "--batch-size": "16", "--seed": "5", "--split-seed": "4", "--ratio": "7:2:1", "--checkpoint-every": "7",
            "--grid-every": "3", "--loss": "hinge",
            "--lr-g": "0.001", "--lr-d": "0.001", "--no-diff-augment": nil, "--spectral-norm": nil, "--ema-decay": "0.9",
            "--dry-run": nil, "--max-read-bytes": "1000000", "--dp-noise-multiplier": "2", "--dp-epsilon": "3",
            "--dp-max-grad-norm": "2", "--dp-delta": "1e-6",
        ],
        noEffect: diffusionOnly.union(["--out", "--resume", "--overwrite", "--store", "--no-track", "--help"])
    ) { args in
        var args = args
        if args.contains("--dp-epsilon"), let i = args.firstIndex(of: "--dp-noise-multiplier") {
            args.removeSubrange(i...(i + 1))  // one of the two
        }
        return try GANCommand.Train.parse(args).spec()
    }
}

/// `gan train --generator diffusion`: the same, with the GAN-only options refused (DiffusionCLITests).
@Test func diffusionTrainSpecHoldsEveryOptionThatChangesItsResult() throws {
    let ganOnly: Set = [
        "--loss", "--lr-g", "--lr-d", "--no-diff-augment", "--spectral-norm", "--dp-noise-multiplier", "--dp-epsilon",
        "--dp-max-grad-norm", "--dp-delta",
    ]
    try checkEveryOptionChangesTheRecord(
        of: GANCommand.Train.self, base: ["--generator", "diffusion", "--data", "/d", "--out", "/o"],
        changes: [
            "--generator": "dcgan", "--data": "/other", "--classes": "a,b", "--subsample": "a=3", "--class": "a",
            "--conditional": nil, "--image-size": "32", "--channels": "3", "--epochs": "5", "--max-steps": "10",
            "--batch-size": "16", "--seed": "5", "--split-seed": "4", "--ratio": "7:2:1", "--checkpoint-every": "7",
            "--grid-every": "3", "--ema-decay": "0.9",
            "--dry-run": nil, "--max-read-bytes": "1000000", "--width": "16", "--attention": nil,
            "--prediction": "epsilon", "--schedule": "linear", "--lr": "0.001", "--class-drop": "0.2",
            "--sampling-steps": "10", "--guidance-scale": "3",
        ],
        noEffect: ganOnly.union(["--out", "--resume", "--overwrite", "--store", "--no-track", "--help"])
    ) { args in
        try GANCommand.Train.parse(args).spec()
    }
}

/// End to end: a `gan train` run records the spec the command ran, `--class` and the DP-SGD
/// options included, with the model it resolved to.
@Test func ganTrainRunsRecordTheirWholeSpec() throws {
    let folder = try makeTemporaryFolder()
    let store = folder + "/runs.sqlite"
    let args = [
        "gan", "train", "--dry-run", "--max-steps", "1", "--class", "lesion",
        "--dp-noise-multiplier", "1.25", "--out", folder + "/out", "--store", store,
    ]
    var command = try MedSynth.parseAsRoot(args)
    try command.run()
    let config = try onlyRun(in: store).config
    let record = try JSONDecoder().decode(GeneratorRunRecord.self, from: Data(config.utf8))
    #expect(record.spec == (try GANCommand.Train.parse(Array(args.dropFirst(2))).spec()))
    #expect(record.spec.className == "lesion" && record.spec.privacy?.noiseMultiplier == 1.25, "\(config)")
    #expect(record.spec.plan.maxSteps == 1 && record.dcgan?.discriminatorBatchNorm == false && record.unet == nil)
}
