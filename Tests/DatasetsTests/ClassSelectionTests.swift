import Datasets
import Foundation
import TestSupport
import Testing

@Suite("Class selection: keep, rename, merge, subsample")
struct ClassSelectionTests {
    let skin = sharedData("dermamnist-jpeg")
    let pneumonia = sharedData("pneumoniamnist/pneumoniamnist-trainval.npz")

    func load(_ path: String, classes: String?, subsample: String? = nil, seed: UInt64 = 0) throws -> LoadedDataset {
        try loadDataset(
            at: path, options: LoadOptions(selection: try ClassSelection(classes: classes, subsample: subsample, seed: seed)))
    }

    @Test func mergesAndRenamesFolderClassesInTheGivenOrder() throws {
        let data = try load(
            skin, classes: "benign=melanocytic_nevus, malignant=melanoma+basal_cell_carcinoma,vascular_lesion,dermatofibroma")
        #expect(data.images.classNames == ["benign", "malignant", "vascular_lesion", "dermatofibroma"])
        #expect(data.images.classCounts == [5364, 890 + 411, 113, 92])
        let malignant = data.images.labels.indices.filter { data.images.labels[$0] == 1 }
        #expect(Set(malignant.map { data.images.sources[$0].sourceClass }) == ["melanoma", "basal_cell_carcinoma"])
        #expect(data.images.sources.allSatisfy { $0.location.contains("/\($0.sourceClass!)/") })
        #expect(data.originalShapes.count == data.images.count && data.presetSplits == nil)
    }

    @Test func subsampleIsSeededAndAppliedAfterMerging() throws {
        let classes = "benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma"
        let a = try load(skin, classes: classes, subsample: "benign=1800, malignant=1000", seed: 4)
        let b = try load(skin, classes: classes, subsample: "benign=1800, malignant=1000", seed: 4)
        let c = try load(skin, classes: classes, subsample: "benign=1800, malignant=1000", seed: 5)
        #expect(a.images.classCounts == [1800, 1000])
        #expect(a.images.sources == b.images.sources && a.images.pixels == b.images.pixels)
        #expect(Set(a.images.sources.map(\.location)) != Set(c.images.sources.map(\.location)))
        // The cap draws from the merged class: both source classes are represented.
        let malignant = a.images.labels.indices.filter { a.images.labels[$0] == 1 }.map { a.images.sources[$0].sourceClass }
        #expect(Set(malignant) == ["melanoma", "basal_cell_carcinoma"])
        // A cap above the class size keeps everything, with a warning.
        let loose = try load(skin, classes: classes, subsample: "malignant=5000")
        #expect(loose.images.classCounts == [5364, 1301])
        #expect(loose.warnings.contains { $0.contains("malignant=5000") && $0.contains("1301") })
    }

    @Test func npzSubsampleKeepsPresetSplitsAlignedAndTheManifestRecordsIt() throws {
        let data = try load(pneumonia, classes: nil, subsample: "normal=235,pneumonia=127", seed: 0)
        #expect(data.images.classNames == ["normal", "pneumonia"] && data.images.classCounts == [235, 127])
        #expect(data.presetSplits?.count == 362)
        let full = try loadDataset(at: pneumonia)
        let byLocation = Dictionary(
            uniqueKeysWithValues: full.images.sources.indices.map { (full.images.sources[$0].location, $0) })
        for (i, source) in data.images.sources.enumerated() {
            let j = try #require(byLocation[source.location])
            #expect(data.presetSplits![i] == full.presetSplits![j] && data.images.labels[i] == full.images.labels[j])
        }
        let split = try makeSplits(data, seed: 0, resplit: true)
        #expect(split.indices(of: .test).count == 37 && split.indices(of: .val).count == 37)
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        try writeSplitManifest(split.manifest(), selection: split.selection, to: dir + "/manifest.jsonl")
        let rows = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 362 && rows.allSatisfy { $0.contains("\"source_class\":\"") })
        let record =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/selection.json")))
            as! [String: Any]
        #expect(record["summary"] as? String == "all classes; subsample normal=235,pneumonia=127 (seed 0)")
        let counts = try #require(record["counts"] as? [String: [String: Int]])
        #expect(counts["pneumonia"]?.values.reduce(0, +) == 127 && counts["normal"]?["test"] == 24)
        let selection = try #require(record["selection"] as? [String: Any])
        #expect((selection["caps"] as? [[String: Any]])?.count == 2 && selection["seed"] as? Int == 0)
        // Renamed classes appear under their new name, the source class beside it; CSV gets the column.
        let renamed = try makeSplits(try load(pneumonia, classes: "healthy=normal,pneumonia"), seed: 0)
        let csv = try renderManifest(renamed.manifest(), format: .csv).split(separator: "\n")
        #expect(csv[0] == "index,source,class,split,sha256,synthetic,source_class")
        #expect(csv.dropFirst().contains { $0.contains(",healthy,") && $0.hasSuffix(",normal") })
        // Without a selection nothing changes (no column, no source class).
        #expect(
            try renderManifest(try makeSplits(try loadDataset(at: pneumonia), seed: 0).manifest(), format: .csv)
                .hasPrefix("index,source,class,split,sha256,synthetic\n"))
    }

    @Test func unknownClassNamesTheKnownOnes() throws {
        #expect(
            throws: DatasetError.classSelection(
                path: skin, option: "--classes",
                reason:
                    "class 'nevus' is not in the data; its classes are actinic_keratosis, basal_cell_carcinoma, benign_keratosis, "
                    + "dermatofibroma, melanocytic_nevus, melanoma, vascular_lesion")
        ) {
            try load(skin, classes: "benign=nevus,melanoma")
        }
        #expect(
            throws: DatasetError.classSelection(
                path: pneumonia, option: "--subsample",
                reason: "class 'normal' is not a selected class; they are healthy, pneumonia")
        ) {
            try load(pneumonia, classes: "healthy=normal,pneumonia", subsample: "normal=10")
        }
    }

    @Test func aSelectionWithoutImagesIsRefused() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let images = makeNPY(descr: "|u1", shape: [2, 2, 2], data: Array(repeating: 3, count: 8))
        let labels = makeNPY(descr: "|u1", shape: [2], data: [0, 0])
        try writeBytes(try makeNPZ([("train_images.npy", images), ("train_labels.npy", labels)]), to: dir + "/one.npz")
        let options = LoadOptions(classes: ["a", "b"], selection: try ClassSelection(classes: "b", subsample: nil, seed: 0))
        #expect(
            throws: DatasetError.classSelection(
                path: dir + "/one.npz", option: "--classes",
                reason: "the selection (b) leaves no image")
        ) {
            try loadDataset(at: dir + "/one.npz", options: options)
        }
    }

    @Test(
        "malformed or contradictory text is refused, naming the option",
        arguments: [
            ("a=x,b=x", nil), ("a=x+x", nil), ("a,a", nil), ("a,,b", nil), ("", nil), ("=x", nil), ("a=", nil),
            ("a=x+", nil), ("a=b=c", nil), (nil, "a=0"), (nil, "a=-3"), (nil, "a"), (nil, "a=x"), (nil, "=5"),
            (nil, "a=1,a=2"), (nil, "a=1,"),
        ] as [(String?, String?)])
    func malformed(_ classes: String?, _ subsample: String?) throws {
        do {
            _ = try ClassSelection(classes: classes, subsample: subsample, seed: 0)
            Issue.record("accepted --classes \(classes ?? "-") --subsample \(subsample ?? "-")")
        } catch let DatasetError.invalidOption(name, value, reason) {
            #expect(name == (classes != nil ? "--classes" : "--subsample"))
            #expect(!value.isEmpty || classes == "")
            #expect(!reason.isEmpty)
        }
    }

    @Test func textFormsAndDescription() throws {
        let s = try ClassSelection(
            classes: " benign = melanocytic_nevus ,malignant=melanoma+ basal_cell_carcinoma,dermatofibroma",
            subsample: "benign=1800", seed: 9)
        #expect(
            s.classes == [
                .init(name: "benign", sources: ["melanocytic_nevus"]),
                .init(name: "malignant", sources: ["melanoma", "basal_cell_carcinoma"]),
                .init(name: "dermatofibroma", sources: ["dermatofibroma"]),
            ])
        #expect(s.caps == [.init(className: "benign", count: 1800)])
        #expect(
            s.description == "benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma,dermatofibroma; "
                + "subsample benign=1800 (seed 9)")
        let twice = try ClassSelection(classes: "a=x,b=y", subsample: nil, seed: 0)
        #expect(
            throws: DatasetError.invalidOption(
                name: "--classes", value: "a=x,b=x",
                reason: "source class 'x' is used twice: each image belongs to one class")
        ) {
            var bad = twice
            bad.classes![1].sources = ["x"]
            try bad.validate()
        }
    }
}
