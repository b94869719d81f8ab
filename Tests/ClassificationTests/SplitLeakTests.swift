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
/// SHA-256, is in the GAN's training set.
@Test func ganTrainingNeverSeesAClassifierTestImage() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-leak-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let npz = sharedData("pneumoniamnist/pneumoniamnist-trainval.npz")
    let gan = try await runMedsynth([
        "gan", "train", "--data", npz, "--class", "normal", "--max-steps", "1", "--batch-size", "8",
        "--grid-every", "1000", "--seed", "3", "--no-track", "--out", dir.appendingPathComponent("gan").path,
    ])
    #expect(gan.status == 0)
    let train = try await runMedsynth([
        "train", "--data", npz, "--arch", "paper-cnn", "--epochs", "1", "--seed", "3", "--no-track",
        "--out", dir.appendingPathComponent("classifier").path,
    ])
    #expect(train.status == 0)
    let ganImages = try readManifest(dir.appendingPathComponent("gan/manifest.jsonl"))
    let split = try readManifest(dir.appendingPathComponent("classifier/manifest.jsonl"))
    let testImages = split.filter { $0.split == .test }
    #expect(ganImages.count > 900 && ganImages.allSatisfy { $0.className == "normal" && $0.split == .train })
    #expect(testImages.count > 500)
    let leaked = Set(ganImages.map(\.sha256)).intersection(testImages.map(\.sha256))
    #expect(leaked.count == 0, "test images in the GAN's training set")
}
