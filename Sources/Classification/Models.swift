import Autodiff
import Foundation
import NN
import SeededRandom

/// Errors of the classification library; each names the value or file and the problem.
public enum ClassificationError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(field: String, value: String, reason: String)
    case invalidData(what: String, reason: String)
    case notAClassifier(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(field, value, reason): return "classifier \(field) \(value): \(reason)"
        case let .invalidData(what, reason): return "\(what): \(reason)"
        case let .notAClassifier(path, reason): return "\(path) is not a medsynth classifier: \(reason)"
        }
    }
}

/// The two classifier families.
public enum Architecture: String, Codable, Sendable, CaseIterable {
    /// The Keras-tutorial CNN the source paper followed.
    case paperCNN = "paper-cnn"
    /// A small ResNet with batch norm.
    case resnet
}

/// What a classifier looks like: family, input shape, classes, dropout.
public struct ClassifierConfig: Codable, Equatable, Sendable {
    public var arch: Architecture
    /// Side length S of the square input, 28...128.
    public var imageSize: Int
    /// Input channels C, 1 or 3.
    public var channels: Int
    /// Number of classes K (at least 2).
    public var classes: Int
    /// Dropout before the last layer of the paper CNN (the ResNet has none).
    public var dropout: Float

    /// Creates and validates a config.
    public init(arch: Architecture, imageSize: Int = 28, channels: Int = 1, classes: Int, dropout: Float = 0.5) throws {
        guard (28...128).contains(imageSize) else {
            throw ClassificationError.invalidConfig(field: "image size", value: "\(imageSize)", reason: "must be 28...128")
        }
        guard channels == 1 || channels == 3 else {
            throw ClassificationError.invalidConfig(field: "channels", value: "\(channels)", reason: "must be 1 or 3")
        }
        guard classes >= 2 else {
            throw ClassificationError.invalidConfig(field: "classes", value: "\(classes)", reason: "need at least 2")
        }
        guard dropout >= 0, dropout < 1 else {
            throw ClassificationError.invalidConfig(field: "dropout", value: "\(dropout)", reason: "must be in [0, 1)")
        }
        (self.arch, self.imageSize, self.channels, self.classes, self.dropout) = (arch, imageSize, channels, classes, dropout)
    }

    /// Conv blocks of the paper CNN: halve the side while it stays at least 3 (28: 3 blocks to
    /// 3x3; 64: 4 to 4x4; 128: 5 to 4x4).
    var paperBlocks: Int {
        var side = imageSize, blocks = 0
        while side / 2 >= 3 && blocks < 5 { side /= 2; blocks += 1 }
        return blocks
    }
}

/// An image classifier: (N, C, S, S) in [0, 1] -> logits (N, K). Softmax lives in the loss.
public final class Classifier: Layer {
    public let config: ClassifierConfig
    let body: any Layer
    public var isTraining = true

    /// Builds the network of `config` with weights drawn from `generator`.
    public init(_ config: ClassifierConfig, generator: inout SeededGenerator) {
        self.config = config
        switch config.arch {
        case .paperCNN: body = Self.paperCNN(config, generator: &generator)
        case .resnet: body = ResNet(config, generator: &generator)
        }
    }

    public var children: [(String, any Module)] { [("net", body)] }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try body(x) }

    /// [Conv3x3 -> ReLU -> MaxPool2] per block (widths 32, 64, 128, 128, 128), Flatten,
    /// Dense 128 ReLU, Dropout, Dense K: the Keras small-convnet tutorial (Chollet 2016).
    static func paperCNN(_ c: ClassifierConfig, generator g: inout SeededGenerator) -> Sequential {
        let widths = [32, 64, 128, 128, 128]
        var layers: [any Layer] = []
        var channels = c.channels, side = c.imageSize
        for b in 0..<c.paperBlocks {
            // "same" padding keeps S; the pool halves it (floor): (N, w_b, S/2^(b+1), S/2^(b+1)).
            layers += [Conv2d(channels, widths[b], kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2)]
            channels = widths[b]; side /= 2
        }
        layers += [
            Flatten(),  // (N, w * s * s), 128*3*3 at 28 px
            Linear(channels * side * side, 128, generator: &g), ReLU(),  // (N, 128)
            Dropout(c.dropout, generator: &g),
            Linear(128, c.classes, generator: &g),  // (N, K)
        ]
        return Sequential(layers)
    }
}

/// conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the input (through a 1x1 conv + BN when the
/// shape changes), then ReLU (He et al. 2016, "basic block").
final class BasicBlock: Layer {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let shortcut: Sequential?
    var isTraining = true

    init(_ inChannels: Int, _ outChannels: Int, stride: Int, generator g: inout SeededGenerator) {
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false, generator: &g)
        bn1 = BatchNorm2d(outChannels)
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, bias: false, generator: &g)
        bn2 = BatchNorm2d(outChannels)
        shortcut =
            stride != 1 || inChannels != outChannels
            ? Sequential([
                Conv2d(inChannels, outChannels, kernelSize: 1, stride: stride, bias: false, generator: &g),
                BatchNorm2d(outChannels),
            ])
            : nil
    }

    var children: [(String, any Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)] + (shortcut.map { [("shortcut", $0)] } ?? [])
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {  // x: (N, Cin, H, W)
        let y = try bn2(conv2(bn1(conv1(x), thenReLU: true)))  // (N, Cout, H/stride, W/stride)
        return try Tensor.residualReLU(y, shortcut.map { try $0(x) } ?? x)
    }
}

/// A small ResNet: a 3x3 stem, three stages of basic blocks (widths 32, 64, 128; the last two
/// halve the side), global average pooling and a linear layer. From 64 px the stem has stride 2
/// so the stages see at most 64x64 (and 32x32 from 128 px, with a max pool after the stem).
final class ResNet: Layer {
    let stem: Sequential, stages: Sequential, head: Linear
    var isTraining = true

    static let widths = [32, 64, 128]

    init(_ c: ClassifierConfig, blocksPerStage: Int = 1, generator g: inout SeededGenerator) {
        let stemStride = c.imageSize >= 64 ? 2 : 1
        var stemLayers: [any Layer] = [
            Conv2d(c.channels, Self.widths[0], kernelSize: 3, stride: stemStride, padding: 1, bias: false, generator: &g),
            BatchNorm2d(Self.widths[0]), ReLU(),  // (N, 32, S', S'), S' = S or S/2
        ]
        if c.imageSize >= 128 { stemLayers.append(MaxPool2d(3, stride: 2, padding: 1)) }  // (N, 32, S/4, S/4)
        stem = Sequential(stemLayers)
        var blocks: [any Layer] = []
        var inChannels = Self.widths[0]
        for (s, width) in Self.widths.enumerated() {
            for b in 0..<blocksPerStage {
                blocks.append(BasicBlock(inChannels, width, stride: s > 0 && b == 0 ? 2 : 1, generator: &g))
                inChannels = width
            }
        }
        // After the stages: (N, 128, ceil(S'/4), ceil(S'/4)); 7x7 at 28 px, 8x8 at 64 and 128 px.
        stages = Sequential(blocks)
        head = Linear(Self.widths[2], c.classes, generator: &g)
        Initializer.kaimingNormal(stem, generator: &g)
        Initializer.kaimingNormal(stages, generator: &g)
    }

    var children: [(String, any Module)] { [("stem", stem), ("stages", stages), ("fc", head)] }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try head(stages(stem(x)).globalAvgPool2d())  // (N, 128) -> (N, K)
    }
}
