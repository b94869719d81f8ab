import Foundation
import Testing

@testable import Tracking

/// A finished run in `dir` that recorded `model.safetensors` and `reference.json`.
func recordRunWithModel(_ store: RunStore, in dir: URL) throws -> (runID: String, weights: URL) {
    let recorder = try RunRecorder.start(store: store, kind: .train, config: TrainConfig())
    let weights = dir.appendingPathComponent("model.safetensors")
    try Data([1, 2, 3, 4]).write(to: weights)
    try recorder.artifact(path: weights.path, kind: "model")
    try recorder.finish(status: .finished)
    return (recorder.runID, weights)
}

@Test(arguments: [
    "../../etc/x", "a/b", "", ".hidden", "..", "bell\u{7}", "new\nline", "space name", "-flag",
    String(repeating: "x", count: 65), "naïve",
])
func modelNamesOutsideThePatternAreRefused(_ name: String) throws {
    let (store, dir) = try makeStore()
    let (runID, _) = try recordRunWithModel(store, in: dir)
    do {
        _ = try store.register(runID: runID, name: name)
        Issue.record("\(String(reflecting: name)) was accepted")
    } catch let error as TrackingError {
        guard case .invalidModelName = error else { Issue.record("\(error)"); return }
        #expect(error.description.contains("[A-Za-z0-9]"))
    }
    #expect(try store.models().isEmpty)
}

@Test func goodModelNamesAreAccepted() throws {
    let (store, dir) = try makeStore()
    let (runID, _) = try recordRunWithModel(store, in: dir)
    for name in ["breast", "breast-v2", "Breast_2.1", "7"] { _ = try store.register(runID: runID, name: name) }
}

@Test func anArtifactThatIsNotTheRunsOwnModelFileIsRefused() throws {
    let (store, dir) = try makeStore()
    let (runID, _) = try recordRunWithModel(store, in: dir)
    let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-other-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
    try Data([9]).write(to: elsewhere.appendingPathComponent("model.safetensors"))
    try Data([9]).write(to: dir.appendingPathComponent("notes.txt"))
    for path in [
        "/etc/passwd", elsewhere.appendingPathComponent("model.safetensors").path, dir.appendingPathComponent("notes.txt").path,
        dir.path,
    ] {
        #expect(throws: TrackingError.self, "\(path)") { try store.register(runID: runID, name: "breast", artifactPath: path) }
    }
    // Nothing was recorded on the way: the run's model is still its own file.
    #expect(try store.artifacts(of: runID).map(\.kind) == ["model"])
    #expect(try store.register(runID: runID, name: "breast").artifactPath == dir.appendingPathComponent("model.safetensors").path)
}

@Test func aRegisteredArtifactThatChangedIsRefusedWhenLoaded() throws {
    let (store, dir) = try makeStore()
    let (runID, weights) = try recordRunWithModel(store, in: dir)
    let v1 = try store.register(runID: runID, name: "breast")
    try store.verifyArtifact(v1)
    #expect(throws: TrackingError.registeredArtifact(path: weights.path, models: ["breast@1"])) {
        try store.refuseOverwritingRegistered(weights.path)
    }
    try store.refuseOverwritingRegistered(dir.appendingPathComponent("other.safetensors").path)
    try Data([1, 2, 3, 5]).write(to: weights)  // another `train --out` into the same folder
    #expect(throws: TrackingError.self) { try store.verifyArtifact(v1) }
    do {
        _ = try store.modelCard(name: "breast", version: 1)
        Issue.record("the card of a changed artifact was written")
    } catch let error as TrackingError {
        guard case let .artifactChanged(model, path, _, _) = error else { Issue.record("\(error)"); return }
        #expect(model == "breast@1" && path == weights.path)
    }
    // Registering the run again refuses the changed file too.
    #expect(throws: TrackingError.self) { try store.register(runID: runID, name: "breast") }
}
