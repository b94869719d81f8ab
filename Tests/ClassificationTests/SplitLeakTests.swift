import Datasets
import Foundation
import TestSupport
import Testing

/// Reads a `manifest.jsonl` written by a command.
func readManifest(_ url: URL) throws -> [ManifestEntry] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
        try JSONDecoder().decode(ManifestEntry.self, from: Data($0.utf8))
    }
}

/// Issue #15: `gan train` and `train`, run from the command line on the same npz (which has no
/// test arrays), split it the same way: no image the classifier is tested on, compared by
/// SHA-256, is in the GAN's training set. The split has its own seed (`--split-seed`, default 0),
/// so runs with different `--seed`s share it; the second case leaked before it had (both
/// commands split with their `--seed`).
@Test(arguments: [
    (gan: ["--seed", "3"], train: ["--seed", "3"]),
    (gan: ["--seed", "1"], train: ["--seed", "2"]),
    (
        gan: ["--seed", "1", "--split-seed", "5", "--ratio", "7:1:2"],
        train: ["--seed", "2", "--split-seed", "5", "--ratio", "7:1:2"]
    ),
])
func ganTrainingNeverSeesAClassifierTestImage(gan ganArgs: [String], train trainArgs: [String]) async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-leak-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let npz = sharedData("pneumoniamnist/pneumoniamnist-trainval.npz")
    let checkpoint = dir.appendingPathComponent("gan/checkpoint.safetensors").path
    let gan = try await runMedsynth(
        [
            "gan", "train", "--data", npz, "--class", "normal", "--max-steps", "1", "--batch-size", "8",
            "--grid-every", "1000", "--no-track", "--out", dir.appendingPathComponent("gan").path,
        ] + ganArgs)
    #expect(gan.status == 0)
    let train = try await runMedsynth(
        [
            "train", "--data", npz, "--arch", "paper-cnn", "--epochs", "1", "--no-track",
            "--out", dir.appendingPathComponent("classifier").path,
        ] + trainArgs)
    #expect(train.status == 0)
    let ganImages = try readManifest(dir.appendingPathComponent("gan/manifest.jsonl"))
    let split = try readManifest(dir.appendingPathComponent("classifier/manifest.jsonl"))
    let testImages = split.filter { $0.split == .test }
    #expect(ganImages.count > 900 && ganImages.allSatisfy { $0.className == "normal" && $0.split == .train })
    #expect(testImages.count > 500)
    let leaked = Set(ganImages.map(\.sha256)).intersection(testImages.map(\.sha256))
    #expect(leaked.count == 0, "test images in the GAN's training set")
    // `balance` and `audit` take the checkpoint's split, and refuse another.
    let wrongSeed = ganArgs.contains("--split-seed") ? "0" : "9"
    for command in [
        ["balance", "--data", npz, "--gan", checkpoint, "--out", dir.appendingPathComponent("balanced").path],
        ["audit", "--data", npz, "--synthetic", checkpoint, "--count", "8", "--out", dir.appendingPathComponent("audit").path],
    ] {
        let refused = try await runMedsynth(command + ["--split-seed", wrongSeed], withErrors: true)
        #expect(refused.status != 0 && refused.stdout.contains("--split-seed \(wrongSeed)"), "\(command[0]): \(refused.stdout)")
    }
}

/// Issue #13: `train` and `gan train` list what loading left out or changed, as `data inspect`
/// does: an unreadable file by name and reason, and one colour JPEG that turns gray images into
/// three channels. Real breast and skin images.
@Test func trainAndGANTrainListSkippedFilesAndAColourImage() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-notes-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let fm = FileManager.default
    for name in ["malignant", "normal_or_benign"] {
        let source = sharedData("breastmnist-png/\(name)")
        try fm.createDirectory(at: dir.appendingPathComponent("data/\(name)"), withIntermediateDirectories: true)
        for file in try fm.contentsOfDirectory(atPath: source).sorted().prefix(12) {
            try fm.copyItem(atPath: source + "/" + file, toPath: dir.appendingPathComponent("data/\(name)/\(file)").path)
        }
    }
    let png = try Data(contentsOf: URL(fileURLWithPath: sharedData("breastmnist-png/malignant/breast_00004.png")))
    try png.prefix(40).write(to: dir.appendingPathComponent("data/normal_or_benign/broken.png"))
    let skin = sharedData("dermamnist-jpeg/dermatofibroma")
    try fm.copyItem(
        atPath: skin + "/" + (try fm.contentsOfDirectory(atPath: skin).sorted()[0]),
        toPath: dir.appendingPathComponent("data/malignant/colour.jpg").path)
    let data = dir.appendingPathComponent("data").path
    let outputs = [
        try await runMedsynth(
            [
                "train", "--data", data, "--arch", "paper-cnn", "--epochs", "1", "--no-track", "--out",
                dir.appendingPathComponent("c").path,
            ],
            withErrors: true),
        try await runMedsynth(
            [
                "gan", "train", "--data", data, "--class", "malignant", "--max-steps", "1", "--batch-size", "4", "--no-track",
                "--out", dir.appendingPathComponent("g").path,
            ], withErrors: true),
    ]
    for (command, result) in zip(["train", "gan train"], outputs) {
        #expect(result.status == 0, "\(command): \(result.stdout)")
        #expect(
            result.stdout.contains("skipped 1 unreadable file(s)") && result.stdout.contains("broken.png"),
            "\(command): \(result.stdout)")
        #expect(
            result.stdout.contains("1 of 25 images are colour") && result.stdout.contains("colour.jpg"),
            "\(command): \(result.stdout)")
    }
}
