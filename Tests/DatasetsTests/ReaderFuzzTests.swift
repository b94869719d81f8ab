import Datasets
import Foundation
import Fuzzing
import SeededRandom
import TestSupport
import Testing

/// `ReaderFuzz` (what `medsynth-fuzz` runs) on a thousand inputs from real seed files: every input
/// is fed and counted, each kind both decodes and is refused, and no reader throws anything but a
/// `DatasetError`. (The million-input run is in the README.)
@Test func theFuzzerFeedsEveryReaderAndCountsEveryInput() throws {
    let pngFolder = sharedData("breastmnist-png/malignant")
    let png = pngFolder + "/" + (try FileManager.default.contentsOfDirectory(atPath: pngFolder).sorted()[0])
    let jpegFolder = sharedData("dermamnist-jpeg/actinic_keratosis")
    let jpeg = jpegFolder + "/" + (try FileManager.default.contentsOfDirectory(atPath: jpegFolder).sorted()[0])
    let npz = sharedData("pneumoniamnist/pneumoniamnist-trainval.npz")
    let scratch = try makeTemporaryFolder()
    defer { removeTemporary(scratch) }
    let dicom = scratch + "/seed.dcm"
    try Data(try deflatedDICOM(pixelBytes: 256)).write(to: URL(fileURLWithPath: dicom))
    let seeds = try ReaderFuzz.seeds(from: [png, jpeg, npz, dicom], scratch: scratch)
    #expect(seeds.map(\.kind) == [.png, .jpeg, .npz, .npy, .dicom])
    let report = try ReaderFuzz.run(seeds: seeds, count: 1000, seed: 7, maxResidentBytes: 4 << 30, scratch: scratch)
    #expect(report.inputs == [.png: 200, .jpeg: 200, .npz: 200, .npy: 200, .dicom: 200])
    #expect(report.outcomes.values.reduce(0, +) == 1000)
    for kind in ["png", "jpeg", "npz", "npy", "dicom"] {
        #expect(report.outcomes["\(kind) decoded", default: 0] > 0, "\(report.outcomes)")
        #expect(report.outcomes.contains { $0.key.hasPrefix(kind + " ") && $0.key != "\(kind) decoded" }, "\(report.outcomes)")
    }
    #expect(!report.outcomes.keys.contains { $0.contains("other error") }, "\(report.outcomes)")
    // The same seed gives the same inputs; a ceiling below what the process holds stops the run.
    var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
    let bytes = (0..<200).map { UInt8($0) }
    #expect(ReaderFuzz.mutate(bytes, donor: bytes, &a) == ReaderFuzz.mutate(bytes, donor: bytes, &b))
    #expect(throws: ReaderFuzz.MemoryCeilingExceeded.self) {
        _ = try ReaderFuzz.run(seeds: seeds, count: 1000, seed: 7, maxResidentBytes: 1 << 20, scratch: scratch)
    }
}

/// Found by `medsynth-fuzz`: an IHDR whose sides are both near 2^32 multiplied past Int.max and
/// trapped before the pixel limit was checked; it is refused as too large.
@Test func aPNGHeaderWithTwoHugeSidesIsRefusedNotTrapped() throws {
    var header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
    header += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 8, 0, 0, 0, 0, 0, 0, 0, 0]
    #expect(throws: DatasetError.self) { _ = try decodeImage(header, path: "huge.png") }
}
