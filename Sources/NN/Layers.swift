import Autodiff
import Foundation
import SeededRandom

// Small layer types with torch names. Each: stored parameters, an init that says how weights
// are initialised (PyTorch's defaults unless stated), callAsFunction, and its named parameters.

/// y = x W^T + b. x (N, in) -> (N, out); weight (out, in).
public final class Linear: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    /// Divides the weight by its largest singular value on every forward (nil = off).
    public let spectralNorm: SpectralNorm?
    public var isTraining = true

    /// Weights and bias from U(-1/sqrt(in), 1/sqrt(in)), PyTorch's default.
    public init(
        _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, spectralNorm: Bool = false,
        generator: inout SeededGenerator
    ) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(.randomUniform([outFeatures, inFeatures], low: -bound, high: bound, generator: &generator))
        self.bias = bias ? Parameter(.randomUniform([outFeatures], low: -bound, high: bound, generator: &generator)) : nil
        self.spectralNorm = spectralNorm ? SpectralNorm(outputs: outFeatures, generator: &generator) : nil
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public var ownBuffers: [(String, Parameter)] { spectralNorm.map { [("weight_u", $0.u)] } ?? [] }
    /// The weight as used: spectrally normalised when enabled (one power-iteration step in training mode).
    public func effectiveWeight() throws -> Tensor {
        try spectralNorm.map { try $0(weight.tensor, update: isTraining) } ?? weight.tensor
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try Tensor.matmul(x, effectiveWeight(), transposeB: true)
        return try bias.map { try y + $0.tensor } ?? y
    }
}

/// 2-D convolution. (N, C, H, W) -> (N, K, P, Q); weight (K, C, R, S).
public final class Conv2d: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int, padding: Int
    /// Divides the weight, as a (K, C*R*S) matrix, by its largest singular value (nil = off).
    public let spectralNorm: SpectralNorm?
    public var isTraining = true

    /// Weights from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform with a = sqrt 5).
    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true, spectralNorm: Bool = false, generator: inout SeededGenerator
    ) {
        let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
        weight = Parameter(
            .randomUniform(
                [outChannels, inChannels, kernelSize, kernelSize], low: -bound, high: bound,
                generator: &generator))
        self.bias = bias ? Parameter(.randomUniform([outChannels], low: -bound, high: bound, generator: &generator)) : nil
        self.stride = stride; self.padding = padding
        self.spectralNorm = spectralNorm ? SpectralNorm(outputs: outChannels, generator: &generator) : nil
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public var ownBuffers: [(String, Parameter)] { spectralNorm.map { [("weight_u", $0.u)] } ?? [] }
    /// The weight as used: spectrally normalised when enabled (one power-iteration step in training mode).
    public func effectiveWeight() throws -> Tensor {
        try spectralNorm.map { try $0(weight.tensor, update: isTraining) } ?? weight.tensor
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.conv2d(weight: effectiveWeight(), bias: bias?.tensor, stride: stride, padding: padding)
    }
}

/// Transposed 2-D convolution. (N, C, H, W) -> (N, K, P, Q); weight (C, K, R, S).
public final class ConvTranspose2d: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int, padding: Int, outputPadding: Int
    public var isTraining = true

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        outputPadding: Int = 0, bias: Bool = true, generator: inout SeededGenerator
    ) {
        // PyTorch computes fan_in from weight.size(1) * k * k for transposed convolutions.
        let bound = 1 / Float(outChannels * kernelSize * kernelSize).squareRoot()
        weight = Parameter(
            .randomUniform(
                [inChannels, outChannels, kernelSize, kernelSize], low: -bound, high: bound,
                generator: &generator))
        self.bias = bias ? Parameter(.randomUniform([outChannels], low: -bound, high: bound, generator: &generator)) : nil
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.convTranspose2d(
            weight: weight.tensor, bias: bias?.tensor, stride: stride, padding: padding,
            outputPadding: outputPadding)
    }
}

/// Batch normalisation over (N, C, H, W) or (N, C), with running statistics.
/// NOTE: momentum follows PyTorch: running = (1 - momentum) * running + momentum * batch, and
/// the running variance uses the unbiased batch variance (n / (n - 1)) while normalisation uses
/// the biased one. https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
public final class BatchNorm2d: Layer {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Parameter, runningVar: Parameter, batchesTracked: Parameter
    public let momentum: Float, epsilon: Float
    public var isTraining = true
    /// When false, training mode normalises with batch statistics but leaves the running ones
    /// alone (sampling a generator with batch statistics without disturbing its state).
    public var tracksRunningStats = true

    public init(_ features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        weight = Parameter(.ones([features])); bias = Parameter(.zeros([features]))
        runningMean = Parameter(.zeros([features]), requiresGrad: false)
        runningVar = Parameter(.ones([features]), requiresGrad: false)
        batchesTracked = Parameter(.zeros([1]), requiresGrad: false)
        self.momentum = momentum; self.epsilon = epsilon
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public var ownBuffers: [(String, Parameter)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", batchesTracked)]
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, thenReLU: false) }

    /// `thenReLU`: ReLU(BatchNorm2d(x)) in one pass, equal to the two layers in a row (which
    /// `Sequential` fuses this way).
    public func callAsFunction(_ x: Tensor, thenReLU: Bool) throws -> Tensor {
        guard isTraining else {
            return try x.batchNormInference(
                scale: weight.tensor, shift: bias.tensor, mean: runningMean.value,
                variance: runningVar.value, epsilon: epsilon, thenReLU: thenReLU)
        }
        let (y, mean, variance) = try x.batchNormTraining(
            scale: weight.tensor, shift: bias.tensor, epsilon: epsilon, thenReLU: thenReLU)
        guard tracksRunningStats else { return y }
        let n = Float(x.count / x.shape[1])
        let unbiased = n > 1 ? n / (n - 1) : 1
        let m = runningMean.pointer, v = runningVar.pointer, bm = mean.storage.pointer, bv = variance.storage.pointer
        for c in 0..<runningMean.count {
            m[c] = (1 - momentum) * m[c] + momentum * bm[c]
            v[c] = (1 - momentum) * v[c] + momentum * bv[c] * unbiased
        }
        batchesTracked.pointer[0] += 1
        return y
    }
}

/// A lookup table: class index -> vector. weight (num, dim) from N(0, 1), as PyTorch.
public final class Embedding: Module {
    public let weight: Parameter
    public var isTraining = true
    public init(_ count: Int, _ dimension: Int, generator: inout SeededGenerator) {
        weight = Parameter(.randomNormal([count, dimension], generator: &generator))
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight)] }
    public func callAsFunction(_ indices: [Int]) throws -> Tensor { try weight.tensor.gatherRows(indices) }
}

public final class ReLU: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.relu() }
}

public final class LeakyReLU: Layer {
    public let slope: Float
    public var isTraining = true
    public init(_ slope: Float = 0.01) { self.slope = slope }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.leakyRelu(slope) }
}

public final class Tanh: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.tanh() }
}

public final class Sigmoid: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.sigmoid() }
}

/// Inverted dropout in training mode; identity in evaluation mode. Owns its random stream.
public final class Dropout: Layer {
    public let probability: Float
    public var generator: SeededGenerator
    public var isTraining = true
    public init(_ probability: Float = 0.5, generator: inout SeededGenerator) {
        self.probability = probability
        self.generator = generator.fork(0xD0)
        _ = generator.next()
    }
    /// Data-parallel training: the rows of the global batch this input holds (`setBatchShard`);
    /// nil: the input is the whole batch.
    public var shard: BatchShard?
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard isTraining else { return x }
        guard let shard, !shard.isWhole else { return try x.dropout(probability: probability, generator: &generator) }
        // The whole batch's mask (B, D), drawn as one process draws it, then this shard's rows.
        guard x.rank >= 1, x.shape[0] == shard.rows.count else {
            throw TensorError.invalidShape(op: "dropout", shape: x.shape, reason: "not the \(shard.rows.count) rows of its shard")
        }
        let perRow = x.count / max(x.shape[0], 1)
        let mask = try Tensor(repeating: 1, shape: [shard.total, perRow]).dropout(probability: probability, generator: &generator)
        return try x * shard.take(mask).reshaped(x.shape)
    }
}

public final class MaxPool2d: Layer {
    public let kernelSize: Int, stride: Int, padding: Int
    public var isTraining = true
    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernelSize = kernelSize; self.stride = stride ?? kernelSize; self.padding = padding
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.maxPool2d(kernel: kernelSize, stride: stride, padding: padding)
    }
}

public final class AvgPool2d: Layer {
    public let kernelSize: Int, stride: Int
    public var isTraining = true
    public init(_ kernelSize: Int, stride: Int? = nil) { self.kernelSize = kernelSize; self.stride = stride ?? kernelSize }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.avgPool2d(kernel: kernelSize, stride: stride) }
}

/// (N, C, H, W) -> (N, C).
public final class GlobalAvgPool2d: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.globalAvgPool2d() }
}

/// (N, ...) -> (N, rest).
public final class Flatten: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.flattened() }
}

/// Group normalisation over (N, C, H, W) with a per-channel affine (torch.nn.GroupNorm):
/// weight ones, bias zeros. No running statistics: the same in training and evaluation.
public final class GroupNorm: Layer {
    public let groups: Int, channels: Int, epsilon: Float
    public let weight: Parameter, bias: Parameter
    public var isTraining = true
    public init(groups: Int, channels: Int, epsilon: Float = 1e-5) {
        self.groups = groups; self.channels = channels; self.epsilon = epsilon
        weight = Parameter(.ones([channels])); bias = Parameter(.zeros([channels]))
    }
    public var ownParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.groupNorm(groups: groups, scale: weight.tensor, shift: bias.tensor, epsilon: epsilon)
    }
}

/// x sigmoid(x) (torch.nn.SiLU).
public final class SiLU: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.silu() }
}

/// Nearest-neighbour upsampling by an integer factor (torch.nn.Upsample(scale_factor:, mode: "nearest")).
public final class Upsample: Layer {
    public let scaleFactor: Int
    public var isTraining = true
    public init(scaleFactor: Int = 2) { self.scaleFactor = scaleFactor }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.upsampleNearest(factor: scaleFactor) }
}
