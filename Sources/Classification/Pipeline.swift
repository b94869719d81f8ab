import Datasets
import Evaluation
import Foundation
import NN

/// Everything one training run produced.
public struct TrainingResult {
    /// The best epoch's model, in evaluation mode.
    public var model: Classifier
    public var history: TrainingHistory
    /// The best model's checkpoint metadata (validation and test reports included).
    public var metadata: ClassifierMetadata
    /// The best model on the test split.
    public var test: EvaluationReport
    /// The majority-class baseline on the same test split.
    public var baseline: EvaluationReport
}

/// Trains on `train`, early-stops on `val`, scores the best model and the majority baseline on
/// `test`, and writes the best model to `checkpoint` (rewritten with the test report at the end).
/// Never looks at `test` before the best epoch is chosen. Data-parallel over `sync`'s ranks,
/// only rank 0 writes `checkpoint`.
public func trainAndEvaluate(
    train: LabeledImages, val: LabeledImages, test: LabeledImages, config: ClassifierConfig,
    options: TrainingOptions, preprocessing: Preprocessing, data: DataProvenance?,
    checkpoint: URL, sync: GradientSync = .single, progress: (TrainingEvent) -> Void = { _ in }
) throws -> TrainingResult {
    guard test.count > 0 else { throw ClassificationError.invalidData(what: "test split", reason: "is empty") }
    let trainer = try ClassifierTrainer(config: config, options: options, train: train, val: val, sync: sync)
    var metadata = ClassifierMetadata(
        config: config, classNames: train.classNames, preprocessing: preprocessing,
        training: options, data: data)
    let history = try trainer.run(
        checkpoint: { model, report, epoch in
            metadata.bestEpoch = epoch; metadata.validation = report
            if sync.writesOutputs { try ClassifierCheckpoint.save(model, metadata: metadata, to: checkpoint) }
        }, progress: progress)
    let report = try evaluate(trainer.model, on: test)
    metadata.test = report
    if sync.writesOutputs { try ClassifierCheckpoint.save(trainer.model, metadata: metadata, to: checkpoint) }
    let baseline = try majorityBaseline(trainLabels: train.labels, testLabels: test.labels, classNames: test.classNames)
    return TrainingResult(model: trainer.model, history: history, metadata: metadata, test: report, baseline: baseline)
}
