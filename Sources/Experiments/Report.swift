import Foundation
import Evaluation

/// Mean and sample standard deviation over seeds (Metrics' `MeanStd`).
public typealias Stat = MeanStd

extension MeanStd {
    /// "mean ± std" with three decimals.
    public var text: String { String(format: "%.3f ± %.3f", mean, std) }
}

/// A difference between an arm and `original`, with a bootstrap 95% interval.
public struct Difference: Codable, Equatable, Sendable {
    public var mean: Double
    public var ci95: [Double]
    public init(mean: Double, ci95: [Double]) { self.mean = mean; self.ci95 = ci95 }
    public var text: String { String(format: "%+.3f [%+.3f, %+.3f]", mean, ci95[0], ci95[1]) }
    /// Whether the interval excludes zero.
    public var isSignificant: Bool { ci95[0] > 0 || ci95[1] < 0 }
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
    /// Training images per class (real and synthetic).
    public var trainImages: [String: ImageCounts]
    public var test: TestMetrics
    public var trainAccuracy: Stat, valAccuracy: Stat
    /// Confusion matrix on the test split, summed over seeds (rows true, columns predicted).
    public var confusionMatrix: [[Int]]
    /// Seconds: classifier training per seed, and synthesis (GAN training + sampling) once.
    public var trainSeconds: Stat
    public var synthesisSeconds: Double?
    /// Difference from `original`: balanced accuracy and each minority class's recall.
    public var balancedAccuracyVsOriginal: Difference?
    public var minorityRecallVsOriginal: [String: Difference]?
    /// Training curves, one list per seed.
    public var curves: [[CurvePoint]]
    public var alarms: [String]
    /// GAN sample grid (PNG path) for the GAN arms.
    public var gridPaths: [String]

    enum CodingKeys: String, CodingKey {
        case name, description, test, curves, alarms
        case trainImages = "train_images", trainAccuracy = "train_accuracy", valAccuracy = "val_accuracy",
             confusionMatrix = "confusion_matrix", trainSeconds = "train_seconds", synthesisSeconds = "synthesis_seconds",
             balancedAccuracyVsOriginal = "balanced_accuracy_vs_original",
             minorityRecallVsOriginal = "minority_recall_vs_original", gridPaths = "grid_paths"
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
    /// Always predicting the majority training class.
    public var majorityBaseline: TestMetrics
    public var arms: [ArmReport]
    public var alarms: [String]
    public var seconds: Double
    public var settings: [String: String]

    enum CodingKeys: String, CodingKey {
        case dataset, arch, seeds, arms, alarms, seconds, settings
        case testSource = "test_source", imageSize = "image_size", classNames = "class_names",
             minorityClasses = "minority_classes", splitCounts = "split_counts", majorityBaseline = "majority_baseline"
    }
}
