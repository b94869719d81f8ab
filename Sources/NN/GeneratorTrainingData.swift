import Autodiff

/// Real training images for a generator: (N, C, S, S) in [-1, 1], with class labels when
/// conditional (`GANTrainingData`, `DiffusionTrainingData`).
public struct GeneratorTrainingData: Sendable {
    public var pixels: [Float]
    public var count: Int, channels: Int, size: Int
    public var labels: [Int]?
    public var classNames: [String]

    public init(pixels: [Float], count: Int, channels: Int, size: Int, labels: [Int]?, classNames: [String]) {
        self.pixels = pixels; self.count = count; self.channels = channels; self.size = size
        self.labels = labels; self.classNames = classNames
    }

    /// The images at `indices` as one (n, C, S, S) batch, with their labels.
    public func batch(_ indices: [Int]) -> (Tensor, [Int]?) {
        let d = channels * size * size
        var b = [Float]()
        b.reserveCapacity(indices.count * d)
        for i in indices { b.append(contentsOf: pixels[(i * d)..<((i + 1) * d)]) }
        // The shape holds exactly the scalars gathered, so the initialiser cannot throw.
        return (try! Tensor(shape: [indices.count, channels, size, size], scalars: b), labels.map { l in indices.map { l[$0] } })
    }
}
