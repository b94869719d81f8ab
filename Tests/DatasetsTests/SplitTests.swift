import Datasets
import Foundation
import TestSupport
import Testing

@Suite("Splits and manifests")
struct SplitTests {
    @Test func ratioParsing() throws {
        #expect(try SplitRatio(parsing: "8:1:1") == .standard)
        #expect(try SplitRatio(parsing: "0.7:0.2:0.1").val == 0.2)
        #expect(try SplitRatio(parsing: "9:1").test == 0)
        for bad in ["", "8", "8:1:x", "0:1:1", "-1:1:1", "1:2:3:4", "8::1"] {
            #expect(throws: DatasetError.self, "\(bad)") { try SplitRatio(parsing: bad) }
        }
    }

    @Test func stratifiedAndReproducibleOnRealData() throws {
        let data = try loadDataset(at: sharedData("dermamnist-jpeg"))
        let a = try makeSplits(data, seed: 7), b = try makeSplits(data, seed: 7), c = try makeSplits(data, seed: 8)
        #expect(a.splits == b.splits)
        #expect(a.splits != c.splits)
        let labels = data.images.labels
        for (label, name) in data.images.classNames.enumerated() {
            let members = labels.indices.filter { labels[$0] == label }
            for split in Split.allCases {
                let n = members.filter { a.splits[$0] == split }.count
                let share = Double(n) / Double(members.count)
                #expect(n >= 1, "\(name) missing from \(split)")
                #expect(abs(share - (split == .train ? 0.8 : 0.1)) < 0.02, "\(name) \(split) share \(share)")
            }
        }
    }

    @Test func tinyClassesWarn() {
        let labels = [0, 0, 0, 0, 0, 0, 1, 1, 2]
        let result = stratifiedSplit(labels: labels, classNames: ["big", "two", "one"], ratio: .standard, seed: 1)
        #expect(result.warnings.count == 2)
        #expect(result.warnings.contains { $0.contains("'one'") })
        #expect(result.splits[8] == .train)
        #expect(Set([result.splits[6], result.splits[7]]) == [.train, .val])
        #expect(Set(result.splits[0..<6]) == [.train, .val, .test])
    }

    @Test func npzPresetSplitsKeptAndATestPartCarvedFromTrain() throws {
        let data = try loadDataset(at: sharedData("pneumoniamnist/pneumoniamnist-trainval.npz"))
        let preset = try #require(data.presetSplits)
        let kept = try makeSplits(data, seed: 1)
        // The official val split stays as it is; the test part comes out of the official train split.
        #expect(kept.indices(of: .val) == preset.indices.filter { preset[$0] == .val })
        #expect(kept.indices(of: .test).allSatisfy { preset[$0] == .train })
        let test = kept.indices(of: .test).count, train = kept.indices(of: .train).count
        #expect(test + train == 4708)
        #expect(abs(Double(test) / 4708 - 1.0 / 9) < 0.01)
        #expect(Set(kept.subset(.test).labels) == [0, 1])
        #expect(try makeSplits(data, seed: 1).splits == kept.splits)
        #expect(try makeSplits(data, seed: 2).splits != kept.splits)
        let redone = try makeSplits(data, ratio: .standard, seed: 1, resplit: true)
        #expect(redone.indices(of: .test).count > 500)
        #expect(redone.indices(of: .val) != kept.indices(of: .val))
        // The npz holds real duplicates across its train and val arrays: they are reported.
        #expect(kept.warnings.contains { $0.contains("duplicate") && $0.contains("different splits") })
    }

    @Test func identicalImagesShareASplit() throws {
        // 24 images stored twice or more (50 in all) in pneumoniamnist: none straddles train and test.
        let data = try loadDataset(at: sharedData("pneumoniamnist/pneumoniamnist-trainval.npz"))
        for split in [try makeSplits(data, seed: 1), try makeSplits(data, seed: 1, resplit: true)] {
            var seen = [String: Set<Split>]()
            for (i, s) in split.splits.enumerated() { seen[data.images.sources[i].sha256, default: []].insert(s) }
            let straddling = seen.values.filter { $0.contains(.test) && $0.contains(.train) }
            #expect(straddling.isEmpty)
        }
        let plain = stratifiedSplit(labels: Array(repeating: 0, count: 40), classNames: ["a"], ratio: .standard, seed: 5)
        let grouped = stratifiedSplit(
            labels: Array(repeating: 0, count: 40), classNames: ["a"], ratio: .standard, seed: 5,
            groups: (0..<40).map { "\($0 % 20)" })
        let together: [Bool] = (0..<20).map { plain.splits[$0] == plain.splits[$0 + 20] }
        #expect(together.contains(false))
        #expect((0..<20).allSatisfy { grouped.splits[$0] == grouped.splits[$0 + 20] })
    }

    @Test func explicitTestSetOverridesTestPart() throws {
        let root = try makeTemporaryFolder(), testRoot = try makeTemporaryFolder()
        defer { removeTemporary(root); removeTemporary(testRoot) }
        for cls in ["a", "b"] {
            for i in 0..<10 { try writeBytes(try png(UInt8(i + (cls == "a" ? 0 : 100))), to: "\(root)/\(cls)/\(i).png") }
            try writeBytes(try png(cls == "a" ? 250 : 251), to: "\(testRoot)/\(cls)/t.png")
        }
        let split = try makeSplits(
            try loadDataset(at: root), ratio: try SplitRatio(parsing: "8:2:5"), seed: 3,
            explicitTest: try loadDataset(at: testRoot, options: LoadOptions(classes: ["b", "a"])))
        #expect(split.images.count == 22)
        #expect(split.indices(of: .test) == [20, 21])
        #expect(split.images.labels[20] == 1 && split.images.labels[21] == 0)  // matched by name, not index
        #expect(split.indices(of: .val).count == 4)  // 8:2 of 10 per class
        #expect(split.subset(.test).count == 2)
    }

    @Test func duplicatesAcrossClassesWarn() throws {
        let root = try makeTemporaryFolder()
        defer { removeTemporary(root) }
        for cls in ["a", "b"] {
            for i in 0..<3 { try writeBytes(try png(UInt8(i + (cls == "a" ? 0 : 10))), to: "\(root)/\(cls)/\(i).png") }
        }
        try writeBytes(try png(0), to: "\(root)/b/copy.png")
        let split = try makeSplits(try loadDataset(at: root), seed: 0)
        #expect(split.warnings.contains { $0.contains("different classes") && $0.contains("copy.png") })
    }

    @Test func manifestIsWrittenAtomicallyAsCSVAndJSONLines() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let split = try makeSplits(try loadDataset(at: sharedData("breastmnist-png")), seed: 0)
        try writeManifest(split.manifest(), to: dir + "/m.csv")
        try writeManifest(split.manifest(), to: dir + "/m.jsonl")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["m.csv", "m.jsonl"])
        let csv = try String(contentsOfFile: dir + "/m.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 625 && csv[0] == "index,source,class,split,sha256,synthetic")
        #expect(csv[1].hasSuffix(",false") && csv[1].contains(",malignant,"))
        let lines = try String(contentsOfFile: dir + "/m.jsonl", encoding: .utf8).split(separator: "\n")
        let entry = try JSONDecoder().decode(ManifestEntry.self, from: Data(lines[0].utf8))
        #expect(entry == split.manifest()[0])
        #expect(lines[0].contains("\"class\":\"malignant\""))
        #expect(
            try renderManifest(
                [
                    ManifestEntry(
                        index: 0, source: "a,\"b\".png", className: "x", split: .val,
                        sha256: "00", synthetic: false)
                ], format: .csv
            )
            .contains("0,\"a,\"\"b\"\".png\",x,val,00,false"))
    }
}

/// A tiny valid 4x4 gray PNG whose pixels are all `value`.
func png(_ value: UInt8) throws -> [UInt8] {
    try encodePNG(pixels: Array(repeating: value, count: 16), width: 4, height: 4, channels: 1)
}
