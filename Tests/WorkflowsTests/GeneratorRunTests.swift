import Datasets
import Foundation
import GAN
import TestSupport
import Testing
import Tracking

@testable import Workflows

/// A conditional GAN trained on real files by `GeneratorRun` records its data's manifest, and
/// `BalanceSpec` tops up the same split with it (the checkpoint records it); balancing on another
/// split seed is refused: the generator has seen that split's validation or test images.
@Test func aGeneratorRunOnFilesBalancesItsOwnSplit() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    let data = try writeFakeClassFolders(in: root.appendingPathComponent("data").path, seed: 1)
    var spec = GeneratorRunSpec()
    spec.generator = .cdcgan; spec.data = data; spec.seed = 2; spec.split = SplitChoice(seed: 4)
    spec.plan.maxSteps = 1; spec.gan.batchSize = 4; spec.ganWidth = 8
    let store = try RunStore(path: root.appendingPathComponent("runs.sqlite").path)
    let result = try GeneratorRun.train(spec, output: root.appendingPathComponent("gan"), store: store)
    let run = try store.run(try #require(result.runID))
    #expect(run.dataManifestHash?.count == 64)
    let manifest = try String(contentsOf: root.appendingPathComponent("gan/manifest.jsonl"), encoding: .utf8)
    let record = try JSONDecoder().decode(GeneratorRunRecord.self, from: Data(run.config.utf8))
    spec.plan.seed = 2; spec.plan.split = SplitChoice(seed: 4)  // the checkpoint's seed and split
    #expect(record.spec == spec && record.dcgan?.classes == 2)

    var balance = BalanceSpec(data: data, checkpoints: [result.checkpoint.path])
    balance.seed = 2  // generation's seed; the split is the checkpoint's
    balance.options.target = .count(20)
    var notes: [String] = []
    let set = try balance.write(to: root.appendingPathComponent("balanced").path) {
        if case .note(let s) = $0 { notes.append(s) }
    }
    #expect(set.perClass.map { $0.real + $0.synthetic } == [20, 20], "\(set.perClass)")
    #expect(set.perClass.allSatisfy { $0.synthetic > 0 })
    // The GAN's training images are the training split balancing tops up.
    #expect(manifest.split(separator: "\n").count == set.perClass.map(\.real).reduce(0, +), "\(manifest)")
    balance.splitSeed = 3
    #expect {
        try balance.write(to: root.appendingPathComponent("balanced-3").path)
    } throws: { ($0 as? OptionRefusal)?.description.contains("--split-seed 3: ") == true }
    #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("balanced-3").path))
    balance.splitSeed = 4  // the checkpoint's own, given explicitly
    try balance.write(to: root.appendingPathComponent("balanced-4").path)
}

/// `gan train` on a class selection (a merge and a seeded subsample of the shared skin set)
/// writes beside its manifest the same `selection.json` as `train`: the mapping, the caps with
/// their seed, and the images per class and split the manifest holds; the manifest names each
/// image's source class.
@Test func aGeneratorRunRecordsItsClassSelectionBesideTheManifest() throws {
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { removeTemporary(root.path) }
    var spec = GeneratorRunSpec()
    spec.data = sharedData("dermamnist-jpeg"); spec.seed = 3; spec.className = "malignant"; spec.channels = 3
    spec.selection = try ClassSelection(
        classes: "benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma", subsample: "benign=60,malignant=40",
        seed: 3)
    spec.plan.maxSteps = 1; spec.gan.batchSize = 4; spec.ganWidth = 8
    let output = root.appendingPathComponent("gan")
    _ = try GeneratorRun.train(spec, output: output)

    struct Row: Decodable {
        let split: String
        let `class`: String
        let source_class: String?
    }
    let rows = try String(contentsOf: output.appendingPathComponent("manifest.jsonl"), encoding: .utf8)
        .split(separator: "\n").map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
    // The GAN learns from the training images of its one class: malignant, merged from two source classes.
    #expect(rows.count > 20 && rows.count < 40 && rows.allSatisfy { $0.split == "train" && $0.class == "malignant" })
    #expect(Set(rows.compactMap(\.source_class)) == ["melanoma", "basal_cell_carcinoma"])
    let record =
        try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("selection.json")))
        as? [String: Any] ?? [:]
    #expect(
        record["summary"] as? String
            == "benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma; subsample benign=60,malignant=40 (seed 3)")
    #expect(record["counts"] as? [String: [String: Int]] == ["malignant": ["train": rows.count]])
    let selection = try #require(record["selection"] as? [String: Any])
    #expect((selection["classes"] as? [[String: Any]])?.count == 2 && selection["seed"] as? Int == 3)
    #expect((selection["caps"] as? [[String: Any]])?.compactMap { $0["count"] as? Int } == [60, 40])
}
