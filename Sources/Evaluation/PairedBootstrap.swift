import Foundation
import SeededRandom

/// One arm's test predictions for every seed, on the same test images (same order in every arm).
public struct SeedPredictions: Codable, Equatable, Sendable {
    /// (N) true class of each test image.
    public var labels: [Int]
    /// (S, N) predicted class per seed (row), per test image (column).
    public var predictions: [[Int]]

    /// Number of seeds (S): independent training runs of the arm.
    public var seedCount: Int { predictions.count }
    /// Number of test images (N).
    public var imageCount: Int { labels.count }

    /// Checks the shape: at least one image and one seed, every seed predicting all N images.
    public init(labels: [Int], predictions: [[Int]]) throws {
        (self.labels, self.predictions) = (labels, predictions)
        try validate()
    }

    /// Throws `MetricsError` when empty or ragged (decoding does not check, so the bootstrap calls this again).
    func validate() throws {
        guard !labels.isEmpty else { throw MetricsError.empty(what: "seed predictions: labels") }
        guard !predictions.isEmpty else { throw MetricsError.empty(what: "seed predictions: no seed") }
        for (s, row) in predictions.enumerated() where row.count != labels.count {
            throw MetricsError.lengthMismatch(what: "seed predictions of seed \(s)", expected: labels.count, actual: row.count)
        }
    }
}

/// The per-model score whose arm-minus-reference difference is compared.
public enum ComparedStatistic: Codable, Equatable, Hashable, Sendable {
    /// Mean recall over the classes present in the test labels (sklearn's balanced_accuracy_score).
    case balancedAccuracy
    /// Recall of one class.
    case recall(classIndex: Int)

    /// Weight of each class's recall in the statistic (the statistic is `sum_c weight_c * recall_c`),
    /// given the class supports of the full test set.
    func classWeights(support: [Int]) throws -> [Double] {
        switch self {
        case .balancedAccuracy:
            let present = support.filter { $0 > 0 }.count
            return support.map { $0 > 0 ? 1 / Double(present) : 0 }
        case let .recall(k):
            guard support.indices.contains(k) else {
                throw MetricsError.invalidParameter(what: "recall of class \(k) with \(support.count) classes")
            }
            guard support[k] > 0 else { throw MetricsError.empty(what: "recall of class \(k): no test image of the class") }
            return support.indices.map { $0 == k ? 1 : 0 }
        }
    }
}

/// What a comparison concludes, read from its corrected interval only.
public enum Verdict: String, Codable, Sendable {
    case helps, hurts
    case noDetectableDifference = "no detectable difference"
}

/// A bootstrap interval for `statistic(b) - statistic(a)` over seeds and test images, with its p-value.
public struct PairedInterval: Codable, Equatable, Sendable {
    /// Mean over seeds of statistic(b) minus mean over seeds of statistic(a), on the full test set.
    public var estimate: Double
    public var lower: Double
    public var upper: Double
    /// Confidence level of [lower, upper].
    public var level: Double
    /// Two-sided p-value for "no difference", read from the same bootstrap distribution as the interval.
    public var pValue: Double
    /// Resamples in which the statistic was defined (see `PairedBootstrap`).
    public var resamples: Int
    /// Resamples skipped because the statistic was undefined in them (a class not drawn).
    public var skippedResamples: Int
    /// The variance-components standard error (seeds and test images) that scales the bootstrap distribution.
    public var standardError: Double
    /// Degrees of freedom of that standard error: Satterthwaite's, at least S - 1 (N - C with a single seed).
    public var degreesOfFreedom: Double
}

/// One arm compared with the reference, corrected for the number of arms compared (Holm).
public struct Comparison: Codable, Equatable, Sendable {
    /// The arm compared with the reference.
    public var name: String
    /// Mean over seeds of statistic(arm) - mean over seeds of statistic(reference), full test set.
    public var estimate: Double
    /// The corrected interval: at `level`, set by the comparison's Holm step.
    public var lower: Double
    public var upper: Double
    /// Confidence level of the corrected interval (e.g. 1 - 0.05/3 for the smallest of three p-values).
    public var level: Double
    /// Two-sided bootstrap p-value, uncorrected.
    public var pValue: Double
    /// Holm-adjusted p-value (monotone in the rank of `pValue`).
    public var adjustedPValue: Double
    /// From the corrected interval: lower > 0 helps, upper < 0 hurts, else no detectable difference.
    public var verdict: Verdict
    public var seeds: Int
    public var testImages: Int
    /// Resamples in which the statistic was defined.
    public var resamples: Int
}

/// Paired bootstrap over seeds and test images for arms trained with several seeds and tested on
/// the same images: every arm minus a reference, with Holm-corrected intervals.
///
/// The design is crossed: every seed's model predicts the same N test images, and every arm is
/// tested on the same images. One replicate draws N image indices with replacement (the same images
/// for both arms and for every seed) and weights the seeds (the same weights for both arms: seeds
/// are paired), computes each seed's statistic on the drawn images, averages over seeds and takes
/// arm minus reference. Drawing the S seed indices with replacement as well gives Owen's (2007)
/// "pigeonhole" bootstrap for crossed factors (Annals of Applied Statistics 1(2)); it is kept,
/// uncorrected, for the calibration tests.
///
/// NOTE: the pigeonhole bootstrap is not calibrated at S = 3 seeds (Tests/EvaluationTests/
/// CalibrationTests.swift measures it):
/// - Owen shows it counts the seed-by-image interaction (two models of one arm disagreeing on an
///   image: most of the variance of a paired difference) up to three times, once per factor
///   resampled and once for the pair, so with interaction-dominated variance it is too wide
///   (coverage 96-99% where 95% is asked).
/// - A with-replacement draw of S seeds has plug-in variance (S - 1) / S of the truth (2/3 at
///   S = 3), takes only 10 values at S = 3 (bounded, lighter tails than normal), and cannot give
///   the Student-t tails of a variance estimated with S - 1 = 2 degrees of freedom; with
///   seed-dominated variance it is too narrow.
/// So the intervals are studentized:
/// 1. V estimates the variance of the estimate over new training runs AND new test sets of the same
///    size and class supports (`varianceComponents` has the formulas). Within each class the
///    differences d[s][i] form a crossed seeds-by-images layout with a seed effect, an image effect
///    (how the arm effect varies across images: an arm that gets the same few images right in every
///    seed) and their interaction (two models of one arm disagreeing on an image). The unbiased
///    ANOVA estimate (Cornfield and Tukey 1956; Clark 1973, "The language-as-fixed-effect fallacy",
///    makes the same case for items) is V = V_seed + V_image:
///    - V_seed = sample variance (divisor S - 1) of the per-seed differences on the full test set,
///      / S: seed effect and interaction, counted once;
///    - V_image = sum_c w_c^2 (MS_image - MS_residual) / (S n_c): the image mean square of the
///      seed-averaged differences holds the image effect plus the interaction once more, which the
///      residual mean square takes out. It is clipped at 0 (as REML would), the only bias, upward.
///    Degrees of freedom: Satterthwaite's over the three mean squares, floored at S - 1 (with the
///    residual term subtracted it can fall towards 0 when V_image is noise), so the image part,
///    estimated from tens of images, shortens the t tails that S - 1 seed df alone would give.
///    NOTE: V_seed alone (the previous estimator) leaves out the image effect; per-seed differences
///    then agree when the same images favour the same arm, and the interval is too narrow for a new
///    test set (below).
/// 2. The seeds are weighted by Gaussian multipliers g_s (a wild bootstrap): a replicate is
///    mean + sqrt(S / (S - 1)) sum_s g_s (v_s - mean) / S, which given the images is normal, so the
///    next step yields t tails; with-replacement seed draws lost 2-3 points of coverage there.
/// 3. Each deviation from the estimate is scaled by sqrt(V / V*) (V* the mean squared deviation)
///    and by sqrt(df / X), X a chi-square(df) draw: a normal deviation times sqrt(df / X) is Student
///    t(df), so the percentile interval approximates estimate +- t(df) sqrt(V), keeping the shape
///    the image draws give.
/// Measured coverage of nominal 95% (scripts/calibration-coverage.sh 1000 0,1,2,3,4: the scenarios
/// of Tests/EvaluationTests/Simulation.swift, 1000 experiments each): S = 3 and 5, rare-class recall
/// and balanced accuracy, null and planted:
/// - constant arm effect per class (the old scenarios): 95.1-96.8% (V_seed alone: 93.5-96.4%);
/// - arm effect varying across images, sd 1-4 logits: 93.3-96.6% (V_seed alone: 93.0-95.3% at
///   sd 1, 88.6-92.4% at sd 2, 81.9-92.0% at sd 3, 74.1-89.2% at sd 4).
/// NOTE: an undefined statistic (recall of a class, or balanced accuracy when a class present in the
/// test labels is not drawn) skips the whole replicate, which is counted in `skippedResamples`.
public enum PairedBootstrap {
    /// Uncorrected interval (estimate, lower, upper, p) for statistic(b) - statistic(a).
    public static func difference(
        _ a: SeedPredictions, _ b: SeedPredictions, classCount: Int, statistic: ComparedStatistic,
        resamples: Int = 2000, level: Double = 0.95, seed: UInt64
    ) throws -> PairedInterval {
        try checkProbability(1 - level, what: "level \(level)")
        let d = try distributions(
            reference: a, arms: [b], classCount: classCount, statistic: statistic,
            resamples: resamples, seed: seed)[0]
        return d.interval(level: level)
    }

    /// Every arm against the reference, Holm-corrected over the arms at familywise `alpha`.
    ///
    /// The arms are ranked by p-value; the comparison ranked j of m (1-based) is rejected iff all
    /// ranked before it were and p < alpha / (m - j + 1), and its interval is read at level
    /// 1 - alpha / (m - j + 1), which excludes 0 exactly when p is below that threshold.
    /// NOTE: once Holm stops at rank j0, every later comparison gets the level of rank j0 (not its
    /// own, wider alpha), since its p is at least p_(j0) its interval then covers 0: the verdicts
    /// always agree with Holm's decisions and with `adjustedPValue < alpha`.
    /// Every arm shares the replicates' seed and image draws, so each comparison's uncorrected
    /// p-value equals that of `difference(reference, arm, ...)` with the same seed.
    public static func compare(
        reference: SeedPredictions, arms: [(name: String, predictions: SeedPredictions)],
        classCount: Int, statistic: ComparedStatistic, alpha: Double = 0.05,
        resamples: Int = 2000, seed: UInt64
    ) throws -> [Comparison] {
        try checkProbability(alpha, what: "alpha \(alpha)")
        guard !arms.isEmpty else { return [] }
        let dists = try distributions(
            reference: reference, arms: arms.map(\.predictions), classCount: classCount,
            statistic: statistic, resamples: resamples, seed: seed)
        let p = dists.map { $0.interval(level: 1 - alpha).pValue }
        let adjusted = holmAdjusted(p)
        let level = holmLevels(p, alpha: alpha)
        return arms.indices.map { i in
            let interval = dists[i].interval(level: level[i])
            let verdict: Verdict = interval.lower > 0 ? .helps : interval.upper < 0 ? .hurts : .noDetectableDifference
            return Comparison(
                name: arms[i].name, estimate: interval.estimate, lower: interval.lower, upper: interval.upper,
                level: level[i], pValue: p[i], adjustedPValue: adjusted[i], verdict: verdict,
                seeds: reference.seedCount, testImages: reference.imageCount, resamples: interval.resamples)
        }
    }

    /// The confidence level of each comparison's corrected interval, in the input order: rank j of m
    /// (by p ascending) gets 1 - alpha / (m - j + 1), and every rank after the first that Holm does
    /// not reject gets that rank's level.
    static func holmLevels(_ p: [Double], alpha: Double) -> [Double] {
        let m = p.count
        let order = p.indices.sorted { (p[$0], $0) < (p[$1], $1) }
        var level = [Double](repeating: 0, count: m)
        var stopped: Int? = nil  // rank (1-based) at which Holm stopped rejecting
        for (r, i) in order.enumerated() {
            let rank = r + 1
            if stopped == nil && !(p[i] < alpha / Double(m - rank + 1)) { stopped = rank }
            level[i] = 1 - alpha / Double(m - min(rank, stopped ?? rank) + 1)
        }
        return level
    }

    /// The corrected bootstrap distribution of one arm minus the reference.
    struct Distribution {
        var estimate: Double
        /// Corrected replicates of the difference, sorted ascending.
        var replicates: [Double]
        var skipped: Int
        var standardError: Double
        var degreesOfFreedom: Double

        /// The percentile interval at `level` and the p-value, consistent with each other.
        ///
        /// NOTE: with R sorted replicates and a = 1 - level, the bounds are replicates j and R-1-j,
        /// j = ceil(a R / 2) - 1 (0-based). The lower bound is above 0 iff at most j replicates are
        /// <= 0, i.e. iff 2 #(replicates <= 0) / R < a; so with p = 2 min(#(<= 0), #(>= 0)) / R the
        /// interval excludes 0 iff p < a, for every a above the floor 1 / (R + 1) put on p.
        func interval(level: Double) -> PairedInterval {
            let r = replicates.count
            // NOTE: 1e-9 absorbs rounding (1 - 0.95 is 0.05000000000000004), so j is 9, not 10, for R = 400.
            let j = min(max(Int(((1 - level) * Double(r) / 2 - 1e-9).rounded(.up)) - 1, 0), (r - 1) / 2)
            let below = replicates.prefix { $0 <= 0 }.count
            let above = r - (replicates.firstIndex { $0 >= 0 } ?? r)
            let p = max(min(2 * Double(min(below, above)) / Double(r), 1), 1 / Double(r + 1))
            // NOTE: the statistic is a weighted mean of recalls in [0, 1], so a difference lies in
            // [-1, 1]; t tails at high Holm levels can reach past that, and the bounds are clipped.
            return PairedInterval(
                estimate: estimate, lower: max(replicates[j], -1), upper: min(replicates[r - 1 - j], 1), level: level,
                pValue: p, resamples: r, skippedResamples: skipped, standardError: standardError,
                degreesOfFreedom: degreesOfFreedom)
        }
    }

    /// Bootstrap distributions of every arm minus the reference, all from the same replicate draws.
    /// `corrected: false` keeps the raw pigeonhole replicates (for the calibration tests only).
    static func distributions(
        reference: SeedPredictions, arms: [SeedPredictions], classCount: Int,
        statistic: ComparedStatistic, resamples: Int, seed: UInt64,
        corrected: Bool = true
    ) throws -> [Distribution] {
        guard resamples > 0 else { throw MetricsError.invalidParameter(what: "\(resamples) resamples") }
        guard classCount > 0 else { throw MetricsError.invalidParameter(what: "\(classCount) classes") }
        let all = [reference] + arms
        for (k, arm) in all.enumerated() {
            try arm.validate()
            let what = k == 0 ? "reference" : "arm \(k - 1)"
            guard arm.imageCount == reference.imageCount else {
                throw MetricsError.lengthMismatch(
                    what: "\(what): test images", expected: reference.imageCount, actual: arm.imageCount)
            }
            guard arm.seedCount == reference.seedCount else {
                throw MetricsError.lengthMismatch(what: "\(what): seeds", expected: reference.seedCount, actual: arm.seedCount)
            }
            guard arm.labels == reference.labels else { throw MetricsError.labelsDiffer(what: what) }
            for row in arm.predictions {
                if let bad = row.first(where: { !(0..<classCount).contains($0) }) {
                    throw MetricsError.labelOutOfRange(what: "\(what): predictions", value: bad, classCount: classCount)
                }
            }
        }
        let labels = reference.labels, s = reference.seedCount, n = reference.imageCount
        if let bad = labels.first(where: { !(0..<classCount).contains($0) }) {
            throw MetricsError.labelOutOfRange(what: "labels", value: bad, classCount: classCount)
        }
        var support = [Int](repeating: 0, count: classCount)
        for y in labels { support[y] += 1 }
        let weights = try statistic.classWeights(support: support)
        // (S * N) row-major, 1 where seed s's model classifies image i correctly.
        let correct = all.map { arm in arm.predictions.flatMap { row in zip(row, labels).map { $0 == $1 ? 1 : 0 } } }

        // Replicates of the seed-averaged statistic on the drawn images, arm minus reference.
        var replicates = [[Double]](repeating: [], count: arms.count)
        for k in replicates.indices { replicates[k].reserveCapacity(resamples) }
        var rng = SeededGenerator(seed: seed)
        var seedDraws = [Int](repeating: 0, count: s)  // multiplicity of each seed in the draw
        var multipliers = [Double](repeating: 0, count: s)  // Gaussian seed weights (corrected)
        var drawnClass = [Int](repeating: 0, count: n), drawnImage = [Int](repeating: 0, count: n)
        var total = [Int](repeating: 0, count: classCount), hits = [Int](repeating: 0, count: classCount)
        var perSeed = [Double](repeating: 0, count: s), means = [Double](repeating: 0, count: all.count)
        let inflation = s > 1 ? (Double(s) / Double(s - 1)).squareRoot() : 0
        var skipped = 0
        for _ in 0..<resamples {
            // Seeds, paired across arms: drawn with replacement (raw) and Gaussian multipliers (corrected).
            for k in 0..<s { seedDraws[k] = 0; multipliers[k] = rng.normalDouble() }
            for _ in 0..<s { seedDraws[rng.int(below: s)] += 1 }
            // Images, the same for every arm and seed.
            for c in 0..<classCount { total[c] = 0 }
            for k in 0..<n {
                let i = rng.int(below: n)
                drawnImage[k] = i; drawnClass[k] = labels[i]; total[labels[i]] += 1
            }
            guard (0..<classCount).allSatisfy({ weights[$0] == 0 || total[$0] > 0 }) else { skipped += 1; continue }
            for a in all.indices {
                for seed in 0..<s {
                    correct[a].withUnsafeBufferPointer { row in
                        drawnImage.withUnsafeBufferPointer { image in
                            drawnClass.withUnsafeBufferPointer { cls in
                                hits.withUnsafeMutableBufferPointer { h in
                                    for c in 0..<classCount { h[c] = 0 }
                                    let offset = seed * n
                                    for k in 0..<n { h[cls[k]] += row[offset + image[k]] }
                                }
                            }
                        }
                    }
                    var value = 0.0
                    for c in 0..<classCount where weights[c] > 0 { value += weights[c] * Double(hits[c]) / Double(total[c]) }
                    perSeed[seed] = value
                }
                let mean = perSeed.reduce(0, +) / Double(s)
                if corrected {
                    // mean + sqrt(S/(S-1)) * sum_s g_s (v_s - mean) / S: given the images, normal with
                    // the unbiased seed variance / S.
                    means[a] = mean + inflation * (0..<s).reduce(0.0) { $0 + multipliers[$1] * (perSeed[$1] - mean) } / Double(s)
                } else {
                    means[a] = (0..<s).reduce(0.0) { $0 + Double(seedDraws[$1]) * perSeed[$1] } / Double(s)
                }
            }
            for k in arms.indices { replicates[k].append(means[k + 1] - means[0]) }
        }
        guard skipped < resamples else {
            throw MetricsError.empty(what: "paired bootstrap: statistic undefined in every resample")
        }

        return arms.indices.map { k in
            let v = varianceComponents(
                reference: correct[0], arm: correct[k + 1], labels: labels, seeds: s,
                support: support, weights: weights)
            // NOTE: the chi-square stream restarts for every arm, so an arm's distribution does not
            // depend on the other arms compared with it.
            var chiRNG = SeededGenerator(seed: seed ^ 0x5EED_C41_5A1E)
            let deviations = replicates[k].map { $0 - v.estimate }
            let bootVariance = deviations.reduce(0) { $0 + $1 * $1 } / Double(deviations.count)
            let scale = bootVariance > 0 ? (v.variance / bootVariance).squareRoot() : 0
            // NOTE: when no replicate moves (every draw gives the estimate) but V > 0, the shape falls
            // back to normal deviations of variance V, so the interval is never wrongly a point.
            let final =
                corrected
                ? deviations.map { d in
                    let deviation = bootVariance > 0 ? d * scale : chiRNG.normalDouble() * v.variance.squareRoot()
                    return v.estimate + deviation * (v.degreesOfFreedom / chiRNG.chiSquare(v.degreesOfFreedom)).squareRoot()
                } : replicates[k]
            return Distribution(
                estimate: v.estimate, replicates: final.sorted(), skipped: skipped,
                standardError: v.variance.squareRoot(), degreesOfFreedom: v.degreesOfFreedom)
        }
    }

    /// The variance of the difference and its degrees of freedom (see the type's DocC).
    ///
    /// With d[s][i] = correct(arm, s, i) - correct(reference, s, i) the statistic on the full test
    /// set is linear in d: D_s = sum_c w_c * mean_{i in c} d[s][i]. Within class c, d is a crossed
    /// two-way layout, d[s][i] = m_c + a[s][c] + b[i] + e[s][i] (seed effect, image effect,
    /// seed-by-image interaction), and the variance of the estimate over new seeds and new test sets is
    /// Var(sum_c w_c abar_c) + sum_c w_c^2 (var b_c / n_c + var e_c / (S n_c)). With the mean squares
    /// of class c, MS_image = S var_{i in c}(mean_s d[s][i]) and MS_residual (interaction), the
    /// unbiased estimate is
    /// - V_seed = sample variance(D_s) / S, for the seed effect plus the interaction once (S - 1 df);
    /// - plus V_image = sum_c w_c^2 (MS_image - MS_residual) / (S n_c), for the image effect: MS_image
    ///   counts the interaction once more, which MS_residual takes back out;
    /// V_image is clipped at 0 (then V = V_seed with S - 1 df), else the degrees of freedom are
    /// Satterthwaite's, V^2 / (V_seed^2 / (S - 1) + sum_c (w_c^2 MS_image / (S n_c))^2 / (n_c - 1)
    /// + sum_c (w_c^2 MS_residual / (S n_c))^2 / ((S - 1) (n_c - 1))).
    /// NOTE: a class with a single test image carries no image variance estimate and adds nothing to
    /// V_image. With one seed the variance between training runs cannot be estimated; V is then the
    /// delta-method variance of image resampling alone, sum_c w_c^2 var_{i in c}(d) / n_c (image
    /// effect and interaction together), with N - C degrees of freedom, and the interval leaves the
    /// seed variance out.
    static func varianceComponents(
        reference: [Int], arm: [Int], labels: [Int], seeds s: Int, support: [Int],
        weights: [Double]
    ) -> (estimate: Double, variance: Double, degreesOfFreedom: Double) {
        let n = labels.count
        func d(_ seed: Int, _ i: Int) -> Double { Double(arm[seed * n + i] - reference[seed * n + i]) }
        // perSeedClass[s][c]: the class-c mean of d over its images for seed s.
        var perSeedClass = [[Double]](repeating: [Double](repeating: 0, count: support.count), count: s)
        for seed in 0..<s {
            for i in 0..<n { perSeedClass[seed][labels[i]] += d(seed, i) / Double(support[labels[i]]) }
        }
        let perSeed = perSeedClass.map { row in support.indices.reduce(0.0) { $0 + weights[$1] * row[$1] } }
        let estimate = perSeed.reduce(0, +) / Double(s)
        // (N) d averaged over seeds; (C) its class means.
        let imageMean = (0..<n).map { i in (0..<s).reduce(0.0) { $0 + d($1, i) } / Double(s) }
        let classMean = support.indices.map { c in (0..<s).reduce(0.0) { $0 + perSeedClass[$1][c] } / Double(s) }
        // Sums of squares per class: images (of the seed means) and seed-by-image residuals.
        var imageSquares = [Double](repeating: 0, count: support.count)
        var residualSquares = [Double](repeating: 0, count: support.count)
        for i in 0..<n {
            let c = labels[i]
            imageSquares[c] += (imageMean[i] - classMean[c]) * (imageMean[i] - classMean[c])
            for seed in 0..<s {
                let r = d(seed, i) - imageMean[i] - perSeedClass[seed][c] + classMean[c]
                residualSquares[c] += r * r
            }
        }
        guard s > 1 else {
            let variance = support.indices.reduce(0.0) { sum, c in
                guard support[c] > 1 else { return sum }
                return sum + weights[c] * weights[c] * imageSquares[c] / Double(support[c] - 1) / Double(support[c])
            }
            return (estimate, variance, Double(max(n - support.filter { $0 > 0 }.count, 1)))
        }
        let seedDF = Double(s - 1)
        let seedPart = perSeed.reduce(0) { $0 + ($1 - estimate) * ($1 - estimate) } / seedDF / Double(s)
        // Per class: w_c^2 MS / (S n_c) for the image and residual mean squares, with their df.
        var image = 0.0, residual = 0.0, denominator = seedPart * seedPart / seedDF
        for c in support.indices where weights[c] > 0 && support[c] > 1 {
            let imageDF = Double(support[c] - 1), residualDF = seedDF * imageDF
            let k = weights[c] * weights[c] / Double(s * support[c])
            let imageTerm = k * Double(s) * imageSquares[c] / imageDF, residualTerm = k * residualSquares[c] / residualDF
            image += imageTerm
            residual += residualTerm
            denominator += imageTerm * imageTerm / imageDF + residualTerm * residualTerm / residualDF
        }
        // NOTE: V_seed's expectation holds the interaction's share (the residual term). With S - 1 = 1 or
        // 2 df it can come out as exactly 0 by coincidence (seeds whose differences are equal, made on
        // different images), which gave zero-width "helps" intervals on real data. So V_seed is
        // floored at the residual term; when the floor binds, V rests on the residual mean squares and
        // takes their Satterthwaite degrees of freedom ((S-1)(n_c-1) each), not S - 1 (keeping S - 1
        // there over-covered: 98% in CalibrationTests).
        var residualDenominator = 0.0
        for c in support.indices where weights[c] > 0 && support[c] > 1 {
            let imageDF = Double(support[c] - 1)
            let term = weights[c] * weights[c] / Double(s * support[c]) * residualSquares[c] / (seedDF * imageDF)
            residualDenominator += term * term / (seedDF * imageDF)
        }
        let floorBinds = seedPart < residual && residual > 0
        let seedTerm = floorBinds ? residual : seedPart
        let seedTermDF = floorBinds ? max(residual * residual / residualDenominator, seedDF) : seedDF
        guard image > residual else { return (estimate, seedTerm, seedTermDF) }
        let variance = seedTerm + image - residual
        if floorBinds { denominator += seedTerm * seedTerm / seedTermDF - seedPart * seedPart / seedDF }
        // NOTE: Satterthwaite's df drops towards 0 when the subtracted residual term is close to the
        // image term (V tiny against the terms' noise); floored at the S - 1 df of V_seed <= V.
        return (estimate, variance, max(variance * variance / denominator, seedDF))
    }

    static func checkProbability(_ x: Double, what: String) throws {
        guard x > 0, x < 1 else { throw MetricsError.invalidParameter(what: what) }
    }
}

/// Holm (1979) step-down adjusted p-values, in the input order: with p sorted ascending,
/// adjusted_(j) = max over k <= j of min(1, (m - k + 1) p_(k)), as R's p.adjust(method = "holm").
public func holmAdjusted(_ pValues: [Double]) -> [Double] {
    let m = pValues.count
    let order = pValues.indices.sorted { (pValues[$0], $0) < (pValues[$1], $1) }
    var adjusted = [Double](repeating: 0, count: m)
    var running = 0.0
    for (k, i) in order.enumerated() {
        running = max(running, min(1, Double(m - k) * pValues[i]))
        adjusted[i] = running
    }
    return adjusted
}

extension SeededGenerator {
    /// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1) * U^(1/shape).
    mutating func gamma(shape: Double) -> Double {
        if shape < 1 { return gamma(shape: shape + 1) * Foundation.pow(1 - uniformDouble(), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = normalDouble(); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = 1 - uniformDouble()
            if u < 1 - 0.0331 * x * x * x * x || Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) {
                return d * v
            }
        }
    }

    /// Chi-square with `df` degrees of freedom (any df > 0): 2 Gamma(df / 2).
    mutating func chiSquare(_ df: Double) -> Double { 2 * gamma(shape: df / 2) }
}
