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

    /// Runs the model on a batch padded with zero images to `paddedCount(count)` and returns
    /// the first `count` rows (in evaluation mode each row depends on its image alone).
    public func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        // The protocol's pixels are in [0, 1]; a model trained on [-1, 1] gets them rescaled.
        var scaled = predictor.metadata.preprocessing.scaling == .unit ? pixels : pixels.map { $0 * 2 - 1 }
        let padded = count > 0 ? Self.paddedCount(count) : count
        if padded > count { scaled += [Float](repeating: 0, count: (padded - count) * (pixels.count / count)) }
        let p = try predictor.probabilities(pixels: scaled, count: padded)  // (N, K) row-major
        let k = classNames.count
        return (0..<count).map { Array(p[($0 * k)..<(($0 + 1) * k)]) }
    }

    /// The batch size a model run of `count` images uses: the next power of two.
    ///
    /// NOTE: every batch size the model runs keeps its oneDNN primitives and their blocked
    /// buffers (about 0.5 MB per image of the size for the 28 px ResNet); with every size from 1
    /// to 256 a client could make the server keep some 16 GB, with powers of two 9 sizes (about
    /// 256 MB). The padding costs at most as much compute again, on batches that are not full.
    static func paddedCount(_ count: Int) -> Int {
        count <= 1 ? 1 : 1 << (Int.bitWidth - (count - 1).leadingZeroBitCount)
    }

    /// The `ModelLoader` for classifier checkpoints (`medsynth serve` uses it).
    public static let loader: ModelLoader = { name, version, path in
        try ServedClassifier(name: name, version: version, checkpoint: URL(fileURLWithPath: path))
    }
}
