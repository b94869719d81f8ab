import Foundation
import SeededRandom

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
///
/// With `imageEffectSD` > 0 the arms' advantage also varies across images: each image draws
/// u ~ N(0, imageEffectSD^2), added as +u/2 to the other arm's logit and -u/2 to the reference's
/// in every seed, so the same images favour the same arm in every training run (the test-image main
/// effect of the difference). u is symmetric, so with no shift the expected difference over the
/// image population is exactly 0, although a given test set's difference is not.
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
    /// Standard deviation of an image's effect on the logit difference between the arms (see above).
    var imageEffectSD: Double = 0

    var classCount: Int { support.count }

    /// One simulated experiment: the reference arm's and the shifted arm's predictions.
    func experiment(_ rng: inout SeededGenerator) throws -> (reference: SeedPredictions, arm: SeedPredictions) {
        let labels = support.indices.flatMap { c in Array(repeating: c, count: support[c]) }
        let difficulty = labels.map { _ in difficultySD * rng.normalDouble() }
        // NOTE: drawn only when used, so scenarios without it keep their random streams (and coverages).
        let effect = imageEffectSD > 0 ? labels.map { _ in imageEffectSD * rng.normalDouble() } : labels.map { _ in 0.0 }
        func arm(_ shift: [Double], side: Double) throws -> SeedPredictions {
            let predictions = (0..<seeds).map { _ -> [Int] in
                let modelSkill = support.indices.map { skill[$0] + shift[$0] + skillSD * rng.normalDouble() }
                return labels.indices.map { i in
                    let y = labels[i]
                    let p = 1 / (1 + Foundation.exp(-(modelSkill[y] + difficulty[i] + side * effect[i])))
                    return rng.uniformDouble() < p ? y : (y + 1 + rng.int(below: classCount - 1)) % classCount
                }
            }
            return try SeedPredictions(labels: labels, predictions: predictions)
        }
        return (try arm(Array(repeating: 0, count: classCount), side: -0.5), try arm(shift, side: 0.5))
    }

    /// The true difference of the expected statistic, by Monte Carlo with common random numbers
    /// (the same normal draws for both arms, so the difference has little Monte Carlo error).
    /// NOTE: with fixed class supports a model's expected recall of class c is
    /// E[logistic(skill_c + offset + difficulty)], and both statistics are linear in the recalls.
    func trueDifference(_ statistic: ComparedStatistic, draws: Int = 200_000) -> Double {
        var rng = SeededGenerator(seed: 99)
        let weights = try! statistic.classWeights(support: support)
        var total = 0.0
        for c in support.indices where weights[c] > 0 {
            var sum = 0.0
            for _ in 0..<draws {
                let x = skillSD * rng.normalDouble() + difficultySD * rng.normalDouble()
                func difference(_ u: Double) -> Double {
                    1 / (1 + Foundation.exp(-(skill[c] + shift[c] + x + u / 2)))
                        - 1 / (1 + Foundation.exp(-(skill[c] + x - u / 2)))
                }
                // NOTE: u and -u are equally likely (antithetic draws), so a null's truth is exactly 0.
                if imageEffectSD > 0 {
                    let u = imageEffectSD * rng.normalDouble()
                    sum += (difference(u) + difference(-u)) / 2
                } else {
                    sum += difference(0)
                }
            }
            total += weights[c] * sum / Double(draws)
        }
        return total
    }
}

/// Two classes, 120 common and 30 rare test images; a model's rare-class recall varies between
/// training runs by about 8 points (skill sd 0.4 logits), close to what seeds give here.
func twoClass(seeds: Int, rareShift: Double) -> Scenario {
    Scenario(support: [120, 30], skill: [2.0, 0.5], shift: [0, rareShift], skillSD: 0.4, difficultySD: 1.5, seeds: seeds)
}

/// `twoClass` with an arm effect that varies across test images (sd 3 logits, the same images
/// favouring the same arm in every seed): per-seed differences then agree, and the seed variance
/// alone misses how much a new test set would move the difference.
func heterogeneous(seeds: Int, rareShift: Double) -> Scenario {
    var s = twoClass(seeds: seeds, rareShift: rareShift)
    s.imageEffectSD = 3
    return s
}

/// Fractions of simulated experiments whose 95% interval covers the true difference.
struct Coverage {
    var new: Double
    var raw: Double
    var old: Double
}

/// Runs `experiments` simulated experiments of `scenario`; each is seeded by its index, so the
/// result is deterministic. `old` repeats the pooled procedure this type replaces.
func coverage(
    _ scenario: Scenario, statistic: ComparedStatistic, experiments: Int, resamples: Int,
    methods: Set<String> = ["new", "raw", "old"]
) throws -> Coverage {
    let truth = scenario.trueDifference(statistic)
    var rng = SeededGenerator(seed: 2024)
    var hits = (new: 0, raw: 0, old: 0)
    for e in 0..<experiments {
        let (a, b) = try scenario.experiment(&rng)
        if methods.contains("new") {
            let i = try PairedBootstrap.difference(
                a, b, classCount: scenario.classCount, statistic: statistic,
                resamples: resamples, seed: UInt64(e))
            if i.lower <= truth && truth <= i.upper { hits.new += 1 }
        }
        if methods.contains("raw") {
            let d = try PairedBootstrap.distributions(
                reference: a, arms: [b], classCount: scenario.classCount,
                statistic: statistic, resamples: resamples, seed: UInt64(e),
                corrected: false)[0]
            let i = d.interval(level: 0.95)
            if i.lower <= truth && truth <= i.upper { hits.raw += 1 }
        }
        if methods.contains("old") {
            // The old procedure: every (seed, image) row pooled as if an independent test image.
            func pooled(_ p: SeedPredictions) -> ArmPredictions {
                ArmPredictions(
                    labels: Array(Array(repeating: p.labels, count: p.seedCount).joined()),
                    predictions: Array(p.predictions.joined()))
            }
            let i: BootstrapInterval
            switch statistic {
            case .balancedAccuracy:
                i = try Bootstrap.balancedAccuracyDifference(
                    pooled(a), pooled(b), classCount: scenario.classCount,
                    resamples: resamples, seed: UInt64(e))
            case let .recall(k):
                i = try Bootstrap.recallDifference(
                    pooled(a), pooled(b), classIndex: k, classCount: scenario.classCount,
                    resamples: resamples, seed: UInt64(e))
            }
            if i.lower <= truth && truth <= i.upper { hits.old += 1 }
        }
    }
    let n = Double(experiments)
    return Coverage(new: Double(hits.new) / n, raw: Double(hits.raw) / n, old: Double(hits.old) / n)
}
