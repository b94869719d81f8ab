import Foundation
import Tracking

/// Population stability index of `actual` against `expected` (two distributions over the same bins).
///
/// PSI = sum_i (a_i - e_i) ln(a_i / e_i). Rules of thumb: < 0.1 stable, 0.1-0.25 some shift, > 0.25 drift.
/// NOTE: an empty bin makes ln(a/e) infinite; both sides are floored at 1e-4 (and not renormalised),
/// the usual convention, so one empty bin adds a large but finite term.
public func populationStabilityIndex(expected: [Double], actual: [Double]) -> Double {
    precondition(expected.count == actual.count, "bins differ")
    return zip(expected, actual).reduce(0) { sum, pair in
        let e = max(pair.0, 1e-4), a = max(pair.1, 1e-4)
        return sum + (a - e) * log(a / e)
    }
}

/// Pearson's chi-square goodness-of-fit of observed counts against expected frequencies.
///
/// Returns the statistic sum_i (O_i - E_i)^2 / E_i with E_i = n f_i, the degrees of freedom
/// (bins - 1) and the p-value P(X >= statistic) for X ~ chi2(dof).
/// NOTE: bins with f_i = 0 are floored at 1e-6 so an observation there gives a huge (finite)
/// statistic instead of a division by zero; the test is unreliable when E_i < 5 in many bins,
/// which is why the monitor waits for `minimumSamples` before judging.
public func chiSquareTest(observed: [Int], expected frequencies: [Double]) -> (
    statistic: Double, degreesOfFreedom: Int, pValue: Double
) {
    precondition(observed.count == frequencies.count && observed.count >= 2, "bins differ")
    let n = Double(observed.reduce(0, +))
    let statistic = zip(observed, frequencies).reduce(0.0) { sum, pair in
        let e = n * max(pair.1, 1e-6)
        return sum + (Double(pair.0) - e) * (Double(pair.0) - e) / e
    }
    let dof = observed.count - 1
    return (statistic, dof, regularizedGammaQ(Double(dof) / 2, statistic / 2))
}

/// Q(a, x) = Γ(a, x) / Γ(a), the upper regularised incomplete gamma function.
///
/// Series for x < a + 1, Lentz's continued fraction otherwise (Numerical Recipes 6.2);
/// accurate to ~1e-12 relative, enough for p-values.
func regularizedGammaQ(_ a: Double, _ x: Double) -> Double {
    if x <= 0 { return 1 }
    let logPrefix = a * log(x) - x - lgamma(a)
    if x < a + 1 {
        var term = 1 / a, sum = term, ap = a
        for _ in 0..<500 {
            ap += 1
            term *= x / ap
            sum += term
            if abs(term) < abs(sum) * 1e-15 { break }
        }
        return max(0, 1 - sum * exp(logPrefix))
    }
    let tiny = 1e-300
    var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
    for i in 1...500 {
        let an = -Double(i) * (Double(i) - a)
        b += 2
        d = an * d + b
        if abs(d) < tiny { d = tiny }
        c = b + an / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15 { break }
    }
    return exp(logPrefix) * h
}

/// When the monitor calls drift.
public struct DriftThresholds: Codable, Sendable, Equatable {
    /// PSI above which either distribution has drifted.
    public var psi: Double
    /// Chi-square p-value of the predicted classes below which they have drifted.
    public var pValue: Double
    /// Served predictions needed before any judgement.
    public var minimumSamples: Int

    /// Creates thresholds (defaults: PSI 0.25, p 0.001, 50 samples).
    public init(psi: Double = 0.25, pValue: Double = 1e-3, minimumSamples: Int = 50) {
        self.psi = psi
        self.pValue = pValue
        self.minimumSamples = minimumSamples
    }
}

/// The monitor's view of the window: both distributions, both tests, the verdict.
public struct DriftReport: Codable, Sendable, Equatable {
    /// The monitored version, `name@version`.
    public var model: String
    /// Capacity of the sliding window.
    public var windowSize: Int
    /// Predictions in the window now.
    public var samples: Int
    /// Class names in label order.
    public var classNames: [String]
    /// Training-set class shares.
    public var referenceClassFrequencies: [Double]
    /// Predicted-class shares in the window.
    public var servedClassFrequencies: [Double]
    /// Training-set shares per mean-intensity bin.
    public var referenceIntensityHistogram: [Double]
    /// Window shares per mean-intensity bin.
    public var servedIntensityHistogram: [Double]
    /// PSI of predicted classes against training classes.
    public var classPSI: Double
    /// PSI of mean input intensity against the training set.
    public var intensityPSI: Double
    /// Chi-square statistic of predicted classes.
    public var chiSquare: Double
    /// Its p-value.
    public var chiSquarePValue: Double
    /// The thresholds applied.
    public var thresholds: DriftThresholds
    /// True once `samples >= minimumSamples` and a threshold is crossed.
    public var drifting: Bool
}

/// A sliding window over served predictions, compared with the training set's statistics.
///
/// Thread-safe; `observe` is O(bins) per prediction.
public final class DriftMonitor: @unchecked Sendable {
    // NOTE: @unchecked: all mutable state is guarded by `lock`.
    /// The monitored version, `name@version`.
    public let model: String
    /// The training-set baseline.
    public let reference: ReferenceStats
    /// Predictions kept in the window.
    public let windowSize: Int
    /// When to call drift.
    public let thresholds: DriftThresholds
    private let lock = NSLock()
    private var window: [(predicted: Int, bin: Int)] = []
    private var next = 0
    private var classCounts: [Int]
    private var binCounts: [Int]
    private var wasDrifting = false

    /// A monitor for `model` (a label such as `breast@3`) over the last `windowSize` predictions.
    public init(model: String, reference: ReferenceStats, windowSize: Int = 200, thresholds: DriftThresholds = DriftThresholds())
    {
        precondition(windowSize >= thresholds.minimumSamples && windowSize > 0, "window smaller than minimum samples")
        self.model = model
        self.reference = reference
        self.windowSize = windowSize
        self.thresholds = thresholds
        classCounts = Array(repeating: 0, count: reference.classNames.count)
        binCounts = Array(repeating: 0, count: reference.intensityBins)
    }

    /// Adds one served prediction (its class and the mean of its input pixels in [0, 1]).
    /// Returns the report when this observation turns the verdict from stable to drifting.
    @discardableResult
    public func observe(predicted: Int, meanIntensity: Float) -> DriftReport? {
        lock.lock()
        defer { lock.unlock() }
        let entry = (predicted, ReferenceStats.intensityBin(mean: meanIntensity, bins: binCounts.count))
        if window.count < windowSize {
            window.append(entry)
        } else {
            let old = window[next]
            classCounts[old.predicted] -= 1
            binCounts[old.bin] -= 1
            window[next] = entry
            next = (next + 1) % windowSize
        }
        classCounts[entry.0] += 1
        binCounts[entry.1] += 1
        let report = makeReport()
        defer { wasDrifting = report.drifting }
        return report.drifting && !wasDrifting ? report : nil
    }

    /// The current report.
    public func report() -> DriftReport {
        lock.lock()
        defer { lock.unlock() }
        return makeReport()
    }

    private func makeReport() -> DriftReport {
        let n = window.count
        let served = classCounts.map { n == 0 ? 0 : Double($0) / Double(n) }
        let intensity = binCounts.map { n == 0 ? 0 : Double($0) / Double(n) }
        let classPSI = n == 0 ? 0 : populationStabilityIndex(expected: reference.classFrequencies, actual: served)
        let intensityPSI = n == 0 ? 0 : populationStabilityIndex(expected: reference.intensityHistogram, actual: intensity)
        let chi =
            n == 0
            ? (statistic: 0, degreesOfFreedom: 0, pValue: 1)
            : chiSquareTest(observed: classCounts, expected: reference.classFrequencies)
        let drifting =
            n >= thresholds.minimumSamples
            && (classPSI > thresholds.psi || intensityPSI > thresholds.psi || chi.pValue < thresholds.pValue)
        return DriftReport(
            model: model, windowSize: windowSize, samples: n, classNames: reference.classNames,
            referenceClassFrequencies: reference.classFrequencies, servedClassFrequencies: served,
            referenceIntensityHistogram: reference.intensityHistogram, servedIntensityHistogram: intensity,
            classPSI: classPSI, intensityPSI: intensityPSI, chiSquare: chi.statistic, chiSquarePValue: chi.pValue,
            thresholds: thresholds, drifting: drifting)
    }
}
