import Foundation
@testable import Evaluation

/// A generative model of a multi-seed, multi-arm experiment's test predictions, for calibration.
///
/// Each test image has a difficulty, shared by every model (all arms are tested on the same
/// images). Each trained model (arm, seed) has its own skill per class: the arm's mean skill plus a
/// normal offset of sd `skillSD` (a new training run). A model classifies an image correctly with
/// probability logistic(skill[class] + difficulty), independently across models: two models of one
/// arm disagree on some images (the seed-by-image interaction). A wrong prediction is a uniformly
/// drawn other class. The test set is drawn anew in every simulated experiment, so the estimand is
/// the expected statistic over test sets and training runs.
struct Scenario {
    /// Test images per class (N_c): imbalanced, fixed labels.
    var support: [Int]
    /// Mean logit skill per class of the reference arm.
    var skill: [Double]
    /// Added to the other arm's skill per class (all zero: the null).
    var shift: [Double]
    /// Standard deviation of a model's per-class skill offset (variance between seeds).
    var skillSD: Double
    /// Standard deviation of an image's difficulty, in logits.
    var difficultySD: Double
    var seeds: Int

    var classCount: Int { support.count }

    /// One simulated experiment: the reference arm's and the shifted arm's predictions.
    func experiment(_ rng: inout SplitMix64) throws -> (reference: SeedPredictions, arm: SeedPredictions) {
        let labels = support.indices.flatMap { c in Array(repeating: c, count: support[c]) }
        let difficulty = labels.map { _ in difficultySD * rng.normal() }
        func arm(_ shift: [Double]) throws -> SeedPredictions {
            let predictions = (0..<seeds).map { _ -> [Int] in
                let modelSkill = support.indices.map { skill[$0] + shift[$0] + skillSD * rng.normal() }
                return labels.indices.map { i in
                    let y = labels[i]
                    let p = 1 / (1 + Foundation.exp(-(modelSkill[y] + difficulty[i])))
                    return rng.uniform() < p ? y : (y + 1 + rng.index(below: classCount - 1)) % classCount
                }
            }
            return try SeedPredictions(labels: labels, predictions: predictions)
        }
        return (try arm(Array(repeating: 0, count: classCount)), try arm(shift))
    }

    /// The true difference of the expected statistic, by Monte Carlo with common random numbers
    /// (the same normal draws for both arms, so the difference has little Monte Carlo error).
    /// NOTE: with fixed class supports a model's expected recall of class c is
    /// E[logistic(skill_c + offset + difficulty)], and both statistics are linear in the recalls.
    func trueDifference(_ statistic: ComparedStatistic, draws: Int = 200_000) -> Double {
        var rng = SplitMix64(seed: 99)
        let weights = try! statistic.classWeights(support: support)
        var total = 0.0
        for c in support.indices where weights[c] > 0 {
            var sum = 0.0
            for _ in 0..<draws {
                let x = skillSD * rng.normal() + difficultySD * rng.normal()
                sum += 1 / (1 + Foundation.exp(-(skill[c] + shift[c] + x))) - 1 / (1 + Foundation.exp(-(skill[c] + x)))
            }
            total += weights[c] * sum / Double(draws)
        }
        return total
    }
}

/// Fractions of simulated experiments whose 95% interval covers the true difference.
struct Coverage {
    var new: Double
    var raw: Double
    var old: Double
}

/// Runs `experiments` simulated experiments of `scenario`; each is seeded by its index, so the
/// result is deterministic. `old` repeats the pooled procedure this type replaces.
func coverage(_ scenario: Scenario, statistic: ComparedStatistic, experiments: Int, resamples: Int,
              methods: Set<String> = ["new", "raw", "old"]) throws -> Coverage {
    let truth = scenario.trueDifference(statistic)
    var rng = SplitMix64(seed: 2024)
    var hits = (new: 0, raw: 0, old: 0)
    for e in 0..<experiments {
        let (a, b) = try scenario.experiment(&rng)
        if methods.contains("new") {
            let i = try PairedBootstrap.difference(a, b, classCount: scenario.classCount, statistic: statistic,
                                                   resamples: resamples, seed: UInt64(e))
            if i.lower <= truth && truth <= i.upper { hits.new += 1 }
        }
        if methods.contains("raw") {
            let d = try PairedBootstrap.distributions(reference: a, arms: [b], classCount: scenario.classCount,
                                                      statistic: statistic, resamples: resamples, seed: UInt64(e),
                                                      corrected: false)[0]
            let i = d.interval(level: 0.95)
            if i.lower <= truth && truth <= i.upper { hits.raw += 1 }
        }
        if methods.contains("old") {
            // The old procedure: every (seed, image) row pooled as if an independent test image.
            func pooled(_ p: SeedPredictions) -> ArmPredictions {
                ArmPredictions(labels: Array(Array(repeating: p.labels, count: p.seedCount).joined()),
                               predictions: Array(p.predictions.joined()))
            }
            let i: BootstrapInterval
            switch statistic {
            case .balancedAccuracy:
                i = try Bootstrap.balancedAccuracyDifference(pooled(a), pooled(b), classCount: scenario.classCount,
                                                             resamples: resamples, seed: UInt64(e))
            case let .recall(k):
                i = try Bootstrap.recallDifference(pooled(a), pooled(b), classIndex: k, classCount: scenario.classCount,
                                                   resamples: resamples, seed: UInt64(e))
            }
            if i.lower <= truth && truth <= i.upper { hits.old += 1 }
        }
    }
    let n = Double(experiments)
    return Coverage(new: Double(hits.new) / n, raw: Double(hits.raw) / n, old: Double(hits.old) / n)
}
