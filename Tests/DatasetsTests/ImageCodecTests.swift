import CTurboJPEG
import Datasets
import Foundation
import SeededRandom
import TestSupport
import Testing

@Suite("PNG and JPEG decoding")
struct ImageCodecTests {
    /// (colour type, bit depth) pairs PNG allows, except palette (tested separately).
    static let directCases: [(Int, Int)] = [
        (0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (4, 8), (4, 16), (2, 8), (2, 16), (6, 8), (6, 16),
    ]

    @Test(
        "every gray/gray+alpha/RGB/RGBA bit depth decodes to 8-bit, alpha dropped",
        arguments: directCases)
    func directColourTypes(colorType: Int, bitDepth: Int) throws {
        let (w, h) = (5, 3)  // odd width exercises sub-byte row padding
        let perPixel = [0: 1, 2: 3, 4: 2, 6: 4][colorType]!
        let colour = colorType == 2 || colorType == 6, alpha = colorType >= 4
        var rng = SeededGenerator(seed: UInt64(colorType * 100 + bitDepth))
        let maxValue = (1 << bitDepth) - 1
        let samples = (0..<w * h * perPixel).map { _ in rng.int(below: maxValue + 1) }
        let png = makePNG(width: w, height: h, bitDepth: bitDepth, colorType: colorType, samples: samples)
        let image = try decodeImage(png, path: "case.png")
        #expect(image.width == w && image.height == h && image.channels == (colour ? 3 : 1))
        let channels = colour ? 3 : 1
        for p in 0..<w * h {
            for c in 0..<channels {
                let v = samples[p * perPixel + c]
                let expected = Double(v) * 255 / Double(maxValue)
                let got = Double(image.pixels[p * channels + c])
                // 16-bit samples round to the nearest 8-bit value; low depths scale exactly.
                #expect(
                    abs(got - expected) <= (bitDepth == 16 ? 1 : 0.5),
                    "pixel \(p) channel \(c): \(got) vs \(expected)\(alpha ? " (alpha \(samples[p * perPixel + perPixel - 1]))" : "")"
                )
            }
        }
    }

    @Test("palette images of every bit depth decode to RGB", arguments: [1, 2, 4, 8])
    func palette(bitDepth: Int) throws {
        let entries = 1 << bitDepth
        var palette = [UInt8]()
        for i in 0..<entries {
            palette += [UInt8(i * 37 % 256), UInt8(i * 91 % 256), UInt8(255 - i)]
        }
        var rng = SeededGenerator(seed: UInt64(bitDepth))
        let indices = (0..<7 * 2).map { _ in rng.int(below: entries) }
        let png = makePNG(width: 7, height: 2, bitDepth: bitDepth, colorType: 3, samples: indices, palette: palette)
        let image = try decodeImage(png, path: "palette.png")
        #expect(image.channels == 3)
        var expected = [UInt8]()
        for i in indices { expected += palette[i * 3..<i * 3 + 3] }
        #expect(image.pixels == expected)
    }

    @Test func encodePNGRoundTrips() throws {
        for channels in [1, 3] {
            var rng = SeededGenerator(seed: 9)
            let pixels = (0..<6 * 4 * channels).map { _ in UInt8(rng.int(below: 256)) }
            let png = try encodePNG(pixels: pixels, width: 6, height: 4, channels: channels)
            #expect(try decodeImage(png, path: "rt.png") == DecodedImage(width: 6, height: 4, channels: channels, pixels: pixels))
        }
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        try writePNG(to: dir + "/grid.png", pixels: [0, 128, 255, 64], width: 2, height: 2, channels: 1)
        #expect(try decodeImage(at: dir + "/grid.png").pixels == [0, 128, 255, 64])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["grid.png"])  // no temp file left
        #expect(throws: DatasetError.self) { try encodePNG(pixels: [1, 2], width: 1, height: 1, channels: 2) }
    }

    @Test func colourJPEGFromRealData() throws {
        let folder = sharedData("dermamnist-jpeg/melanoma")
        let file = try #require(FileManager.default.contentsOfDirectory(atPath: folder).sorted().first)
        let image = try decodeImage(at: folder + "/" + file)
        #expect(image.width == 28 && image.height == 28 && image.channels == 3)
    }

    @Test func grayJPEGRoundTripsApproximately() throws {
        let pixels = (0..<16 * 16).map { UInt8(($0 % 16) * 16) }
        let jpeg = try makeGrayJPEG(pixels, width: 16, height: 16)
        let image = try decodeImage(jpeg, path: "gray.jpg")
        #expect(image.channels == 1 && image.width == 16)
        let maxError = zip(image.pixels, pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(maxError < 24)
    }

    @Test func hugePNGHeaderIsRefusedBeforeDecoding() throws {
        // Signature + a valid IHDR announcing 100000 x 100000 RGB (30 GB) + a tiny IDAT.
        let png =
            pngSignature + ihdr(width: 100_000, height: 100_000, bitDepth: 8, colorType: 2)
            + pngChunk("IDAT", zlibStored([0, 1, 2, 3])) + pngChunk("IEND", [])
        #expect(throws: DatasetError.imageTooLarge(path: "huge.png", width: 100_000, height: 100_000, limit: defaultMaxPixels)) {
            try decodeImage(png, path: "huge.png")
        }
    }

    @Test func badBytesGiveNamedErrors() throws {
        let good = makePNG(width: 8, height: 8, bitDepth: 8, colorType: 0, samples: Array(repeating: 7, count: 64))
        #expect(throws: DatasetError.emptyFile(path: "e.png")) { try decodeImage([], path: "e.png") }
        #expect(throws: DatasetError.notAnImage(path: "t.png")) { try decodeImage(Array("hello\n".utf8), path: "t.png") }
        expectError(try decodeImage(Array(good.prefix(good.count - 30)), path: "cut.png"), is: "truncated", naming: "cut.png")
        var flipped = good
        flipped[60] ^= 0xFF  // inside IDAT: CRC no longer matches
        expectError(try decodeImage(flipped, path: "flip.png"), is: "corrupt", naming: "flip.png")
        let jpeg = try readFileBytes(
            sharedData(
                "dermamnist-jpeg/melanoma/"
                    + FileManager.default.contentsOfDirectory(atPath: sharedData("dermamnist-jpeg/melanoma")).sorted()[0]))
        expectError(try decodeImage(Array(jpeg.prefix(jpeg.count / 2)), path: "cut.jpg"), is: "truncated", naming: "cut.jpg")
        var damaged = jpeg
        for i in 6..<40 { damaged[i] = 0x55 }  // the tables after SOI are garbage, the end marker stays
        expectError(try decodeImage(damaged, path: "junk.jpg"), is: "corrupt", naming: "junk.jpg")
    }
}

/// Expects `body` to throw a `DatasetError` whose description names `path` and starts like `kind`.
func expectError<T>(
    _ body: @autoclosure () throws -> T, is kind: String, naming path: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        _ = try body()
        Issue.record("expected a \(kind) error for \(path)", sourceLocation: sourceLocation)
    } catch let error as DatasetError {
        #expect(error.description.contains(path), "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(kind), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("not a DatasetError: \(error)", sourceLocation: sourceLocation)
    }
}

/// A gray baseline JPEG made with TurboJPEG.
func makeGrayJPEG(_ pixels: [UInt8], width: Int, height: Int) throws -> [UInt8] {
    let handle = try #require(tjInitCompress())
    defer { tjDestroy(handle) }
    var buffer: UnsafeMutablePointer<UInt8>?
    var size: UInt = 0
    let status = pixels.withUnsafeBufferPointer {
        tjCompress2(
            handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_GRAY.rawValue), &buffer, &size,
            Int32(TJSAMP_GRAY.rawValue), 90, 0)
    }
    defer { tjFree(buffer) }
    try #require(status == 0)
    return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
}
