import Datasets
import Foundation
import TestSupport
import Testing

@testable import Experiments

/// Options of a tiny experiment (2 seeds, 2 epochs, 2 GAN steps) on `smallDataset()`.
func tinyOptions(_ data: String, _ out: URL) -> ExperimentOptions {
    var o = ExperimentOptions(data: data, output: out)
    o.seeds = [0, 1]
    o.classifier.epochs = 2
    o.classifier.batchSize = 16
    o.ganSteps = 2
    o.ganWidth = 4
    o.ganBatchSize = 8
    o.arch = .paperCNN
    o.resamples = 200
    return o
}

/// Every arm runs end to end on real images with tiny settings, and the three reports carry
/// what the issue asks for: per-arm counts, metrics as mean and spread, corrected differences,
/// tuned decisions, acceptance rates, what helped, the generator audit, curves, confusion matrices
/// and grids; every seed trains its own generators; a second run resumes without retraining.
@Test func everyArmRunsReportsAreCompleteAndARerunResumes() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-out-\(UUID().uuidString)")
    var o = tinyOptions(try smallDataset(), out)
    o.ratioSweep = [0.5]
    var stages: [String] = []
    let report = try Experiment(options: o).run { if case .stage(let s) = $0 { stages.append(s) } }
    #expect(report.arms.map(\.name) == Arm.defaults.map(\.name) + ["cdcgan@0.5"])
    #expect(report.minorityClasses == ["malignant"])
    let dcgan = try #require(report.arms.first { $0.name == "dcgan" })
    #expect(
        dcgan.trainImages["malignant"]!.synthetic == dcgan.trainImages["normal_or_benign"]!.real
            - dcgan.trainImages["malignant"]!.real)
    #expect(dcgan.balancedAccuracyVsOriginal != nil && dcgan.minorityRecallVsOriginal?["malignant"] != nil)
    #expect(dcgan.tunedBalancedAccuracyVsOriginal != nil && dcgan.decisionRules.count == 2)
    #expect(!dcgan.gridPaths.isEmpty)
    let capped = try #require(report.arms.first { $0.name == "cdcgan@0.5" })
    #expect(capped.trainImages["malignant"]!.synthetic == capped.trainImages["malignant"]!.real / 2)
    #expect(report.ratioCurve.map(\.ratio) == [0.5])
    let filtered = try #require(report.arms.first { $0.name == "cdcgan+filter" })
    let acceptance = try #require(filtered.acceptance?["malignant"])
    let wanted = dcgan.trainImages["malignant"]!.synthetic  // per seed
    #expect(acceptance.candidates == 3 * 2 * wanted)  // 3 per wanted image, 2 seeds
    // Per seed the filter keeps min(wanted, confident - near copies); the counts are summed over seeds.
    let keptSeed0 = filtered.trainImages["malignant"]!.synthetic
    #expect(keptSeed0 <= wanted && acceptance.kept >= keptSeed0 && acceptance.kept <= 2 * wanted)
    #expect(acceptance.kept <= acceptance.confident - acceptance.nearCopies && acceptance.confident <= acceptance.candidates)
    let only = try #require(report.arms.first { $0.name == "synthetic-only" })
    #expect(only.trainImages.values.allSatisfy { $0.real == 0 && $0.synthetic > 0 })
    #expect(report.arms.allSatisfy { $0.curves.count == 2 && $0.confusionMatrix.flatMap { $0 }.reduce(0, +) == 2 * 9 })
    let helped = try #require(report.whatHelped)
    #expect(
        helped.minorityRecall["malignant"] != nil && helped.balancedAccuracy.seeds == 2 && helped.balancedAccuracy.testImages == 9
    )
    #expect(Set(report.generatorAudits.map(\.generator)) == ["dcgan", "cdcgan"])
    // The split is written as train writes its own: every image once, with its split.
    let manifest = try String(contentsOf: out.appendingPathComponent("manifest.jsonl"), encoding: .utf8)
        .split(separator: "\n").map { try JSONDecoder().decode(ManifestEntry.self, from: Data($0.utf8)) }
    #expect(manifest.filter { $0.split == .test }.count == 9 && Set(manifest.map(\.sha256)).count == manifest.count)
    #expect(manifest.filter { $0.split == .train }.count == report.arms[0].trainImages.values.map(\.real).reduce(0, +))

    // Every seed trains its own generators (different weights).
    let generators = out.appendingPathComponent("generators")
    let g0 = try Data(contentsOf: generators.appendingPathComponent("seed-0/cdcgan/checkpoint.safetensors"))
    let g1 = try Data(contentsOf: generators.appendingPathComponent("seed-1/cdcgan/checkpoint.safetensors"))
    #expect(g0 != g1)

    let json =
        try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json"))) as! [String: Any]
    let arm = (json["arms"] as! [[String: Any]])[0]
    let test = arm["test"] as! [String: Any]
    for key in ["accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "per_class"] { #expect(test[key] != nil, "\(key)") }
    #expect((test["balanced_accuracy"] as! [String: Any])["std"] != nil)
    #expect(
        json["majority_baseline"] != nil && arm["train_images"] != nil && arm["confusion_matrix"] != nil
            && json["what_helped"] != nil)
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    #expect(
        md.contains("Recall malignant") && md.contains("Verdict") && md.contains("## What helped") && md.contains("9 test images")
    )
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("data:image/png;base64,") && html.contains("id='what-helped'"))
    #expect(externalReferences(in: html).isEmpty, "\(externalReferences(in: html))")
    #expect(html.contains("content=\"\(PaperReport.contentSecurityPolicy)\""))

    // A re-run on the same folder reads every cell back: no generator or classifier is trained again.
    var resumed: [String] = [], trained: [String] = []
    let again = try Experiment(options: o).run { event in
        switch event {
        case .resumed(let s): resumed.append(s)
        case .ganStep(let name, _, _, _): trained.append(name)
        case .classifierEpoch(let arm, _, _, _, _): trained.append(arm)
        default: break
        }
    }
    #expect(trained.isEmpty, "retrained: \(Set(trained))")
    // Every cell; generators are not even loaded, except the first seed's two for the audit.
    #expect(resumed.count == 2 * report.arms.count + 2, "\(resumed)")
    #expect(again.arms.map(\.test.balancedAccuracy) == report.arms.map(\.test.balancedAccuracy))
}

/// Resuming needs the same settings: a folder of another experiment is refused, naming what changed.
@Test func resumeRefusesOtherSettings() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-settings-\(UUID().uuidString)")
    let data = try smallDataset()
    var o = tinyOptions(data, out)
    o.arms = ["original"]
    o.seeds = [0]
    o.audit = false
    _ = try Experiment(options: o).run()
    o.ganSteps = 3
    #expect(throws: ExperimentError.self) { try Experiment(options: o).run() }
    do { _ = try Experiment(options: o).run() } catch let error as ExperimentError {
        #expect("\(error)".contains("gan_steps: 2 -> 3"))
    }
}

@Test func armNamesParseAndRoundTrip() throws {
    for name in [
        "original", "augment", "augment+weighted", "dcgan", "cdcgan@2", "cdcgan@0.5+filter+pretrain+augment", "synthetic-only",
    ] {
        #expect(try Arm(parsing: name).name == name)
    }
    #expect(try Arm(parsing: "augment+cdcgan+filter").name == "cdcgan+filter+augment")
    let a = try Arm(parsing: "cdcgan@2+filter")
    #expect(a.generator == .cdcgan && a.ratio == 2 && a.filter && !a.pretrain)
    for bad in [
        "", "gan", "filter", "original+augment", "cdcgan+dcgan", "augment+augment", "cdcgan@0", "cdcgan@x", "augment@2",
        "pretrain+weighted",
    ] {
        #expect(throws: ExperimentError.self, "\(bad)") { try Arm(parsing: bad) }
    }
    let decoded = try JSONDecoder().decode([Arm].self, from: JSONEncoder().encode([a]))
    #expect(decoded == [a])
}

@Test func optionsOutsideTheirRangesAreRefusedBeforeAnyWork() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-range-\(UUID().uuidString)")
    let base = tinyOptions("/nonexistent", out)
    let cases: [(String, (inout ExperimentOptions) -> Void)] = [
        ("seeds", { $0.seeds = [] }), ("gan-steps", { $0.ganSteps = 0 }), ("max-synthetic-ratio", { $0.maxSyntheticRatio = -1 }),
        ("ratio-sweep", { $0.ratioSweep = [.nan] }), ("filter-quantile", { $0.filterQuantile = 1.5 }),
        ("resamples", { $0.resamples = 10 }), ("alpha", { $0.alpha = 0.9 }), ("lr", { $0.classifier.learningRate = -1 }),
        ("sweep-arm", { $0.sweepArm = "original" }), ("epochs", { $0.classifier.epochs = 0 }),
    ]
    for (name, change) in cases {
        var o = base
        change(&o)
        #expect(throws: ExperimentError.self, "\(name)") { try o.validate() }
        do { try o.validate() } catch { #expect("\(error)".contains("--\(name)"), "\(error)") }
    }
    // Validation comes before loading: a bad number is reported even though the data path does not exist.
    var o = base
    o.ganSteps = -1
    let error = #expect(throws: ExperimentError.self) { _ = try Experiment(options: o) }
    #expect(error.map { "\($0)".contains("--gan-steps") } == true, "\(String(describing: error))")
    #expect(!FileManager.default.fileExists(atPath: out.path))
}

/// A weighted generative arm whose synthesis balances every class (weights all 1) is named as a
/// duplicate of the unweighted arm; with unequal classes in any seed, or without weights, it is not.
@Test func weightedArmThatSynthesisBalancedIsNamedADuplicate() throws {
    let balanced = ["a": ImageCounts(real: 100, synthetic: 0), "b": ImageCounts(real: 30, synthetic: 70)]
    let capped = ["a": ImageCounts(real: 100, synthetic: 0), "b": ImageCounts(real: 30, synthetic: 30)]
    let note = try #require(uniformWeightsNote(try Arm(parsing: "diffusion+weighted"), trainImages: [balanced, balanced]))
    #expect(note.hasPrefix("diffusion+weighted trains exactly as diffusion: after synthesis every class holds 100 "))
    #expect(
        uniformWeightsNote(try Arm(parsing: "diffusion+filter+weighted"), trainImages: [balanced])?.contains(
            "exactly as diffusion+filter:") == true)
    #expect(uniformWeightsNote(try Arm(parsing: "diffusion+weighted"), trainImages: [balanced, capped]) == nil)
    #expect(uniformWeightsNote(try Arm(parsing: "diffusion"), trainImages: [balanced]) == nil)
    #expect(uniformWeightsNote(try Arm(parsing: "weighted"), trainImages: [balanced]) == nil)
}

/// An arm's alarms name the seeds that raised them, once each; one seed keeps the plain text.
@Test func alarmsNameTheSeedsThatRaisedThem() {
    let never = "class 'd' is never predicted (9 examples, recall 0)"
    let wrong = "class 'd' is never predicted correctly (9 examples, recall 0)"
    #expect(
        seedAlarms([0, 1, 2], [[never], [wrong], [never, never]])
            == ["\(never) in seeds 0, 2 of 3", "\(wrong) in seed 1 of 3"])
    #expect(seedAlarms([4, 7], [[never], [never]]) == ["\(never) in all 2 seeds"])
    #expect(seedAlarms([3], [[wrong, never]]) == [never, wrong])
}
