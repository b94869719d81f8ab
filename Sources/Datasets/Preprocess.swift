/// How raw 8-bit images become a `LabeledImages` set.
public struct Preprocessing: Codable, Equatable, Sendable {
    /// Output side length: every image becomes `imageSize` x `imageSize`.
    public var imageSize: Int
    /// Output channels, 1 or 3; nil keeps the source's (3 if any image is colour, else 1).
    public var channels: Int?
    /// Float range of the output.
    public var scaling: PixelScaling

    /// Creates preprocessing options.
    public init(imageSize: Int = 28, channels: Int? = nil, scaling: PixelScaling = .unit) {
        self.imageSize = imageSize
        self.channels = channels
        self.scaling = scaling
    }

    /// Throws `invalidOption` for a size outside 1...4096 or channels other than 1 and 3.
    public func validate() throws {
        guard (1...4096).contains(imageSize) else {
            throw DatasetError.invalidOption(name: "image size", value: "\(imageSize)", reason: "must be 1...4096")
        }
        if let channels, channels != 1, channels != 3 {
            throw DatasetError.invalidOption(name: "channels", value: "\(channels)", reason: "must be 1 or 3")
        }
    }
}

/// Converts one HWC 8-bit image to CHW Floats: channel conversion, resize, scaling.
///
/// Gray to RGB replicates the plane; RGB to gray uses ITU-R BT.601 luma
/// (0.299 R + 0.587 G + 0.114 B). Resizing is separable: per axis, area averaging when
/// shrinking, bilinear (half-pixel centres) when enlarging, a copy when equal.
/// Appends `outChannels * size * size` Floats to `out`.
public func preprocessImage(
    _ src: UnsafeBufferPointer<UInt8>, width: Int, height: Int, channels: Int,
    outChannels: Int, size: Int, scaling: PixelScaling, into out: inout [Float]
) {
    precondition(src.count == width * height * channels, "pixel count mismatch")
    // (C', H, W) planes, C' = 1 when converting RGB to gray, else the source's channels.
    let planeCount = channels == 3 && outChannels == 1 ? 1 : channels
    var planes = [Float](repeating: 0, count: planeCount * height * width)
    let area = height * width
    if planeCount == 1 && channels == 3 {
        for p in 0..<area {
            planes[p] = 0.299 * Float(src[3 * p]) + 0.587 * Float(src[3 * p + 1]) + 0.114 * Float(src[3 * p + 2])
        }
    } else {
        for p in 0..<area { for c in 0..<channels { planes[c * area + p] = Float(src[p * channels + c]) } }
    }
    let (divisor, offset): (Float, Float) = scaling == .unit ? (255, 0) : (127.5, -1)
    let resized = resizePlanes(planes, count: planeCount, width: width, height: height, size: size)
    let outArea = size * size
    for c in 0..<outChannels {
        let plane = planeCount == 1 ? 0 : c
        for p in 0..<outArea { out.append(resized[plane * outArea + p] / divisor + offset) }
    }
}

/// Resizes `count` planes of H x W Floats to `size` x `size` (separable, see `preprocessImage`).
public func resizePlanes(_ planes: [Float], count: Int, width: Int, height: Int, size: Int) -> [Float] {
    if width == size && height == size { return planes }
    let xWeights = axisWeights(from: width, to: size), yWeights = axisWeights(from: height, to: size)
    var out = [Float](repeating: 0, count: count * size * size)
    var row = [Float](repeating: 0, count: size * height)  // horizontally resized plane: (H, size)
    for c in 0..<count {
        let base = c * height * width
        for y in 0..<height {
            for (x, taps) in xWeights.enumerated() {
                var sum: Float = 0
                for (i, w) in taps { sum += planes[base + y * width + i] * w }
                row[y * size + x] = sum
            }
        }
        for (y, taps) in yWeights.enumerated() {
            for x in 0..<size {
                var sum: Float = 0
                for (i, w) in taps { sum += row[i * size + x] * w }
                out[(c * size + y) * size + x] = sum
            }
        }
    }
    return out
}

/// For each output index along one axis, the source indices and weights that produce it.
func axisWeights(from n: Int, to m: Int) -> [[(Int, Float)]] {
    if n == m { return (0..<m).map { [($0, Float(1))] } }
    let ratio = Double(n) / Double(m)
    if n > m {
        // Area averaging: output i covers source [i * ratio, (i + 1) * ratio).
        return (0..<m).map { i in
            let start = Double(i) * ratio, end = Double(i + 1) * ratio
            var taps = [(Int, Float)]()
            var j = Int(start)
            while Double(j) < end && j < n {
                let overlap = min(end, Double(j + 1)) - max(start, Double(j))
                if overlap > 1e-9 { taps.append((j, Float(overlap / ratio))) }
                j += 1
            }
            return taps
        }
    }
    // Bilinear with half-pixel centres, clamped at the borders.
    return (0..<m).map { i in
        let s = max(0, min(Double(n - 1), (Double(i) + 0.5) * ratio - 0.5))
        let j = Int(s), t = Float(s - Double(j))
        return j + 1 < n && t > 0 ? [(j, 1 - t), (j + 1, t)] : [(j, Float(1))]
    }
}

/// Accumulates preprocessed images into one NCHW buffer, resolving `channels: nil` at the end.
struct ImageAccumulator {
    let options: Preprocessing
    private(set) var pixels = [Float]()
    private(set) var labels = [Int]()
    private(set) var sources = [SampleSource]()
    private(set) var shapes = [ImageShape]()
    private var sawColour = false
    private var colourCount = 0, firstColour: String?

    init(options: Preprocessing) { self.options = options }

    /// Working channel count: the requested one, or 3 until we know all images are gray.
    private var workChannels: Int { options.channels ?? 3 }

    mutating func append(_ src: UnsafeBufferPointer<UInt8>, shape: ImageShape, label: Int, source: SampleSource) {
        preprocessImage(
            src, width: shape.width, height: shape.height, channels: shape.channels,
            outChannels: workChannels, size: options.imageSize, scaling: options.scaling,
            into: &pixels)
        sawColour = sawColour || shape.channels == 3
        if shape.channels == 3 { colourCount += 1; firstColour = firstColour ?? source.location }
        labels.append(label)
        sources.append(source)
        shapes.append(shape)
    }

    /// Says so when a few colour images among gray ones turn the whole set into 3 channels
    /// (`channels: nil` keeps colour when any image has it).
    var channelWarnings: [String] {
        guard options.channels == nil, let firstColour, colourCount < labels.count else { return [] }
        return [
            "\(colourCount) of \(labels.count) images are colour (first: \(firstColour)), so all are loaded as 3 channels; "
                + "pass --channels 1 to read them as gray"
        ]
    }

    /// The final set; with `channels: nil` and only gray sources, drops the replicated planes.
    func finish(classNames: [String]) -> LabeledImages {
        let size = options.imageSize, area = size * size
        var channels = workChannels, out = pixels
        if options.channels == nil && !sawColour {
            channels = 1
            out = (0..<labels.count).flatMap { n in pixels[n * 3 * area..<(n * 3 + 1) * area] }
        }
        return LabeledImages(
            classNames: classNames, channels: channels, height: size, width: size,
            pixels: out, labels: labels, sources: sources)
    }
}
