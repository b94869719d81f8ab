import ArgumentParser
import Foundation
import TestSupport
import Testing

@testable import medsynth

// `--generator diffusion` on `gan train` and `gan sample`: end to end on fake data (the dry run
// CI runs), and each refusal naming its option.

let diffusionTrain = ["gan", "train", "--generator", "diffusion", "--dry-run", "--out", "out"]

/// Train (dry run), resume, then sample the checkpoint with `gan sample`, which tells a diffusion
/// checkpoint from a GAN's by its metadata; `--generator dcgan` on it is refused.
@Test func diffusionDryRunTrainsResumesAndSamples() throws {
    let root = try makeTemporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let out = root + "/run"
    var train = try MedSynth.parseAsRoot([
        "gan", "train", "--generator", "diffusion", "--conditional", "--dry-run", "--max-steps", "3",
        "--out", out, "--no-track",
    ])
    try train.run()
    for file in ["checkpoint.safetensors", "losses.jsonl", "grid-final.png"] {
        #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file) missing")
    }
    var again = try MedSynth.parseAsRoot([
        "gan", "train", "--generator", "diffusion", "--conditional", "--dry-run", "--max-steps", "3",
        "--out", out, "--no-track",
    ])
    #expect {  // refuses to overwrite
        try again.run()
    } throws: { ($0 as? ValidationError)?.message.contains("already holds a run") == true }
    var resumed = try MedSynth.parseAsRoot([
        "gan", "train", "--generator", "diffusion", "--conditional", "--dry-run", "--max-steps", "5",
        "--out", out, "--no-track", "--resume",
    ])
    try resumed.run()
    let lines = try String(contentsOfFile: out + "/losses.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 5)
    var sample = try MedSynth.parseAsRoot([
        "gan", "sample", "--checkpoint", out + "/checkpoint.safetensors", "--class", "b",
        "--count", "3", "--sampling-steps", "2", "--out", root + "/s.npz",
    ])
    try sample.run()
    #expect(FileManager.default.fileExists(atPath: root + "/s.npz"))
    var wrong = try MedSynth.parseAsRoot([
        "gan", "sample", "--checkpoint", out + "/checkpoint.safetensors", "--class", "b",
        "--count", "3", "--generator", "dcgan", "--out", root + "/t.npz",
    ])
    #expect {
        try wrong.run()
    } throws: { "\($0)".contains("--generator dcgan: \(out)/checkpoint.safetensors holds a diffusion model") }
}

@Test(arguments: [
    (["--loss", "hinge"], "--loss"), (["--spectral-norm"], "--spectral-norm"), (["--lr-g", "1e-3"], "--lr-g"),
    (["--dp-noise-multiplier", "1"], "--dp-"), (["--image-size", "128"], "--image-size"),
    (["--width=12"], "--width"), (["--width=4"], "--width"), (["--sampling-steps=0"], "--sampling-steps"),
    (["--guidance-scale=nan"], "--guidance-scale"), (["--guidance-scale=-1"], "--guidance-scale"),
    (["--class-drop=1"], "--class-drop"), (["--lr=0"], "--lr"), (["--prediction", "x0"], "--prediction"),
])
func diffusionTrainRefusesNamingTheOption(_ extra: [String], _ option: String) {
    guard case let .failure(refusal) = parse(diffusionTrain + extra) else {
        Issue.record("\(extra) was accepted")
        return
    }
    #expect(refusal.message.contains(option), "\(refusal.message)")
}

@Test func diffusionOptionsAreRefusedWithAGAN() {
    for extra in [["--width", "16"], ["--attention"], ["--guidance-scale", "3"], ["--schedule", "linear"]] {
        guard case let .failure(refusal) = parse(["gan", "train", "--dry-run", "--out", "out"] + extra) else {
            Issue.record("\(extra) was accepted with a DCGAN")
            continue
        }
        #expect(refusal.message.contains(extra[0]) && refusal.message.contains("diffusion"), "\(refusal.message)")
    }
    if case let .failure(refusal) = parse([
        "gan", "sample", "--checkpoint", "c", "--count", "1", "--out", "o", "--generator", "cdcgan",
        "--sampling-steps", "5",
    ]) {
        #expect(refusal.message.contains("--sampling-steps"))
    } else {
        Issue.record("--sampling-steps accepted with --generator cdcgan")
    }
}

@Test func diffusionGoodValuesAreAccepted() {
    for arguments in [
        diffusionTrain,
        diffusionTrain + [
            "--width", "64", "--attention", "--prediction", "epsilon", "--schedule", "linear",
            "--lr", "1e-4", "--class-drop", "0", "--sampling-steps", "50",
            "--guidance-scale", "1", "--image-size", "64", "--conditional",
        ],
        [
            "gan", "sample", "--checkpoint", "c", "--count", "1", "--out", "o", "--sampling-steps", "1000",
            "--guidance-scale", "20",
        ],
        [
            "experiment", "--data", "d", "--out", "o", "--arms", "diffusion,diffusion+filter,diffusion@2+pretrain",
            "--diffusion-steps", "10", "--diffusion-width", "16",
        ],
    ] {
        if case let .failure(refusal) = parse(arguments) { Issue.record("\(arguments): \(refusal.message)") }
    }
}

@Test(arguments: [
    ("--diffusion-steps", "0"), ("--diffusion-batch-size", "0"), ("--diffusion-width", "12"),
    ("--diffusion-width", "4"), ("--diffusion-sampling-steps", "1001"), ("--guidance-scale", "inf"),
])
func experimentDiffusionOptionsAreRanged(_ option: String, _ value: String) {
    guard
        case let .failure(refusal) = parse([
            "experiment", "--data", "d", "--out", "o", "--arms", "diffusion", "\(option)=\(value)",
        ])
    else {
        Issue.record("\(option) \(value) was accepted")
        return
    }
    #expect(refusal.message.contains(option), "\(refusal.message)")
}
