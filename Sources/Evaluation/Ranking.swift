import Foundation

/// Area under the ROC curve of `scores` for the examples marked `positive`, by ranks:
/// AUC = (R+ - n+ (n+ + 1) / 2) / (n+ n-), R+ the sum of the positives' ranks (the Mann-Whitney U
/// divided by n+ n-). Tied scores share their average rank, which counts a tied
/// (positive, negative) pair as one half.
/// Returns nil when there are no positives or no negatives: the AUC is undefined, not 0.5.
public func rocAUC(scores: [Double], positive: [Bool]) throws -> Double? {
    guard scores.count == positive.count else {
        throw MetricsError.lengthMismatch(what: "AUC positives", expected: scores.count, actual: positive.count)
    }
    let nPos = positive.filter { $0 }.count, nNeg = positive.count - nPos
    guard nPos > 0, nNeg > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var rankSum = 0.0
    var start = 0
    while start < order.count {
        var end = start
        while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
        // Ranks start..end (0-based) are tied: each gets the average 1-based rank.
        let averageRank = Double(start + end) / 2 + 1
        for k in start...end where positive[order[k]] { rankSum += averageRank }
        start = end + 1
    }
    return (rankSum - Double(nPos) * Double(nPos + 1) / 2) / (Double(nPos) * Double(nNeg))
}

/// One-vs-rest ROC AUC per class from predicted probabilities (N, C) row-major: class c's
/// probability as the score, "label == c" as positive. nil for a class absent or alone in `labels`.
public func oneVsRestAUC(probabilities: [Float], labels: [Int], classCount: Int) throws -> [Double?] {
    try checkProbabilities(probabilities, labels: labels, classCount: classCount)
    return try (0..<classCount).map { c in
        try rocAUC(
            scores: labels.indices.map { Double(probabilities[$0 * classCount + c]) },
            positive: labels.map { $0 == c })
    }
}

/// Mean cross-entropy -log p(true class) of probabilities (N, C) row-major.
/// NOTE: p is clamped to 1e-12 so a confident mistake costs about 27.6 nats, not infinity.
public func crossEntropy(probabilities: [Float], labels: [Int], classCount: Int) throws -> Double {
    try checkProbabilities(probabilities, labels: labels, classCount: classCount)
    guard !labels.isEmpty else { throw MetricsError.empty(what: "cross-entropy") }
    let total = labels.enumerated().reduce(0.0) { sum, item in
        sum - Foundation.log(max(Double(probabilities[item.offset * classCount + item.element]), 1e-12))
    }
    return total / Double(labels.count)
}

/// The most probable class of each row of probabilities (N, C); ties go to the lowest index.
public func argmaxRows(_ probabilities: [Float], classCount: Int) -> [Int] {
    stride(from: 0, to: probabilities.count, by: classCount).map { start in
        var best = 0
        for c in 1..<classCount where probabilities[start + c] > probabilities[start + best] { best = c }
        return best
    }
}

func checkProbabilities(_ probabilities: [Float], labels: [Int], classCount: Int) throws {
    guard probabilities.count == labels.count * classCount else {
        throw MetricsError.lengthMismatch(
            what: "probabilities (N x C)", expected: labels.count * classCount,
            actual: probabilities.count)
    }
    if let bad = labels.first(where: { !(0..<classCount).contains($0) }) {
        throw MetricsError.labelOutOfRange(what: "labels", value: bad, classCount: classCount)
    }
}
