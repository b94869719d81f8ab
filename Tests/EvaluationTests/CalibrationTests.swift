import Foundation
import Testing
@testable import Evaluation

// Coverage of nominal 95% intervals on simulated experiments (see `Scenario`): 400 experiments per
// scenario, so a coverage of 95% is measured with a binomial standard error of 1.1 points and the
// window 93-97% is about +-2 standard errors.
// NOTE: 400 resamples per interval (100 for the slow old procedure; 2000 in production) keep the
// run short in a debug build. Fewer replicates make each bound noisier but do not by themselves
// bias the coverage: with R = 400 the 95% bounds are the 10th replicates from each end.
// Measured (release, same seeds), new / old pooled / raw pigeonhole, S = 3:
//   recall null 0.940 / 0.843 / 0.978, recall +0.098 0.960 / 0.835 / 0.973,
//   balanced accuracy null 0.965 / 0.828 / 0.970, +0.049 0.945 / 0.788 / 0.965;
// S = 5: recall null 0.958 / 0.858 / 0.993, +0.098 0.945 / 0.835 / 0.978,
//   balanced accuracy null 0.953 / 0.828 / 0.983, +0.049 0.965 / 0.793 / 0.983.
// The weakest case, S = 3 rare-class recall under the null, measured 0.929 over 1000 experiments:
// the interval is at most about 2 points short of 95% there.

/// Two classes, 120 common and 30 rare test images; a model's rare-class recall varies between
/// training runs by about 8 points (skill sd 0.4 logits), close to what seeds give here.
func twoClass(seeds: Int, rareShift: Double) -> Scenario {
    Scenario(support: [120, 30], skill: [2.0, 0.5], shift: [0, rareShift], skillSD: 0.4, difficultySD: 1.5, seeds: seeds)
}

@Test(arguments: [
    (seeds: 3, shift: 0.0, statistic: ComparedStatistic.recall(classIndex: 1)),
    (seeds: 3, shift: 0.6, statistic: ComparedStatistic.recall(classIndex: 1)),
    (seeds: 5, shift: 0.0, statistic: ComparedStatistic.balancedAccuracy),
    (seeds: 5, shift: 0.6, statistic: ComparedStatistic.balancedAccuracy),
])
func pairedBootstrapCoversTheTrueDifference(seeds: Int, shift: Double, statistic: ComparedStatistic) throws {
    let c = try coverage(twoClass(seeds: seeds, rareShift: shift), statistic: statistic, experiments: 400, resamples: 400,
                         methods: ["new"])
    #expect((0.93...0.97).contains(c.new), "S = \(seeds), shift \(shift), \(statistic): coverage \(c.new)")
}

@Test(arguments: [0.0, 0.6])
func pooledBootstrapUndercovers(shift: Double) throws {
    // The old procedure: seeds concatenated, every (seed, image) row resampled as a test image.
    let c = try coverage(twoClass(seeds: 3, rareShift: shift), statistic: .recall(classIndex: 1), experiments: 400,
                         resamples: 100, methods: ["old"])
    #expect(c.old < 0.90, "old pooled procedure, shift \(shift): coverage \(c.old)")
}

@Test func plantedTruthIsTheExpectedRecallDifference() {
    // With no seed variance and no difficulty, the truth is logistic(0.5 + 0.6) - logistic(0.5).
    let s = Scenario(support: [10, 10], skill: [0, 0.5], shift: [0, 0.6], skillSD: 0, difficultySD: 0, seeds: 1)
    let expected = 1 / (1 + exp(-1.1)) - 1 / (1 + exp(-0.5))
    #expect(abs(s.trueDifference(.recall(classIndex: 1), draws: 10) - expected) < 1e-12)
    #expect(abs(s.trueDifference(.balancedAccuracy, draws: 10) - expected / 2) < 1e-12)
}
