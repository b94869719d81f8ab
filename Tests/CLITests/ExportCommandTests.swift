import ArgumentParser
import Export
import Testing

@testable import medsynth

// `medsynth models export`: what it accepts and what it refuses, by name (no model is exported;
// Tests/ExportTests runs the exporter).

@Test func modelsExportTakesARegisteredModelOrACheckpoint() throws {
    #expect(throws: Never.self) { try MedSynth.parseAsRoot(["models", "export", "breast@champion", "--out", "m.onnx"]) }
    let checkpoint = try MedSynth.parseAsRoot(["models", "export", "--checkpoint", "c.safetensors", "--out", "m.onnx"])
    #expect((checkpoint as? ModelsCommand.ExportModel)?.format == .onnx)
}

@Test(arguments: [
    (["breast", "--format", "tflite"], "'tflite' is invalid for '--format <format>'. Please provide one of 'onnx'"),
    (["breast", "--checkpoint", "c.safetensors"], "not both"),
    ([], "or neither"),
])
func modelsExportRefusesNamingTheProblem(_ extra: [String], _ message: String) {
    guard case let .failure(refusal) = parse(["models", "export", "--out", "m.onnx"] + extra) else {
        Issue.record("\(extra) was accepted")
        return
    }
    #expect(refusal.message.contains(message), "\(refusal.message)")
}
