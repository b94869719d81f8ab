import Autodiff
import Datasets
import Foundation
import NN
import SeededRandom

/// Problems with a checkpoint used for sampling, each naming the file.
public enum SamplingError: Error, CustomStringConvertible, Equatable {
    /// The file is not a GAN checkpoint written by `GANTrainer.saveCheckpoint`.
    case notAGANCheckpoint(path: String, reason: String)
    /// The class is not one the checkpoint was trained on.
    case unknownClass(path: String, className: String, known: [String])
    /// A conditional checkpoint needs a class to sample.
    case classRequired(path: String, known: [String])
    /// Images handed to the discriminator do not fit it.
    case shapeMismatch(path: String, reason: String)
    /// More images asked for at once than `SyntheticImageSource.maximumBytes` allows.
    case tooManyImages(path: String, count: Int, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .notAGANCheckpoint(path, reason): return "\(path): not a MedSynth GAN checkpoint: \(reason)"
        case let .unknownClass(path, name, known):
            return "\(path): no class \"\(name)\" in this checkpoint (it knows \(known.joined(separator: ", ")))"
        case let .classRequired(path, known):
            return "\(path): a conditional checkpoint needs a class (one of \(known.joined(separator: ", ")))"
        case let .shapeMismatch(path, reason): return "\(path): \(reason)"
        case let .tooManyImages(path, count, bytes, limit):
            return
                "\(path): \(count) images need \(bytes >> 20) MiB at once, above the limit of \(limit >> 20) MiB; ask for fewer"
        }
    }
}

/// Synthetic images from a trained GAN checkpoint (as written by `GANTrainer.saveCheckpoint`):
/// the generator's moving-average weights for sampling, the discriminator for scoring.
///
/// Usable without the command line: the experiment code asks it for images in memory.
public final class SyntheticImageSource {
    /// The checkpoint file.
    public let url: URL
    /// The model rebuilt from the checkpoint (optimizer state is not loaded).
    public let model: GANModel
    /// The classes the checkpoint was trained on: one for a per-class model, all for a conditional one.
    public let classNames: [String]
    /// The split its training images came from.
    public let trainingSplit: SplitChoice
    /// Images per generator call; batch norm normalises with the statistics of full batches of this size.
    public var batchSize = 64
    /// Most bytes of Float pixels `generate` returns in one call (default 4 GiB).
    public var maximumBytes = 4 << 30

    /// Loads configuration, class names and weights (generator, EMA, discriminator); refuses
    /// anything that is not a MedSynth GAN checkpoint (a classifier checkpoint, a foreign file).
    public init(checkpoint url: URL) throws {
        let file: (tensors: [String: Tensor], metadata: [String: String])
        do { file = try SafeTensors.read(url) } catch let error as CheckpointError {
            throw SamplingError.notAGANCheckpoint(path: url.path, reason: "\(error)")
        }
        let m = file.metadata, decoder = JSONDecoder()
        guard m["format"] == "medsynth-gan-1" else {
            throw SamplingError.notAGANCheckpoint(
                path: url.path,
                reason: "its metadata format is \(m["format"].map { "\"\($0)\"" } ?? "missing"), not \"medsynth-gan-1\"")
        }
        let config: DCGANConfig, options: GANTrainingOptions, names: [String]
        do {
            config = try decoder.decode(DCGANConfig.self, from: Data((m["config"] ?? "").utf8))
            options = try decoder.decode(GANTrainingOptions.self, from: Data((m["options"] ?? "").utf8))
            names = try decoder.decode([String].self, from: Data((m["class_names"] ?? "").utf8))
        } catch {
            throw SamplingError.notAGANCheckpoint(path: url.path, reason: "unreadable config, options or class names (\(error))")
        }
        guard names.count == (config.classes ?? 1) else {
            throw SamplingError.notAGANCheckpoint(
                path: url.path, reason: "\(names.count) class names for a model of \(config.classes ?? 1) class(es)")
        }
        let plan = try? decoder.decode(GANTrainingPlan.self, from: Data((m["plan"] ?? "").utf8))
        model = GANModel(config: config, options: options, seed: 0)
        do {
            try model.generator.loadStateDict(file.tensors, prefix: "generator.", strict: false)
            try model.discriminator.loadStateDict(file.tensors, prefix: "discriminator.", strict: false)
            for (name, p) in model.ema ?? [] {
                guard let t = file.tensors["ema.\(name)"] else {
                    throw CheckpointError.stateMismatch(missing: ["ema.\(name)"], wrongShape: [], unexpected: [])
                }
                try p.assign(t)
            }
        } catch {
            throw SamplingError.notAGANCheckpoint(path: url.path, reason: "weights do not fit its configuration: \(error)")
        }
        // Scoring uses D's running statistics and stored singular vectors; nothing is updated.
        model.discriminator.train(false)
        self.url = url; self.classNames = names; self.trainingSplit = plan?.trainingSplit ?? SplitChoice()
    }

    /// The model's configuration (image size, channels, conditional or not).
    public var config: DCGANConfig { model.config }

    /// The label to condition on: nil for a per-class model (whose one class may be named),
    /// the class's index for a conditional one.
    public func label(for className: String?) throws -> Int? {
        try conditioningLabel(for: className) {
            SamplingError.unknownClass(path: url.path, className: $0, known: classNames)
        } required: {
            SamplingError.classRequired(path: url.path, known: classNames)
        }
    }

    /// `count` images (count, C, S, S), NCHW in [-1, 1], from the EMA generator.
    ///
    /// Latent vectors come from `seed` one batch at a time and every batch is full (the surplus of
    /// the last is dropped), so the result depends only on the seed and `batchSize`, and a
    /// smaller count gives a prefix of a larger one.
    /// NOTE: G normalises with batch statistics, as in training (see `GANModel.sample`); a batch
    /// of one image would be normalised against itself, hence the full batches.
    /// A conditional model needs batchSize / classes batches' worth of work per kept image.
    public func generate(className: String?, count: Int, seed: UInt64) throws -> [Float] {
        let label = try self.label(for: className)
        var g = SeededGenerator(seed: seed)
        let perImage = config.channels * config.imageSize * config.imageSize
        var out = try reservedImages(count: count, maximumBytes: maximumBytes) {
            SamplingError.tooManyImages(path: url.path, count: count, bytes: $0, limit: maximumBytes)
        }
        // NOTE: a conditional G was trained on batches that mix classes; a batch of one class
        // would be normalised by statistics it never saw in training. So conditional batches
        // cycle through every class and only the requested class's images are kept.
        let classes = config.classes ?? 1
        while out.count < count * perImage {
            let z = Tensor.randomNormal([batchSize, config.latent, 1, 1], generator: &g)
            let labels = label.map { _ in (0..<batchSize).map { $0 % classes } }
            let images = try model.sample(latent: z, labels: labels).scalars
            for i in 0..<batchSize where label == nil || labels![i] == label! {
                guard out.count < count * perImage else { break }
                out.append(contentsOf: images[(i * perImage)..<((i + 1) * perImage)])
            }
        }
        return out
    }

    /// D's logits for `images` (N, C, S, S) in [-1, 1]: higher means "more real". Evaluation
    /// mode (running batch-norm statistics, no DiffAugment), so each image's score is its own.
    public func discriminatorScores(_ images: [Float], className: String? = nil) throws -> [Float] {
        let perImage = config.channels * config.imageSize * config.imageSize
        guard images.count % perImage == 0 else {
            throw SamplingError.shapeMismatch(
                path: url.path,
                reason: "\(images.count) values are not whole \(config.channels)x\(config.imageSize)x"
                    + "\(config.imageSize) images")
        }
        let label = try self.label(for: className)
        let n = images.count / perImage
        var scores = [Float]()
        scores.reserveCapacity(n)
        for start in stride(from: 0, to: n, by: batchSize) {
            let b = min(batchSize, n - start)
            let x = try Tensor(
                shape: [b, config.channels, config.imageSize, config.imageSize],
                scalars: Array(images[(start * perImage)..<((start + b) * perImage)]))
            let logits = try noGrad { try model.discriminator(x, labels: label.map { Array(repeating: $0, count: b) }) }
            scores.append(contentsOf: logits.scalars)
        }
        return scores
    }
}

// MARK: - Writing images

/// [-1, 1] -> 0...255, rounded and clamped (the inverse of `PixelScaling.symmetric`).
@inline(__always) func byte(fromSymmetric v: Float) -> UInt8 { UInt8(max(0, min(255, ((v + 1) * 127.5).rounded()))) }

/// NCHW Floats in [-1, 1] -> one HWC byte array per image (8-bit gray or RGB).
public func imageBytes(_ pixels: [Float], channels: Int, size: Int) -> [[UInt8]] {
    let area = size * size, perImage = channels * area
    return stride(from: 0, to: pixels.count, by: perImage).map { base in
        var out = [UInt8](repeating: 0, count: perImage)
        for p in 0..<area { for c in 0..<channels { out[p * channels + c] = byte(fromSymmetric: pixels[base + c * area + p]) } }
        return out
    }
}

/// Writes images (N, C, S, S) in [-1, 1] either as numbered PNGs `<prefix>00000.png`, ... in
/// the folder `path`, or, when `path` ends in `.npz`, as an npz with uint8 `images` (N, S, S) or
/// (N, S, S, 3) and int64 `labels` (N,). Returns the files written.
@discardableResult
public func writeImages(
    _ pixels: [Float], labels: [Int], channels: Int, size: Int, to path: String,
    prefix: String = "sample-"
) throws -> [String] {
    let images = imageBytes(pixels, channels: channels, size: size)
    precondition(labels.count == images.count, "\(labels.count) labels for \(images.count) images")
    if path.lowercased().hasSuffix(".npz") {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let shape = channels == 1 ? [images.count, size, size] : [images.count, size, size, channels]
        try writeNPZ(
            [("images", .uint8(images.flatMap { $0 }, shape: shape)), ("labels", .int64(labels, shape: [labels.count]))],
            to: path)
        return [path]
    }
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return try images.enumerated().map { i, bytes in
        let file = (path as NSString).appendingPathComponent(String(format: "%@%05d.png", prefix, i))
        try writePNG(to: file, pixels: bytes, width: size, height: size, channels: channels)
        return file
    }
}

extension SyntheticImageSource: SyntheticImages {
    public var isConditional: Bool { config.classes != nil }
    public var channels: Int { config.channels }
    public var imageSize: Int { config.imageSize }
}
