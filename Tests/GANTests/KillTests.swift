import Foundation
import TestSupport
import Testing

@testable import NN

/// SIGKILL at random moments while `gan train` writes a checkpoint after every step: whatever
/// checkpoint is on disk must load completely.
@Test func killDuringCheckpointWritesLeavesALoadableCheckpoint() async throws {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    for trial in 0..<4 {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-kill-\(UUID().uuidString)")
        let p = Process()
        p.executableURL = exe
        p.arguments = [
            "gan", "train", "--dry-run", "--max-steps", "100000", "--epochs", "100000", "--checkpoint-every", "1",
            "--grid-every", "100000", "--out", dir.path,
        ]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let checkpoint = dir.appendingPathComponent("checkpoint.safetensors")
        // Wait for the first checkpoint, then a little more (varying), then kill -9.
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: checkpoint.path) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(50 + trial * 73))
        kill(p.processIdentifier, SIGKILL)
        await exited(p)
        #expect(p.terminationReason == .uncaughtSignal)
        let file = try SafeTensors.read(checkpoint)
        #expect(file.metadata["format"] == "medsynth-gan-1")
        #expect(file.tensors.keys.contains { $0.hasPrefix("generator.") })
        try? FileManager.default.removeItem(at: dir)
    }
}

/// `medsynth gan train --dry-run` runs end to end on tiny fake data (the CI smoke test),
/// conditional too, and leaves grids, losses and a checkpoint.
@Test("gan train --dry-run end to end", arguments: [[], ["--conditional"]])
func dryRunEndToEnd(_ extra: [String]) async throws {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-dry-\(UUID().uuidString)")
    let p = Process()
    p.executableURL = exe
    p.arguments = ["gan", "train", "--dry-run", "--out", dir.path] + extra
    p.standardError = FileHandle.nullDevice
    try p.run()
    await exited(p)
    #expect(p.terminationStatus == 0)
    for f in ["checkpoint.safetensors", "losses.jsonl", "grid-final.png", "grid-epoch-0001.png"] {
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f) missing")
    }
}
