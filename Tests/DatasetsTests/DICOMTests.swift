import CDICOM
import Foundation
import TestSupport
import Testing

@testable import Datasets

// DICOM files are written by the tests themselves with DCMTK (`cdicom_write_test_file`), each
// carrying planted patient identifiers; every expected value below is computed by hand in the
// comment beside it, never taken from the reader's own output.

private let plantedName = "Zzyzx^Quentin"
private let plantedID = "PID-7731-QZ"
private let plantedBirthDate = "19010203"
private let plantedStudyDate = "20260704"

/// What one test file holds (`cdicom_write_spec` without C strings).
private struct Spec {
    var rows = 2, columns = 2, samples = 1, bitsAllocated = 16, bitsStored = 16
    var signed = false, frames = 1
    var photometric = "MONOCHROME2", modality = "CT"
    var rescale: (slope: Double, intercept: Double)? = nil
    var window: (center: Double, width: Double)? = nil
    var syntax = CDICOM_WRITE_EXPLICIT_LE
    var omitPixelData = false
    var planar = false
}

private func writeDICOM(_ path: String, _ spec: Spec, _ values: [Int32]) throws {
    let strings = [spec.photometric, spec.modality, plantedName, plantedID, plantedBirthDate, plantedStudyDate].map {
        (text: String) in strdup(text)!
    }
    defer { strings.forEach { free($0) } }
    var c = cdicom_write_spec()
    c.rows = Int32(spec.rows)
    c.columns = Int32(spec.columns)
    c.samples_per_pixel = Int32(spec.samples)
    c.bits_allocated = Int32(spec.bitsAllocated)
    c.bits_stored = Int32(spec.bitsStored)
    c.pixel_representation = spec.signed ? 1 : 0
    c.frames = Int32(spec.frames)
    c.photometric = UnsafePointer(strings[0])
    c.modality = UnsafePointer(strings[1])
    c.patient_name = UnsafePointer(strings[2])
    c.patient_id = UnsafePointer(strings[3])
    c.birth_date = UnsafePointer(strings[4])
    c.study_date = UnsafePointer(strings[5])
    if let rescale = spec.rescale {
        (c.has_rescale, c.rescale_slope, c.rescale_intercept) = (1, rescale.slope, rescale.intercept)
    }
    if let window = spec.window { (c.has_window, c.window_center, c.window_width) = (1, window.center, window.width) }
    c.syntax = spec.syntax
    c.omit_pixel_data = spec.omitPixelData ? 1 : 0
    c.planar_configuration = spec.planar ? 1 : 0
    var error = [CChar](repeating: 0, count: 512)
    let status = values.withUnsafeBufferPointer { cdicom_write_test_file(path, &c, $0.baseAddress, $0.count, &error, 512) }
    guard status == 0 else {
        throw DatasetError.writeFailed(
            path: path, reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

/// Writes a file into a fresh folder and reads its bytes back.
private func written(_ spec: Spec, _ values: [Int32], name: String = "x.dcm") throws -> (
    bytes: [UInt8], path: String, folder: String
) {
    let folder = try makeTemporaryFolder()
    let path = folder + "/" + name
    try writeDICOM(path, spec, values)
    return (try readFileBytes(path), path, folder)
}

private func decoded(_ spec: Spec, _ values: [Int32]) throws -> (DICOMImage, DecodedImage) {
    let file = try written(spec, values)
    defer { removeTemporary(file.folder) }
    #expect(sniffImageFormat(file.bytes) == .dicom)
    let image = try readDICOM(file.bytes, path: file.path)
    return (image, try decodeImage(file.bytes, path: file.path))
}

private let syntaxes: [(cdicom_write_syntax, String)] = [
    (CDICOM_WRITE_EXPLICIT_LE, "1.2.840.10008.1.2.1"), (CDICOM_WRITE_IMPLICIT_LE, "1.2.840.10008.1.2"),
    (CDICOM_WRITE_EXPLICIT_BE, "1.2.840.10008.1.2.2"), (CDICOM_WRITE_DEFLATED_LE, "1.2.840.10008.1.2.1.99"),
    (CDICOM_WRITE_RLE, "1.2.840.10008.1.2.5"), (CDICOM_WRITE_JPEG_LOSSLESS_SV1, "1.2.840.10008.1.2.4.70"),
    (CDICOM_WRITE_JPEG_LS_LOSSLESS, "1.2.840.10008.1.2.4.80"),
]

/// Two classes of DICOM files (`.dcm` and no extension), plus one broken file.
private func writeDICOMTree(in root: String, perClass: Int) throws {
    for (k, name) in ["air", "bone"].enumerated() {
        let folder = root + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let values = (0..<64).map { Int32(k * 2000 + ($0 * 37 + i * 11) % 1500) }
            let spec = Spec(
                rows: 8, columns: 8, bitsStored: 12, signed: false, rescale: (1, -1024),
                window: i % 2 == 0 ? (40, 400) : nil, syntax: i % 3 == 0 ? CDICOM_WRITE_RLE : CDICOM_WRITE_EXPLICIT_LE)
            try writeDICOM(folder + "/" + (i % 2 == 0 ? "img\(i).dcm" : "IM\(i)"), spec, values)
        }
    }
    try Data("not dicom".utf8).write(to: URL(fileURLWithPath: root + "/air/README"))  // no extension, no preamble: ignored
    try writeDICOM(root + "/bone/broken.dcm", Spec(omitPixelData: true), [0, 0, 0, 0])
}

private func run(_ arguments: [String], in folder: String) async throws -> (status: Int32, output: String) {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let p = Process()
    p.executableURL = exe
    p.arguments = arguments
    p.currentDirectoryURL = URL(fileURLWithPath: folder)
    let out = folder + "/cli-output.txt"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    defer { try? handle.close() }
    p.standardOutput = handle
    p.standardError = handle
    try p.run()
    await exited(p)  // off the cooperative pool: `train` runs for a while
    return (p.terminationStatus, try String(contentsOfFile: out, encoding: .utf8))
}

/// DICOM reading: pixel variants, transfer syntaxes, broken files, class folders and the CLI.
@Suite struct DICOMTests {

    // MARK: - Pixel variants

    /// 8-bit unsigned, no window: the percentile window. Values 0, 50, 100, 200 (n = 4):
    /// P0.5 sits at rank 0.015 -> 0 + 0.015 * 50 = 0.75; P99.5 at rank 2.985 -> 100 + 0.985 * 100 = 198.5.
    /// (x - 0.75) / 197.75 * 255: 0 -> 0 (clamped), 50 -> 63.51 -> 64, 100 -> 127.98 -> 128, 200 -> 255 (clamped).
    @Test func eightBitWithoutWindowUsesThePercentileWindow() throws {
        let (image, display) = try decoded(Spec(bitsAllocated: 8, bitsStored: 8, modality: "CR"), [0, 50, 100, 200])
        #expect(image.values == [0, 50, 100, 200])
        #expect(image.info.windowCenter == nil && image.info.bitsStored == 8 && image.info.modality == "CR")
        #expect(display.pixels == [0, 64, 128, 255])
        #expect(display.channels == 1 && display.width == 2 && display.height == 2)
    }

    /// MONOCHROME1 is the same mapping, inverted: 255 - [0, 64, 128, 255].
    @Test func monochrome1IsInverted() throws {
        let (_, display) = try decoded(
            Spec(bitsAllocated: 8, bitsStored: 8, photometric: "MONOCHROME1", modality: "CR"), [0, 50, 100, 200])
        #expect(display.pixels == [255, 191, 127, 0])
    }

    /// 12 of 16 bits, signed, slope 2, intercept -1024, window centre -1000, width 400.
    /// Stored -2048, -1, 0, 2047 -> modality -5120, -1026, -1024, 3070.
    /// LINEAR window: below -1000 - 0.5 - 199.5 = -1200 -> 0; above -1000 - 0.5 + 199.5 = -801 -> 255;
    /// -1026 -> ((-1026 + 1000.5) / 399 + 0.5) * 255 = 111.20 -> 111; -1024 -> 112.48 -> 112.
    @Test func twelveBitSignedWithRescaleAndWindow() throws {
        let spec = Spec(bitsStored: 12, signed: true, rescale: (2, -1024), window: (-1000, 400))
        let (image, display) = try decoded(spec, [-2048, -1, 0, 2047])
        #expect(image.values == [-5120, -1026, -1024, 3070])
        #expect(display.pixels == [0, 111, 112, 255])
        #expect(image.info.summary == "CT, 12/16-bit signed, MONOCHROME2")
    }

    /// 16-bit unsigned, full range: modality values exact; no window, so P0.5/P99.5 of
    /// [0, 1000, 30000, 65535]: rank 0.015 -> 15, rank 2.985 -> 30000 + 0.985 * 35535 = 65001.975.
    /// (1000 - 15) / 64986.975 * 255 = 3.865 -> 4; (30000 - 15) / 64986.975 * 255 = 117.66 -> 118.
    @Test func sixteenBitUnsigned() throws {
        let (image, display) = try decoded(Spec(), [0, 1000, 30000, 65535])
        #expect(image.values == [0, 1000, 30000, 65535])
        #expect(display.pixels == [0, 4, 118, 255])
    }

    /// 8-bit RGB, interleaved: values pass through unchanged (no window for colour).
    @Test func rgbEightBit() throws {
        let values: [Int32] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let (image, display) = try decoded(
            Spec(samples: 3, bitsAllocated: 8, bitsStored: 8, photometric: "RGB", modality: "XC"), values)
        #expect(display.channels == 3)
        #expect(display.pixels == values.map { UInt8($0) })
        #expect(image.info.photometric == "RGB")
    }

    /// Planar RGB (RR..GG..BB..) comes out interleaved: R = 255, 0, 0, 10; G = 0, 255, 0, 20; B = 0, 0, 255, 30.
    @Test func planarRGBIsInterleaved() throws {
        let planar: [Int32] = [255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30]
        let (_, display) = try decoded(
            Spec(samples: 3, bitsAllocated: 8, bitsStored: 8, photometric: "RGB", modality: "XC", planar: true), planar)
        #expect(display.pixels == [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    }

    /// 12-bit RGB in 16 bits: stored / 4095 * 255: 4095 -> 255, 2048 -> 127.53 -> 128, 100 -> 6.23 -> 6.
    @Test func rgbTwelveBitIsScaledTo8Bits() throws {
        let (_, display) = try decoded(
            Spec(rows: 1, columns: 1, samples: 3, bitsStored: 12, photometric: "RGB", modality: "XC"), [4095, 2048, 100])
        #expect(display.pixels == [255, 128, 6])
    }

    /// Every transfer syntax the writer can produce decodes to the same modality values: 12-bit
    /// unsigned, slope 1, intercept -1024: 0, 1, 2048, 4095 -> -1024, -1023, 1024, 3071 (a 3 x 2 image
    /// so that rows and columns differ).
    @Test(arguments: syntaxes.indices) func transferSyntaxesDecodeLosslessly(_ index: Int) throws {
        let (syntax, uid) = syntaxes[index]
        let spec = Spec(rows: 3, columns: 2, bitsStored: 12, rescale: (1, -1024), syntax: syntax)
        let (image, _) = try decoded(spec, [0, 1, 2048, 4095, 7, 100])
        #expect(image.info.transferSyntax == uid)
        #expect(image.values == [-1024, -1023, 1024, 3071, -1017, -924])
        #expect(image.width == 2 && image.height == 3)
    }

    /// RLE and JPEG lossless colour: the decoder's planar configuration is undone (HWC out).
    @Test(arguments: [CDICOM_WRITE_RLE.rawValue, CDICOM_WRITE_JPEG_LOSSLESS_SV1.rawValue]) func compressedRGBStaysInterleaved(
        _ raw: UInt32
    ) throws {
        let values: [Int32] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let spec = Spec(samples: 3, bitsAllocated: 8, bitsStored: 8, photometric: "RGB", syntax: cdicom_write_syntax(raw))
        let (_, display) = try decoded(spec, values)
        #expect(display.pixels == values.map { UInt8($0) })
    }

    // MARK: - Refusals and broken files

    /// Frame rule: a multi-frame file is refused (one frame per file), before decompression.
    @Test func multiFrameIsRefused() throws {
        let file = try written(Spec(bitsAllocated: 8, bitsStored: 8, frames: 2), Array(repeating: 3, count: 8))
        defer { removeTemporary(file.folder) }
        let error = try #require(throws: DatasetError.self) { try decodeImage(file.bytes, path: file.path) }
        #expect(
            error.description
                == "\(file.path): not supported: DICOM: multi-frame image (2 frames) is not supported; store one frame per file")
    }

    /// Cut inside an element (pixel data, the dataset, the meta header): `truncated`. Cut exactly
    /// before the Pixel Data element: the file parses, so the error says it may be cut short.
    @Test func truncatedFileIsReportedAsTruncated() throws {
        let file = try written(Spec(), [0, 1000, 30000, 65535])
        defer { removeTemporary(file.folder) }
        for cut in [3, 15, file.bytes.count - 200] {
            let error = try #require(throws: DatasetError.self) {
                try decodeImage(Array(file.bytes.dropLast(cut)), path: file.path)
            }
            guard case .truncated = error else {
                Issue.record("cut \(cut): \(error)")
                continue
            }
            #expect(error.description.contains("the file is cut short"))
        }
        let tag: [UInt8] = [0xE0, 0x7F, 0x10, 0x00, UInt8(ascii: "O"), UInt8(ascii: "W")]  // (7FE0,0010) OW, little endian
        let at = try #require((0...(file.bytes.count - tag.count)).last { file.bytes[$0..<$0 + tag.count].elementsEqual(tag) })
        let error = try #require(throws: DatasetError.self) { try decodeImage(Array(file.bytes[..<at]), path: file.path) }
        #expect(
            error.description.hasSuffix("no Pixel Data element (7FE0,0010): the file holds no image, or was cut short before it"))
    }

    @Test func missingPixelDataIsCorrupt() throws {
        let file = try written(Spec(omitPixelData: true), [0, 0, 0, 0])
        defer { removeTemporary(file.folder) }
        #expect(
            throws: DatasetError.corrupt(
                path: file.path,
                reason: "DICOM: no Pixel Data element (7FE0,0010): the file holds no image, or was cut short before it")
        ) {
            try decodeImage(file.bytes, path: file.path)
        }
    }

    /// A JPEG Lossless file whose meta header is patched to JPEG 2000 Lossless (same length UID):
    /// DCMTK has no JPEG 2000 decoder, so the error names the syntax.
    @Test func unsupportedTransferSyntaxIsNamed() throws {
        let file = try written(Spec(syntax: CDICOM_WRITE_JPEG_LOSSLESS_SV1), [0, 1000, 30000, 65535])
        defer { removeTemporary(file.folder) }
        var bytes = file.bytes
        let uid = Array("1.2.840.10008.1.2.4.70".utf8)
        let at = try #require((0...(bytes.count - uid.count)).first { bytes[$0..<$0 + uid.count].elementsEqual(uid) })
        bytes[at + uid.count - 2] = UInt8(ascii: "9")
        let error = try #require(throws: DatasetError.self) { try decodeImage(bytes, path: file.path) }
        guard case .unsupported = error else { Issue.record("\(error)"); return }
        #expect(error.description.contains("cannot decode transfer syntax 1.2.840.10008.1.2.4.90 (JPEG 2000"))
    }

    /// Rows x Columns over the limit is refused from the header (2 x 2 = 4 > 3).
    @Test func oversizedImageIsRefusedFromTheHeader() throws {
        let file = try written(Spec(), [0, 1, 2, 3])
        defer { removeTemporary(file.folder) }
        #expect(throws: DatasetError.imageTooLarge(path: file.path, width: 2, height: 2, limit: 3)) {
            try decodeImage(file.bytes, path: file.path, maxPixels: 3)
        }
    }

    @Test func unsupportedPhotometricIsNamed() throws {
        let file = try written(Spec(bitsAllocated: 8, bitsStored: 8, photometric: "PALETTE COLOR"), [0, 1, 2, 3])
        defer { removeTemporary(file.folder) }
        let error = try #require(throws: DatasetError.self) { try decodeImage(file.bytes, path: file.path) }
        #expect(
            error.description.hasSuffix(
                "photometric interpretation 'PALETTE COLOR' is not supported (MONOCHROME1, MONOCHROME2 and RGB are)"))
    }

    // MARK: - Class folders and the command line

    @Test func classFoldersOfDICOMLoadAndInspect() throws {
        let root = try makeTemporaryFolder()
        defer { removeTemporary(root) }
        try writeDICOMTree(in: root, perClass: 4)
        let (classes, _) = try scanClassFolders(at: root)
        #expect(classes.map { $0.files.count } == [4, 5])  // README left out; IM1, IM3 found by their preamble
        let loaded = try loadDataset(at: root, options: LoadOptions(preprocessing: Preprocessing(imageSize: 8)))
        #expect(loaded.images.count == 8 && loaded.images.channels == 1)
        #expect(
            loaded.skipped.map(\.reason) == [
                "\(root)/bone/broken.dcm: corrupt: DICOM: no Pixel Data element (7FE0,0010): the file holds no image, or was cut short before it"
            ])
        let report = try inspectDataset(at: root, options: LoadOptions(preprocessing: Preprocessing(imageSize: 8)))
        #expect(report.classes.map(\.dicom) == [["CT, 12/16-bit, MONOCHROME2": 4], ["CT, 12/16-bit, MONOCHROME2": 4]])
        #expect(report.text.contains("DICOM (modality, bits stored/allocated, photometric interpretation):"))
    }

    /// The real CLI on a DICOM tree: `data inspect` shows the DICOM kinds; `train --epochs 1` writes
    /// its model, manifest, metrics and run store. No output file (nor the printed output) holds the
    /// planted patient name, ID or dates, while the DICOM files themselves do.
    @Test func cliOutputsCarryNoPatientIdentifier() async throws {
        let work = try makeTemporaryFolder()
        defer { removeTemporary(work) }
        let data = work + "/data", out = work + "/out"
        try writeDICOMTree(in: data, perClass: 10)
        let sample = try readFileBytes(data + "/air/img0.dcm")
        #expect(String(decoding: sample, as: UTF8.self).contains(plantedName))  // the check below can fail

        let inspect = try await run(["data", "inspect", data, "--image-size", "8"], in: work)
        #expect(inspect.output.contains("CT, 12/16-bit, MONOCHROME2 (10)"), "\(inspect.output)")
        #expect(inspect.output.contains("bone/broken.dcm: corrupt: DICOM: no Pixel Data element"))
        try FileManager.default.moveItem(atPath: work + "/cli-output.txt", toPath: work + "/inspect-output.txt")

        let train = try await run(
            [
                "train", "--data", data, "--epochs", "1", "--arch", "paper-cnn", "--batch-size", "4",
                "--out", out, "--store", out + "/runs.sqlite",
            ], in: work)
        #expect(train.status == 0, "\(train.output)")
        let written = try FileManager.default.subpathsOfDirectory(atPath: out)
        #expect(written.contains("manifest.jsonl") && written.contains("runs.sqlite"), "\(written)")
        let manifest = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8)
        #expect(manifest.contains("\(data)/air/img0.dcm") && manifest.contains("sha256"))

        var checked = 0
        let outputs = written.map { out + "/" + $0 } + [work + "/inspect-output.txt", work + "/cli-output.txt"]
        for path in outputs
        where (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeRegular {
            let text = String(decoding: try readFileBytes(path), as: UTF8.self)
            for planted in [plantedName, "Zzyzx", plantedID, plantedBirthDate, plantedStudyDate] {
                #expect(!text.contains(planted), "\(path) holds \(planted)")
            }
            checked += 1
        }
        #expect(checked >= 5)
    }
}
