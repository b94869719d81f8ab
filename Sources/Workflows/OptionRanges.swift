/// The documented range of a numeric option: shown in its `--help`, checked in `validate()`
/// before any work. Every numeric option of every command takes its range from `Ranges`; the
/// command line adds `help(_:)` and `check(_:_:)` in ArgumentParser's terms.
///
/// NaN fails every comparison, so it is refused by construction; infinities are outside every
/// (finite) range. The message names the option, the value and the range.
public struct OptionRange<Value: Comparable & CustomStringConvertible & Sendable>: Sendable {
    public let lower: Value
    public let upper: Value
    /// `(0, 1]` rather than `[0, 1]`: the bound itself is refused (learning rates, probabilities).
    public var lowerOpen = false
    public var upperOpen = false

    public init(lower: Value, upper: Value, lowerOpen: Bool = false, upperOpen: Bool = false) {
        self.lower = lower; self.upper = upper; self.lowerOpen = lowerOpen; self.upperOpen = upperOpen
    }

    /// `"1...4096"` or `"(0, 1)"`, as `--help` shows it.
    public var text: String {
        if !lowerOpen && !upperOpen { return "\(lower)...\(upper)" }
        return "\(lowerOpen ? "(" : "[")\(lower), \(upper)\(upperOpen ? ")" : "]")"
    }

    /// `help` with the range appended, as an option's `--help` shows it.
    public func helpText(_ help: String) -> String { "\(help) Range \(text)." }

    public func contains(_ value: Value) -> Bool {
        (lowerOpen ? value > lower : value >= lower) && (upperOpen ? value < upper : value <= upper)
    }

    /// The refusal naming `option` and the range when `value` lies outside it; nil when it lies
    /// inside (or is nil: not given).
    public func refusal(_ value: Value?, _ option: String) -> String? {
        guard let value, !contains(value) else { return nil }
        return "\(option) \(value) is out of range: it must be in \(text)"
    }
}

extension OptionRange where Value == Int {
    public static func closed(_ range: ClosedRange<Int>) -> Self { Self(lower: range.lowerBound, upper: range.upperBound) }
}

extension OptionRange where Value == Double {
    public static func closed(_ range: ClosedRange<Double>) -> Self { Self(lower: range.lowerBound, upper: range.upperBound) }
    /// `(lower, upper]`.
    public static func positive(upTo upper: Double) -> Self { Self(lower: 0, upper: upper, lowerOpen: true) }
}

extension OptionRange where Value == Float {
    /// `(lower, upper]`.
    public static func positive(upTo upper: Float) -> Self { Self(lower: 0, upper: upper, lowerOpen: true) }
}

/// The ranges of the numeric options, one place for all commands. The upper bounds are far
/// beyond any sensible value yet small enough that no product of them (epochs x steps, count x
/// pixels) overflows or asks for an absurd allocation.
public enum Ranges {
    // Data and models.
    public static let imageSize = OptionRange<Int>.closed(8...512)
    public static let ganWidth = OptionRange<Int>.closed(4...1024)

    // Training.
    public static let epochs = OptionRange<Int>.closed(1...100_000)
    public static let steps = OptionRange<Int>.closed(1...1_000_000_000)
    public static let batchSize = OptionRange<Int>.closed(1...4096)
    /// Batch norm needs two images to have a variance.
    public static let ganBatchSize = OptionRange<Int>.closed(2...4096)
    public static let every = OptionRange<Int>.closed(1...1_000_000_000)
    /// Worker processes of `experiment --jobs` (each at least one core's thread).
    public static let jobs = OptionRange<Int>.closed(1...64)
    public static let learningRate = OptionRange<Float>.positive(upTo: 10)
    public static let emaDecay = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    public static let labelSmoothing = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    public static let patience = OptionRange<Int>.closed(1...100_000)
    public static let seeds = OptionRange<Int>.closed(1...1000)

    // Diffusion.
    /// U-Net base width (a multiple of 8, checked beside the range: group norms of 8 groups).
    public static let diffusionWidth = OptionRange<Int>.closed(8...512)
    public static let samplingSteps = OptionRange<Int>.closed(1...1000)
    public static let guidanceScale = OptionRange<Float>(lower: 0, upper: 20)
    public static let classDrop = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    public static let diffusionBatchSize = OptionRange<Int>.closed(1...1024)
    /// Training steps of an experiment's generator.
    public static let generatorSteps = OptionRange<Int>.closed(1...1_000_000)

    // Privacy.
    public static let noiseMultiplier = OptionRange<Double>.positive(upTo: 10_000)
    public static let epsilon = OptionRange<Double>.positive(upTo: 1_000_000)
    public static let maxGradNorm = OptionRange<Float>.positive(upTo: 1_000_000)
    public static let delta = OptionRange<Double>(lower: 0, upper: 1, lowerOpen: true, upperOpen: true)
    public static let datasetSize = OptionRange<Int>.closed(1...10_000_000_000)
    public static let privacyEpochs = OptionRange<Double>.positive(upTo: 1_000_000)
    /// DP-SGD steps the accountant is asked about (epochs / sampling rate).
    public static let privacySteps = OptionRange<Double>.positive(upTo: 1e12)

    // Synthetic images.
    public static let sampleCount = OptionRange<Int>.closed(1...1_000_000)
    public static let label = OptionRange<Int>.closed(0...1_000_000)
    public static let ratio = OptionRange<Double>.closed(0...1_000_000)
    public static let candidatesFactor = OptionRange<Int>.closed(1...100)
    public static let percentile = OptionRange<Double>(lower: 0, upper: 100, lowerOpen: true, upperOpen: true)
    public static let kidSubsets = OptionRange<Int>.closed(1...100_000)

    public static let readBytes = OptionRange<Int>.closed(1024...(1 << 40))

    // Store and registry.
    public static let limit = OptionRange<Int>.closed(1...1_000_000)
    public static let version = OptionRange<Int>.closed(1...1_000_000_000)

    // Serving.
    public static let port = OptionRange<Int>.closed(0...65535)
    public static let maxBodyBytes = OptionRange<Int>.closed(1...(1 << 30))
    public static let maxImagePixels = OptionRange<Int>.closed(1...(1 << 28))
    public static let maxConcurrent = OptionRange<Int>.closed(1...1024)
    public static let requestTimeout = OptionRange<Int>.closed(1...3600)
    public static let headerTimeout = OptionRange<Int>.closed(1...3600)
    public static let inferenceThreads = OptionRange<Int>.closed(1...256)
    /// Images in one batched model run (1: no batching).
    public static let maxBatchImages = OptionRange<Int>.closed(1...1024)
    /// Microseconds a batch may wait for more requests (at most 0.1 s).
    public static let maxBatchDelay = OptionRange<Int>.closed(0...100_000)
    /// The drift monitor judges after 50 predictions, so the window holds at least that many.
    public static let driftWindow = OptionRange<Int>.closed(50...1_000_000)

    // Benchmarks.
    public static let warmup = OptionRange<Int>.closed(0...10_000)
    public static let repeats = OptionRange<Int>.closed(1...10_000)
    public static let benchSteps = OptionRange<Int>.closed(1...100_000)
    public static let gflops = OptionRange<Double>.positive(upTo: 1e9)
    /// `bench classifier`: the sides `ClassifierConfig` accepts, and a class count.
    public static let classifierImageSize = OptionRange<Int>.closed(28...128)
    public static let classes = OptionRange<Int>.closed(2...1000)
}
