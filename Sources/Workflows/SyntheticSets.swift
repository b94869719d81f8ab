import Datasets
import Diffusion
import Foundation
import GAN

/// What `gan sample` draws: images of one class from a GAN's or a diffusion model's checkpoint.
public struct SampleSpec: Sendable {
    public var checkpoint: String
    /// Refuse a checkpoint of another family (nil: whatever it holds).
    public var generator: GeneratorFamily?
    /// The class to sample (required for a conditional checkpoint).
    public var className: String?
    public var count: Int
    public var seed: UInt64 = 0
    /// Images per generator call (batch norm uses full batches of this size).
    public var batchSize = 64
    /// The label stored in an `.npz` (nil: the class's index in the checkpoint, 0 for a per-class model).
    public var label: Int?
    /// Diffusion only: DDIM steps and guidance scale (nil: the checkpoint's).
    public var samplingSteps: Int?
    public var guidanceScale: Float?

    public init(checkpoint: String, count: Int) { self.checkpoint = checkpoint; self.count = count }
}

extension SampleSpec {
    /// Samples to `out` (a folder of numbered PNGs, or an `.npz`); returns the line that says what was written.
    public func write(to out: String) throws -> String {
        let source = try openGenerator(checkpoint: checkpoint, expected: generator)
        source.batchSize = batchSize
        if let diffusion = source as? DiffusionImageSource {
            if let samplingSteps { diffusion.steps = samplingSteps }
            if let guidanceScale { diffusion.guidanceScale = guidanceScale }
        } else if samplingSteps != nil || guidanceScale != nil {
            throw OptionRefusal(
                "--sampling-steps and --guidance-scale apply to diffusion checkpoints; \(checkpoint) holds a GAN")
        }
        let label = try self.label ?? source.label(for: className) ?? 0
        let pixels = try source.generate(className: className, count: count, seed: seed)
        let files = try writeImages(
            pixels, labels: Array(repeating: label, count: count), channels: source.channels, size: source.imageSize,
            to: out)
        let name = className ?? source.classNames[0]
        return "\(count) images of \(name) (\(source.channels)x\(source.imageSize)x"
            + "\(source.imageSize)) -> \(files.count == 1 ? files[0] : out)"
    }
}

/// What `medsynth balance` does: top up the minority classes of a dataset's training split
/// (the split every command uses, from `seed`) with images of one or more checkpoints.
public struct BalanceSpec: Sendable {
    /// Class-folder tree or MedMNIST `.npz`.
    public var data: String
    public var selection: ClassSelection?
    /// GAN or diffusion checkpoints: per-class or conditional models.
    public var checkpoints: [String]
    /// Refuse checkpoints of another family (nil: whatever each holds).
    public var generator: GeneratorFamily?
    /// Target, ratio cap, selection, candidates (`options.seed` is set from `seed`).
    public var options = BalanceOptions()
    /// The split whose training part is topped up. nil fields: the checkpoints' own split (they
    /// must agree); a given value that differs from theirs is refused.
    public var splitSeed: UInt64?
    public var splitRatio: SplitRatio?
    /// Base seed of generation.
    public var seed: UInt64 = 0

    public init(data: String, checkpoints: [String]) { self.data = data; self.checkpoints = checkpoints }
}

extension BalanceSpec {
    /// Writes the balanced class-folder tree and its manifest to `out` (which must not hold one
    /// yet); reports warnings and the per-class counts.
    @discardableResult
    public func write(to out: String, _ observe: (WorkflowEvent) -> Void = { _ in }) throws -> BalancedSet {
        let sources = try checkpoints.map { try openGenerator(checkpoint: $0, expected: generator) }
        let first = sources[0]
        let split = try resolvedSplit(seed: splitSeed, ratio: splitRatio, sources: sources)
        var selection = self.selection
        selection?.seed = split.seed
        let loading = LoadOptions(
            preprocessing: Preprocessing(imageSize: first.imageSize, channels: first.channels, scaling: .symmetric),
            selection: selection)
        let train = try makeSplits(loadDataset(at: data, options: loading), ratio: split.ratio, seed: split.seed)
            .subset(.train)
        var options = self.options
        options.seed = seed
        let set = try balanceTrainingSet(train, scaling: .symmetric, sources: sources, options: options)
        set.warnings.forEach { observe(.note("warning: \($0)")) }
        try writeBalancedSet(set, scaling: .symmetric, to: out)
        for c in set.perClass {
            observe(
                .note("\(c.className): \(c.real) real + \(c.synthetic) synthetic" + (c.checkpoint.map { " (\($0))" } ?? "")))
        }
        observe(.note("\(set.count) images -> \(out) (manifest.jsonl)"))
        return set
    }
}

/// The split a command that uses `sources`' images must work on: the one they were trained on
/// (they must agree), or seed 0 and 8:1:1 when there is no source. A given `seed` or `ratio` that
/// differs from the sources' is refused: their training images would lie in that split's
/// validation or test set.
func resolvedSplit(seed: UInt64?, ratio: SplitRatio?, sources: [any SyntheticImages]) throws -> SplitChoice {
    guard let first = sources.first else { return SplitChoice(seed: seed ?? 0, ratio: ratio ?? .standard) }
    if let other = sources.first(where: { $0.trainingSplit != first.trainingSplit }) {
        throw OptionRefusal(
            "\(first.url.path) was trained on the \(first.trainingSplit), \(other.url.path) on the "
                + "\(other.trainingSplit): use generators trained on one split")
    }
    let split = first.trainingSplit
    if let seed, seed != split.seed {
        throw OptionRefusal(
            "--split-seed \(seed): \(first.url.path) was trained on the \(split); its training images would lie in "
                + "another split's validation or test set (leave --split-seed out to use its split)")
    }
    if let ratio, ratio != split.ratio {
        throw OptionRefusal(
            "--ratio \(ratio): \(first.url.path) was trained on the \(split) (leave --ratio out to use its split)")
    }
    return split
}
