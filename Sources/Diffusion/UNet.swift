import Autodiff
import Foundation
import NN
import SeededRandom

// The denoising U-Net (Ronneberger et al. 2015, as adapted by Ho et al. 2020), small enough to
// train on two CPU cores. Shapes for the 28-px default (base width 32, multipliers 1, 2, 2),
// N batch, C image channels, E = 4 x 32 = 128 embedding width:
//
//   x (N, C, 28, 28), t (N), class (N)
//   emb = MLP(sinusoid(t)) + class_emb(class)                 (N, E)
//   in_conv                                                   (N, 32, 28, 28)
//   down.0  ResBlock 32 -> 32          skip 0                 (N, 32, 28, 28)
//   downsample.0  3x3 stride 2                                (N, 32, 14, 14)
//   down.1  ResBlock 32 -> 64          skip 1                 (N, 64, 14, 14)
//   downsample.1  3x3 stride 2                                (N, 64, 7, 7)
//   down.2  ResBlock 64 -> 64          skip 2                 (N, 64, 7, 7)
//   middle.0 ResBlock, [attention], middle.1 ResBlock         (N, 64, 7, 7)
//   up.2  concat skip 2, ResBlock 128 -> 64, upsample + conv  (N, 64, 14, 14)
//   up.1  concat skip 1, ResBlock 128 -> 64, upsample + conv  (N, 64, 28, 28)
//   up.0  concat skip 0, ResBlock 96 -> 32                    (N, 32, 28, 28)
//   out   GroupNorm, SiLU, 3x3 conv                           (N, C, 28, 28)

/// Errors of diffusion models, training and sampling; each names what is wrong.
public enum DiffusionError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidConfiguration(String)
    case invalidOption(String)
    /// The file is not a diffusion checkpoint written by `DiffusionTrainer`.
    case notADiffusionCheckpoint(path: String, reason: String)
    case unknownClass(path: String, className: String, known: [String])
    case classRequired(path: String, known: [String])
    case tooManyImages(path: String, count: Int, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .invalidConfiguration(text): return "diffusion model: \(text)"
        case let .invalidOption(text): return text
        case let .notADiffusionCheckpoint(path, reason): return "\(path): not a MedSynth diffusion checkpoint: \(reason)"
        case let .unknownClass(path, name, known):
            return "\(path): no class \"\(name)\" in this checkpoint (it knows \(known.joined(separator: ", ")))"
        case let .classRequired(path, known):
            return "\(path): a conditional checkpoint needs a class (one of \(known.joined(separator: ", ")))"
        case let .tooManyImages(path, count, bytes, limit):
            return
                "\(path): \(count) images need \(bytes >> 20) MiB at once, above the limit of \(limit >> 20) MiB; ask for fewer"
        }
    }
}

/// The U-Net's shape: image size and channels, widths, depth, attention, classes.
public struct UNetConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var channels: Int
    /// Channels at full resolution; level i has baseWidth x channelMultipliers[i].
    public var baseWidth: Int
    public var channelMultipliers: [Int]
    /// Self-attention between the two middle blocks, at the lowest resolution.
    public var attention: Bool
    /// Classes of a class-conditional model (classifier-free guidance); nil: unconditional.
    public var classes: Int?
    /// Groups of every group norm (divides every width).
    public var groups: Int

    /// Validates: 28, 32 or 64 px; 1 or 3 channels; widths divisible by `groups`; the size halves
    /// exactly at every level but the last.
    public init(
        imageSize: Int, channels: Int, baseWidth: Int = 32, channelMultipliers: [Int]? = nil, attention: Bool = false,
        classes: Int? = nil, groups: Int = 8
    ) throws {
        guard [28, 32, 64].contains(imageSize) else {
            throw DiffusionError.invalidConfiguration("image size \(imageSize) is not 28, 32 or 64")
        }
        guard channels == 1 || channels == 3 else {
            throw DiffusionError.invalidConfiguration("\(channels) channels: use 1 or 3")
        }
        let multipliers = channelMultipliers ?? (imageSize == 64 ? [1, 2, 2, 2] : [1, 2, 2])
        guard !multipliers.isEmpty, multipliers.count <= 5, multipliers.allSatisfy({ (1...8).contains($0) }) else {
            throw DiffusionError.invalidConfiguration("channel multipliers \(multipliers): 1 to 5 levels of 1...8")
        }
        guard imageSize % (1 << (multipliers.count - 1)) == 0 else {
            throw DiffusionError.invalidConfiguration("\(imageSize) px does not halve exactly \(multipliers.count - 1) times")
        }
        guard groups >= 1, baseWidth >= groups, multipliers.allSatisfy({ (baseWidth * $0) % groups == 0 }) else {
            throw DiffusionError.invalidConfiguration(
                "base width \(baseWidth) times each multiplier must divide into \(groups) groups")
        }
        if let classes, classes < 1 { throw DiffusionError.invalidConfiguration("\(classes) classes") }
        self.imageSize = imageSize; self.channels = channels; self.baseWidth = baseWidth
        self.channelMultipliers = multipliers; self.attention = attention; self.classes = classes; self.groups = groups
    }

    /// E: width of the time (and class) embedding, 4 x base width as in DDPM.
    public var embeddingWidth: Int { baseWidth * 4 }
    func width(_ level: Int) -> Int { baseWidth * channelMultipliers[level] }
}

/// Zeroes a layer's weight and bias: the block starts as the identity (its residual adds 0).
func zeroInitialised(_ conv: Conv2d) -> Conv2d {
    try! conv.weight.assign(.zeros(conv.weight.shape))
    if let b = conv.bias { try! b.assign(.zeros(b.shape)) }
    return conv
}

/// x + conv2(SiLU(GN(conv1(SiLU(GN(x))) + W emb))): the DDPM residual block; the embedding
/// (time and class) is projected to this block's width and added to every pixel.
final class ResBlock: Module {
    let norm1: GroupNorm, conv1: Conv2d, embedding: Linear, norm2: GroupNorm, conv2: Conv2d
    /// A 1x1 convolution on the residual path when the width changes.
    let skip: Conv2d?
    var isTraining = true

    init(_ inWidth: Int, _ outWidth: Int, embeddingWidth: Int, groups: Int, generator g: inout SeededGenerator) {
        norm1 = GroupNorm(groups: groups, channels: inWidth)
        conv1 = Conv2d(inWidth, outWidth, kernelSize: 3, padding: 1, generator: &g)
        embedding = Linear(embeddingWidth, outWidth, generator: &g)
        norm2 = GroupNorm(groups: groups, channels: outWidth)
        conv2 = zeroInitialised(Conv2d(outWidth, outWidth, kernelSize: 3, padding: 1, generator: &g))
        skip = inWidth == outWidth ? nil : Conv2d(inWidth, outWidth, kernelSize: 1, generator: &g)
    }

    var children: [(String, any Module)] {
        [("norm1", norm1), ("conv1", conv1), ("emb_proj", embedding), ("norm2", norm2), ("conv2", conv2)]
            + (skip.map { [("skip", $0 as any Module)] } ?? [])
    }

    /// x (N, in, H, W), emb (N, E) already through SiLU -> (N, out, H, W).
    func callAsFunction(_ x: Tensor, _ emb: Tensor) throws -> Tensor {
        var h = try conv1(norm1(x).silu())  // (N, out, H, W)
        h = try h + embedding(emb).reshaped([x.shape[0], conv1.weight.shape[0], 1, 1])  // + (N, out, 1, 1)
        h = try conv2(norm2(h).silu())
        return try (skip?(x) ?? x) + h
    }
}

/// x + proj(attention(q, k, v)) over the H W pixels as tokens, one head (DDPM's AttnBlock).
final class AttentionBlock: Module {
    let norm: GroupNorm, qkv: Conv2d, projection: Conv2d
    var isTraining = true

    init(_ width: Int, groups: Int, generator g: inout SeededGenerator) {
        norm = GroupNorm(groups: groups, channels: width)
        qkv = Conv2d(width, 3 * width, kernelSize: 1, generator: &g)
        projection = zeroInitialised(Conv2d(width, width, kernelSize: 1, generator: &g))
    }

    var children: [(String, any Module)] { [("norm", norm), ("qkv", qkv), ("proj", projection)] }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let t = try qkv(norm(x))  // (N, 3C, H, W)
        func tokens(_ i: Int) throws -> Tensor {  // (N, HW, C)
            try t.slice(axis: 1, start: i * c, length: c).reshaped([n, c, h * w]).batchTransposed()
        }
        let a = try Tensor.scaledDotProductAttention(query: tokens(0), key: tokens(1), value: tokens(2))  // (N, HW, C)
        return try x + projection(a.batchTransposed().reshaped([n, c, h, w]))
    }
}

/// The denoising network eps_theta / v_theta(x_t, t, class).
public final class UNet: Module {
    public let config: UNetConfig
    let timeMLP1: Linear, timeMLP2: Linear
    /// classes + 1 rows: the last is "no class", used for classifier-free guidance.
    let classEmbedding: Embedding?
    let inConv: Conv2d
    let down: [ResBlock], downsample: [Conv2d]
    let middle1: ResBlock, middleAttention: AttentionBlock?, middle2: ResBlock
    let up: [ResBlock], upsampleConv: [Conv2d]
    let outNorm: GroupNorm, outConv: Conv2d
    public var isTraining = true

    /// Weights from `generator` (PyTorch's default initialisation; the last convolution of each
    /// residual branch and the output convolution start at zero, as in DDPM).
    public init(_ config: UNetConfig, generator g: inout SeededGenerator) {
        self.config = config
        let e = config.embeddingWidth, levels = config.channelMultipliers.count, groups = config.groups
        timeMLP1 = Linear(config.baseWidth, e, generator: &g)
        timeMLP2 = Linear(e, e, generator: &g)
        classEmbedding = config.classes.map { Embedding($0 + 1, e, generator: &g) }
        inConv = Conv2d(config.channels, config.baseWidth, kernelSize: 3, padding: 1, generator: &g)
        var down: [ResBlock] = [], downsample: [Conv2d] = []
        var width = config.baseWidth
        for level in 0..<levels {
            down.append(ResBlock(width, config.width(level), embeddingWidth: e, groups: groups, generator: &g))
            width = config.width(level)
            if level < levels - 1 { downsample.append(Conv2d(width, width, kernelSize: 3, stride: 2, padding: 1, generator: &g)) }
        }
        middle1 = ResBlock(width, width, embeddingWidth: e, groups: groups, generator: &g)
        middleAttention = config.attention ? AttentionBlock(width, groups: groups, generator: &g) : nil
        middle2 = ResBlock(width, width, embeddingWidth: e, groups: groups, generator: &g)
        var up: [ResBlock] = [], upsampleConv: [Conv2d] = []
        for level in stride(from: levels - 1, through: 0, by: -1) {
            up.append(
                ResBlock(width + config.width(level), config.width(level), embeddingWidth: e, groups: groups, generator: &g))
            width = config.width(level)
            if level > 0 { upsampleConv.append(Conv2d(width, width, kernelSize: 3, padding: 1, generator: &g)) }
        }
        outNorm = GroupNorm(groups: groups, channels: width)
        outConv = zeroInitialised(Conv2d(width, config.channels, kernelSize: 3, padding: 1, generator: &g))
        self.down = down; self.downsample = downsample; self.up = up; self.upsampleConv = upsampleConv
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("time_mlp.0", timeMLP1), ("time_mlp.2", timeMLP2)]
        if let classEmbedding { c.append(("class_emb", classEmbedding)) }
        c.append(("in_conv", inConv))
        for (i, b) in down.enumerated() { c.append(("down.\(i)", b)) }
        for (i, d) in downsample.enumerated() { c.append(("downsample.\(i)", d)) }
        c.append(("middle.0", middle1))
        if let middleAttention { c.append(("middle.attn", middleAttention)) }
        c.append(("middle.1", middle2))
        for (i, b) in up.enumerated() { c.append(("up.\(i)", b)) }
        for (i, u) in upsampleConv.enumerated() { c.append(("upsample.\(i)", u)) }
        c += [("out_norm", outNorm), ("out_conv", outConv)]
        return c
    }

    /// The row of `classEmbedding` that means "no class".
    public var nullClass: Int? { config.classes }

    /// x_t (N, C, S, S), timesteps (N) in 0..<T, labels (N) in 0...classes (classes = none) for a
    /// conditional model, nil for an unconditional one -> the prediction (N, C, S, S).
    public func callAsFunction(_ x: Tensor, timesteps: [Float], labels: [Int]?) throws -> Tensor {
        let n = x.shape[0]
        guard x.rank == 4, x.shape[1] == config.channels, x.shape[2] == config.imageSize, x.shape[3] == config.imageSize,
            timesteps.count == n
        else {
            throw DiffusionError.invalidOption(
                "U-Net input \(x.shape) with \(timesteps.count) timesteps: expected "
                    + "(N, \(config.channels), \(config.imageSize), \(config.imageSize)) and N timesteps")
        }
        var emb = try timeMLP2(
            timeMLP1(Tensor(shape: [n], scalars: timesteps).timestepEmbedding(dimension: config.baseWidth)).silu())
        switch (classEmbedding, labels) {  // (N, E)
        case let (table?, labels?) where labels.count == n: emb = try emb + table(labels)
        case (nil, nil): break
        default:
            throw DiffusionError.invalidOption(
                classEmbedding == nil
                    ? "an unconditional U-Net takes no labels"
                    : "a conditional U-Net needs one label per image")
        }
        let e = emb.silu()
        var h = try inConv(x)  // (N, w0, S, S)
        var skips: [Tensor] = []
        for (level, block) in down.enumerated() {
            h = try block(h, e)
            skips.append(h)
            if level < downsample.count { h = try downsample[level](h) }  // halves S
        }
        h = try middle1(h, e)
        if let middleAttention { h = try middleAttention(h) }
        h = try middle2(h, e)
        for (i, block) in up.enumerated() {
            h = try block(Tensor.concat([h, skips.removeLast()], axis: 1), e)  // concat skip channels
            if i < upsampleConv.count { h = try upsampleConv[i](h.upsampleNearest(factor: 2)) }  // doubles S
        }
        return try outConv(outNorm(h).silu())  // (N, C, S, S)
    }
}
