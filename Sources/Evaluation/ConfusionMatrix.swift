import Foundation

/// Errors of metric computations; each names the inputs that disagree.
public enum MetricsError: Error, CustomStringConvertible, Equatable, Sendable {
    case lengthMismatch(what: String, expected: Int, actual: Int)
    case labelOutOfRange(what: String, value: Int, classCount: Int)
    case empty(what: String)
    /// Two arms that must share a test set carry different labels.
    case labelsDiffer(what: String)
    /// A parameter outside its domain (a level outside (0, 1), no resamples, a class index out of range).
    case invalidParameter(what: String)

    public var description: String {
        switch self {
        case let .lengthMismatch(what, expected, actual): return "\(what): expected \(expected) values, got \(actual)"
        case let .labelOutOfRange(what, value, classCount): return "\(what): label \(value) outside 0..<\(classCount)"
        case let .empty(what): return "\(what): no examples"
        case let .labelsDiffer(what): return "\(what): test labels differ, so the arms were not tested on the same images"
        case let .invalidParameter(what): return "invalid parameter: \(what)"
        }
    }
}

/// Counts of (true class, predicted class) pairs: `counts[t][p]`, rows true, columns predicted.
public struct ConfusionMatrix: Codable, Equatable, Sendable {
    /// `counts[t][p]`: examples of true class t predicted as p.
    public private(set) var counts: [[Int]]

    /// Number of classes (C).
    public var classCount: Int { counts.count }

    /// An all-zero C x C matrix.
    public init(classCount: Int) {
        counts = Array(repeating: Array(repeating: 0, count: classCount), count: classCount)
    }

    /// Counts `labels[i]` against `predictions[i]`; both must lie in `0..<classCount`.
    public init(labels: [Int], predictions: [Int], classCount: Int) throws {
        guard labels.count == predictions.count else {
            throw MetricsError.lengthMismatch(what: "predictions", expected: labels.count, actual: predictions.count)
        }
        self.init(classCount: classCount)
        for (t, p) in zip(labels, predictions) {
            guard (0..<classCount).contains(t) else {
                throw MetricsError.labelOutOfRange(what: "labels", value: t, classCount: classCount)
            }
            guard (0..<classCount).contains(p) else {
                throw MetricsError.labelOutOfRange(what: "predictions", value: p, classCount: classCount)
            }
            counts[t][p] += 1
        }
    }

    /// Adds one (true, predicted) pair.
    public mutating func add(label: Int, prediction: Int, count: Int = 1) { counts[label][prediction] += count }

    /// All examples counted.
    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    /// Examples of true class c (row sum): the class's support.
    public func support(_ c: Int) -> Int { counts[c].reduce(0, +) }
    /// Examples predicted as c (column sum).
    public func predicted(_ c: Int) -> Int { counts.reduce(0) { $0 + $1[c] } }
    /// Correct predictions of class c (the diagonal).
    public func truePositives(_ c: Int) -> Int { counts[c][c] }

    /// TP / (TP + FP).
    /// NOTE: 0/0 (class never predicted) is defined as 0, as sklearn's zero_division=0.
    public func precision(_ c: Int) -> Double { ratio(truePositives(c), predicted(c)) }
    /// TP / (TP + FN). NOTE: 0/0 (class absent) is defined as 0.
    public func recall(_ c: Int) -> Double { ratio(truePositives(c), support(c)) }
    /// Harmonic mean 2PR / (P + R). NOTE: 0 when P + R = 0.
    public func f1(_ c: Int) -> Double {
        let p = precision(c), r = recall(c)
        return p + r > 0 ? 2 * p * r / (p + r) : 0
    }

    /// Correct / all. NOTE: 0 for an empty matrix.
    public var accuracy: Double { ratio((0..<classCount).reduce(0) { $0 + truePositives($1) }, total) }

    /// Mean recall over the classes present (support > 0), as sklearn's balanced_accuracy_score.
    /// NOTE: absent classes are left out of the mean rather than counted as recall 0; 0 if none.
    public var balancedAccuracy: Double {
        let present = (0..<classCount).filter { support($0) > 0 }
        return present.isEmpty ? 0 : present.reduce(0) { $0 + recall($1) } / Double(present.count)
    }

    /// Unweighted mean of the per-class F1 over all C classes (sklearn average="macro").
    public var macroF1: Double {
        classCount == 0 ? 0 : (0..<classCount).reduce(0) { $0 + f1($1) } / Double(classCount)
    }

    /// Classes present in the labels that the classifier never predicts.
    public var neverPredicted: [Int] { (0..<classCount).filter { predicted($0) == 0 && support($0) > 0 } }

    /// The single class every prediction falls in, if all predictions are one class (and C > 1).
    public var constantPrediction: Int? {
        let used = (0..<classCount).filter { predicted($0) > 0 }
        return used.count == 1 && classCount > 1 ? used[0] : nil
    }

    private func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}
