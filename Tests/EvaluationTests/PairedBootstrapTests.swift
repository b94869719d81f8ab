import Foundation
import Testing

@testable import Evaluation

@Test func holmAdjustedMatchesHandComputedValues() {
    // p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005, 0.01, 0.03, 0.04.
    //   0.005 * 4 = 0.02; 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> running max 0.06.
    // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    let adjusted = holmAdjusted([0.01, 0.04, 0.03, 0.005])
    for (x, y) in zip(adjusted, [0.03, 0.06, 0.06, 0.02]) { #expect(abs(x - y) < 1e-12) }
    // Capped at 1: p.adjust(c(0.5, 0.9), "holm") = 1 1
    #expect(holmAdjusted([0.5, 0.9]) == [1, 1])
    #expect(holmAdjusted([]) == [])
}

@Test func holmLevelsFollowTheStepDown() {
    // p = (0.004, 0.04, 0.03), alpha 0.05: 0.004 < 0.05/3 rejected (level 1 - 0.05/3); 0.03 is not
    // below 0.05/2, so Holm stops: 0.03 and 0.04 both get 1 - 0.05/2, although 0.04 < 0.05/1.
    let third: Double = 1 - 0.05 / 3, half: Double = 1 - 0.05 / 2, all: Double = 1 - 0.05
    let stopped: [Double] = PairedBootstrap.holmLevels([0.004, 0.04, 0.03], alpha: 0.05)
    #expect(stopped == [third, half, half])
    // Every one rejected: levels 1 - alpha/3, 1 - alpha/2, 1 - alpha.
    let rejected: [Double] = PairedBootstrap.holmLevels([0.001, 0.02, 0.04], alpha: 0.05)
    #expect(rejected == [third, half, all])
}

/// N images, the first `rare` of class 1; seed s's model gets `wrongRare[s]` rare and `wrongCommon`
/// common images wrong (which ones shifts with the seed).
func arm(n: Int = 120, rare: Int = 30, wrongRare: [Int], wrongCommon: Int) throws -> SeedPredictions {
    let labels = (0..<n).map { $0 < rare ? 1 : 0 }
    let predictions = wrongRare.indices.map { s in
        labels.indices.map { i -> Int in
            let wrong = i < rare ? (i + s) % rare < wrongRare[s] : (i - rare + 7 * s) % (n - rare) < wrongCommon
            return wrong ? 1 - labels[i] : labels[i]
        }
    }
    return try SeedPredictions(labels: labels, predictions: predictions)
}

@Test func compareGivesHelpsHurtsAndNoDifference() throws {
    let reference = try arm(wrongRare: [11, 12, 13], wrongCommon: 10)  // rare recall 0.60 on average
    let better = try arm(wrongRare: [2, 3, 1], wrongCommon: 10)  // 0.93: +10/30
    let worse = try arm(wrongRare: [23, 24, 26], wrongCommon: 10)  // 0.19: -12.33/30
    let equal = try arm(wrongRare: [13, 11, 12], wrongCommon: 10)  // per seed -2, +1, +1 (/30): 0
    let result = try PairedBootstrap.compare(
        reference: reference,
        arms: [("better", better), ("worse", worse), ("equal", equal)],
        classCount: 2, statistic: .recall(classIndex: 1), resamples: 1000, seed: 3)
    #expect(result.map(\.name) == ["better", "worse", "equal"])
    #expect(result.map(\.verdict) == [.helps, .hurts, .noDetectableDifference])
    #expect(abs(result[0].estimate - 10.0 / 30) < 1e-12 && abs(result[1].estimate + 37.0 / 90) < 1e-12)
    #expect(abs(result[2].estimate) < 1e-12 && result[2].pValue > 0.5 && result[2].adjustedPValue > 0.5)
    // Holm levels: the two smallest p-values get 1 - 0.05/3 and 1 - 0.05/2; Holm stops at "equal".
    #expect(Set(result.prefix(2).map(\.level)).count == 2)
    #expect(result.prefix(2).allSatisfy { [1 - 0.05 / 3, 1 - 0.05 / 2].contains($0.level) })
    #expect(result[2].level == 1 - 0.05)
    #expect(result.allSatisfy { ($0.adjustedPValue < 0.05) == ($0.verdict != .noDetectableDifference) })
    #expect(result.allSatisfy { $0.seeds == 3 && $0.testImages == 120 && $0.resamples == 1000 })
    // Each comparison's p-value is that of the two-arm difference with the same seed.
    let alone = try PairedBootstrap.difference(
        reference, worse, classCount: 2, statistic: .recall(classIndex: 1),
        resamples: 1000, seed: 3)
    #expect(alone.pValue == result[1].pValue && alone.estimate == result[1].estimate)
}

@Test func differenceIsDeterministicAndItsPValueAgreesWithItsInterval() throws {
    let a = try arm(wrongRare: [11, 12, 13], wrongCommon: 10), b = try arm(wrongRare: [9, 12, 8], wrongCommon: 12)
    let x = try PairedBootstrap.difference(a, b, classCount: 2, statistic: .balancedAccuracy, resamples: 500, seed: 1)
    #expect(try PairedBootstrap.difference(a, b, classCount: 2, statistic: .balancedAccuracy, resamples: 500, seed: 1) == x)
    #expect(x.lower <= x.estimate && x.estimate <= x.upper && x.degreesOfFreedom >= 2)
    // Paired draws: an arm against itself differs by exactly 0 in every replicate, raw or corrected
    // (unpaired seed or image draws would give nonzero raw replicates).
    for corrected in [false, true] {
        let same = try PairedBootstrap.distributions(
            reference: a, arms: [a], classCount: 2, statistic: .balancedAccuracy,
            resamples: 200, seed: 1, corrected: corrected)[0]
        #expect(same.replicates.allSatisfy { $0 == 0 }, "corrected: \(corrected)")
    }
    // Excludes 0 iff p < 1 - level, at every level.
    let d = try PairedBootstrap.distributions(
        reference: a, arms: [b], classCount: 2, statistic: .balancedAccuracy,
        resamples: 500, seed: 1)[0]
    for level in stride(from: 0.01, through: 0.99, by: 0.01) {
        let i = d.interval(level: level)
        #expect((i.lower > 0 || i.upper < 0) == (i.pValue < 1 - level), "level \(level): \(i)")
    }
}

/// Correct-prediction rows (reference, arm) whose differences are `d` (S rows of N images).
func correctRows(_ d: [[Int]]) -> (reference: [Int], arm: [Int]) {
    (d.flatMap { $0.map { $0 < 0 ? 1 : 0 } }, d.flatMap { $0.map { $0 > 0 ? 1 : 0 } })
}

@Test func varianceComponentsMatchTheCrossedDesignByHand() {
    // One class, S = 2 seeds by N = 4 images. The variance of the grand mean of a crossed random
    // two-way layout is (MS_seed + MS_image - MS_residual) / (S N) (Cornfield and Tukey 1956):
    // seed means 0.5, 0 -> MS_seed = 4 * 0.125 = 0.5; image means 1, 0.5, 0, -0.5 (mean 0.25) ->
    // MS_image = 2 * 1.25 / 3 = 5/6; residuals all +-0.25 -> MS_residual = 8 * 0.0625 / 3 = 1/6;
    // V = (1/2 + 5/6 - 1/6) / 8 = 7/48. Terms V_seed 3/48, image 5/48, residual 1/48 (df 1, 3, 3):
    // Satterthwaite df = (7/48)^2 / ((3/48)^2 + (5/48)^2 / 3 + (1/48)^2 / 3) = 147/53.
    let labels = [1, 1, 1, 1], support = [0, 4], weights = [0.0, 1.0]
    let rows = correctRows([[1, 1, 0, 0], [1, 0, 0, -1]])
    let v = PairedBootstrap.varianceComponents(
        reference: rows.reference, arm: rows.arm, labels: labels, seeds: 2,
        support: support, weights: weights)
    #expect(abs(v.estimate - 0.25) < 1e-12 && abs(v.variance - 7.0 / 48) < 1e-12)
    #expect(abs(v.degreesOfFreedom - 147.0 / 53) < 1e-12)
    // Image means 0.5, 0.5, 0.5, 0 vary less than the interaction predicts (image term 1/64 <
    // residual term 11/192): the image effect is clipped at 0. V_seed = 2 * 0.125^2 / 2 = 1/64 is
    // below the interaction's share it must hold (11/192), so the floor binds: V = 11/192 with the
    // residual's (S - 1)(N - 1) = 3 df.
    let clipped = correctRows([[1, 0, 1, 0], [0, 1, 0, 0]])
    let w = PairedBootstrap.varianceComponents(
        reference: clipped.reference, arm: clipped.arm, labels: labels, seeds: 2,
        support: support, weights: weights)
    #expect(abs(w.estimate - 0.375) < 1e-12 && abs(w.variance - 11.0 / 192) < 1e-12 && abs(w.degreesOfFreedom - 3) < 1e-9)
}

@Test func undefinedRecallSkipsTheResample() throws {
    // One rare image in 40: about (39/40)^40 = 36% of resamples draw none.
    let a = try arm(n: 40, rare: 1, wrongRare: [0, 0], wrongCommon: 3)
    let b = try arm(n: 40, rare: 1, wrongRare: [1, 0], wrongCommon: 3)
    let x = try PairedBootstrap.difference(a, b, classCount: 2, statistic: .recall(classIndex: 1), resamples: 1000, seed: 5)
    #expect(x.resamples + x.skippedResamples == 1000)
    #expect((300...420).contains(x.skippedResamples), "\(x.skippedResamples)")
}

@Test func mismatchedShapesThrow() throws {
    #expect(throws: MetricsError.self) { try SeedPredictions(labels: [0, 1], predictions: [[0, 1], [0]]) }  // ragged
    #expect(throws: MetricsError.self) { try SeedPredictions(labels: [], predictions: [[]]) }
    #expect(throws: MetricsError.self) { try SeedPredictions(labels: [0], predictions: []) }
    let a = try SeedPredictions(labels: [0, 1, 1], predictions: [[0, 1, 0], [0, 1, 1]])
    let fewerSeeds = try SeedPredictions(labels: [0, 1, 1], predictions: [[0, 1, 0]])
    let otherImages = try SeedPredictions(labels: [0, 1], predictions: [[0, 1], [0, 1]])
    let otherLabels = try SeedPredictions(labels: [1, 1, 0], predictions: [[0, 1, 0], [0, 1, 1]])
    let outOfRange = try SeedPredictions(labels: [0, 1, 1], predictions: [[0, 2, 0], [0, 1, 1]])
    func difference(_ b: SeedPredictions, statistic: ComparedStatistic = .balancedAccuracy) throws -> PairedInterval {
        try PairedBootstrap.difference(a, b, classCount: 2, statistic: statistic, resamples: 10, seed: 0)
    }
    #expect(throws: MetricsError.lengthMismatch(what: "arm 0: seeds", expected: 2, actual: 1)) { try difference(fewerSeeds) }
    #expect(throws: MetricsError.lengthMismatch(what: "arm 0: test images", expected: 3, actual: 2)) {
        try difference(otherImages)
    }
    #expect(throws: MetricsError.labelsDiffer(what: "arm 0")) { try difference(otherLabels) }
    #expect(throws: MetricsError.labelOutOfRange(what: "arm 0: predictions", value: 2, classCount: 2)) {
        try difference(outOfRange)
    }
    #expect(throws: MetricsError.self) { try difference(a, statistic: .recall(classIndex: 5)) }
    #expect(throws: MetricsError.self) {
        try PairedBootstrap.compare(
            reference: a, arms: [("x", otherLabels)], classCount: 2, statistic: .balancedAccuracy, seed: 0)
    }
}

/// A difference of recalls lies in [-1, 1]: t tails at a high level must not reach past it.
@Test func intervalBoundsStayWithinTheStatisticsRange() throws {
    let labels = Array(repeating: 0, count: 10) + Array(repeating: 1, count: 10)
    func seedRow(recall1 hits: Int) -> [Int] { Array(repeating: 0, count: 10) + (0..<10).map { $0 < hits ? 1 : 0 } }
    // Per-seed recall differences of class 1: +1, 0, -1 (huge seed variance, 2 df).
    let reference = try SeedPredictions(
        labels: labels, predictions: [seedRow(recall1: 0), seedRow(recall1: 5), seedRow(recall1: 10)])
    let arm = try SeedPredictions(labels: labels, predictions: [seedRow(recall1: 10), seedRow(recall1: 5), seedRow(recall1: 0)])
    let r = try PairedBootstrap.difference(
        reference, arm, classCount: 2, statistic: .recall(classIndex: 1), resamples: 400,
        level: 0.995, seed: 3)
    #expect(r.lower >= -1 && r.upper <= 1, "[\(r.lower), \(r.upper)]")
    #expect(r.lower < 0 && r.upper > 0)
}

/// Two seeds whose differences are equal, made on different images (seen on real data: +1 of 9
/// dermatofibroma images in each seed): the seed variance estimate is 0 by coincidence, and the
/// interval must still have width and must not say "helps".
@Test func equalPerSeedDifferencesOnDifferentImagesAreNotCertain() throws {
    let labels = Array(repeating: 0, count: 40) + Array(repeating: 1, count: 9)
    func row(_ rareHits: Set<Int>) -> [Int] { Array(repeating: 0, count: 40) + (0..<9).map { rareHits.contains($0) ? 1 : 0 } }
    let reference = try SeedPredictions(labels: labels, predictions: [row([0]), row([])])
    let arm = try SeedPredictions(labels: labels, predictions: [row([0, 1]), row([2])])
    let result = try PairedBootstrap.compare(
        reference: reference, arms: [("arm", arm)], classCount: 2,
        statistic: .recall(classIndex: 1), resamples: 400, seed: 5)[0]
    #expect(abs(result.estimate - 1.0 / 9) < 1e-12)
    #expect(result.upper - result.lower > 0.1, "[\(result.lower), \(result.upper)]")
    #expect(result.verdict == .noDetectableDifference)
}
