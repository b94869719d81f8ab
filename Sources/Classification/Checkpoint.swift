import Autodiff
import Datasets
import Evaluation
import Foundation
import NN
import SeededRandom

/// Where a model's data came from, enough to rebuild its test split.
public struct DataProvenance: Codable, Equatable, Sendable {
    /// The dataset (folder tree or .npz) as given.
    public var path: String
    /// An explicit test set, if one was given.
    public var testPath: String?
    public var splitRatio: SplitRatio
    public var splitSeed: UInt64
    /// The class selection the data was loaded with (nil: every class as stored).
    public var selection: ClassSelection?

    public init(
        path: String, testPath: String? = nil, splitRatio: SplitRatio = .standard, splitSeed: UInt64,
        selection: ClassSelection? = nil
    ) {
        (self.path, self.testPath, self.splitRatio, self.splitSeed) = (path, testPath, splitRatio, splitSeed)
        self.selection = selection
    }
}

/// What a classifier checkpoint says about itself (stored as JSON in the safetensors metadata).
public struct ClassifierMetadata: Codable, Equatable, Sendable {
    public var config: ClassifierConfig
    public var classNames: [String]
    /// How images must be prepared for this model (scaling `.unit`: pixels / 255).
    public var preprocessing: Preprocessing
    public var training: TrainingOptions?
    public var data: DataProvenance?
    /// 0-based epoch whose weights these are.
    public var bestEpoch: Int?
    public var validation: EvaluationReport?
    public var test: EvaluationReport?

    public init(
        config: ClassifierConfig, classNames: [String], preprocessing: Preprocessing,
        training: TrainingOptions? = nil, data: DataProvenance? = nil, bestEpoch: Int? = nil,
        validation: EvaluationReport? = nil, test: EvaluationReport? = nil
    ) {
        self.config = config; self.classNames = classNames; self.preprocessing = preprocessing
        self.training = training; self.data = data; self.bestEpoch = bestEpoch
        self.validation = validation; self.test = test
    }
}

/// Classifier checkpoints: the model's state dict (dotted names) as safetensors, with
/// `format = medsynth-classifier-1` and `classifier` (the JSON of `ClassifierMetadata`) as metadata.
public enum ClassifierCheckpoint {
    public static let format = "medsynth-classifier-1"

    /// Writes atomically.
    public static func save(_ model: Classifier, metadata: ClassifierMetadata, to url: URL) throws {
        let json = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
        try SafeTensors.write(model.stateDict(), metadata: ["format": format, "classifier": json], to: url)
    }

    /// Rebuilds the model from its metadata and loads its weights, in evaluation mode.
    public static func load(_ url: URL) throws -> (model: Classifier, metadata: ClassifierMetadata) {
        let file = try SafeTensors.read(url)
        guard file.metadata["format"] == format, let json = file.metadata["classifier"] else {
            throw ClassificationError.notAClassifier(
                path: url.path, reason: "metadata format is \(file.metadata["format"] ?? "missing")")
        }
        let metadata: ClassifierMetadata
        do { metadata = try JSONDecoder().decode(ClassifierMetadata.self, from: Data(json.utf8)) } catch {
            throw ClassificationError.notAClassifier(path: url.path, reason: "unreadable classifier metadata: \(error)")
        }
        var g = SeededGenerator(seed: 0)  // every weight is overwritten by the checkpoint
        let model = Classifier(metadata.config, generator: &g)
        try model.loadStateDict(file.tensors)
        model.train(false)
        return (model, metadata)
    }
}

/// Loads a checkpoint once and turns batches of images into class probabilities.
///
/// NOTE: safe to call from many tasks at once: the model stays in evaluation mode (batch norm
/// reads its running statistics, dropout is the identity), `noGrad` is task-local and graphs
/// are per call, so a call writes nothing shared.
public final class Predictor: @unchecked Sendable {
    public let metadata: ClassifierMetadata
    let model: Classifier

    public init(checkpoint url: URL) throws { (model, metadata) = try ClassifierCheckpoint.load(url) }

    /// Probabilities (N, K) row-major for `count` images, NCHW in [0, 1] of the model's shape.
    public func probabilities(pixels: [Float], count: Int) throws -> [Float] {
        try predictProbabilities(model, pixels: pixels, count: count)
    }

    /// Scores the model on a labelled set prepared with `metadata.preprocessing`.
    public func evaluate(_ set: LabeledImages) throws -> EvaluationReport {
        guard set.classNames == metadata.classNames else {
            throw ClassificationError.invalidData(
                what: "evaluation set", reason: "classes \(set.classNames) differ from the model's \(metadata.classNames)")
        }
        return try Classification.evaluate(model, on: set)
    }
}
