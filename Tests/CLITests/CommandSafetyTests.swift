import ArgumentParser
import Foundation
import TestSupport
import Testing
import Workflows

@testable import medsynth

@Test func ganTrainRefusesAFolderThatHoldsARunUnlessResumingOrOverwriting() throws {
    let out = try makeTemporaryFolder() + "/run"
    defer { try? FileManager.default.removeItem(atPath: out) }
    let arguments = ["gan", "train", "--dry-run", "--max-steps", "2", "--out", out, "--no-track"]
    var first = try MedSynth.parseAsRoot(arguments)
    try first.run()
    let log = try String(contentsOfFile: out + "/losses.jsonl", encoding: .utf8)
    var again = try MedSynth.parseAsRoot(arguments)
    do {
        try again.run()
        Issue.record("a second run replaced the first without a word")
    } catch {
        #expect(MedSynth.message(for: error).contains("already holds a run"), "\(error)")
    }
    #expect(try String(contentsOfFile: out + "/losses.jsonl", encoding: .utf8) == log)  // nothing lost
    var resumed = try MedSynth.parseAsRoot([
        "gan", "train", "--dry-run", "--max-steps", "3", "--out", out, "--no-track", "--resume",
    ])
    try resumed.run()
    var overwritten = try MedSynth.parseAsRoot(arguments + ["--overwrite"])
    try overwritten.run()
    // ArgumentParser wraps a `validate()` error in its own internal type: check what the user sees.
    do {
        _ = try MedSynth.parseAsRoot(arguments + ["--overwrite", "--resume"])
        Issue.record("--overwrite with --resume was accepted")
    } catch {
        #expect(MedSynth.message(for: error) == "use either --resume or --overwrite")
        #expect(MedSynth.exitCode(for: error) == .validationFailure)
    }
}

@Test func dataInspectExitsNonZeroAfterListingEveryProblem() throws {
    let root = try makeTemporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: root) }
    for name in ["malignant", "normal_or_benign"] {
        try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        let source = sharedData("breastmnist-png/" + name)
        for file in try FileManager.default.contentsOfDirectory(atPath: source).sorted().prefix(4) {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: root + "/" + name + "/" + file)
        }
    }
    var healthy = try MedSynth.parseAsRoot(["data", "inspect", root])
    try healthy.run()
    try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
    try Data("text".utf8).write(to: URL(fileURLWithPath: root + "/malignant/bad.png"))
    var sick = try MedSynth.parseAsRoot(["data", "inspect", root, "--json"])
    #expect(throws: ExitCode.failure) { try sick.run() }
}

/// `reproduce paper --datasets` is a list of the paper's datasets, checked before any work.
@Test func reproduceParsesItsDatasetsBeforeAnyWork() throws {
    let base = ["reproduce", "paper", "--out", "out"]
    do {
        _ = try MedSynth.parseAsRoot(base + ["--datasets", "pneumonia,lungs"])
        Issue.record("an unknown dataset was accepted")
    } catch {
        #expect(MedSynth.message(for: error) == "unknown dataset \"lungs\" in --datasets: use pneumonia, skin")
        #expect(MedSynth.exitCode(for: error) == .validationFailure)
    }
    let paper = try #require(try MedSynth.parseAsRoot(base + ["--datasets", "skin", "--no-fixes"]) as? ReproduceCommand.Paper)
    let spec = try paper.spec()
    #expect(spec.datasets == [.skin] && spec.fixesArms == nil)
    #expect(try ReproduceCommand.Paper.parse(["--out", "o"]).spec().datasets == [.pneumonia, .skin])
    // --jobs: checked against its range before any work; workers get the arguments without it.
    for bad in ["0", "65"] {
        do {
            _ = try MedSynth.parseAsRoot(base + ["--jobs", bad])
            Issue.record("--jobs \(bad) was accepted")
        } catch {
            #expect(MedSynth.exitCode(for: error) == .validationFailure)
            #expect(MedSynth.message(for: error).contains("--jobs"), "\(MedSynth.message(for: error))")
        }
    }
    #expect((try MedSynth.parseAsRoot(base + ["--jobs", "2"]) as? ReproduceCommand.Paper)?.jobs == 2)
    #expect(
        ExperimentCommand.workerArguments(["reproduce", "paper", "--jobs", "2", "--out", "o"])
            == ["reproduce", "paper", "--out", "o", "--worker"])
}

/// Issue #13: `train --out` into the folder of a registered model is refused before anything is
/// written, so the file behind `NAME@1` keeps the hash the registry holds; another folder trains.
@Test func trainRefusesToWriteOverARegisteredModel() throws {
    let folder = try makeTemporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = folder + "/runs.sqlite", out = folder + "/out"
    let train = ["train", "--dry-run", "--arch", "paper-cnn", "--epochs", "1", "--store", store]
    var first = try MedSynth.parseAsRoot(train + ["--out", out])
    try first.run()
    let runID = try onlyRun(in: store).id
    var register = try MedSynth.parseAsRoot(["models", "register", runID, "--name", "breast", "--store", store])
    try register.run()
    let weights = out + "/model.safetensors"
    let before = try Data(contentsOf: URL(fileURLWithPath: weights))
    var again = try MedSynth.parseAsRoot(train + ["--out", out, "--seed", "5"])
    do {
        try again.run()
        Issue.record("trained over the registered breast@1")
    } catch {
        #expect("\(error)".contains(weights) && "\(error)".contains("breast"), "\(error)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: weights)) == before)
    var elsewhere = try MedSynth.parseAsRoot(train + ["--out", folder + "/other", "--seed", "5"])
    try elsewhere.run()
}
