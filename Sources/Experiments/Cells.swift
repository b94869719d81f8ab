import AtomicIO
import Classification
import Datasets
import Diffusion
import Evaluation
import Foundation
import GAN

/// How many synthetic candidates of a class the filter saw and kept.
public struct Acceptance: Codable, Equatable, Sendable {
    /// Candidates generated and scored.
    public var candidates: Int
    /// Candidates the real-data classifier assigned to the intended class with enough confidence.
    public var confident: Int
    /// Confident candidates dropped as near-copies of a training image.
    public var nearCopies: Int
    /// Images kept (at most the number wanted).
    public var kept: Int
    /// The confidence threshold on p(class), chosen on the real validation images of the class (mean over seeds in reports).
    public var threshold: Double

    /// Share of candidates that passed both tests.
    public var rate: Double { candidates == 0 ? 0 : Double(confident - nearCopies) / Double(candidates) }

    /// Counts added; the threshold is the first one's (the caller averages thresholds itself).
    static func + (a: Acceptance, b: Acceptance) -> Acceptance {
        Acceptance(
            candidates: a.candidates + b.candidates, confident: a.confident + b.confident,
            nearCopies: a.nearCopies + b.nearCopies, kept: a.kept + b.kept, threshold: a.threshold)
    }
}

/// One finished (arm, seed) classifier: everything the report needs, so a re-run reads it back.
struct Cell: Codable {
    var arm: String
    var seed: UInt64
    var trainImages: [String: ImageCounts]
    /// Per class, when the arm filters its synthetic images.
    var acceptance: [String: Acceptance]
    var history: TrainingHistory
    /// Probabilities (N, K) row-major of the best epoch's model.
    var valProbabilities: [Float]
    var testProbabilities: [Float]
    /// The decision rule chosen on the validation split.
    var decision: DecisionRule
    /// Classifier training, and making the synthetic set (generation, filtering; not GAN training).
    var seconds: Double
    var synthesisSeconds: Double
}

/// One seed's trained generators.
struct Generators {
    var perClass: [String: SyntheticImageSource] = [:]
    var conditional: SyntheticImageSource?
    var diffusion: DiffusionImageSource?
    var seconds: [String: Double] = [:]
    var grids: [String: String] = [:]

    /// The generator of `kind` that makes images of `className`, if trained.
    func source(_ kind: GeneratorKind, className: String) -> (any SyntheticImages)? {
        switch kind {
        case .dcgan: return perClass[className]
        case .cdcgan: return conditional
        case .diffusion: return diffusion
        }
    }
}

/// A stable 64-bit FNV-1a hash, to derive per-name seeds that do not change between runs.
func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

/// A seed for stream `name` of seed `seed` (generators, sampling), distinct per name and seed.
func derivedSeed(_ seed: UInt64, _ name: String) -> UInt64 { stableHash("\(seed)/\(name)") }

extension Experiment {
    func cellDirectory(_ arm: Arm, seed: UInt64) -> URL {
        options.output.appendingPathComponent("arms").appendingPathComponent(arm.name).appendingPathComponent("seed-\(seed)")
    }

    /// Where a cell's classifier came from, so `medsynth evaluate --data` rebuilds its test split
    /// (nil with `resplit`, which the provenance cannot express).
    var provenance: DataProvenance? {
        options.resplit
            ? nil
            : DataProvenance(
                path: options.data, testPath: options.test, splitRatio: options.splitRatio,
                splitSeed: options.splitSeed, selection: options.selection)
    }

    /// The classifier checkpoint of `arm` and `seed` (written when the cell finishes).
    public func modelURL(_ arm: Arm, seed: UInt64) -> URL {
        cellDirectory(arm, seed: seed).appendingPathComponent("model.safetensors")
    }

    /// The cell of `arm` and `seed` when a run (this one, an earlier one, another worker) finished it.
    func finishedCell(_ arm: Arm, seed: UInt64) -> Cell? {
        let file = cellDirectory(arm, seed: seed).appendingPathComponent("cell.json")
        guard let data = FileManager.default.contents(atPath: file.path),
            let c = try? JSONDecoder().decode(Cell.self, from: data),
            c.arm == arm.name, c.seed == seed, FileManager.default.fileExists(atPath: modelURL(arm, seed: seed).path)
        else { return nil }
        return c
    }

    /// The cell of `arm` and `seed`: from memory, from disk (a finished earlier run or another
    /// worker), or trained now under a claim (`arms/ARM/seed-S.claim`). When another live worker
    /// holds the claim, waits for its result.
    func cell(_ arm: Arm, seed: UInt64, _ observe: (ExperimentEvent) -> Void) throws -> Cell {
        try cell(arm, seed: seed, wait: true, observe)!
    }

    /// As `cell(_:seed:_:)`, but returns nil at once when `wait` is false and another worker holds the cell.
    func cell(_ arm: Arm, seed: UInt64, wait: Bool, _ observe: (ExperimentEvent) -> Void) throws -> Cell? {
        let key = "\(arm.name)#\(seed)"
        if let c = cells[key] { return c }
        let dir = cellDirectory(arm, seed: seed)
        try FileManager.default.createDirectory(at: dir.deletingLastPathComponent(), withIntermediateDirectories: true)
        let c = try claimed(dir.path + ".claim", what: "\(arm.name) seed \(seed)", wait: wait, observe) { firstLook in
            guard let c = finishedCell(arm, seed: seed) else { return nil }
            if firstLook { observe(.resumed("\(arm.name) seed \(seed)")) }
            return c
        } make: {
            try trainCell(arm, seed: seed, observe)
        }
        if let c { cells[key] = c }
        return c
    }

    /// Trains the cell of `arm` and `seed` (the caller holds its claim). Filtered arms first need
    /// `original` (their judge), pre-trained arms the same arm without `pretrain` (their starting
    /// weights); both are trained here when missing, or waited for.
    private func trainCell(_ arm: Arm, seed: UInt64, _ observe: (ExperimentEvent) -> Void) throws -> Cell {
        let dir = cellDirectory(arm, seed: seed), file = dir.appendingPathComponent("cell.json")
        observe(.stage("cell \(arm.name) seed \(seed): training the classifier"))
        var o = options.classifier
        o.seed = seed
        o.augmentation = arm.augment ? AugmentationOptions() : nil
        o.classWeights = arm.classWeights
        o.oversample = arm.oversample
        var base = arm
        base.pretrain = false
        if arm.pretrain {
            // Pre-trained on real + synthetic (the arm without `pretrain`), fine-tuned on real only.
            _ = try cell(base, seed: seed, observe)
            o.initialCheckpoint = modelURL(base, seed: seed).path
            o.learningRate = options.fineTuneLearningRate
        }
        var judge: URL? = nil
        if arm.filter && !arm.pretrain {
            _ = try cell(.original, seed: seed, observe)  // the real-data classifier that scores candidates
            judge = modelURL(.original, seed: seed)
        }
        let t0 = Date()
        let synthetic = try trainingSet(arm.pretrain ? .original : arm, seed: seed, judge: judge, observe)
        let synthesisSeconds = Date().timeIntervalSince(t0)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = try ClassifierConfig(
            arch: options.arch, imageSize: options.imageSize, channels: train.channels,
            classes: train.classNames.count)
        let t1 = Date()
        let result = try trainAndEvaluate(
            train: synthetic.images, val: val, test: test, config: config, options: o,
            preprocessing: preprocessing, data: provenance, checkpoint: modelURL(arm, seed: seed)
        ) { event in
            if case let .epoch(record, _) = event {
                observe(
                    .classifierEpoch(
                        arm: arm.name, seed: seed, epoch: record.epoch, maxEpochs: o.epochs,
                        valMacroF1: record.valMacroF1))
            }
        }
        let seconds = Date().timeIntervalSince(t1)
        let k = train.classNames.count
        let valP = try predictProbabilities(result.model, pixels: val.pixels, count: val.count)
        let testP = try predictProbabilities(result.model, pixels: test.pixels, count: test.count)
        let priors = synthetic.images.classCounts.map { Double($0) / Double(max(synthetic.images.count, 1)) }
        let decision = try DecisionRule.tuned(probabilities: valP, labels: val.labels, classCount: k, priors: priors)
        // Pre-trained arms report their base's synthetic counts: that is what the weights saw first.
        let first = arm.pretrain ? try cell(base, seed: seed, observe) : nil
        let c = Cell(
            arm: arm.name, seed: seed, trainImages: first?.trainImages ?? synthetic.counts,
            acceptance: first?.acceptance ?? synthetic.acceptance, history: result.history,
            valProbabilities: valP, testProbabilities: testP, decision: decision, seconds: seconds,
            synthesisSeconds: synthesisSeconds)
        let encoder = JSONEncoder()
        try AtomicFile.write(Array(try encoder.encode(c)), to: file.path)
        return c
    }
}

extension Arm {
    /// The plain baseline.
    static let original: Arm = "original"
}
