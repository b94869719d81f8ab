import Autodiff
import NN
import SeededRandom

/// A matrix of feature vectors, row-major (N, D), in Double for the statistics built on it.
public struct FeatureMatrix: Sendable, Equatable {
    /// Number of rows N.
    public let count: Int
    /// Feature dimension D.
    public let dimension: Int
    /// N * D values, row-major.
    public let values: [Double]

    public init(count: Int, dimension: Int, values: [Double]) throws {
        guard count >= 0, dimension > 0, values.count == count * dimension else {
            throw QualityError.invalidInput(
                "feature matrix (\(count), \(dimension)) needs \(count * dimension) values, got \(values.count)")
        }
        self.count = count; self.dimension = dimension; self.values = values
    }

    /// Rows of a (N, D) tensor, or of (N, C, H, W) flattened per row (pixel space).
    public init(_ t: Tensor) throws {
        guard t.rank >= 2, t.shape[0] > 0 else {
            throw QualityError.invalidInput("features need shape (N, D) or (N, C, H, W) with N > 0, got \(t.shape)")
        }
        try self.init(count: t.shape[0], dimension: t.count / t.shape[0], values: t.scalars.map(Double.init))
    }

    /// Row i.
    public func row(_ i: Int) -> ArraySlice<Double> { values[(i * dimension)..<((i + 1) * dimension)] }
}

/// Maps images (N, C, H, W) to feature vectors (N, D).
public protocol FeatureExtractor {
    /// A short name for reports ("random-cnn-seed0", "classifier").
    var name: String { get }
    /// Features (N, D) of `images` (N, C, H, W), computed without an autodiff graph.
    func features(_ images: Tensor) throws -> FeatureMatrix
}

/// A seeded, randomly initialised CNN: three conv3x3/ReLU blocks (the first two max-pooled)
/// and global average pooling. Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics for
/// Generative Models", Section 5) find random embeddings a sound choice where ImageNet features
/// do not transfer, as for 28 px medical images.
public final class RandomCNNFeatures: FeatureExtractor {
    public let name: String
    let net: Sequential

    /// Weights from Kaiming normal with a fixed `seed`: equal seeds give equal features.
    /// (N, C, H, W) -> (N, width) -> (N, 2 width, H/2, W/2) ... -> (N, 4 width).
    public init(channels: Int, width: Int = 32, seed: UInt64 = 0) {
        var g = SeededGenerator(seed: seed)
        net = Sequential([
            Conv2d(channels, width, kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2),  // (N, w, H/2, W/2)
            Conv2d(width, 2 * width, kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2),  // (N, 2w, H/4, W/4)
            Conv2d(2 * width, 4 * width, kernelSize: 3, padding: 1, generator: &g), ReLU(),  // (N, 4w, H/4, W/4)
            GlobalAvgPool2d(),  // (N, 4w)
        ])
        Initializer.kaimingNormal(net, generator: &g)
        net.train(false)
        name = "random-cnn-w\(width)-seed\(seed)"
    }

    public func features(_ images: Tensor) throws -> FeatureMatrix {
        try FeatureMatrix(noGrad { try batched(images) { try net($0) } })
    }
}

/// Features from any function of images, e.g. a trained classifier's body up to its
/// penultimate layer: `ClosureFeatures(name: "classifier") { try body($0) }`.
public struct ClosureFeatures: FeatureExtractor {
    public let name: String
    let body: (Tensor) throws -> Tensor

    public init(name: String, _ body: @escaping (Tensor) throws -> Tensor) { self.name = name; self.body = body }

    /// The output of `layer` in evaluation mode, flattened per image.
    public init(name: String, layer: any Layer) {
        self.init(name: name) { x in
            layer.train(false)
            return try layer(x)
        }
    }

    public func features(_ images: Tensor) throws -> FeatureMatrix {
        try FeatureMatrix(noGrad { try batched(images, body) })
    }
}

/// Runs `f` on chunks of 256 images and stacks the rows (bounded memory for large sets).
func batched(_ images: Tensor, _ f: (Tensor) throws -> Tensor) throws -> Tensor {
    let n = images.shape[0], chunk = 256
    guard n > chunk else { return try f(images) }
    var parts: [Tensor] = []
    for start in stride(from: 0, to: n, by: chunk) {
        let y = try f(images.slice(axis: 0, start: start, length: min(chunk, n - start)))
        parts.append(try y.reshaped([y.shape[0], -1]))
    }
    return try Tensor.concat(parts, axis: 0)
}
