import Foundation
import SeededRandom

/// Mean and sample standard deviation of a metric over seeds.
public struct MeanStd: Codable, Equatable, Sendable {
    public var mean: Double
    /// Sample standard deviation (divisor n - 1).
    /// NOTE: 0 for a single value (n - 1 = 0), not NaN.
    public var std: Double
    public var count: Int

    /// Summarises `values` (at least one).
    public init(_ values: [Double]) throws {
        guard !values.isEmpty else { throw MetricsError.empty(what: "MeanStd") }
        count = values.count
        mean = values.reduce(0, +) / Double(count)
        let m = mean
        std = count > 1 ? (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(count - 1)).squareRoot() : 0
    }
}

/// One arm of a comparison: test labels and the arm's predictions for them.
public struct ArmPredictions: Codable, Equatable, Sendable {
    public var labels: [Int]
    public var predictions: [Int]
    public init(labels: [Int], predictions: [Int]) { (self.labels, self.predictions) = (labels, predictions) }
}

/// A bootstrap percentile interval for `statistic(B) - statistic(A)`.
public struct BootstrapInterval: Codable, Equatable, Sendable {
    /// The difference on the full test sets.
    public var estimate: Double
    /// 2.5th and 97.5th percentiles of the resampled differences (for `level` 0.95).
    public var lower: Double
    public var upper: Double
    public var level: Double
    /// Resamples in which the statistic was defined in both arms (see `Bootstrap`).
    public var resamples: Int
    /// Whether test examples were resampled in pairs (both arms predict the same test set).
    public var paired: Bool
    public var seed: UInt64
}

/// Seeded bootstrap intervals for the difference between two arms' scores.
///
/// When both arms predict the same test set (equal labels) examples are resampled in pairs:
/// one index draw serves both arms, so the interval reflects only the arms' disagreement.
/// Otherwise each arm's test set is resampled on its own.
///
/// - Important: superseded for multi-seed data by `PairedBootstrap`. Pooling every seed's
///   predictions into one arm treats each (seed, image) row as an independent test image: the
///   variance between training runs is left out and the intervals are too narrow (85% coverage of
///   nominal 95% in Tests/EvaluationTests/CalibrationTests.swift). Use this for a single model only.
public enum Bootstrap {
    /// Interval for balanced accuracy(B) - balanced accuracy(A).
    public static func balancedAccuracyDifference(
        _ a: ArmPredictions, _ b: ArmPredictions, classCount: Int,
        resamples: Int = 2000, level: Double = 0.95, seed: UInt64
    ) throws
        -> BootstrapInterval
    {
        try difference(a, b, classCount: classCount, resamples: resamples, level: level, seed: seed) { $0.balancedAccuracy }
    }

    /// Interval for recall(B) - recall(A) of class `classIndex`.
    /// NOTE: resamples that draw no example of the class leave the recall undefined and are
    /// skipped (counted out of `resamples`), rather than scored 0.
    public static func recallDifference(
        _ a: ArmPredictions, _ b: ArmPredictions, classIndex: Int, classCount: Int,
        resamples: Int = 2000, level: Double = 0.95, seed: UInt64
    ) throws
        -> BootstrapInterval
    {
        try difference(a, b, classCount: classCount, resamples: resamples, level: level, seed: seed) { m in
            m.support(classIndex) > 0 ? m.recall(classIndex) : nil
        }
    }

    /// The general form: `statistic` of a confusion matrix, nil where undefined.
    public static func difference(
        _ a: ArmPredictions, _ b: ArmPredictions, classCount: Int, resamples: Int,
        level: Double, seed: UInt64, statistic: (ConfusionMatrix) -> Double?
    ) throws
        -> BootstrapInterval
    {
        let full = try [a, b].map { try ConfusionMatrix(labels: $0.labels, predictions: $0.predictions, classCount: classCount) }
        guard !a.labels.isEmpty, !b.labels.isEmpty else { throw MetricsError.empty(what: "bootstrap arm") }
        guard let sa = statistic(full[0]), let sb = statistic(full[1]) else {
            throw MetricsError.empty(what: "bootstrap statistic undefined on the full test set")
        }
        let paired = a.labels == b.labels
        var rng = SeededGenerator(seed: seed)
        var differences: [Double] = []
        differences.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var ma = ConfusionMatrix(classCount: classCount), mb = ConfusionMatrix(classCount: classCount)
            for _ in 0..<a.labels.count {
                let i = rng.int(below: a.labels.count)
                ma.add(label: a.labels[i], prediction: a.predictions[i])
                if paired { mb.add(label: b.labels[i], prediction: b.predictions[i]) }
            }
            if !paired {
                for _ in 0..<b.labels.count {
                    let i = rng.int(below: b.labels.count)
                    mb.add(label: b.labels[i], prediction: b.predictions[i])
                }
            }
            if let x = statistic(ma), let y = statistic(mb) { differences.append(y - x) }
        }
        guard !differences.isEmpty else { throw MetricsError.empty(what: "bootstrap: statistic undefined in every resample") }
        let tail = (1 - level) / 2
        return BootstrapInterval(
            estimate: sb - sa, lower: quantile(differences, tail), upper: quantile(differences, 1 - tail),
            level: level, resamples: differences.count, paired: paired, seed: seed)
    }
}

/// The q-quantile (q in [0, 1]) of `values` (in any order), linearly interpolated between order
/// statistics (numpy's default "linear" method); NaN for no values.
public func quantile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let position = q * Double(sorted.count - 1)
    let i = Int(position.rounded(.down)), j = min(i + 1, sorted.count - 1)
    return sorted[i] + (sorted[j] - sorted[i]) * (position - Double(i))
}
