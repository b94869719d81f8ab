import Autodiff
import Datasets
import Foundation
import NN
import SeededRandom

@testable import Serving

/// Test support: a small CNN, trained in seconds, that stands in for the project's classifier in
/// the route tests (same contract: NCHW in [0, 1], probabilities out). The production loader,
/// `ServedClassifier`, is tested end to end with a real classifier in `ClassifierServingTests`.
///
/// Shapes for a (N, C, 28, 28) input, K classes:
/// conv3x3(C->8) ReLU maxpool2 (N, 8, 14, 14); conv3x3(8->16) ReLU maxpool2 (N, 16, 7, 7);
/// flatten (N, 784); linear (N, K). H and W must be multiples of 4.
public final class TinyCNN: InferenceModel, @unchecked Sendable {
    // NOTE: @unchecked: after init the network is only read (eval mode, no gradients), and every
    // oneDNN call is serialised by the kernels' context lock, so concurrent `predict`s are safe.
    public let name: String
    public let version: Int
    public let classNames: [String]
    public let inputShape: (channels: Int, height: Int, width: Int)
    let network: Sequential

    /// A freshly initialised network.
    public init(name: String, version: Int = 0, classNames: [String], channels: Int, height: Int, width: Int, seed: UInt64 = 0) {
        precondition(height % 4 == 0 && width % 4 == 0, "TinyCNN needs H and W divisible by 4, got \(height)x\(width)")
        var generator = SeededGenerator(seed: seed)
        self.name = name
        self.version = version
        self.classNames = classNames
        self.inputShape = (channels, height, width)
        network = Sequential([
            Conv2d(channels, 8, kernelSize: 3, padding: 1, generator: &generator), ReLU(), MaxPool2d(2),
            Conv2d(8, 16, kernelSize: 3, padding: 1, generator: &generator), ReLU(), MaxPool2d(2),
            Flatten(), Linear(16 * (height / 4) * (width / 4), classNames.count, generator: &generator),
        ])
        network.train(false)
    }

    public func predict(_ pixels: [Float], count: Int) throws -> [[Float]] {
        let (c, h, w) = inputShape
        let x = try Tensor(shape: [count, c, h, w], scalars: pixels)
        let probabilities = try noGrad { try network(x).softmax() }.scalars  // (N, K)
        let k = classNames.count
        return (0..<count).map { Array(probabilities[$0 * k..<($0 + 1) * k]) }
    }

    /// Trains with Adam on class-balanced batches of `images` (NCHW, [0, 1]); returns the
    /// cross-entropy of each step.
    @discardableResult
    public func train(
        on images: LabeledImages, steps: Int, batchSize: Int = 32, learningRate: Float = 3e-3,
        seed: UInt64 = 0
    ) throws -> [Float] {
        network.train(true)
        defer { network.train(false) }
        let adam = Adam(network.parameters, learningRate: learningRate)
        var sampler = ClassBalancedSampler(labels: images.labels, classCount: classNames.count, seed: seed)
        var losses: [Float] = []
        for _ in 0..<steps {
            let (pixels, labels) = images.gather(sampler.nextBatch(size: batchSize))
            let x = try Tensor(shape: [labels.count, inputShape.channels, inputShape.height, inputShape.width], scalars: pixels)
            network.zeroGrad()
            let loss = try Loss.crossEntropy(network(x), labels: labels)
            loss.backward()
            adam.step()
            losses.append(loss.item)
        }
        return losses
    }

    /// Writes the weights as safetensors, with the class names and input shape in the metadata.
    public func save(to url: URL) throws {
        let metadata = [
            "medsynth.architecture": "tiny-cnn",
            "medsynth.classNames": classNames.joined(separator: "\n"),
            "medsynth.inputShape": "\(inputShape.channels),\(inputShape.height),\(inputShape.width)",
        ]
        try SafeTensors.write(network.stateDict(), metadata: metadata, to: url)
    }

    /// Opens a file written by `save`, as version `version` of `name`.
    public static func load(from url: URL, name: String, version: Int) throws -> TinyCNN {
        let (tensors, metadata) = try SafeTensors.read(url)
        let shape = (metadata["medsynth.inputShape"] ?? "").split(separator: ",").compactMap { Int($0) }
        guard metadata["medsynth.architecture"] == "tiny-cnn", shape.count == 3, shape[1] % 4 == 0, shape[2] % 4 == 0,
            let names = metadata["medsynth.classNames"]?.split(separator: "\n").map(String.init), names.count >= 2
        else { throw ServingError(status: 500, "\(url.path): not a tiny-cnn checkpoint (metadata \(metadata))") }
        let model = TinyCNN(
            name: name, version: version, classNames: names, channels: shape[0], height: shape[1], width: shape[2])
        try model.network.loadStateDict(tensors)
        return model
    }

    /// The `ModelLoader` for tiny-cnn checkpoints.
    public static let loader: ModelLoader = { name, version, path in
        try TinyCNN.load(from: URL(fileURLWithPath: path), name: name, version: version)
    }
}
