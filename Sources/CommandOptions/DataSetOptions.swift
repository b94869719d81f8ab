import ArgumentParser
import Datasets
import Foundation
import GAN
import Quality
import Workflows

extension SyntheticSelection: ExpressibleByArgument {}

extension BalanceTarget: ExpressibleByArgument {
    /// `majority` or a positive number.
    public init?(argument: String) { self.init(argument) }
}

/// `audit`'s options: quality and memorization of synthetic images against the real training split.
public struct AuditCommandOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Synthetic images: a .npz, a folder with one sub-folder per class, a folder of one class "
                + "(--class), or a GAN checkpoint (.safetensors) to sample from."))
    public var synthetic: String
    @Option(help: Ranges.sampleCount.help("Images to sample per class from a GAN checkpoint.")) public var count = 100
    @Option(help: "The real dataset the generator was trained on (class folders or MedMNIST .npz).") public var data: String
    @OptionGroup public var selection: ClassSelectionOptions
    @Option(name: .customLong("class"), help: "Audit this class only (required for a folder of one class's images).")
    public var className: String?
    @Option(
        help: ArgumentHelp(
            "Seed of the split whose training images are compared (default: a checkpoint's own split, else 0; "
                + "another than the checkpoint's is refused)."))
    public var splitSeed: UInt64?
    @Option(help: "train:val:test ratio of that split (default: a checkpoint's own, else 8:1:1).") public var ratio: String?
    @Option(help: "Seed of sampling from a checkpoint.") public var seed: UInt64 = 0
    @Option(help: Ranges.imageSize.help("Image size the images are compared at.")) public var imageSize = 28
    @Option(help: Ranges.percentile.help("Flag synthetic images nearer to training than this percentile of held-out images."))
    public var percentile = 1.0
    @Option(help: Ranges.kidSubsets.help("KID subsets.")) public var kidSubsets = 50
    @Option(help: "Output folder (audit.json, audit.html, neighbours-<class>.png).") public var out: String

    public init() {}

    public func validate() throws {
        try Ranges.sampleCount.check(count, "--count"); try Ranges.imageSize.check(imageSize, "--image-size")
        try Ranges.percentile.check(percentile, "--percentile"); try Ranges.kidSubsets.check(kidSubsets, "--kid-subsets")
        _ = try parsedRatio(ratio)
    }

    /// The audit as the library takes it.
    public func spec() throws -> SyntheticAuditSpec {
        var spec = SyntheticAuditSpec(synthetic: synthetic, data: data)
        spec.count = count; spec.selection = try selection.selection(seed: splitSeed ?? 0); spec.className = className
        spec.splitSeed = splitSeed; spec.splitRatio = try parsedRatio(ratio)
        spec.seed = seed; spec.imageSize = imageSize
        spec.options.percentile = percentile; spec.options.kidSubsets = kidSubsets
        return spec
    }

    /// Audits every class, writes audit.json and audit.html; `line` gets each class's summary lines.
    public func run(_ line: (String) -> Void) throws {
        _ = try SyntheticAudit.run(spec(), output: URL(fileURLWithPath: out)) { $0.summaryLines.forEach(line) }
    }
}

/// `balance`'s options.
public struct BalanceCommandOptions: ParsableArguments {
    @Option(help: "Class-folder tree or MedMNIST .npz.") public var data: String
    @OptionGroup public var selection: ClassSelectionOptions
    @Option(
        name: .customLong("gan"),
        help: "A checkpoint from gan train, GAN or diffusion (repeat: per-class or conditional models).")
    public var checkpoints: [String]
    @Option(help: "Images per class: majority or a number (1...10000000).") public var target: BalanceTarget = .majority
    @Option(help: Ranges.ratio.help("At most this many synthetic images per real image of a class (default unlimited)."))
    public var maxSyntheticRatio: Double?
    @Option(help: "none, or discriminator (keep the candidates D scores highest; GAN checkpoints only).")
    public var select: SyntheticSelection = .none
    @Option(help: "dcgan, cdcgan or diffusion: refuse checkpoints of another family (default: whatever each holds).")
    public var generator: GeneratorFamily?
    @Option(help: Ranges.candidatesFactor.help("With --select discriminator: candidates generated per image kept."))
    public var candidatesFactor = 4
    @Option(help: "Seed of the split topped up (default: the checkpoints' own; another is refused).")
    public var splitSeed: UInt64?
    @Option(help: "train:val:test ratio of that split (default: the checkpoints' own).") public var ratio: String?
    @Option(help: "Base seed of generation.") public var seed: UInt64 = 0
    @Option(help: "Output folder (must not hold a balanced set yet).") public var out: String

    public init() {}

    public func validate() throws {
        if checkpoints.isEmpty { throw ValidationError("give at least one --gan checkpoint") }
        if case .count(let n) = target, n > 10_000_000 {
            throw ValidationError("--target \(n) is out of range: it must be in 1...10000000")
        }
        try Ranges.candidatesFactor.check(candidatesFactor, "--candidates-factor")
        try Ranges.ratio.check(maxSyntheticRatio, "--max-synthetic-ratio")
        _ = try parsedRatio(ratio)
    }

    /// The balancing as the library takes it.
    public func spec() throws -> BalanceSpec {
        var spec = BalanceSpec(data: data, checkpoints: checkpoints)
        spec.selection = try selection.selection(seed: splitSeed ?? 0); spec.generator = generator; spec.seed = seed
        spec.splitSeed = splitSeed; spec.splitRatio = try parsedRatio(ratio)
        spec.options.target = target; spec.options.maxSyntheticRatio = maxSyntheticRatio
        spec.options.selection = select; spec.options.candidatesFactor = candidatesFactor
        return spec
    }

    /// Generates the top-ups and writes the class-folder tree and its manifest.
    public func write(_ observe: (WorkflowEvent) -> Void) throws {
        _ = try refusedAsInvalid { try spec().write(to: out, observe) }
    }
}

/// `data inspect`'s options.
public struct InspectOptions: ParsableArguments {
    @Argument(help: "A class-folder tree or a MedMNIST .npz.") public var path: String
    @OptionGroup public var loading: LoadingOptions
    @OptionGroup public var split: SplitOptions
    @Flag(help: "Print the report as JSON.") public var json = false

    public init() {}

    /// The dataset's report.
    public func report() throws -> InspectionReport {
        let split = try self.split.choice()
        return try inspectDataset(
            at: path, options: loading.loadOptions(seed: split.seed), ratio: split.ratio, seed: split.seed)
    }
}

/// `data fetch`'s options.
public struct FetchOptions: ParsableArguments {
    @Argument(help: "Dataset name, e.g. pneumoniamnist.") public var name: String
    @Option(help: "Image size: 28, 64, 128 or 224.") public var size = 28
    @Option(help: "Cache folder (default ~/.cache/medsynth).") public var cache: String?
    @Option(help: "Download from this URL instead of Zenodo.") public var url: String?
    @Option(help: "Expected MD5 (default: the published one).") public var md5: String?

    public init() {}

    public func validate() throws {
        if ![28, 64, 128, 224].contains(size) {
            throw ValidationError("--size \(size) is not published: use 28, 64, 128 or 224")
        }
    }

    /// Downloads (or finds in the cache) and checks the file; returns the line to print.
    public func fetch() async throws -> String {
        let result = try await fetchMedMNIST(
            name: name, size: size, cacheDirectory: cache ?? defaultCacheDirectory, url: url, md5: md5)
        let state = result.downloaded ? "downloaded" : "already cached"
        return "\(result.path) (\(state); md5 \(result.md5)\(result.verified ? " verified" : ", NOT verified"))"
    }
}

/// `--ratio`'s value parsed, nil when not given; a malformed one is a usage error.
func parsedRatio(_ text: String?) throws -> SplitRatio? {
    do { return try text.map(SplitRatio.init(parsing:)) } catch let error as DatasetError {
        throw ValidationError("--ratio: \(error.description)")
    }
}
