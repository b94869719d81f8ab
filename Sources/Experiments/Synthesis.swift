import AtomicIO
import Autodiff
import Classification
import Datasets
import Diffusion
import Evaluation
import Foundation
import GAN
import Quality

/// An arm's training set with what went into it.
struct ArmTrainingSet {
    /// Pixels in [0, 1], real images first, then synthetic ones class by class.
    var images: LabeledImages
    var counts: [String: ImageCounts]
    var acceptance: [String: Acceptance]
}

/// Quality of one generator's images of one class (seeded random-CNN features), for the report.
public struct GeneratorAudit: Codable, Equatable, Sendable {
    public var generator: String
    public var className: String
    public var synthetic: Int, training: Int, heldOut: Int
    public var kid: Double, kidStd: Double
    public var frechetDistance: Double
    public var precision: Double, recall: Double, density: Double, coverage: Double
    public var diversity: Double
    /// Synthetic images flagged as likely copies of a training image.
    public var flaggedCopies: Int
}

extension Experiment {
    /// One generator an arm may need: its name (`dcgan-CLASS` or `cdcgan`) and training images.
    struct GeneratorTask {
        var name: String
        var images: LabeledImages
        var conditional: Bool
        /// The class of a per-class generator; nil for the conditional one.
        var className: String?
    }

    /// The generators that arms of `kinds` need, for any seed: a DCGAN per class below the
    /// majority, and one conditional DCGAN.
    func generatorTasks(kinds: Set<GeneratorKind>) -> [GeneratorTask] {
        var tasks: [GeneratorTask] = []
        let counts = train.classCounts, top = counts.max() ?? 0
        if kinds.contains(.dcgan) {
            for (c, name) in train.classNames.enumerated() where counts[c] < top {
                tasks.append(
                    GeneratorTask(
                        name: "dcgan-\(name)", images: train.subset(train.labels.indices.filter { train.labels[$0] == c }),
                        conditional: false, className: name))
            }
        }
        if kinds.contains(.cdcgan) {
            tasks.append(GeneratorTask(name: "cdcgan", images: train, conditional: true, className: nil))
        }
        return tasks
    }

    /// The generators of `seed` that `kinds` need, trained now or read back from a finished earlier run
    /// (or from another worker: one that another worker is training is waited for).
    /// Each generator's seed derives from the arm seed and its name, so every seed retrains them.
    func generators(seed: UInt64, kinds: Set<GeneratorKind>, _ observe: (ExperimentEvent) -> Void) throws -> Generators {
        var g = generatorCache[seed] ?? Generators()
        for task in generatorTasks(kinds: kinds) {
            if let name = task.className {
                if g.perClass[name] == nil { g.perClass[name] = try generator(task, seed: seed, into: &g, observe) }
            } else if g.conditional == nil {
                g.conditional = try generator(task, seed: seed, into: &g, observe)
            }
        }
        if kinds.contains(.diffusion) && g.diffusion == nil {
            g.diffusion = try diffusion(seed: seed, into: &g, observe)
        }
        generatorCache[seed] = g
        return g
    }

    /// Where finished generators of a seed live, and the marker that says they finished.
    struct GeneratorDone: Codable { var seconds: Double; var steps: Int }

    func generatorDirectory(_ name: String, seed: UInt64) -> URL {
        options.output.appendingPathComponent("generators").appendingPathComponent("seed-\(seed)").appendingPathComponent(name)
    }

    /// The generator of `task` and `seed` when a run (this one, an earlier one, another worker) finished it.
    func finishedGenerator(_ name: String, seed: UInt64) -> (GeneratorDone, SyntheticImageSource)? {
        let dir = generatorDirectory(name, seed: seed)
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("done.json").path),
            let done = try? JSONDecoder().decode(GeneratorDone.self, from: data), done.steps == options.ganSteps,
            let source = try? SyntheticImageSource(checkpoint: dir.appendingPathComponent("checkpoint.safetensors"))
        else { return nil }
        return (done, source)
    }

    /// The generator of `task` for `seed`: read back when finished, else trained here under a claim
    /// (`generators/seed-S/NAME.claim`). When another live worker holds the claim, waits for its
    /// result, or returns nil at once when `wait` is false.
    func generator(
        _ task: GeneratorTask, seed: UInt64, into g: inout Generators, wait: Bool = true,
        _ observe: (ExperimentEvent) -> Void
    ) throws -> SyntheticImageSource? {
        let name = task.name, dir = generatorDirectory(name, seed: seed)
        g.grids[name] = dir.appendingPathComponent("grid-final.png").path
        try FileManager.default.createDirectory(at: dir.deletingLastPathComponent(), withIntermediateDirectories: true)
        return try claimed(dir.path + ".claim", what: "\(name) of seed \(seed)", wait: wait, observe) { firstLook in
            guard let (done, source) = finishedGenerator(name, seed: seed) else { return nil }
            if firstLook { observe(.resumed("\(name) seed \(seed)")) }
            g.seconds[name] = done.seconds
            return source
        } make: {
            try trainGenerator(task, seed: seed, into: &g, observe)
        }
    }

    /// Trains the generator of `task` for `seed` from scratch (the caller holds its claim).
    private func trainGenerator(
        _ task: GeneratorTask, seed: UInt64, into g: inout Generators,
        _ observe: (ExperimentEvent) -> Void
    ) throws -> SyntheticImageSource {
        let name = task.name, images = task.images, conditional = task.conditional
        let dir = generatorDirectory(name, seed: seed)
        let doneURL = dir.appendingPathComponent("done.json"), checkpoint = dir.appendingPathComponent("checkpoint.safetensors")
        // An unfinished generator starts again from scratch (its partial files are stale).
        try? FileManager.default.removeItem(at: dir)
        observe(.stage("seed \(seed): training \(name) on \(images.count) images"))
        let start = Date()
        let config = try DCGANConfig(
            imageSize: options.imageSize, channels: images.channels, generatorWidth: options.ganWidth,
            discriminatorWidth: options.ganWidth, classes: conditional ? images.classNames.count : nil)
        var ganOptions = GANTrainingOptions()
        ganOptions.batchSize = min(options.ganBatchSize, images.count)
        var plan = GANTrainingPlan()
        plan.maxSteps = options.ganSteps
        plan.seed = derivedSeed(seed, name)
        plan.split = SplitChoice(seed: options.splitSeed, ratio: options.splitRatio)
        let stepsPerEpoch = max(1, images.count / ganOptions.batchSize)
        plan.epochs = (options.ganSteps + stepsPerEpoch - 1) / stepsPerEpoch
        plan.gridEvery = max(1, plan.epochs / 4)
        plan.checkpointEvery = options.ganSteps
        let data = GANTrainingData(
            pixels: images.pixels.map { $0 * 2 - 1 }, count: images.count, channels: images.channels,
            size: options.imageSize, labels: conditional ? images.labels : nil,
            classNames: conditional ? images.classNames : [images.classNames[images.labels[0]]])
        let trainer = try GANTrainer(
            model: GANModel(config: config, options: ganOptions, seed: derivedSeed(seed, name)),
            data: data, plan: plan, outputDirectory: dir)
        try trainer.run { event in
            switch event {
            case let .step(_, _, _, global, total, _, _, eta):
                observe(.ganStep(name: "\(name) (seed \(seed))", step: global, total: total, etaSeconds: eta))
            case let .alarm(text): observe(.alarm("\(name) seed \(seed): \(text)"))
            default: break
            }
        }
        let seconds = Date().timeIntervalSince(start)
        g.seconds[name] = seconds
        try AtomicFile.write(
            Array(try JSONEncoder().encode(GeneratorDone(seconds: seconds, steps: options.ganSteps))),
            to: doneURL.path)
        return try SyntheticImageSource(checkpoint: checkpoint)
    }

    /// The class-conditional diffusion model of `seed` on every training image, trained now, resumed
    /// from its last checkpoint (an interrupted run), or read back when its `done.json` says it
    /// finished with today's settings. Samples with `diffusionSamplingSteps` DDIM steps and `guidanceScale`.
    /// The diffusion model of `seed`: read back when finished, else trained (or resumed) here under a
    /// claim (`generators/seed-S/diffusion.claim`); when another live worker holds the claim, waits
    /// for its result, or returns nil at once when `wait` is false.
    func diffusion(
        seed: UInt64, into g: inout Generators, wait: Bool = true,
        _ observe: (ExperimentEvent) -> Void
    ) throws -> DiffusionImageSource? {
        let dir = generatorDirectory("diffusion", seed: seed)
        try FileManager.default.createDirectory(at: dir.deletingLastPathComponent(), withIntermediateDirectories: true)
        let done = dir.appendingPathComponent("done.json").path
        return try claimed(dir.path + ".claim", what: "diffusion of seed \(seed)", wait: wait, observe) { _ in
            FileManager.default.fileExists(atPath: done) ? try diffusionGenerator(seed: seed, into: &g, observe) : nil
        } make: {
            try diffusionGenerator(seed: seed, into: &g, observe)
        }
    }

    /// Reads back or trains the diffusion model of `seed` (the caller holds its claim, or it is finished).
    private func diffusionGenerator(seed: UInt64, into g: inout Generators, _ observe: (ExperimentEvent) -> Void) throws
        -> DiffusionImageSource
    {
        let name = "diffusion"
        let dir = options.output.appendingPathComponent("generators").appendingPathComponent("seed-\(seed)")
            .appendingPathComponent(name)
        let doneURL = dir.appendingPathComponent("done.json"), checkpoint = dir.appendingPathComponent("checkpoint.safetensors")
        g.grids[name] = dir.appendingPathComponent("grid-final.png").path
        func opened() throws -> DiffusionImageSource {
            let source = try DiffusionImageSource(checkpoint: checkpoint)
            source.steps = options.diffusionSamplingSteps; source.guidanceScale = options.guidanceScale
            return source
        }
        if let data = FileManager.default.contents(atPath: doneURL.path),
            let done = try? JSONDecoder().decode(GeneratorDone.self, from: data), done.steps == options.diffusionSteps,
            let source = try? opened()
        {
            observe(.resumed("\(name) seed \(seed)"))
            g.seconds[name] = done.seconds
            return source
        }
        let config = try UNetConfig(
            imageSize: options.imageSize, channels: train.channels, baseWidth: options.diffusionWidth,
            classes: train.classNames.count)
        var diffusionOptions = DiffusionOptions()
        diffusionOptions.batchSize = min(options.diffusionBatchSize, train.count)
        diffusionOptions.samplingSteps = options.diffusionSamplingSteps
        diffusionOptions.guidanceScale = options.guidanceScale
        var plan = DiffusionTrainingPlan()
        plan.maxSteps = options.diffusionSteps
        plan.seed = derivedSeed(seed, name)
        plan.split = SplitChoice(seed: options.splitSeed, ratio: options.splitRatio)
        let stepsPerEpoch = max(1, train.count / diffusionOptions.batchSize)
        plan.epochs = (options.diffusionSteps + stepsPerEpoch - 1) / stepsPerEpoch
        plan.gridEvery = max(1, plan.epochs / 4)
        plan.checkpointEvery = max(1, min(options.diffusionSteps, 200))  // an interrupted run resumes from here
        let data = DiffusionTrainingData(
            pixels: train.pixels.map { $0 * 2 - 1 }, count: train.count, channels: train.channels,
            size: options.imageSize, labels: train.labels, classNames: train.classNames)
        let trainer = try DiffusionTrainer(
            model: DiffusionModel(config: config, options: diffusionOptions, seed: plan.seed),
            data: data, plan: plan, outputDirectory: dir)
        var resumedFrom = 0
        if FileManager.default.fileExists(atPath: checkpoint.path), (try? trainer.resume(from: checkpoint)) != nil {
            resumedFrom = trainer.globalStep
            observe(.resumed("\(name) seed \(seed) from its checkpoint at step \(resumedFrom)"))
        } else {
            try? FileManager.default.removeItem(at: dir)  // stale or foreign files: start afresh
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        observe(.stage("seed \(seed): training \(name) on \(train.count) images from step \(resumedFrom)"))
        let start = Date()
        try trainer.run { event in
            if case let .step(_, _, _, global, total, _, _, eta) = event {
                observe(.ganStep(name: "\(name) (seed \(seed))", step: global, total: total, etaSeconds: eta))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        g.seconds[name] = seconds
        try AtomicFile.write(
            Array(try JSONEncoder().encode(GeneratorDone(seconds: seconds, steps: options.diffusionSteps))),
            to: doneURL.path)
        return try opened()
    }

    /// The training set of `arm` for `seed`: the real split, plus synthetic images per class below
    /// the majority (capped by the arm's or the experiment's ratio), filtered by `judge` when given;
    /// or synthetic images only.
    func trainingSet(_ arm: Arm, seed: UInt64, judge: URL?, _ observe: (ExperimentEvent) -> Void) throws -> ArmTrainingSet {
        var counts = Dictionary(
            uniqueKeysWithValues: zip(train.classNames, train.classCounts.map { ImageCounts(real: $0, synthetic: 0) }))
        guard let kind = arm.generator else { return ArmTrainingSet(images: train, counts: counts, acceptance: [:]) }
        let g = try generators(seed: seed, kinds: [kind], observe)
        let perImage = train.channels * train.height * train.width
        var pixels: [Float] = [], labels: [Int] = []
        var acceptance: [String: Acceptance] = [:]
        if arm.syntheticOnly {
            for (c, name) in train.classNames.enumerated() {
                let n = train.classCounts[c]
                pixels += try g.conditional!.generate(
                    className: name, count: n, seed: derivedSeed(seed, "synthetic-only/\(name)")
                )
                .map { ($0 + 1) / 2 }
                labels += Array(repeating: c, count: n)
                counts[name] = ImageCounts(real: 0, synthetic: n)
            }
            return ArmTrainingSet(
                images: LabeledImages(
                    classNames: train.classNames, channels: train.channels, height: train.height,
                    width: train.width, pixels: pixels, labels: labels,
                    sources: labels.indices.map { SampleSource(location: "synthetic #\($0)", sha256: "") }),
                counts: counts, acceptance: [:])
        }
        let top = train.classCounts.max() ?? 0
        let cap = arm.ratio ?? options.maxSyntheticRatio
        let filter = try judge.map { try SyntheticFilter(judge: $0, train: train, val: val, quantile: options.filterQuantile) }
        for (c, name) in train.classNames.enumerated() {
            let real = train.classCounts[c]
            var wanted = max(0, top - real)
            if let cap { wanted = min(wanted, Int((cap * Double(real)).rounded(.down))) }
            guard wanted > 0, let source = g.source(kind, className: name) else { continue }
            let sampleSeed = derivedSeed(seed, "sample/\(name)")
            if let filter {
                let candidates = try source.generate(className: name, count: wanted * options.filterCandidates, seed: sampleSeed)
                    .map { ($0 + 1) / 2 }
                let (kept, report) = try filter.select(candidates, classIndex: c, wanted: wanted)
                for i in kept { pixels += candidates[(i * perImage)..<((i + 1) * perImage)] }
                labels += Array(repeating: c, count: kept.count)
                acceptance[name] = report
                counts[name] = ImageCounts(real: real, synthetic: kept.count)
            } else {
                pixels += try source.generate(className: name, count: wanted, seed: sampleSeed).map { ($0 + 1) / 2 }
                labels += Array(repeating: c, count: wanted)
                counts[name] = ImageCounts(real: real, synthetic: wanted)
            }
        }
        let images = LabeledImages(
            classNames: train.classNames, channels: train.channels, height: train.height, width: train.width,
            pixels: train.pixels + pixels, labels: train.labels + labels,
            sources: train.sources + labels.indices.map { SampleSource(location: "synthetic #\($0)", sha256: "") })
        return ArmTrainingSet(images: images, counts: counts, acceptance: acceptance)
    }

    /// KID, FD, PRDC, diversity and flagged copies of each generator of `seed` on each minority
    /// class: 200 synthetic images against the class's training images, copies judged against its
    /// validation images.
    func auditGenerators(seed: UInt64, arms: [Arm], _ observe: (ExperimentEvent) -> Void) throws -> [GeneratorAudit] {
        let kinds = Set(arms.compactMap(\.generator))
        let g = try generators(seed: seed, kinds: kinds, observe)
        defer { generatorCache[seed] = nil }
        let extractor = RandomCNNFeatures(channels: train.channels)
        let s = train.height, ch = train.channels
        let tensor = SyntheticFilter.tensor
        var audits: [GeneratorAudit] = []
        for kind in GeneratorKind.allCases where kinds.contains(kind) {
            for name in minorityClasses {
                let c = train.classNames.firstIndex(of: name)!
                guard let source = g.source(kind, className: name) else { continue }
                let real = train.subset(train.labels.indices.filter { train.labels[$0] == c })
                let held = val.subset(val.labels.indices.filter { val.labels[$0] == c })
                guard real.count >= 5, held.count >= 1 else { continue }
                let n = 200
                let images = try source.generate(className: name, count: n, seed: derivedSeed(seed, "audit/\(name)"))
                let a = try ClassAudit.run(
                    className: name,
                    synthetic: AuditImages(
                        images: try Tensor(shape: [n, ch, s, s], scalars: images),
                        names: (0..<n).map { "\(kind.rawValue) #\($0)" }),
                    training: try tensor(real), heldOut: try tensor(held), extractor: extractor)
                audits.append(
                    GeneratorAudit(
                        generator: kind.rawValue, className: name, synthetic: n, training: real.count,
                        heldOut: held.count, kid: a.kid.mean, kidStd: a.kid.std,
                        frechetDistance: a.frechetDistance.value, precision: a.prdc.precision,
                        recall: a.prdc.recall, density: a.prdc.density, coverage: a.prdc.coverage,
                        diversity: a.diversity, flaggedCopies: a.memorization.flagged.count))
            }
        }
        return audits
    }
}

/// Filtered synthesis: a classifier trained on the real training split scores each candidate;
/// a candidate of class c is kept when p(c) reaches the threshold of class c — the `quantile` of
/// p(c) over the real validation images of c, so the threshold is chosen on validation and adapts
/// to how confidently the classifier recognises real images of that class — and when the
/// memorization audit would not flag it (`NearCopyRule`: as near a training image of c, in pixel
/// or random-CNN feature space, as the 1st percentile of the real validation images of c).
struct SyntheticFilter {
    let predictor: Predictor
    let thresholds: [Double]
    /// Per class, the audit's near-copy rule (nil: no training or validation image of the class).
    let copyRules: [NearCopyRule?]
    let classCount: Int, channels: Int, side: Int

    init(judge: URL, train: LabeledImages, val: LabeledImages, quantile q: Double) throws {
        predictor = try Predictor(checkpoint: judge)
        let k = train.classNames.count
        classCount = k; channels = train.channels; side = train.height
        let p = try predictor.probabilities(pixels: val.pixels, count: val.count)
        let extractor = RandomCNNFeatures(channels: train.channels)  // the audit's extractor
        var thresholds: [Double] = [], rules: [NearCopyRule?] = []
        for c in 0..<k {
            let v = val.labels.indices.filter { val.labels[$0] == c }
            let confidences = v.map { Double(p[$0 * k + c]) }
            thresholds.append(confidences.isEmpty ? 1 / Double(k) : Evaluation.quantile(confidences, q))
            let t = train.labels.indices.filter { train.labels[$0] == c }
            if v.isEmpty || t.isEmpty { rules.append(nil); continue }
            rules.append(
                try NearCopyRule(
                    training: try Self.tensor(train.subset(t)), heldOut: try Self.tensor(val.subset(v)), extractor: extractor))
        }
        self.thresholds = thresholds; copyRules = rules
    }

    /// Images in [0, 1] as the audit sees them: (N, C, H, W) in [-1, 1].
    static func tensor(_ set: LabeledImages) throws -> Tensor {
        try Tensor(shape: [set.count, set.channels, set.height, set.width], scalars: set.pixels.map { $0 * 2 - 1 })
    }

    /// Indices of the kept candidates (in generation order, at most `wanted`) and the counts.
    /// `candidates`: images in [0, 1], flattened.
    func select(_ candidates: [Float], classIndex c: Int, wanted: Int) throws -> ([Int], Acceptance) {
        let per = channels * side * side
        let n = candidates.count / per
        let p = try predictor.probabilities(pixels: candidates, count: n)
        let confident = (0..<n).filter { Double(p[$0 * classCount + c]) >= thresholds[c] }
        var kept: [Int] = [], copies = 0
        for chunk in stride(from: 0, to: confident.count, by: 256) {
            let ids = Array(confident[chunk..<min(chunk + 256, confident.count)])
            var values: [Float] = []
            values.reserveCapacity(ids.count * per)
            for i in ids { values += candidates[(i * per)..<((i + 1) * per)].map { $0 * 2 - 1 } }
            let flags =
                try copyRules[c]?.flags(try Tensor(shape: [ids.count, channels, side, side], scalars: values))
                ?? Array(repeating: [], count: ids.count)
            for (r, i) in ids.enumerated() {
                if !flags[r].isEmpty { copies += 1; continue }
                if kept.count < wanted { kept.append(i) }
            }
        }
        return (
            kept,
            Acceptance(
                candidates: n, confident: confident.count, nearCopies: copies, kept: kept.count,
                threshold: thresholds[c])
        )
    }
}
