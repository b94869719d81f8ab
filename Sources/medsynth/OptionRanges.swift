import ArgumentParser

/// The documented range of a numeric option: shown in its `--help`, checked in `validate()`
/// before any work. Every numeric option of every command takes its range from `Ranges`.
///
/// NaN fails every comparison, so it is refused by construction; infinities are outside every
/// (finite) range. The message names the option, the value and the range.
struct OptionRange<Value: Comparable & CustomStringConvertible & Sendable>: Sendable {
    let lower: Value
    let upper: Value
    /// `(0, 1]` rather than `[0, 1]`: the bound itself is refused (learning rates, probabilities).
    var lowerOpen = false
    var upperOpen = false

    /// `"1...4096"` or `"(0, 1)"`, as `--help` shows it.
    var text: String {
        if !lowerOpen && !upperOpen { return "\(lower)...\(upper)" }
        return "\(lowerOpen ? "(" : "[")\(lower), \(upper)\(upperOpen ? ")" : "]")"
    }

    /// `help` with the range appended, for `@Option(help:)`.
    func help(_ help: String) -> ArgumentHelp { ArgumentHelp("\(help) Range \(text).") }

    func contains(_ value: Value) -> Bool {
        (lowerOpen ? value > lower : value >= lower) && (upperOpen ? value < upper : value <= upper)
    }

    /// Throws a `ValidationError` naming `option` unless `value` lies in the range.
    func check(_ value: Value?, _ option: String) throws {
        guard let value, !contains(value) else { return }
        throw ValidationError("\(option) \(value) is out of range: it must be in \(text)")
    }
}

extension OptionRange where Value == Int {
    static func closed(_ range: ClosedRange<Int>) -> Self { Self(lower: range.lowerBound, upper: range.upperBound) }
}

extension OptionRange where Value == Double {
    static func closed(_ range: ClosedRange<Double>) -> Self { Self(lower: range.lowerBound, upper: range.upperBound) }
    /// `(lower, upper]`.
    static func positive(upTo upper: Double) -> Self { Self(lower: 0, upper: upper, lowerOpen: true) }
}

extension OptionRange where Value == Float {
    /// `(lower, upper]`.
    static func positive(upTo upper: Float) -> Self { Self(lower: 0, upper: upper, lowerOpen: true) }
}

/// The ranges of the numeric options, one place for all commands. The upper bounds are far
/// beyond any sensible value yet small enough that no product of them (epochs x steps, count x
/// pixels) overflows or asks for an absurd allocation.
enum Ranges {
    // Data and models.
    static let imageSize = OptionRange<Int>.closed(8...512)
    static let ganWidth = OptionRange<Int>.closed(4...1024)

    // Training.
    static let epochs = OptionRange<Int>.closed(1...100_000)
    static let steps = OptionRange<Int>.closed(1...1_000_000_000)
    static let batchSize = OptionRange<Int>.closed(1...4096)
    /// Batch norm needs two images to have a variance.
    static let ganBatchSize = OptionRange<Int>.closed(2...4096)
    static let every = OptionRange<Int>.closed(1...1_000_000_000)
    /// Worker processes of `experiment --jobs` (each at least one core's thread).
    static let jobs = OptionRange<Int>.closed(1...64)
    static let learningRate = OptionRange<Float>.positive(upTo: 10)
    static let emaDecay = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    static let labelSmoothing = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    static let patience = OptionRange<Int>.closed(1...100_000)
    static let seeds = OptionRange<Int>.closed(1...1000)

    // Diffusion.
    /// U-Net base width (a multiple of 8, checked beside the range: group norms of 8 groups).
    static let diffusionWidth = OptionRange<Int>.closed(8...512)
    static let samplingSteps = OptionRange<Int>.closed(1...1000)
    static let guidanceScale = OptionRange<Float>(lower: 0, upper: 20)
    static let classDrop = OptionRange<Float>(lower: 0, upper: 1, upperOpen: true)
    static let diffusionBatchSize = OptionRange<Int>.closed(1...1024)
    /// Training steps of an experiment's generator.
    static let generatorSteps = OptionRange<Int>.closed(1...1_000_000)

    // Privacy.
    static let noiseMultiplier = OptionRange<Double>.positive(upTo: 10_000)
    static let epsilon = OptionRange<Double>.positive(upTo: 1_000_000)
    static let maxGradNorm = OptionRange<Float>.positive(upTo: 1_000_000)
    static let delta = OptionRange<Double>(lower: 0, upper: 1, lowerOpen: true, upperOpen: true)
    static let datasetSize = OptionRange<Int>.closed(1...10_000_000_000)
    static let privacyEpochs = OptionRange<Double>.positive(upTo: 1_000_000)
    /// DP-SGD steps the accountant is asked about (epochs / sampling rate).
    static let privacySteps = OptionRange<Double>.positive(upTo: 1e12)

    // Synthetic images.
    static let sampleCount = OptionRange<Int>.closed(1...1_000_000)
    static let label = OptionRange<Int>.closed(0...1_000_000)
    static let ratio = OptionRange<Double>.closed(0...1_000_000)
    static let candidatesFactor = OptionRange<Int>.closed(1...100)
    static let percentile = OptionRange<Double>(lower: 0, upper: 100, lowerOpen: true, upperOpen: true)
    static let kidSubsets = OptionRange<Int>.closed(1...100_000)

    static let readBytes = OptionRange<Int>.closed(1024...(1 << 40))

    // Store and registry.
    static let limit = OptionRange<Int>.closed(1...1_000_000)
    static let version = OptionRange<Int>.closed(1...1_000_000_000)

    // Serving.
    static let port = OptionRange<Int>.closed(0...65535)
    static let maxBodyBytes = OptionRange<Int>.closed(1...(1 << 30))
    static let maxImagePixels = OptionRange<Int>.closed(1...(1 << 28))
    static let maxConcurrent = OptionRange<Int>.closed(1...1024)
    static let requestTimeout = OptionRange<Int>.closed(1...3600)
    static let headerTimeout = OptionRange<Int>.closed(1...3600)
    static let inferenceThreads = OptionRange<Int>.closed(1...256)
    /// The drift monitor judges after 50 predictions, so the window holds at least that many.
    static let driftWindow = OptionRange<Int>.closed(50...1_000_000)

    // Benchmarks.
    static let warmup = OptionRange<Int>.closed(0...10_000)
    static let repeats = OptionRange<Int>.closed(1...10_000)
    static let benchSteps = OptionRange<Int>.closed(1...100_000)
    static let gflops = OptionRange<Double>.positive(upTo: 1e9)
}

/// Refuses a `--channels` other than 1 or 3 (nil: as the data).
func checkChannels(_ channels: Int?, _ option: String = "--channels") throws {
    guard let channels, channels != 1, channels != 3 else { return }
    throw ValidationError("\(option) \(channels) is not supported: use 1 or 3")
}

/// Refuses a GAN image size other than 28, 32, 64 or 128.
func checkGANImageSize(_ size: Int, _ option: String = "--image-size") throws {
    guard ![28, 32, 64, 128].contains(size) else { return }
    throw ValidationError("\(option) \(size) is not supported: use 28, 32, 64 or 128")
}
