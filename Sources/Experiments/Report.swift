import Evaluation
import Foundation

/// Mean and sample standard deviation over seeds (Metrics' `MeanStd`).
public typealias Stat = MeanStd

extension MeanStd {
    /// "mean ± std" with three decimals.
    public var text: String { String(format: "%.3f ± %.3f", mean, std) }
}

/// A difference between an arm and a reference arm: the paired two-level bootstrap over seeds and
/// test images, with its interval corrected for the number of comparisons (Holm).
public struct Contrast: Codable, Equatable, Sendable {
    /// The arm compared, and the reference it is compared with.
    public var name: String, reference: String
    /// Mean over seeds of the arm's statistic minus the reference's, on the full test set.
    public var mean: Double
    /// The Holm-corrected interval and its confidence level.
    public var ci: [Double]
    public var level: Double
    /// Two-sided bootstrap p-value, uncorrected and Holm-adjusted.
    public var pValue: Double, adjustedPValue: Double
    /// "helps", "hurts" or "no detectable difference": from the corrected interval only.
    public var verdict: String
    /// What the interval rests on.
    public var seeds: Int, testImages: Int, resamples: Int

    public init(_ c: Comparison, reference: String) {
        name = c.name; self.reference = reference; mean = c.estimate; ci = [c.lower, c.upper]; level = c.level
        pValue = c.pValue; adjustedPValue = c.adjustedPValue; verdict = c.verdict.rawValue
        seeds = c.seeds; testImages = c.testImages; resamples = c.resamples
    }

    public init(
        name: String, reference: String, mean: Double, ci: [Double], level: Double, pValue: Double, adjustedPValue: Double,
        seeds: Int, testImages: Int, resamples: Int
    ) {
        self.name = name; self.reference = reference; self.mean = mean; self.ci = ci; self.level = level
        self.pValue = pValue; self.adjustedPValue = adjustedPValue
        verdict =
            ci[0] > 0 ? Verdict.helps.rawValue : (ci[1] < 0 ? Verdict.hurts.rawValue : Verdict.noDetectableDifference.rawValue)
        self.seeds = seeds; self.testImages = testImages; self.resamples = resamples
    }

    /// "+0.012 [-0.020, +0.041]".
    public var text: String { String(format: "%+.3f [%+.3f, %+.3f]", mean, ci[0], ci[1]) }
    /// Whether the corrected interval excludes zero.
    public var isSignificant: Bool { ci[0] > 0 || ci[1] < 0 }

    enum CodingKeys: String, CodingKey {
        case name, reference, mean, ci, level, verdict, seeds, resamples
        case pValue = "p_value", adjustedPValue = "adjusted_p_value", testImages = "test_images"
    }
}

/// Per-class test metrics over seeds.
public struct ClassSummary: Codable, Equatable, Sendable {
    public var precision: Stat, recall: Stat, f1: Stat
    public var auc: Stat?
    public var support: Int
}

/// Test metrics over seeds.
public struct TestMetrics: Codable, Equatable, Sendable {
    public var accuracy: Stat
    public var balancedAccuracy: Stat
    public var macroF1: Stat
    public var macroAUC: Stat?
    public var loss: Stat?
    public var perClass: [String: ClassSummary]

    enum CodingKeys: String, CodingKey {
        case accuracy, loss
        case balancedAccuracy = "balanced_accuracy", macroF1 = "macro_f1", macroAUC = "macro_auc", perClass = "per_class"
    }
}

/// Real and synthetic training images of one class.
public struct ImageCounts: Codable, Equatable, Sendable {
    public var real: Int, synthetic: Int
    public init(real: Int, synthetic: Int) { self.real = real; self.synthetic = synthetic }
}

/// One epoch of a classifier's training curves.
public struct CurvePoint: Codable, Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double
    public var valLoss: Double, valAccuracy: Double, valMacroF1: Double

    enum CodingKeys: String, CodingKey {
        case epoch
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss",
            valAccuracy = "val_accuracy", valMacroF1 = "val_macro_f1"
    }
}

/// What one arm of the experiment gave, over all seeds.
public struct ArmReport: Codable, Sendable {
    public var name: String
    public var description: String
    public var generative: Bool
    /// Training images per class (real and synthetic), first seed.
    public var trainImages: [String: ImageCounts]
    /// Test metrics with the default decision (argmax).
    public var test: TestMetrics
    /// Test metrics with the decision rule tuned on validation (threshold or prior correction), and the rules.
    public var tunedTest: TestMetrics
    public var decisionRules: [String]
    public var trainAccuracy: Stat, valAccuracy: Stat, valBalancedAccuracy: Stat
    /// Confusion matrix on the test split, summed over seeds (rows true, columns predicted).
    public var confusionMatrix: [[Int]]
    /// Seconds per seed: classifier training, and synthesis (generator training + generation + filtering).
    public var trainSeconds: Stat
    public var synthesisSeconds: Stat?
    /// Against `original`, Holm-corrected over every arm compared: balanced accuracy and each
    /// minority class's recall, with the default decision and with the tuned one.
    public var balancedAccuracyVsOriginal: Contrast?
    public var minorityRecallVsOriginal: [String: Contrast]?
    public var tunedBalancedAccuracyVsOriginal: Contrast?
    public var tunedMinorityRecallVsOriginal: [String: Contrast]?
    /// Filtered arms: candidates and kept images per class, summed over seeds.
    public var acceptance: [String: Acceptance]?
    /// Training curves, one list per seed.
    public var curves: [[CurvePoint]]
    public var alarms: [String]
    /// Generator sample grids (PNG paths), first seed.
    public var gridPaths: [String]

    enum CodingKeys: String, CodingKey {
        case name, description, generative, test, curves, alarms, acceptance
        case trainImages = "train_images", tunedTest = "tuned_test", decisionRules = "decision_rules",
            trainAccuracy = "train_accuracy", valAccuracy = "val_accuracy", valBalancedAccuracy = "val_balanced_accuracy",
            confusionMatrix = "confusion_matrix", trainSeconds = "train_seconds", synthesisSeconds = "synthesis_seconds",
            balancedAccuracyVsOriginal = "balanced_accuracy_vs_original",
            minorityRecallVsOriginal = "minority_recall_vs_original",
            tunedBalancedAccuracyVsOriginal = "tuned_balanced_accuracy_vs_original",
            tunedMinorityRecallVsOriginal = "tuned_minority_recall_vs_original", gridPaths = "grid_paths"
    }
}

/// The report's answer to "did synthesis help": the best generative arm against the best
/// non-generative one, both chosen on validation, compared on test per statistic (Holm over the
/// statistics), with the generators' audit numbers and the filter's acceptance rates.
public struct WhatHelped: Codable, Sendable {
    public var bestGenerative: String, bestBaseline: String
    /// How the two were chosen.
    public var selection: String
    public var balancedAccuracy: Contrast
    public var minorityRecall: [String: Contrast]
    public var acceptance: [String: Acceptance]?
    /// One plain sentence.
    public var summary: String

    enum CodingKeys: String, CodingKey {
        case selection, acceptance, summary
        case bestGenerative = "best_generative", bestBaseline = "best_baseline", balancedAccuracy = "balanced_accuracy",
            minorityRecall = "minority_recall"
    }
}

/// One point of the synthetic-share curve.
public struct RatioPoint: Codable, Sendable {
    public var arm: String
    /// Synthetic images per real image, at most.
    public var ratio: Double
    public var balancedAccuracy: Stat
    public var minorityRecall: [String: Stat]

    enum CodingKeys: String, CodingKey {
        case arm, ratio, balancedAccuracy = "balanced_accuracy", minorityRecall = "minority_recall"
    }
}

/// The whole experiment: every arm with the same classifier, hyperparameters and seeds.
public struct ExperimentReport: Codable, Sendable {
    public var dataset: String
    public var testSource: String
    public var imageSize: Int
    public var arch: String
    public var seeds: [UInt64]
    public var classNames: [String]
    public var minorityClasses: [String]
    /// Images per class in each split of the real data.
    public var splitCounts: [String: [String: Int]]
    /// How the differences were computed.
    public var statistics: String
    public var testImages: Int
    /// Always predicting the majority training class.
    public var majorityBaseline: TestMetrics
    public var arms: [ArmReport]
    public var whatHelped: WhatHelped?
    public var generatorAudits: [GeneratorAudit]
    public var ratioCurve: [RatioPoint]
    public var alarms: [String]
    public var seconds: Double
    /// How many MPI ranks trained the grid (1: one process, `--jobs` workers included). Absent
    /// from reports written before it was recorded.
    public var ranks: Int?
    public var settings: [String: String]

    enum CodingKeys: String, CodingKey {
        case dataset, arch, seeds, arms, alarms, seconds, ranks, settings, statistics
        case testSource = "test_source", imageSize = "image_size", classNames = "class_names",
            minorityClasses = "minority_classes", splitCounts = "split_counts", majorityBaseline = "majority_baseline",
            testImages = "test_images", whatHelped = "what_helped", generatorAudits = "generator_audits",
            ratioCurve = "ratio_curve"
    }
}
