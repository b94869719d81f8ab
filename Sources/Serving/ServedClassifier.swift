import Classification
import Datasets
import Foundation

/// A trained classifier (the checkpoint `medsynth train` and `medsynth experiment` write) behind
/// the server's inference protocol: images NCHW in [0, 1] in, class probabilities out.
public struct ServedClassifier: InferenceModel {
    public let name: String
    public let version: Int
    let predictor: Predictor

    /// Opens a classifier checkpoint as version `version` of `name`.
    public init(name: String, version: Int, checkpoint: URL) throws {
        self.name = name
        self.version = version
        predictor = try Predictor(checkpoint: checkpoint)
    }

    public var classNames: [String] { predictor.metadata.classNames }

    public var inputShape: (channels: Int, height: Int, width: Int) {
        let config = predictor.metadata.config
        return (config.channels, config.imageSize, config.imageSize)
    }

    public func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        // The protocol's pixels are in [0, 1]; a model trained on [-1, 1] gets them rescaled.
        let scaled = predictor.metadata.preprocessing.scaling == .unit ? pixels : pixels.map { $0 * 2 - 1 }
        let p = try predictor.probabilities(pixels: scaled, count: count)  // (N, K) row-major
        let k = classNames.count
        return (0..<count).map { Array(p[($0 * k)..<(($0 + 1) * k)]) }
    }

    /// The `ModelLoader` for classifier checkpoints (`medsynth serve` uses it).
    public static let loader: ModelLoader = { name, version, path in
        try ServedClassifier(name: name, version: version, checkpoint: URL(fileURLWithPath: path))
    }
}
