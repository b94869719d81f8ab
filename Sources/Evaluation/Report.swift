import Foundation

/// One class's scores in an `EvaluationReport`.
public struct ClassMetrics: Codable, Equatable, Sendable {
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// One-vs-rest ROC AUC; nil when undefined (class absent, or no probabilities).
    public var auc: Double?
    /// Number of test examples of the class.
    public var support: Int

    public init(precision: Double, recall: Double, f1: Double, auc: Double?, support: Int) {
        (self.precision, self.recall, self.f1, self.auc, self.support) = (precision, recall, f1, auc, support)
    }
}

/// Everything measured on one evaluation set. JSON keys are snake_case (`balanced_accuracy`,
/// `per_class`, ...); `per_class` is keyed by class name, `confusion_matrix` is rows true,
/// columns predicted, in `class_names` order.
public struct EvaluationReport: Codable, Equatable, Sendable {
    public var classNames: [String]
    public var accuracy: Double
    /// Mean recall over the classes present.
    public var balancedAccuracy: Double
    public var macroF1: Double
    /// Mean of the defined one-vs-rest AUCs; nil if none is defined or there were no probabilities.
    public var macroAUC: Double?
    /// Mean cross-entropy; nil without probabilities.
    public var loss: Double?
    public var perClass: [String: ClassMetrics]
    public var confusionMatrix: [[Int]]
    /// Human-readable warnings: a class never predicted, a constant classifier.
    public var alarms: [String]

    enum CodingKeys: String, CodingKey {
        case classNames = "class_names", accuracy, balancedAccuracy = "balanced_accuracy", macroF1 = "macro_f1"
        case macroAUC = "macro_auc", loss, perClass = "per_class", confusionMatrix = "confusion_matrix", alarms
    }

    /// Scores hard predictions, and, with `probabilities` (N, C) row-major, AUCs and the loss.
    /// With probabilities and no `predictions`, predictions are their row-wise argmax.
    public init(classNames: [String], labels: [Int], predictions: [Int]? = nil, probabilities: [Float]? = nil) throws {
        let c = classNames.count
        guard !labels.isEmpty else { throw MetricsError.empty(what: "evaluation set") }
        guard predictions != nil || probabilities != nil else {
            throw MetricsError.empty(what: "evaluation needs predictions or probabilities")
        }
        if let probabilities { try checkProbabilities(probabilities, labels: labels, classCount: c) }
        let predicted = predictions ?? argmaxRows(probabilities!, classCount: c)
        let matrix = try ConfusionMatrix(labels: labels, predictions: predicted, classCount: c)
        let aucs =
            try probabilities.map { try oneVsRestAUC(probabilities: $0, labels: labels, classCount: c) }
            ?? Array(repeating: nil, count: c)
        self.classNames = classNames
        accuracy = matrix.accuracy
        balancedAccuracy = matrix.balancedAccuracy
        macroF1 = matrix.macroF1
        let defined = aucs.compactMap { $0 }
        macroAUC = defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)
        loss = try probabilities.map { try crossEntropy(probabilities: $0, labels: labels, classCount: c) }
        perClass = Dictionary(
            uniqueKeysWithValues: (0..<c).map { k in
                (
                    classNames[k],
                    ClassMetrics(
                        precision: matrix.precision(k), recall: matrix.recall(k), f1: matrix.f1(k),
                        auc: aucs[k], support: matrix.support(k))
                )
            })
        confusionMatrix = matrix.counts
        alarms = predictionAlarms(matrix, classNames: classNames)
    }

    /// The confusion matrix as a value.
    public var matrix: ConfusionMatrix {
        var m = ConfusionMatrix(classCount: classNames.count)
        for (t, row) in confusionMatrix.enumerated() {
            for (p, n) in row.enumerated() { m.add(label: t, prediction: p, count: n) }
        }
        return m
    }

    /// The smallest recall over the classes present (the minority-class failure this project watches).
    public var minimumRecall: Double {
        perClass.values.filter { $0.support > 0 }.map(\.recall).min() ?? 0
    }

    /// Snake-case, sorted-key, pretty JSON.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// Alarms for a confusion matrix: every present class that is never predicted, every present
/// class predicted only wrongly (recall 0 all the same), and a classifier whose predictions are
/// all one class.
public func predictionAlarms(_ matrix: ConfusionMatrix, classNames: [String]) -> [String] {
    var alarms = matrix.neverPredicted.map {
        "class '\(classNames[$0])' is never predicted (\(matrix.support($0)) examples, recall 0)"
    }
    alarms += (0..<matrix.classCount).filter {
        matrix.support($0) > 0 && matrix.predicted($0) > 0 && matrix.truePositives($0) == 0
    }
    .map { "class '\(classNames[$0])' is never predicted correctly (\(matrix.support($0)) examples, recall 0)" }
    if let k = matrix.constantPrediction {
        alarms.append("constant classifier: all \(matrix.total) predictions are '\(classNames[k])'")
    }
    return alarms
}

/// The majority-class baseline: predicts the most frequent training class for every test
/// example, with the training class frequencies as its probabilities (so every AUC is 0.5 by
/// ties and the loss is the cross-entropy of the prior).
/// NOTE: a class absent from training gets probability 0, clamped in the loss.
public func majorityBaseline(trainLabels: [Int], testLabels: [Int], classNames: [String]) throws -> EvaluationReport {
    let c = classNames.count
    guard !trainLabels.isEmpty else { throw MetricsError.empty(what: "baseline training labels") }
    var counts = [Int](repeating: 0, count: c)
    for y in trainLabels {
        guard (0..<c).contains(y) else { throw MetricsError.labelOutOfRange(what: "training labels", value: y, classCount: c) }
        counts[y] += 1
    }
    let prior = counts.map { Float($0) / Float(trainLabels.count) }
    let majority = argmaxRows(prior, classCount: c)[0]
    return try EvaluationReport(
        classNames: classNames, labels: testLabels,
        predictions: Array(repeating: majority, count: testLabels.count),
        probabilities: Array(Array(repeating: prior, count: testLabels.count).joined()))
}
