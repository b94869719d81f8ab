import Diffusion
import Foundation
import TestSupport
import Testing

@testable import Workflows

// `gan distill` as a workflow: a teacher trained by `gan train --generator diffusion` on a small
// real dataset, distilled on the same split; the refusals before any work.

/// The teacher: a width-8 conditional diffusion model, 2 updates on `data`'s training split.
func trainTinyTeacher(data: String, output: URL, seed: UInt64 = 0) throws -> URL {
    var spec = GeneratorRunSpec()
    spec.generator = .diffusion; spec.data = data; spec.conditional = true; spec.seed = seed
    spec.unetWidth = 8; spec.diffusion.batchSize = 8; spec.diffusion.samplingSteps = 4
    spec.plan.maxSteps = 2; spec.plan.gridEvery = 1000
    return try GeneratorRun.train(spec, output: output).checkpoint
}

@Test func distilsOnTheTeachersSplitAndRefusesWhatItShould() throws {
    let data = try smallDataset()
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { removeTemporary(data); removeTemporary(root.path) }
    let teacher = try trainTinyTeacher(data: data, output: root.appendingPathComponent("teacher"))
    var spec = DistillationRunSpec(teacher: teacher.path, data: data)
    spec.options.fromSteps = 4; spec.options.steps = 2; spec.options.iterations = 2; spec.options.batchSize = 8
    let out = root.appendingPathComponent("student")
    let result = try GeneratorRun.distill(spec, output: out)
    #expect(result.steps == 2)
    let student = try DiffusionImageSource(checkpoint: result.checkpoint)
    #expect(student.steps == 2 && student.guidanceScale == 1 && student.classNames == ["malignant", "normal_or_benign"])
    // The manifest is the teacher's: the same training images.
    #expect(
        try String(contentsOf: out.appendingPathComponent("manifest.jsonl"), encoding: .utf8)
            == String(contentsOf: root.appendingPathComponent("teacher/manifest.jsonl"), encoding: .utf8))

    // An existing run is not overwritten without --resume; --resume of a finished run is a no-op.
    #expect(throws: OptionRefusal.self) { try GeneratorRun.distill(spec, output: out) }
    #expect(try GeneratorRun.distill(spec, output: out, resume: true).steps == 2)
    // Another split than the teacher's recorded one is refused; the student records the teacher's.
    var otherSplit = spec
    otherSplit.splitSeed = 1
    #expect {
        try GeneratorRun.distill(otherSplit, output: root.appendingPathComponent("s1"))
    } throws: { "\($0)".contains("--split-seed 1: ") }
    #expect(try student.trainingSplit == DiffusionImageSource(checkpoint: teacher).trainingSplit)
    // Not a diffusion checkpoint; a size that is not the teacher's.
    var notDiffusion = spec
    notDiffusion.teacher = root.appendingPathComponent("teacher/manifest.jsonl").path
    #expect(throws: OptionRefusal.self) { try GeneratorRun.distill(notDiffusion, output: root.appendingPathComponent("x")) }
    var size = spec
    size.imageSize = 32
    #expect(throws: OptionRefusal.self) { try GeneratorRun.distill(size, output: root.appendingPathComponent("y")) }
}
