import Datasets
import Foundation
import TestSupport
import Testing

@Suite("MedMNIST .npz / .npy reader")
struct NPZTests {
    @Test("deflated and stored entries both read", arguments: [true, false])
    func readsBothCompressionMethods(deflate: Bool) throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let parts = try readNPZ(try makeMedMNIST(deflate: deflate), in: dir, name: "m.npz")
        #expect(parts.map(\.split) == [.train, .val])
        #expect(parts[0].count == 4 && parts[0].height == 5 && parts[0].channels == 1)
        #expect(parts[0].labels == [0, 1, 0, 1])
    }

    @Test("npy versions 1.0, 2.0 and 3.0 parse", arguments: [UInt8(1), 2, 3])
    func versions(version: UInt8) throws {
        let npy = makeNPY(descr: "<u2", shape: [3], data: [1, 0, 2, 0, 0, 1], version: version)
        let array = try parseNPY(npy, path: "v.npy", entry: "x")
        #expect(array.shape == [3] && array.integers() == [1, 2, 256])
    }

    @Test func labelDTypesAndShapes() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let images = makeNPY(descr: "|u1", shape: [3, 2, 2, 3], data: Array(repeating: 9, count: 36))
        for labels in [
            makeNPY(descr: "|u1", shape: [3], data: [0, 1, 2]),
            makeNPY(descr: "<i4", shape: [3, 1], data: [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]),
            makeNPY(descr: ">i2", shape: [3], data: [0, 0, 0, 1, 0, 2]),
        ] {
            let parts = try readNPZ(
                try makeNPZ([("test_images.npy", images), ("test_labels.npy", labels)]), in: dir, name: "t.npz")
            #expect(parts.count == 1 && parts[0].split == .test && parts[0].channels == 3 && parts[0].labels == [0, 1, 2])
        }
        #expect(try parseNPY(makeNPY(descr: "<i8", shape: [1], data: int64Bytes([-5])), path: "n", entry: "e").integers() == [-5])
    }

    @Test func loadsAsLabeledImagesWithNumericClassNames() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        try writeBytes(try makeMedMNIST(), to: dir + "/custom.npz")
        let data = try loadDataset(at: dir + "/custom.npz", options: LoadOptions(preprocessing: Preprocessing(imageSize: 5)))
        #expect(data.images.classNames == ["0", "1"])
        #expect(data.presetSplits == [.train, .train, .train, .train, .val, .val, .val, .val])
        #expect(data.images.sources[5].location == dir + "/custom.npz#val_images[1]")
        #expect(data.images.sources[5].sha256.count == 64)
        #expect(throws: DatasetError.labelOutOfRange(path: dir + "/custom.npz", entry: "train_labels", label: 1, classCount: 1)) {
            try loadDataset(at: dir + "/custom.npz", options: LoadOptions(classes: ["only"]))
        }
    }

    /// Each malformed input names the file, the array entry and the problem.
    @Test func malformedArraysGiveNamedErrors() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let labels = makeNPY(descr: "<i8", shape: [2, 1], data: int64Bytes([0, 1]))
        let good = makeNPY(descr: "|u1", shape: [2, 2, 2], data: Array(repeating: 1, count: 8))
        func npz(_ images: [UInt8], _ l: [UInt8]? = nil) throws -> [UInt8] {
            try makeNPZ([("train_images.npy", images), ("train_labels.npy", l ?? labels)])
        }
        var badMagic = good
        badMagic[1] = UInt8(ascii: "X")
        let cases: [([UInt8], String, String)] = [
            (try npz(badMagic), "train_images", "wrong magic"),
            (try npz(makeNPY(descr: "<f4", shape: [2, 2, 2], data: Array(repeating: 0, count: 32))), "train_images", "dtype"),
            (
                try npz(makeNPY(descr: "<i8", shape: [2, 2, 2], data: Array(repeating: 0, count: 64))), "train_images",
                "must be |u1"
            ),
            (
                try npz(makeNPY(descr: "|u1", shape: [3, 2, 2], data: Array(repeating: 1, count: 8))), "train_images",
                "needs 12 bytes"
            ),
            (try npz(makeNPY(descr: "|u1", shape: [2, 2, 2], data: Array(repeating: 1, count: 9))), "train_images", "trailing"),
            (try npz(makeNPY(descr: "|u1", shape: [2, 2, 2], data: [1], fortran: false)), "train_images", "truncated"),
            (
                try npz(makeNPY(descr: "|u1", shape: [2, 2, 2], data: Array(repeating: 1, count: 8), fortran: true)),
                "train_images", "fortran_order"
            ),
            (try npz(makeNPY(descr: "|u1", shape: [8], data: Array(repeating: 1, count: 8))), "train_images", "(N, H, W)"),
            (try npz(good, makeNPY(descr: "<i8", shape: [3], data: int64Bytes([0, 1, 1]))), "train_labels", "does not match"),
            (try npz(makeNPY(descr: "|u1", shape: [1 << 40, 1 << 30], data: [])), "train_images", "absurd"),
            (Array(try npz(good).dropLast(30)), "", "zip"),
            (try makeNPZ([("train_images.npy", good)]), "", "no train_/val_/test_"),
        ]
        for (bytes, entry, problem) in cases {
            do {
                _ = try readNPZ(bytes, in: dir, name: "bad.npz")
                Issue.record("expected an error for '\(problem)'")
            } catch let error as DatasetError {
                #expect(error.description.hasPrefix(dir + "/bad.npz: "), "\(error)")
                #expect(entry.isEmpty || error.description.contains("array '\(entry)'"), "\(error)")
                #expect(error.description.contains(problem), "\(error)")
            }
        }
        #expect(throws: DatasetError.emptyFile(path: dir + "/e.npz")) { try readNPZ([], in: dir, name: "e.npz") }
    }
}
