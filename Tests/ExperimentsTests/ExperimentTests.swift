import Foundation
import Testing
@testable import Experiments

/// A small copy of the breast-ultrasound set (30 malignant, 60 benign) in a temporary folder.
func smallDataset() throws -> String {
    let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/breastmnist-png")
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-\(UUID().uuidString)")
    for (name, n) in [("malignant", 30), ("normal_or_benign", 60)] {
        let src = shared.appendingPathComponent(name), dst = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path).sorted().prefix(n) {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dst.appendingPathComponent(f))
        }
    }
    return root.path
}

/// Every arm runs end to end on real images with tiny settings, and the three reports carry
/// what the issue asks for: per-arm counts, metrics as mean and spread, differences with
/// intervals, the baseline, alarms, curves, confusion matrices and grids.
@Test func everyArmRunsAndReportsAreComplete() throws {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-exp-out-\(UUID().uuidString)")
    var o = ExperimentOptions(data: try smallDataset(), output: out)
    o.seeds = [0, 1]
    o.classifier.epochs = 2
    o.classifier.batchSize = 16
    o.ganSteps = 2
    o.ganWidth = 4
    o.ganBatchSize = 8
    o.arch = .paperCNN
    var stages: [String] = []
    let report = try Experiment(options: o).run { if case .stage(let s) = $0 { stages.append(s) } }
    #expect(report.arms.map(\.name) == Arm.allCases.map(\.rawValue))
    #expect(report.minorityClasses == ["malignant"])
    let dcgan = try #require(report.arms.first { $0.name == "dcgan" })
    #expect(dcgan.trainImages["malignant"]!.synthetic == dcgan.trainImages["normal_or_benign"]!.real - dcgan.trainImages["malignant"]!.real)
    #expect(dcgan.balancedAccuracyVsOriginal != nil && dcgan.minorityRecallVsOriginal?["malignant"] != nil)
    #expect(!dcgan.gridPaths.isEmpty)
    let only = try #require(report.arms.first { $0.name == "synthetic-only" })
    #expect(only.trainImages.values.allSatisfy { $0.real == 0 && $0.synthetic > 0 })
    #expect(report.arms.allSatisfy { $0.curves.count == 2 && $0.confusionMatrix.flatMap { $0 }.reduce(0, +) == 2 * 9 })

    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json"))) as! [String: Any]
    let arm = (json["arms"] as! [[String: Any]])[0]
    let test = arm["test"] as! [String: Any]
    for key in ["accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "per_class"] { #expect(test[key] != nil, "\(key)") }
    #expect((test["balanced_accuracy"] as! [String: Any])["std"] != nil)
    #expect(json["majority_baseline"] != nil && arm["train_images"] != nil && arm["confusion_matrix"] != nil)
    let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
    #expect(md.contains("Recall malignant") && md.contains("Verdict"))
    let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("data:image/png;base64,"))
    #expect(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"))
}
