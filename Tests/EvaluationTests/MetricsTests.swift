import Foundation
import Testing

@testable import Evaluation

/// Three classes, class 2 never predicted. By hand:
///   true 0: predicted 0,0,0,1 -> row [3, 1, 0]
///   true 1: predicted 1,1,0   -> row [1, 2, 0]
///   true 2: predicted 0,1     -> row [1, 1, 0]
/// columns (predicted) sum to 5, 4, 0.
let handLabels = [0, 0, 0, 0, 1, 1, 1, 2, 2]
let handPredictions = [0, 0, 0, 1, 1, 1, 0, 0, 1]

@Test func confusionMatrixAndPerClassScoresByHand() throws {
    let m = try ConfusionMatrix(labels: handLabels, predictions: handPredictions, classCount: 3)
    #expect(m.counts == [[3, 1, 0], [1, 2, 0], [1, 1, 0]])
    #expect(m.total == 9)
    #expect([0, 1, 2].map(m.support) == [4, 3, 2])
    #expect([0, 1, 2].map(m.predicted) == [5, 4, 0])
    // precision = TP / column, recall = TP / row; class 2: 0/0 -> 0.
    #expect(abs(m.precision(0) - 3.0 / 5) < 1e-12)
    #expect(abs(m.recall(0) - 3.0 / 4) < 1e-12)
    #expect(abs(m.f1(0) - 2.0 / 3) < 1e-12)  // 2 * 0.6 * 0.75 / 1.35
    #expect(abs(m.precision(1) - 2.0 / 4) < 1e-12)
    #expect(abs(m.recall(1) - 2.0 / 3) < 1e-12)
    #expect(abs(m.f1(1) - 4.0 / 7) < 1e-12)  // 2 * 0.5 * (2/3) / (7/6)
    #expect(m.precision(2) == 0 && m.recall(2) == 0 && m.f1(2) == 0)
    #expect(abs(m.accuracy - 5.0 / 9) < 1e-12)
    #expect(abs(m.balancedAccuracy - 17.0 / 36) < 1e-12)  // (3/4 + 2/3 + 0) / 3
    #expect(abs(m.macroF1 - 26.0 / 63) < 1e-12)  // (2/3 + 4/7 + 0) / 3
    #expect(m.neverPredicted == [2])
    #expect(m.constantPrediction == nil)
}

@Test func reportAlarmsAndSnakeCaseJSON() throws {
    let names = ["a", "b", "c"]
    let r = try EvaluationReport(classNames: names, labels: handLabels, predictions: handPredictions)
    #expect(r.alarms == ["class 'c' is never predicted (2 examples, recall 0)"])
    #expect(r.perClass["c"] == ClassMetrics(precision: 0, recall: 0, f1: 0, auc: nil, support: 2))
    #expect(r.macroAUC == nil && r.loss == nil)
    #expect(r.minimumRecall == 0)
    let object = try JSONSerialization.jsonObject(with: r.jsonData()) as! [String: Any]
    for key in ["accuracy", "balanced_accuracy", "macro_f1", "per_class", "confusion_matrix", "alarms"] {
        #expect(object[key] != nil, "missing \(key)")
    }
    let perClass = object["per_class"] as! [String: [String: Any]]
    #expect(Set(perClass["a"]!.keys) == ["precision", "recall", "f1", "support"])  // auc nil: left out
    #expect(try JSONDecoder().decode(EvaluationReport.self, from: r.jsonData()) == r)
    #expect(r.matrix.counts == r.confusionMatrix)
}

@Test func constantClassifierAlarm() throws {
    let r = try EvaluationReport(classNames: ["x", "y"], labels: [0, 1, 1], predictions: [1, 1, 1])
    #expect(
        r.alarms == ["class 'x' is never predicted (1 examples, recall 0)", "constant classifier: all 3 predictions are 'y'"])
}

@Test func recallZeroAlarmWhenAClassIsOnlyPredictedWrongly() throws {
    // Class 1 is predicted once, for a class-0 example; its own example goes to class 0.
    let r = try EvaluationReport(classNames: ["x", "y"], labels: [0, 0, 1], predictions: [0, 1, 0])
    #expect(r.alarms == ["class 'y' is never predicted correctly (1 examples, recall 0)"])
}

@Test func aucWithTiesByHand() throws {
    // Positives 0.35, 0.8, 0.4; negatives 0.1, 0.4. Pairs won: 0.35>0.1, 0.8>0.1, 0.8>0.4, 0.4>0.1,
    // and 0.4 = 0.4 counts one half: 4.5 of 6 pairs.
    let auc = try rocAUC(scores: [0.1, 0.4, 0.35, 0.8, 0.4], positive: [false, false, true, true, true])
    #expect(abs(auc! - 0.75) < 1e-12)
}

@Test func aucLimitsAndUndefinedCases() throws {
    let positive = [false, false, true, true]
    #expect(try rocAUC(scores: [0.1, 0.2, 0.8, 0.9], positive: positive) == 1)  // perfect ranking
    #expect(try rocAUC(scores: [0.9, 0.8, 0.2, 0.1], positive: positive) == 0)  // reversed
    #expect(try rocAUC(scores: [0.5, 0.5, 0.5, 0.5], positive: positive) == 0.5)  // all tied
    #expect(try rocAUC(scores: [0.1, 0.2], positive: [true, true]) == nil)  // no negatives
    #expect(throws: MetricsError.self) { try rocAUC(scores: [0.1], positive: [true, false]) }
    // One-vs-rest: class 2 absent -> nil, and macro AUC averages the defined ones only.
    let p: [Float] = [0.8, 0.1, 0.1, 0.3, 0.6, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1]
    let labels = [0, 1, 0, 1]
    let aucs = try oneVsRestAUC(probabilities: p, labels: labels, classCount: 3)
    #expect(aucs[0] == 1 && aucs[1] == 1 && aucs[2] == nil)
    let r = try EvaluationReport(classNames: ["a", "b", "c"], labels: labels, probabilities: p)
    #expect(r.macroAUC == 1)
    #expect(r.accuracy == 1)
}

@Test func crossEntropyByHand() throws {
    let loss = try crossEntropy(probabilities: [0.5, 0.5, 0.9, 0.1], labels: [0, 1], classCount: 2)
    #expect(abs(loss - (log(2) + log(10)) / 2) < 1e-6)
    // A zero probability is clamped to 1e-12, not infinite.
    #expect(abs(try crossEntropy(probabilities: [0, 1], labels: [0], classCount: 2) + log(1e-12)) < 1e-9)
}

@Test func majorityBaselineByHand() throws {
    let r = try majorityBaseline(trainLabels: [0, 1, 1, 1], testLabels: [0, 1], classNames: ["min", "maj"])
    #expect(r.confusionMatrix == [[0, 1], [0, 1]])
    #expect(r.accuracy == 0.5 && r.balancedAccuracy == 0.5)
    #expect(r.macroAUC == 0.5)  // constant scores: all ties
    #expect(abs(r.loss! - -(log(0.25) + log(0.75)) / 2) < 1e-6)
    #expect(r.alarms.count == 2)
}

@Test func meanStdUsesSampleStandardDeviation() throws {
    let s = try MeanStd([1, 2, 3, 4])
    #expect(s.mean == 2.5 && s.count == 4)
    #expect(abs(s.std - (5.0 / 3).squareRoot()) < 1e-12)  // sum of squares 5, n - 1 = 3
    #expect(try MeanStd([7]).std == 0)
    #expect(throws: MetricsError.self) { try MeanStd([]) }
}

@Test func bootstrapIsDeterministicAndPaired() throws {
    let labels = (0..<60).map { $0 % 3 == 0 ? 1 : 0 }
    let a = ArmPredictions(labels: labels, predictions: Array(repeating: 0, count: 60))  // never finds class 1
    let b = ArmPredictions(
        labels: labels, predictions: labels.enumerated().map { $0.offset % 10 == 0 ? 1 - $0.element : $0.element })
    let x = try Bootstrap.balancedAccuracyDifference(a, b, classCount: 2, resamples: 500, seed: 7)
    let y = try Bootstrap.balancedAccuracyDifference(a, b, classCount: 2, resamples: 500, seed: 7)
    let z = try Bootstrap.balancedAccuracyDifference(a, b, classCount: 2, resamples: 500, seed: 8)
    #expect(x == y)
    #expect(x.lower != z.lower || x.upper != z.upper)
    #expect(x.paired && x.resamples == 500)
    #expect(x.lower <= x.estimate && x.estimate <= x.upper)
    #expect(x.lower > 0, "B clearly beats a constant A: \(x)")
    // Identical arms, paired: every resampled difference is exactly 0.
    let same = try Bootstrap.recallDifference(b, b, classIndex: 1, classCount: 2, resamples: 200, seed: 1)
    #expect(same.lower == 0 && same.upper == 0 && same.estimate == 0)
    // Different test sets: resampled independently.
    let other = ArmPredictions(labels: Array(labels.prefix(30)), predictions: Array(b.predictions.prefix(30)))
    #expect(try !Bootstrap.recallDifference(a, other, classIndex: 1, classCount: 2, resamples: 200, seed: 1).paired)
}

/// Values from numpy.quantile (method "linear", its default); the input need not be sorted.
@Test func quantileInterpolatesLikeNumpy() {
    #expect(quantile([1, 2, 3, 4, 5], 0.5) == 3)
    #expect(quantile([0, 10], 0.25) == 2.5)
    #expect(quantile([4, 1, 3, 2], 0) == 1)
    #expect(quantile([4, 1, 3, 2], 1) == 4)
    #expect(abs(quantile([4, 1, 3, 2], 0.5) - 2.5) < 1e-12)
    #expect(abs(quantile([1, 2, 3, 4, 5], 0.01) - 1.04) < 1e-12)
    #expect(quantile([], 0.5).isNaN)
}

@Test func escapeHTMLLeavesNoMarkup() {
    #expect(escapeHTML(#"<a href="x">Tom & Jerry's</a>"#) == "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;")
    #expect(escapeHTML("&lt;") == "&amp;lt;")
}
