import Classification
import Foundation
import Serving

/// A trained classifier (`medsynth train`'s checkpoint) behind the server's inference protocol.
struct ServedClassifier: InferenceModel, @unchecked Sendable {
    let name: String
    let version: Int
    let predictor: Predictor

    var classNames: [String] { predictor.metadata.classNames }
    var inputShape: (channels: Int, height: Int, width: Int) {
        let c = predictor.metadata.config
        return (c.channels, c.imageSize, c.imageSize)
    }

    func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        let p = try predictor.probabilities(pixels: pixels, count: count)
        let k = classNames.count
        return (0..<count).map { Array(p[($0 * k)..<(($0 + 1) * k)]) }
    }

    /// Loads a classifier checkpoint; the stand-in TinyCNN files of the ops tests still load.
    static let loader: ModelLoader = { name, version, path in
        do {
            return ServedClassifier(name: name, version: version, predictor: try Predictor(checkpoint: URL(fileURLWithPath: path)))
        } catch {
            if let tiny = try? TinyCNN.loader(name, version, path) { return tiny }
            throw error
        }
    }
}
