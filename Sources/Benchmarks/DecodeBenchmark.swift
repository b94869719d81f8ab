import Datasets
import Dispatch
import Foundation

/// How fast images decode and resize: every image of a class-folder tree, `repeats` times.
public struct DecodeBenchmarkResult: Sendable {
    public var images: Int
    public var repeats: Int
    /// Seconds per pass, the median.
    public var medianSeconds: Double
    /// The mean over passes of the sum of every output value (the same each pass; keeps the work alive).
    public var checksum: Double

    /// One line: images, passes, median time, throughput, checksum.
    public var summary: String {
        String(
            format: "%d images x %d runs: median %.4f s, %.0f images/s (checksum %.1f)",
            images, repeats, medianSeconds, Double(images) / medianSeconds, checksum)
    }
}

public enum DecodeBenchmark {
    /// Decodes and resizes (to `imageSize`, values in [0, 1]) every image under `path`, `repeats` times.
    public static func run(classFolders path: String, imageSize: Int, repeats: Int) throws -> DecodeBenchmarkResult {
        let files = try scanClassFolders(at: path).classes.flatMap(\.files)
        var times = [Double]()
        var checksum = 0.0
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            var out = [Float]()
            out.reserveCapacity(files.count * 3 * imageSize * imageSize)
            for file in files {
                let image = try decodeImage(at: file)
                image.pixels.withUnsafeBufferPointer {
                    preprocessImage(
                        $0, width: image.width, height: image.height, channels: image.channels,
                        outChannels: image.channels, size: imageSize, scaling: .unit, into: &out)
                }
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            checksum += out.reduce(0.0) { $0 + Double($1) }  // Double: a Float sum stalls at 2^24
        }
        return DecodeBenchmarkResult(
            images: files.count, repeats: repeats, medianSeconds: times.sorted()[times.count / 2],
            checksum: checksum / Double(repeats))
    }
}
