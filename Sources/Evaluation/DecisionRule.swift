import Foundation

/// How a row of class probabilities becomes a predicted class.
///
/// A classifier that ranks well can still miss much of a minority class at the default rule
/// (argmax) when the class balance at test time differs from training. The tuned rules move the
/// decision towards the rare classes by an amount chosen on the validation split, never on test.
public enum DecisionRule: Codable, Equatable, Sendable, CustomStringConvertible {
    /// The most probable class.
    case argmax
    /// Two classes: class 1 when p(class 1) >= threshold, else class 0.
    case threshold(Double)
    /// Several classes: the argmax of log p_c - strength * log prior_c (strength 1 divides by the
    /// training prior, the Bayes rule for balanced accuracy when p is calibrated; 0 is argmax).
    case priorCorrection(strength: Double, priors: [Double])

    /// The strengths tried by `tuned` for several classes.
    public static let strengths: [Double] = [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5]

    public var description: String {
        switch self {
        case .argmax: return "argmax"
        case .threshold(let t): return String(format: "threshold %.3f", t)
        case .priorCorrection(let s, _): return String(format: "prior correction %.2f", s)
        }
    }

    /// Predicted classes of probabilities (N, K) row-major.
    public func predict(_ probabilities: [Float], classCount k: Int) -> [Int] {
        switch self {
        case .argmax: return argmaxRows(probabilities, classCount: k)
        case .threshold(let t):
            return stride(from: 0, to: probabilities.count, by: k).map { Double(probabilities[$0 + 1]) >= t ? 1 : 0 }
        case let .priorCorrection(strength, priors):
            // NOTE: log of a probability of 0 is -inf; the floor keeps the order of the others intact.
            let shift = priors.map { strength * log(max($0, 1e-12)) }
            return stride(from: 0, to: probabilities.count, by: k).map { row in
                var best = 0, bestScore = -Double.infinity
                for c in 0..<k {
                    let score = log(max(Double(probabilities[row + c]), 1e-30)) - shift[c]
                    if score > bestScore { (best, bestScore) = (c, score) }
                }
                return best
            }
        }
    }

    /// The rule that maximises balanced accuracy on a validation set: for two classes the best
    /// threshold on p(class 1) (midpoints between sorted validation probabilities; ties go to the
    /// threshold nearest 0.5), for several classes the best prior-correction strength among
    /// `strengths` (ties go to the weakest). `priors` are the training set's class frequencies.
    public static func tuned(probabilities: [Float], labels: [Int], classCount k: Int, priors: [Double]) throws -> DecisionRule {
        guard !labels.isEmpty, probabilities.count == labels.count * k, priors.count == k else {
            throw MetricsError.empty(
                what: "decision rule: \(labels.count) labels, \(probabilities.count) probabilities, "
                    + "\(priors.count) priors for \(k) classes")
        }
        func score(_ rule: DecisionRule) throws -> Double {
            try ConfusionMatrix(labels: labels, predictions: rule.predict(probabilities, classCount: k), classCount: k)
                .balancedAccuracy
        }
        if k == 2 {
            let p = Set(stride(from: 1, to: probabilities.count, by: 2).map { Double(probabilities[$0]) }).sorted()
            var candidates = [0.5]
            for (a, b) in zip(p, p.dropFirst()) { candidates.append((a + b) / 2) }
            if let first = p.first { candidates.append(first) }  // everything class 1
            var best = (rule: DecisionRule.threshold(0.5), score: -1.0, distance: 0.0)
            for t in candidates {
                let s = try score(.threshold(t)), d = abs(t - 0.5)
                if s > best.score + 1e-12 || (abs(s - best.score) <= 1e-12 && d < best.distance) {
                    best = (.threshold(t), s, d)
                }
            }
            return best.rule
        }
        var best = (rule: DecisionRule.argmax, score: -1.0)
        for strength in strengths {
            let rule: DecisionRule = strength == 0 ? .argmax : .priorCorrection(strength: strength, priors: priors)
            let s = try score(rule)
            if s > best.score + 1e-12 { best = (rule, s) }
        }
        return best.rule
    }
}
