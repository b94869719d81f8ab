import Autodiff
import NN
import SeededRandom

/// Errors in GAN configuration, named with the offending value.
public enum GANError: Error, CustomStringConvertible, Equatable {
    case unsupportedImageSize(Int)
    case unsupportedChannels(Int)
    case invalidOption(String)
    case collapse(String)

    public var description: String {
        switch self {
        case .unsupportedImageSize(let s): return "image size \(s) is not supported by the DCGAN (use 28, 32, 64 or 128)"
        case .unsupportedChannels(let c): return "\(c) channels are not supported (use 1 or 3)"
        case .invalidOption(let s): return s
        case .collapse(let s): return s
        }
    }
}

/// Shape of a DCGAN (Radford et al. 2015): strided (transposed) convolutions, batch norm except
/// at G's output and D's input, ReLU in G with a tanh output, LeakyReLU 0.2 in D.
public struct DCGANConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var channels: Int
    /// Latent size (nz).
    public var latent: Int = 100
    /// Generator and discriminator widths (ngf, ndf).
    public var generatorWidth: Int = 64, discriminatorWidth: Int = 64
    /// Number of classes for the conditional model (conditional batch norm in G, projection in D); nil = unconditional.
    public var classes: Int? = nil
    /// Spectral normalisation on D's convolutions, which then has no batch norm (SN-GAN, Miyato et al. 2018).
    public var spectralNorm = false
    /// Batch norm in D's inner blocks; off for differentially private training, where batch norm
    /// would mix examples (PrivateTraining.swift).
    public var discriminatorBatchNorm = true

    public init(
        imageSize: Int, channels: Int, latent: Int = 100, generatorWidth: Int = 64, discriminatorWidth: Int = 64,
        classes: Int? = nil, spectralNorm: Bool = false
    ) throws {
        guard [28, 32, 64, 128].contains(imageSize) else { throw GANError.unsupportedImageSize(imageSize) }
        guard [1, 3].contains(channels) else { throw GANError.unsupportedChannels(channels) }
        self.imageSize = imageSize; self.channels = channels; self.latent = latent
        self.generatorWidth = generatorWidth; self.discriminatorWidth = discriminatorWidth; self.classes = classes
        self.spectralNorm = spectralNorm
    }

    enum CodingKeys: String, CodingKey {
        case imageSize, channels, latent, generatorWidth, discriminatorWidth, classes, spectralNorm, discriminatorBatchNorm
    }

    /// Decodes a configuration; checkpoints written before spectral norm or private training
    /// existed lack those keys (false, true).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            imageSize: c.decode(Int.self, forKey: .imageSize), channels: c.decode(Int.self, forKey: .channels),
            latent: c.decode(Int.self, forKey: .latent), generatorWidth: c.decode(Int.self, forKey: .generatorWidth),
            discriminatorWidth: c.decode(Int.self, forKey: .discriminatorWidth),
            classes: c.decodeIfPresent(Int.self, forKey: .classes),
            spectralNorm: c.decodeIfPresent(Bool.self, forKey: .spectralNorm) ?? false)
        discriminatorBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .discriminatorBatchNorm) ?? true
    }

    /// Spatial size after G's first layer (D's last layer sees the same): 7 for 28 px, else 4.
    var baseSize: Int { imageSize == 28 ? 7 : 4 }
    /// Width multipliers of G's blocks, first to last; D uses them reversed.
    var multipliers: [Int] {
        switch imageSize {
        case 28: return [4, 2]
        case 32: return [4, 2, 1]
        case 64: return [8, 4, 2, 1]
        default: return [16, 8, 4, 2, 1]
        }
    }
    /// D's widths per block, from the image side.
    var discriminatorMultipliers: [Int] { imageSize == 28 ? [1, 2] : multipliers.reversed() }
}

/// DCGAN generator: z (N, nz, 1, 1) [and class labels] -> image (N, C, S, S) in [-1, 1].
public final class Generator: Module {
    public let config: DCGANConfig
    public let blocks: [(ConvTranspose2d, BatchNorm2d?)]
    /// Conditional batch norm (de Vries et al. 2017; as in Miyato and Koyama's projection cGAN and
    /// BigGAN): the class sets a per-channel scale and shift after each batch norm,
    /// y = BN(x) * (1 + scale[c]) + shift[c], both zero at initialisation. z alone feeds the
    /// first layer.
    /// NOTE: concatenating a class embedding to z instead made G ignore z within a class: the
    /// embedding's gradient is the same for half the batch, so Adam grows that path steadily while
    /// z's noisy gradients average out, and the generator became a function of the class alone.
    public let classScales: [Embedding], classShifts: [Embedding]
    public var isTraining = true

    public init(_ config: DCGANConfig, generator g: inout SeededGenerator) {
        self.config = config
        let widths = config.multipliers.map { $0 * config.generatorWidth }
        var blocks: [(ConvTranspose2d, BatchNorm2d?)] = []
        // (N, nz, 1, 1) -> (N, w0, base, base)
        blocks.append(
            (
                ConvTranspose2d(
                    config.latent, widths[0], kernelSize: config.baseSize, bias: false,
                    generator: &g), BatchNorm2d(widths[0])
            ))
        // each block doubles H and W: (N, w_i, s, s) -> (N, w_{i+1}, 2s, 2s)
        for i in 1..<widths.count {
            blocks.append(
                (
                    ConvTranspose2d(
                        widths[i - 1], widths[i], kernelSize: 4, stride: 2, padding: 1, bias: false,
                        generator: &g), BatchNorm2d(widths[i])
                ))
        }
        // -> (N, C, S, S), tanh, no batch norm at the output
        blocks.append(
            (
                ConvTranspose2d(
                    widths.last!, config.channels, kernelSize: 4, stride: 2, padding: 1, bias: false,
                    generator: &g), nil
            ))
        self.blocks = blocks
        let normed = blocks.compactMap { $0.1 }
        classScales = config.classes.map { k in normed.map { Embedding(k, $0.weight.count, generator: &g) } } ?? []
        classShifts = config.classes.map { k in normed.map { Embedding(k, $0.weight.count, generator: &g) } } ?? []
        Initializer.dcgan(self, generator: &g)
        for e in classScales + classShifts { Initializer.fill(e.weight, constant: 0) }
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = []
        for (i, (conv, bn)) in blocks.enumerated() {
            c.append(("main.\(i).conv", conv))
            if let bn { c.append(("main.\(i).bn", bn)) }
            if i < classScales.count {
                c += [("main.\(i).class_scale", classScales[i]), ("main.\(i).class_shift", classShifts[i])]
            }
        }
        return c
    }

    /// z (N, nz) or (N, nz, 1, 1); `labels` required for the conditional model.
    public func callAsFunction(_ z: Tensor, labels: [Int]? = nil) throws -> Tensor {
        if config.classes != nil && labels == nil {
            throw GANError.invalidOption("the conditional generator needs class labels")
        }
        var h = try z.reshaped([z.shape[0], z.count / z.shape[0], 1, 1])  // (N, nz, 1, 1)
        for (i, (conv, bn)) in blocks.enumerated() {
            h = try conv(h)
            guard let bn else { h = h.tanh(); continue }
            guard let labels, i < classScales.count else {
                h = try bn(h, thenReLU: true)
                continue
            }
            // Conditional: the class's scale and shift sit between the batch norm and the ReLU.
            h = try bn(h)
            let n = h.shape[0], c = h.shape[1]
            let scale = try classScales[i](labels).reshaped([n, c, 1, 1]) + 1  // (N, C, 1, 1)
            let shift = try classShifts[i](labels).reshaped([n, c, 1, 1])
            h = try (h * scale + shift).relu()
        }
        return h
    }
}

/// DCGAN discriminator: image (N, C, S, S) -> logit (N). Conditional: projection discriminator
/// (Miyato and Koyama 2018), logit = psi(phi(x)) + <embed(y), sum_hw phi(x)>. With
/// `config.spectralNorm` every convolution (head included) is spectrally normalised and the
/// batch norms are dropped, as in SN-GAN.
public final class Discriminator: Module {
    public let config: DCGANConfig
    public let blocks: [(Conv2d, BatchNorm2d?)]
    public let head: Conv2d
    public let projection: Embedding?
    public var isTraining = true

    public init(_ config: DCGANConfig, generator g: inout SeededGenerator) {
        self.config = config
        let widths = config.discriminatorMultipliers.map { $0 * config.discriminatorWidth }
        let sn = config.spectralNorm
        var blocks: [(Conv2d, BatchNorm2d?)] = []
        // (N, C, S, S) -> (N, w0, S/2, S/2), no batch norm at the input
        blocks.append(
            (
                Conv2d(
                    config.channels, widths[0], kernelSize: 4, stride: 2, padding: 1, bias: false,
                    spectralNorm: sn, generator: &g), nil
            ))
        // each block halves H and W
        for i in 1..<widths.count {
            blocks.append(
                (
                    Conv2d(
                        widths[i - 1], widths[i], kernelSize: 4, stride: 2, padding: 1, bias: false,
                        spectralNorm: sn, generator: &g), sn || !config.discriminatorBatchNorm ? nil : BatchNorm2d(widths[i])
                ))
        }
        self.blocks = blocks
        // (N, w_last, base, base) -> (N, 1, 1, 1)
        head = Conv2d(widths.last!, 1, kernelSize: config.baseSize, bias: false, spectralNorm: sn, generator: &g)
        projection = config.classes.map { Embedding($0, widths.last!, generator: &g) }
        Initializer.dcgan(self, generator: &g)
        if let projection { Initializer.fill(projection.weight, std: 0.02, generator: &g) }
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = []
        for (i, (conv, bn)) in blocks.enumerated() {
            c.append(("main.\(i).conv", conv))
            if let bn { c.append(("main.\(i).bn", bn)) }
        }
        c.append(("head", head))
        if let projection { c.append(("projection", projection)) }
        return c
    }

    /// Logits (N).
    public func callAsFunction(_ x: Tensor, labels: [Int]? = nil) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == config.channels, x.shape[2] == config.imageSize, x.shape[3] == config.imageSize else {
            throw TensorError.shapeMismatch(
                op: "Discriminator input",
                lhs: [-1, config.channels, config.imageSize, config.imageSize], rhs: x.shape)
        }
        var h = x
        for (conv, bn) in blocks {
            h = try conv(h)
            if let bn { h = try bn(h) }
            h = h.leakyRelu(0.2)
        }
        var logit = try head(h).reshaped([x.shape[0]])
        if let projection {
            guard let labels else { throw GANError.invalidOption("the conditional discriminator needs class labels") }
            let features = try h.sum(axes: [2, 3])  // (N, C)
            let inner = try (features * projection(labels)).sum(axes: [1])  // (N)
            logit = try logit + inner
        }
        return logit
    }
}
