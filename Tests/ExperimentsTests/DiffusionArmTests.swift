import Foundation
import TestSupport
import Testing

@testable import Experiments

@Test func diffusionArmsParseLikeTheGANs() throws {
    let arm = try Arm(parsing: "diffusion@2+filter+pretrain")
    #expect(arm.generator == .diffusion && arm.ratio == 2 && arm.filter && arm.pretrain)
    #expect(arm.name == "diffusion@2+filter+pretrain")
    #expect(arm.summary.hasPrefix("real + conditional diffusion images"))
    #expect(throws: ExperimentError.self) { try Arm(parsing: "diffusion+cdcgan") }
    #expect(GeneratorKind.diffusion.owns(folder: "diffusion") && !GeneratorKind.cdcgan.owns(folder: "diffusion"))
}

/// The diffusion arms run end to end on real images like the GANs': one conditional model per
/// seed (done.json marker), synthetic images up to the majority, filtered through the same judge,
/// audited side by side with the conditional DCGAN; a re-run reads everything back.
@Test func diffusionArmsRunBesideTheGANsAndResume() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-diffusion-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: out) }
    var o = tinyOptions(try smallDataset(), out)
    o.seeds = [0]
    o.arms = ["original", "cdcgan", "diffusion", "diffusion+filter"]
    o.diffusionSteps = 3; o.diffusionWidth = 8; o.diffusionBatchSize = 8; o.diffusionSamplingSteps = 2
    let report = try Experiment(options: o).run()
    #expect(report.arms.map(\.name) == ["original", "cdcgan", "diffusion", "diffusion+filter"])
    let diffusion = try #require(report.arms.first { $0.name == "diffusion" })
    let malignant = try #require(diffusion.trainImages["malignant"])
    #expect(malignant.synthetic == diffusion.trainImages["normal_or_benign"]!.real - malignant.real)
    #expect(diffusion.gridPaths.count == 1 && diffusion.synthesisSeconds != nil)
    let filtered = try #require(report.arms.first { $0.name == "diffusion+filter" }?.acceptance?["malignant"])
    #expect(filtered.candidates == 3 * malignant.synthetic)
    #expect(Set(report.generatorAudits.map(\.generator)) == ["cdcgan", "diffusion"])
    let dir = out.appendingPathComponent("generators/seed-0/diffusion")
    for file in ["done.json", "checkpoint.safetensors", "grid-final.png"] {
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), "\(file)")
    }
    var trained: [String] = []
    _ = try Experiment(options: o).run { if case .ganStep(let name, _, _, _) = $0 { trained.append(name) } }
    #expect(trained.isEmpty, "retrained: \(Set(trained))")
}

/// A diffusion model interrupted after its last checkpoint resumes from it, not from scratch.
@Test func anInterruptedDiffusionModelResumesFromItsCheckpoint() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-diffusion-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: out) }
    var o = tinyOptions(try smallDataset(), out)
    o.seeds = [0]; o.arms = ["diffusion"]; o.audit = false
    o.diffusionSteps = 4; o.diffusionWidth = 8; o.diffusionBatchSize = 8; o.diffusionSamplingSteps = 2
    _ = try Experiment(options: o).run()
    // Pretend the run stopped before it finished: no done marker.
    try FileManager.default.removeItem(at: out.appendingPathComponent("generators/seed-0/diffusion/done.json"))
    try FileManager.default.removeItem(at: out.appendingPathComponent("arms"))
    var resumed: [String] = [], steps: [Int] = []
    _ = try Experiment(options: o).run { event in
        switch event {
        case .resumed(let s): resumed.append(s)
        case .ganStep(_, let step, _, _): steps.append(step)
        default: break
        }
    }
    #expect(resumed.contains { $0.contains("from its checkpoint at step 4") }, "\(resumed)")
    #expect(steps.isEmpty, "trained again: \(steps)")
}
