import Datasets
import TestSupport
import Testing

@Suite("Preprocessing")
struct PreprocessTests {
    func run(_ src: [UInt8], w: Int, h: Int, c: Int, outC: Int, size: Int, scaling: PixelScaling = .unit) -> [Float] {
        var out = [Float]()
        src.withUnsafeBufferPointer {
            preprocessImage($0, width: w, height: h, channels: c, outChannels: outC, size: size, scaling: scaling, into: &out)
        }
        return out
    }

    @Test func identityWhenSizesMatch() {
        #expect(run([0, 51, 102, 255], w: 2, h: 2, c: 1, outC: 1, size: 2) == [0, 0.2, 0.4, 1])
    }

    @Test func areaAveragingWhenShrinking() {
        // 4x4 -> 2x2: each output is the mean of a 2x2 block.
        let src: [UInt8] = [0, 10, 100, 100, 20, 30, 100, 100, 0, 0, 50, 50, 0, 0, 50, 250]
        let out = run(src, w: 4, h: 4, c: 1, outC: 1, size: 2).map { $0 * 255 }
        for (got, want) in zip(out, [Float(15), 100, 0, 100]) { #expect(abs(got - want) < 1e-3) }
        // 3 -> 2 (non-integer factor): output 0 covers source [0, 1.5).
        let row = resizePlanes([0, 30, 90, 0, 30, 90, 0, 30, 90], count: 1, width: 3, height: 3, size: 2)
        #expect(abs(row[0] - 10) < 1e-4 && abs(row[1] - 70) < 1e-4)
    }

    @Test func bilinearWhenEnlarging() {
        let out = resizePlanes([0, 100], count: 1, width: 2, height: 1, size: 4)
        // Half-pixel centres: x = 0.25 -> -0.375 (clamped 0), 0.125, 0.625, 1.125 -> 1 (clamped).
        #expect(out.prefix(4).map { ($0 * 1000).rounded() / 1000 } == [0, 25, 75, 100])
        let flat = resizePlanes(Array(repeating: 42, count: 9), count: 1, width: 3, height: 3, size: 7)
        #expect(flat.allSatisfy { abs($0 - 42) < 1e-4 })
    }

    @Test func channelConversion() {
        let gray = run([200], w: 1, h: 1, c: 1, outC: 3, size: 1)
        #expect(gray == Array(repeating: Float(200) / 255, count: 3))
        let px = run([100, 150, 200], w: 1, h: 1, c: 3, outC: 1, size: 1)
        #expect(abs(px[0] * 255 - (0.299 * 100 + 0.587 * 150 + 0.114 * 200)) < 1e-3)
        let rgb = run([1, 2, 3, 4, 5, 6], w: 2, h: 1, c: 3, outC: 3, size: 2)
        #expect(rgb.prefix(2).map { $0 * 255 } == [1, 4])  // CHW: red plane first
    }

    @Test func scalingRanges() {
        #expect(run([0, 255], w: 2, h: 1, c: 1, outC: 1, size: 2, scaling: .symmetric).prefix(2) == [-1, 1])
        #expect(run([0, 255], w: 2, h: 1, c: 1, outC: 1, size: 2, scaling: .unit).prefix(2) == [0, 1])
    }

    @Test func invalidOptionsAreRejected() {
        #expect(throws: DatasetError.self) { try Preprocessing(imageSize: 0).validate() }
        #expect(throws: DatasetError.self) { try Preprocessing(channels: 2).validate() }
    }

    @Test func loaderHonoursChannelsAndLayout() throws {
        let data = try loadDataset(
            at: sharedData("breastmnist-png"),
            options: LoadOptions(preprocessing: Preprocessing(imageSize: 14, channels: 3, scaling: .symmetric)))
        let images = data.images
        #expect(images.channels == 3 && images.height == 14 && images.pixels.count == images.count * 3 * 14 * 14)
        let first = Array(images.image(at: 0))
        #expect(first[0..<196] == first[196..<392])  // gray replicated into R and G planes
        #expect(images.pixels.allSatisfy { $0 >= -1 && $0 <= 1 })
        let batch = images.gather([3, 1])
        #expect(batch.labels == [images.labels[3], images.labels[1]])
        #expect(Array(batch.pixels[0..<images.imageSize]) == Array(images.image(at: 3)))
    }
}
