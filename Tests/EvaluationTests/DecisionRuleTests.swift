import Testing

@testable import Evaluation

func threshold(_ rule: DecisionRule) -> Double? { if case .threshold(let t) = rule { return t } else { return nil } }

/// Two classes: the threshold that maximises validation balanced accuracy, worked out by hand.
@Test func thresholdIsChosenOnValidation() throws {
    // p(class 1) of 6 validation images, labels 0,0,0,0,1,1. At 0.5 both positives (0.30, 0.45) are
    // missed (balanced accuracy 0.5). Candidates are 0.5, the midpoints and the smallest value; only
    // 0.25 (between 0.20 and 0.30) separates the classes (1.0); 0.375 catches one positive (0.75).
    let p1: [Float] = [0.05, 0.10, 0.15, 0.20, 0.30, 0.45]
    let probabilities = p1.flatMap { [1 - $0, $0] }
    let labels = [0, 0, 0, 0, 1, 1]
    let rule = try DecisionRule.tuned(probabilities: probabilities, labels: labels, classCount: 2, priors: [0.7, 0.3])
    #expect(abs(try #require(threshold(rule)) - 0.25) < 1e-6)
    #expect(rule.predict(probabilities, classCount: 2) == labels)
    #expect(DecisionRule.argmax.predict(probabilities, classCount: 2) == [0, 0, 0, 0, 0, 0])
}

/// Equal balanced accuracies: the threshold nearest 0.5 wins.
@Test func thresholdTiesGoNearestHalf() throws {
    // p = 0.10, 0.40 (class 0), 0.30, 0.45 (class 1). t = 0.2: recall 1, specificity 1/2 -> 0.75;
    // t = 0.425: recall 1/2, specificity 1 -> 0.75; t = 0.35 and 0.5 -> 0.5. Tie: 0.425 is nearer 0.5.
    let p1: [Float] = [0.10, 0.40, 0.30, 0.45]
    let rule = try DecisionRule.tuned(
        probabilities: p1.flatMap { [1 - $0, $0] }, labels: [0, 0, 1, 1], classCount: 2,
        priors: [0.5, 0.5])
    #expect(abs(try #require(threshold(rule)) - 0.425) < 1e-6)
}

/// Several classes: dividing by the training prior recovers a rare class that argmax never predicts.
@Test func priorCorrectionRecoversARareClass() throws {
    // Class 2 is rare in training (prior 0.05); its images get p = (0.45, 0.15, 0.40): argmax says 0.
    let rows: [[Float]] = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.45, 0.15, 0.40], [0.45, 0.15, 0.40], [0.7, 0.2, 0.1]]
    let labels = [0, 1, 2, 2, 0]
    let priors = [0.6, 0.35, 0.05]
    #expect(DecisionRule.argmax.predict(rows.flatMap { $0 }, classCount: 3) == [0, 1, 0, 0, 0])
    let rule = try DecisionRule.tuned(probabilities: rows.flatMap { $0 }, labels: labels, classCount: 3, priors: priors)
    #expect(rule.predict(rows.flatMap { $0 }, classCount: 3) == labels)
    // The weakest strength that gets there: log(0.40/0.45) + s*log(0.6/0.05) > 0  <=>  s > 0.047, so 0.25.
    #expect(rule == .priorCorrection(strength: 0.25, priors: priors))
}

@Test func decisionRuleRefusesMismatchedInput() {
    #expect(throws: MetricsError.self) {
        try DecisionRule.tuned(probabilities: [0.5, 0.5], labels: [0, 1], classCount: 2, priors: [0.5, 0.5])
    }
    #expect(throws: MetricsError.self) {
        try DecisionRule.tuned(probabilities: [], labels: [], classCount: 2, priors: [0.5, 0.5])
    }
}
