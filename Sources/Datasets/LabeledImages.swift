/// The three parts of a dataset.
public enum Split: String, Codable, CaseIterable, Sendable {
    /// Fitting the model.
    case train
    /// Model selection and early stopping.
    case val
    /// Final, untouched evaluation.
    case test
}

/// How 8-bit pixels become Floats.
public enum PixelScaling: String, Codable, CaseIterable, Sendable {
    /// `p / 255`, in [0, 1] (classifiers).
    case unit
    /// `p / 127.5 - 1`, in [-1, 1] (GANs with a tanh generator).
    case symmetric

    /// The Float that a black pixel (0) maps to.
    public var black: Float { self == .unit ? 0 : -1 }
    /// The Float that a white pixel (255) maps to.
    public var white: Float { 1 }
}

/// Where one sample came from and a hash of its exact bytes.
public struct SampleSource: Codable, Hashable, Sendable {
    /// A file path, or `file.npz#train_images[12]` for an array slice.
    public var location: String
    /// Lower-case hex SHA-256 of the file's bytes, or of the array slice's bytes.
    public var sha256: String
    /// The class the sample had in the data before a `ClassSelection` renamed or merged it
    /// (nil when no selection was applied).
    public var sourceClass: String?

    /// Creates a source record.
    public init(location: String, sha256: String, sourceClass: String? = nil) {
        self.location = location
        self.sha256 = sha256
        self.sourceClass = sourceClass
    }
}

/// Width, height and channels of an image as stored, before preprocessing.
public struct ImageShape: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// 1 (gray) or 3 (colour).
    public var channels: Int

    /// Creates a shape.
    public init(width: Int, height: Int, channels: Int) {
        (self.width, self.height, self.channels) = (width, height, channels)
    }

    /// `"28x28x1"`.
    public var description: String { "\(width)x\(height)x\(channels)" }
}

/// A labelled image set as plain Floats, ready for a tensor layer to wrap.
///
/// Legend: N samples, C channels, H height, W width. `pixels` is NCHW contiguous:
/// `pixels[((n * C + c) * H + y) * W + x]`.
public struct LabeledImages: Sendable {
    /// Class names; a label is an index into this array.
    public var classNames: [String]
    /// Number of samples (N).
    public var count: Int
    /// Channels (C): 1 or 3.
    public var channels: Int
    /// Height (H).
    public var height: Int
    /// Width (W).
    public var width: Int
    /// N * C * H * W values, NCHW.
    public var pixels: [Float]
    /// N labels in `0..<classNames.count`.
    public var labels: [Int]
    /// N source records, aligned with `labels`.
    public var sources: [SampleSource]

    /// Creates a set; the array sizes must agree with the dimensions.
    public init(
        classNames: [String], channels: Int, height: Int, width: Int, pixels: [Float],
        labels: [Int], sources: [SampleSource]
    ) {
        precondition(labels.count == sources.count, "labels and sources differ in count")
        precondition(pixels.count == labels.count * channels * height * width, "pixel count mismatch")
        self.classNames = classNames
        count = labels.count
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.sources = sources
    }

    /// Floats per image (C * H * W).
    public var imageSize: Int { channels * height * width }

    /// The CHW Floats of sample `index`.
    public func image(at index: Int) -> ArraySlice<Float> {
        pixels[index * imageSize..<(index + 1) * imageSize]
    }

    /// Samples per class, indexed by label.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for label in labels { counts[label] += 1 }
        return counts
    }

    /// A batch: the NCHW pixels and labels of `indices`, in that order.
    public func gather(_ indices: [Int]) -> (pixels: [Float], labels: [Int]) {
        var out = [Float]()
        out.reserveCapacity(indices.count * imageSize)
        for i in indices { out.append(contentsOf: image(at: i)) }
        return (out, indices.map { labels[$0] })
    }

    /// A new set holding `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledImages {
        let (pixels, labels) = gather(indices)
        return LabeledImages(
            classNames: classNames, channels: channels, height: height, width: width,
            pixels: pixels, labels: labels, sources: indices.map { sources[$0] })
    }
}
