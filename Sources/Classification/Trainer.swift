import Autodiff
import Datasets
import Evaluation
import Foundation
import NN
import Privacy
import SeededRandom

/// The validation score early stopping watches.
public enum Monitor: String, Codable, Sendable, CaseIterable {
    case macroF1 = "macro-f1"
    case balancedAccuracy = "balanced-accuracy"

    func value(_ r: EvaluationReport) -> Double { self == .macroF1 ? r.macroF1 : r.balancedAccuracy }
}

/// The learning-rate schedules the command line offers by name.
public enum ScheduleName: String, Codable, Sendable, CaseIterable {
    case constant
    /// Cosine annealing from the base rate to 1/100 of it at the last epoch (torch CosineAnnealingLR).
    case cosine

    /// The schedule for `epochs` epochs from `learningRate`; nil for a constant rate.
    public func schedule(epochs: Int, learningRate: Float) -> LearningRateSchedule? {
        switch self {
        case .constant: return nil
        case .cosine: return .cosine(tMax: max(epochs - 1, 1), minimum: learningRate / 100)
        }
    }
}

/// How a classifier is trained (defaults: Adam 1e-3, batch 64, 30 epochs, patience 8).
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 30
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    /// The learning rate over epochs; nil = constant. `.cosine(tMax: epochs, minimum: lr / 100)` is what
    /// `--lr-schedule cosine` sets (MedMNIST's ResNet recipe decays the rate too, in steps).
    public var schedule: LearningRateSchedule? = nil
    /// Weight the loss by inverse class frequency (`inverseFrequencyWeights`).
    public var classWeights = false
    public var labelSmoothing: Float = 0
    /// Draw class-balanced batches (`ClassBalancedSampler`) instead of shuffled epochs.
    public var oversample = false
    /// Classic augmentation of training batches; nil = off.
    public var augmentation: AugmentationOptions? = nil
    /// Stop after this many epochs without a better validation score.
    public var patience = 8
    public var monitor: Monitor = .macroF1
    /// Seeds weights, batch order, dropout, sampling and augmentation.
    public var seed: UInt64 = 0
    /// Differentially private training (DP-SGD); nil = off.
    public var privacy: PrivateTrainingOptions? = nil
    /// Start from this classifier checkpoint's weights instead of a fresh initialisation
    /// (fine-tuning, e.g. after pre-training on synthetic images); nil = fresh weights.
    public var initialCheckpoint: String? = nil
    public init() {}
}

/// DP-SGD for a classifier (Abadi et al. 2016): Poisson batches of expected size `batchSize`,
/// each example's gradient clipped to `maxGradNorm`, Gaussian noise, a Renyi-DP accountant.
/// Give the noise multiplier, or a target epsilon to solve for it over the planned steps.
public struct PrivateTrainingOptions: Codable, Equatable, Sendable {
    public var noiseMultiplier: Double?
    public var targetEpsilon: Double?
    public var maxGradNorm: Float = 1
    /// Delta of (epsilon, delta)-DP; must stay below 1 / (training set size). Nil: the default,
    /// min(1e-5, 0.1 / n) for n training images (`delta(trainingImages:)`).
    public var delta: Double?
    public init(noiseMultiplier: Double? = nil, targetEpsilon: Double? = nil, maxGradNorm: Float = 1, delta: Double? = nil) {
        self.noiseMultiplier = noiseMultiplier; self.targetEpsilon = targetEpsilon
        self.maxGradNorm = maxGradNorm; self.delta = delta
    }

    /// The delta used for `n` training images: `delta`, or min(1e-5, 0.1 / n).
    public func delta(trainingImages n: Int) -> Double { delta ?? min(1e-5, 0.1 / Double(max(n, 1))) }
}

/// One epoch's training curves.
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double
    public var valAccuracy: Double
    public var valMacroF1: Double
    public var valBalancedAccuracy: Double
    public var seconds: Double
    /// The learning rate of this epoch (nil in records written before schedules existed).
    public var learningRate: Float? = nil

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss"
        case valAccuracy = "val_accuracy", valMacroF1 = "val_macro_f1", valBalancedAccuracy = "val_balanced_accuracy", seconds
        case learningRate = "learning_rate"
    }
}

/// Training curves and where the best weights came from.
public struct TrainingHistory: Codable, Equatable, Sendable {
    public var monitor: Monitor
    public var epochs: [EpochRecord] = []
    /// 0-based epoch whose weights were kept.
    public var bestEpoch = -1
    public var bestScore = -Double.infinity
    public var stoppedEarly = false
    /// Privacy spent by DP-SGD over all steps taken (nil when not private).
    public var privacyEpsilon: Double?, privacyDelta: Double?, noiseMultiplier: Double?

    enum CodingKeys: String, CodingKey {
        case monitor, epochs, bestEpoch = "best_epoch", bestScore = "best_score", stoppedEarly = "stopped_early"
        case privacyEpsilon = "privacy_epsilon", privacyDelta = "privacy_delta", noiseMultiplier = "noise_multiplier"
    }
}

/// What a training run reports as it goes.
public enum TrainingEvent: Sendable {
    case batch(epoch: Int, batch: Int, batches: Int, loss: Float)
    case epoch(EpochRecord, improved: Bool)
    case earlyStop(epoch: Int, bestEpoch: Int)
}

/// Inverse-frequency class weights normalised so that the mean weight per training example is 1:
/// w_c = N / (K n_c), K the number of classes present (sklearn's class_weight="balanced").
/// NOTE: a class with no training example gets weight 0 and is not counted in K (it never
/// occurs as a target, so the normalisation stays exact).
public func inverseFrequencyWeights(labels: [Int], classCount: Int) -> [Float] {
    var counts = [Int](repeating: 0, count: classCount)
    for y in labels { counts[y] += 1 }
    let present = Float(counts.filter { $0 > 0 }.count)
    return counts.map { $0 == 0 ? 0 : Float(labels.count) / (present * Float($0)) }
}

/// Trains a `Classifier` on a training set, early-stopping on a validation set and keeping the
/// best epoch's weights. Deterministic for `options.seed`.
public final class ClassifierTrainer {
    public let model: Classifier
    public let options: TrainingOptions
    public let train: LabeledImages, val: LabeledImages
    /// Loss weights per class (nil = unweighted).
    public let classWeights: [Float]?
    let optimizer: Adam
    /// The best weights so far (copies).
    public private(set) var bestState: [String: Tensor]?
    /// Data-parallel training over ranks (see NN's DataParallel.swift); one process by default.
    public let sync: GradientSync

    /// Sets up the model, optimizer and loss weights; both sets must match `config`'s shape.
    /// With `sync` over N ranks every batch is split over them: it must hold at least 2 images
    /// per rank (batch norm), and DP-SGD is refused.
    public init(
        config: ClassifierConfig, options: TrainingOptions, train: LabeledImages, val: LabeledImages,
        sync: GradientSync = .single
    ) throws {
        for (name, set) in [("training set", train), ("validation set", val)] {
            guard (set.channels, set.height, set.width) == (config.channels, config.imageSize, config.imageSize) else {
                throw ClassificationError.invalidData(
                    what: name,
                    reason: "images are \(set.channels)x\(set.height)x\(set.width), the model expects "
                        + "\(config.channels)x\(config.imageSize)x\(config.imageSize)")
            }
            guard set.count > 0 else { throw ClassificationError.invalidData(what: name, reason: "is empty") }
            guard set.classNames.count == config.classes else {
                throw ClassificationError.invalidData(
                    what: name, reason: "has \(set.classNames.count) classes, the model \(config.classes)")
            }
        }
        guard options.batchSize > 1, options.epochs > 0, options.patience > 0 else {
            throw ClassificationError.invalidConfig(
                field: "training options",
                value: "batch \(options.batchSize), epochs "
                    + "\(options.epochs), patience \(options.patience)", reason: "batch size must be > 1, epochs and patience > 0"
            )
        }
        guard options.batchSize >= 2 * sync.size, options.privacy == nil || !sync.isDataParallel else {
            throw ClassificationError.invalidConfig(
                field: "batch size", value: "\(options.batchSize)",
                reason: options.privacy != nil
                    ? "DP-SGD does not run data-parallel: train a private classifier as one process"
                    : "over \(sync.size) ranks every rank needs at least 2 images of each batch (batch norm)")
        }
        self.sync = sync
        var g = SeededGenerator(seed: options.seed)
        model = Classifier(config, generator: &g)
        if let path = options.initialCheckpoint {
            let (initial, metadata) = try ClassifierCheckpoint.load(URL(fileURLWithPath: path))
            guard metadata.config == config else {
                throw ClassificationError.invalidConfig(
                    field: "initial checkpoint", value: path,
                    reason: "its model is \(metadata.config), this one \(config)")
            }
            try model.loadStateDict(initial.stateDict())
        }
        self.options = options
        self.train = train; self.val = val
        classWeights = options.classWeights ? inverseFrequencyWeights(labels: train.labels, classCount: config.classes) : nil
        optimizer = Adam(model.parameters, learningRate: options.learningRate)
        if let p = options.privacy {
            let delta = p.delta(trainingImages: train.count)
            guard delta > 0, delta < 1 / Double(train.count) else {
                throw ClassificationError.invalidConfig(
                    field: "privacy delta", value: "\(delta)",
                    reason: "must be in (0, 1/n) with n = \(train.count) training images")
            }
            let batch = min(options.batchSize, train.count)
            let steps = options.epochs * max(1, train.count / batch)
            let sigma =
                try p.noiseMultiplier
                ?? RDPAccountant.noiseMultiplier(
                    targetEpsilon: p.targetEpsilon ?? 1, delta: delta, samplingRate: Double(batch) / Double(train.count),
                    steps: steps)
            dpsgd = try DPSGD(
                module: model, noiseMultiplier: sigma, maxGradNorm: p.maxGradNorm, expectedBatchSize: batch,
                datasetSize: train.count, seed: streamSeed(0xD9))
        }
    }

    /// DP-SGD when `options.privacy` is set (then batches are Poisson samples, not epochs).
    public private(set) var dpsgd: DPSGD?

    /// The training loss of logits (N, K): cross-entropy with this trainer's class weights and smoothing.
    public func loss(logits: Tensor, labels: [Int]) throws -> Tensor {
        try Loss.crossEntropy(logits, labels: labels, classWeights: classWeights, labelSmoothing: options.labelSmoothing)
    }

    /// The index batches of one epoch: a seeded shuffle, or class-balanced draws (as many
    /// batches as a shuffled epoch has) when oversampling.
    /// NOTE: a final batch of one example is dropped: batch norm cannot normalise a single value
    /// (data-parallel over N ranks: a final batch of fewer than 2N, so that every shard has 2).
    public func batches(epoch: Int) -> [[Int]] {
        let size = options.batchSize, n = train.count
        if options.oversample {
            var sampler = ClassBalancedSampler(
                labels: train.labels, classCount: model.config.classes,
                seed: streamSeed(0xBA1 + UInt64(epoch)))
            return (0..<(n + size - 1) / size).map { _ in sampler.nextBatch(size: size) }
        }
        return epochBatches(count: n, batchSize: size, epoch: epoch, seed: options.seed).filter { $0.count >= 2 * sync.size }
    }

    /// This rank's part of the batch loss's normaliser (the sum of the batch's class weights; the
    /// count without them): n_r / B unweighted, so that the ranks' shares sum to 1.
    func lossShare(_ labels: [Int], _ shard: BatchShard) -> Float {
        guard !shard.isWhole else { return 1 }
        let w = labels.map { classWeights?[$0] ?? 1 }
        return w[shard.rows].reduce(0, +) / max(w.reduce(0, +), 1e-12)
    }

    /// A seed for one random stream of this run (sampling, augmentation), forked from `options.seed`.
    func streamSeed(_ stream: UInt64) -> UInt64 {
        var g = SeededGenerator(seed: options.seed).fork(stream)
        return g.next()
    }

    /// Trains up to `options.epochs` epochs; after each, scores the validation set, keeps the
    /// best weights (highest score, then lowest validation loss) (and writes them with `checkpoint` when given), and stops after `patience`
    /// epochs without improvement. The model holds the best weights when this returns, or the
    /// last epoch's with `keepLastEpoch` (as Keras reports a run: the paper replica).
    public func run(
        keepLastEpoch: Bool = false, checkpoint: ((Classifier, EvaluationReport, Int) throws -> Void)? = nil,
        progress: (TrainingEvent) -> Void = { _ in }
    ) throws -> TrainingHistory {
        var history = TrainingHistory(monitor: options.monitor)
        var augmenter = options.augmentation.map {
            Augmenter(options: $0, scaling: .unit, seed: streamSeed(0xA06))
        }
        let c = train.channels, s = train.height
        var sinceBest = 0, bestLoss = Double.infinity
        for epoch in 0..<options.epochs {
            let start = Date()
            if let schedule = options.schedule {
                optimizer.learningRate = schedule.rate(base: options.learningRate, epoch: epoch)
            }
            let plan = batches(epoch: epoch)
            model.train(true)
            var lossSum = 0.0, correct = 0, seen = 0
            if let dpsgd {
                // One private step per expected batch: each example's gradient alone, clipped, then noise.
                // NOTE: class weights cancel in a one-example weighted mean, so they have no effect here.
                let stepsPerEpoch = max(1, train.count / dpsgd.expectedBatchSize)
                for b in 0..<stepsPerEpoch {
                    let indices = dpsgd.sampleBatch()
                    model.zeroGrad()
                    var batchLoss = 0.0
                    try dpsgd.step(examples: indices) { i in
                        var (pixels, labels) = train.gather([i])
                        augmenter?.apply(toBatch: &pixels, count: 1, channels: c, height: s, width: s)
                        let logits = try model(try Tensor(shape: [1, c, s, s], scalars: pixels))  // (1, K)
                        if argmaxRows(logits.scalars, classCount: model.config.classes)[0] == labels[0] { correct += 1 }
                        let l = try loss(logits: logits, labels: labels)
                        batchLoss += Double(l.item)
                        return l
                    }
                    optimizer.step()
                    lossSum += batchLoss; seen += indices.count
                    progress(
                        .batch(
                            epoch: epoch, batch: b + 1, batches: stepsPerEpoch,
                            loss: Float(batchLoss / Double(max(indices.count, 1)))))
                }
            }
            for (b, indices) in plan.enumerated() where dpsgd == nil {
                var (pixels, labels) = train.gather(indices)
                augmenter?.apply(toBatch: &pixels, count: indices.count, channels: c, height: s, width: s)
                // Data-parallel: every rank gathers and augments the whole batch, then trains on its shard.
                let shard = sync.shard(of: indices.count), share = lossShare(labels, shard)
                let x = try shard.take(Tensor(shape: [indices.count, c, s, s], scalars: pixels))
                labels = shard.take(labels)
                model.zeroGrad()
                model.setBatchShard(sync.isDataParallel ? shard : nil)
                let logits = try model(x)  // (n_r, K)
                let l = try loss(logits: logits, labels: labels)
                l.backward()
                let predicted = argmaxRows(logits.scalars, classCount: model.config.classes)
                // The whole batch's loss and correct count (one process: share 1, nothing summed).
                var batch = [l.item * share, Float(zip(predicted, labels).filter { $0 == $1 }.count)]
                sync.average(gradientsOf: model.parameters, share: share, runningStatisticsOf: [model], extras: &batch)
                optimizer.step()
                correct += Int(batch[1])
                lossSum += Double(batch[0]) * Double(indices.count); seen += indices.count
                progress(.batch(epoch: epoch, batch: b + 1, batches: plan.count, loss: batch[0]))
            }
            model.setBatchShard(nil)
            let report = try evaluate(model, on: val)
            let record = EpochRecord(
                epoch: epoch, trainLoss: lossSum / Double(max(seen, 1)),
                trainAccuracy: Double(correct) / Double(max(seen, 1)), valLoss: report.loss ?? .nan,
                valAccuracy: report.accuracy, valMacroF1: report.macroF1,
                valBalancedAccuracy: report.balancedAccuracy, seconds: Date().timeIntervalSince(start),
                learningRate: optimizer.learningRate)
            history.epochs.append(record)
            let score = options.monitor.value(report), valLoss = report.loss ?? .infinity
            // NOTE: ties on the score break by validation loss: a model still predicting one class
            // keeps the same macro-F1 for epochs while it learns, and must not be stopped for it.
            let improved = score > history.bestScore || (score == history.bestScore && valLoss < bestLoss)
            if improved {
                history.bestScore = score; history.bestEpoch = epoch; sinceBest = 0; bestLoss = valLoss
                bestState = model.stateDict()
                try checkpoint?(model, report, epoch)
            } else {
                sinceBest += 1
            }
            progress(.epoch(record, improved: improved))
            if sinceBest >= options.patience && epoch + 1 < options.epochs {
                history.stoppedEarly = true
                progress(.earlyStop(epoch: epoch, bestEpoch: history.bestEpoch))
                break
            }
        }
        if let bestState, !keepLastEpoch { try model.loadStateDict(bestState) }
        if let dpsgd, let p = options.privacy {
            let delta = p.delta(trainingImages: train.count)
            history.privacyEpsilon = try dpsgd.epsilon(delta: delta)
            history.privacyDelta = delta; history.noiseMultiplier = dpsgd.noiseMultiplier
        }
        model.train(false)
        return history
    }
}

/// Class probabilities (N, K) row-major of `count` NCHW images, in evaluation mode without a graph,
/// `batchSize` images at a time. Leaves the model's training flag as it found it.
public func predictProbabilities(_ model: Classifier, pixels: [Float], count: Int, batchSize: Int = 256) throws -> [Float] {
    let c = model.config.channels, s = model.config.imageSize, size = c * s * s
    guard pixels.count == count * size else {
        throw ClassificationError.invalidData(what: "images", reason: "\(pixels.count) values are not \(count) x \(c)x\(s)x\(s)")
    }
    let wasTraining = model.isTraining
    if wasTraining { model.train(false) }
    defer { if wasTraining { model.train(true) } }
    var out: [Float] = []
    out.reserveCapacity(count * model.config.classes)
    for start in stride(from: 0, to: count, by: batchSize) {
        let n = min(batchSize, count - start)
        let x = try Tensor(shape: [n, c, s, s], scalars: Array(pixels[start * size..<(start + n) * size]))
        out += try noGrad { try model(x).softmax().scalars }  // (n, K)
    }
    return out
}

/// Scores `model` on a labelled set (probabilities, AUCs, loss, alarms).
public func evaluate(_ model: Classifier, on set: LabeledImages) throws -> EvaluationReport {
    let p = try predictProbabilities(model, pixels: set.pixels, count: set.count)
    return try EvaluationReport(classNames: set.classNames, labels: set.labels, probabilities: p)
}
