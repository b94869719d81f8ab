import Autodiff
import Datasets
import Foundation
import NN
import SeededRandom

/// Synthetic images from a trained diffusion checkpoint (as written by `DiffusionTrainer`): DDIM
/// with the EMA weights. The diffusion counterpart of the GANs' `SyntheticImageSource`, with the
/// same `generate(className:count:seed:)` contract, so filters and audits take either.
public final class DiffusionImageSource {
    public let url: URL
    /// The model rebuilt from the checkpoint (optimizer state is not loaded).
    public let model: DiffusionModel
    /// One class for an unconditional (per-class) model, all of them for a conditional one.
    public let classNames: [String]
    /// The split its training images came from.
    public let trainingSplit: SplitChoice
    /// Images per U-Net call (twice as many rows with guidance).
    public var batchSize = 64
    /// DDIM steps and guidance scale (defaults: the checkpoint's options).
    public var steps: Int
    public var guidanceScale: Float
    /// Most bytes of Float pixels `generate` returns in one call (default 4 GiB).
    public var maximumBytes = 4 << 30

    /// Loads configuration, class names and EMA weights; refuses anything that is not a MedSynth
    /// diffusion checkpoint.
    public init(checkpoint url: URL) throws {
        let file: (tensors: [String: Tensor], metadata: [String: String])
        do { file = try SafeTensors.read(url) } catch let error as CheckpointError {
            throw DiffusionError.notADiffusionCheckpoint(path: url.path, reason: "\(error)")
        }
        let m = file.metadata, decoder = JSONDecoder()
        guard m["format"] == DiffusionTrainer.format else {
            throw DiffusionError.notADiffusionCheckpoint(
                path: url.path,
                reason:
                    "its metadata format is \(m["format"].map { "\"\($0)\"" } ?? "missing"), not \"\(DiffusionTrainer.format)\"")
        }
        let config: UNetConfig, options: DiffusionOptions, names: [String]
        do {
            config = try decoder.decode(UNetConfig.self, from: Data((m["config"] ?? "").utf8))
            options = try decoder.decode(DiffusionOptions.self, from: Data((m["options"] ?? "").utf8))
            names = try decoder.decode([String].self, from: Data((m["class_names"] ?? "").utf8))
        } catch {
            throw DiffusionError.notADiffusionCheckpoint(
                path: url.path, reason: "unreadable config, options or class names (\(error))")
        }
        guard names.count == (config.classes ?? 1) else {
            throw DiffusionError.notADiffusionCheckpoint(
                path: url.path,
                reason: "\(names.count) class names for a model of \(config.classes ?? 1) class(es)")
        }
        let plan = try? decoder.decode(DiffusionTrainingPlan.self, from: Data((m["plan"] ?? "").utf8))
        do {
            model = try DiffusionModel(config: config, options: options, seed: 0)
            try model.unet.loadStateDict(file.tensors, prefix: "unet.", strict: false)
            try model.restoreEMA(file.tensors)
        } catch {
            throw DiffusionError.notADiffusionCheckpoint(path: url.path, reason: "weights do not fit its configuration: \(error)")
        }
        self.url = url; classNames = names; trainingSplit = plan?.trainingSplit ?? SplitChoice()
        steps = options.samplingSteps; guidanceScale = options.guidanceScale
    }

    public var config: UNetConfig { model.config }

    /// Whether `url` is a diffusion checkpoint (by its metadata's format), without building a model.
    public static func holdsDiffusionModel(_ url: URL) -> Bool {
        (try? SafeTensors.read(url))?.metadata["format"] == DiffusionTrainer.format
    }

    /// The label to condition on: nil for an unconditional model (whose one class may be named),
    /// the class's index for a conditional one.
    public func label(for className: String?) throws -> Int? {
        try conditioningLabel(for: className) {
            DiffusionError.unknownClass(path: url.path, className: $0, known: classNames)
        } required: {
            DiffusionError.classRequired(path: url.path, known: classNames)
        }
    }

    /// `count` images (count, C, S, S), NCHW in [-1, 1]. Image i starts from the i-th stretch of
    /// noise drawn from `seed`, and group norm looks at one image at a time, so the images depend
    /// on the seed, `steps` and `guidanceScale` only (not on `batchSize`, up to rounding), and a
    /// smaller count gives a prefix of a larger one.
    public func generate(className: String?, count: Int, seed: UInt64) throws -> [Float] {
        let label = try self.label(for: className)
        let perImage = config.channels * config.imageSize * config.imageSize
        var out = try reservedImages(count: count, maximumBytes: maximumBytes) {
            DiffusionError.tooManyImages(path: url.path, count: count, bytes: $0, limit: maximumBytes)
        }
        var g = SeededGenerator(seed: seed)
        while out.count < count * perImage {
            let n = min(batchSize, count - out.count / perImage)
            let images = try model.sample(
                count: n, labels: label.map { Array(repeating: $0, count: n) },
                steps: steps, guidanceScale: guidanceScale, generator: &g)
            out += images.scalars
        }
        return out
    }
}

extension DiffusionImageSource: SyntheticImages {
    public var isConditional: Bool { config.classes != nil }
    public var channels: Int { config.channels }
    public var imageSize: Int { config.imageSize }
}
