import Datasets
import Diffusion
import Foundation

// `gan distill`: progressive distillation of a diffusion checkpoint (see Diffusion/Distillation.swift)
// on the training split `gan train` used, loaded by the same function (`GeneratorRun.trainingData`),
// so no validation or test image reaches the student.

extension Ranges {
    /// DDIM steps of a distilled student, and of its first teacher.
    public static let distilledSteps = OptionRange<Int>.closed(1...512)
    public static let distillFromSteps = OptionRange<Int>.closed(2...1000)
    /// Student updates per distillation stage.
    public static let distillIterations = OptionRange<Int>.closed(1...1_000_000)
}

/// Everything that decides what `gan distill` produces.
public struct DistillationRunSpec: Codable, Equatable, Sendable {
    /// The diffusion checkpoint to distil (its EMA weights).
    public var teacher: String
    /// Class-folder tree or MedMNIST `.npz`: the data the teacher was trained on.
    public var data: String
    /// Classes kept, merged or capped while loading, as for `gan train`.
    public var selection: ClassSelection?
    /// Image size and channels; nil: the teacher's (anything else is refused).
    public var imageSize: Int?
    public var channels: Int?
    /// The split the teacher was trained on: nil fields take the teacher's recorded split
    /// (`SyntheticImages.trainingSplit`); another is refused.
    public var splitSeed: UInt64?
    public var splitRatio: SplitRatio?
    /// Seeds the student's batches and noise.
    public var seed: UInt64 = 0
    /// Most bytes read from one image file or inflated from one `.npz`.
    public var maxReadBytes = defaultMaxArchiveBytes
    public var options = DistillationOptions()
    /// Write a checkpoint every this many updates, and at the end.
    public var checkpointEvery = 100

    public init(teacher: String, data: String) { self.teacher = teacher; self.data = data }
}

extension GeneratorRun {
    /// Distils `spec.teacher` into `output`: checkpoint (a diffusion checkpoint that samples in
    /// `spec.options.steps` steps without guidance), `losses.jsonl`, `grid-final.png` and the
    /// training images' `manifest.jsonl`. Refuses an `output` that holds a run unless `resume`;
    /// refuses data whose training split is not the teacher's (its classes, or the manifest beside
    /// the teacher when there is one).
    public static func distill(
        _ spec: DistillationRunSpec, output: URL, resume: Bool = false, _ observe: (WorkflowEvent) -> Void = { _ in }
    ) throws -> GeneratorRunResult {
        let teacherURL = URL(fileURLWithPath: spec.teacher)
        guard DiffusionImageSource.holdsDiffusionModel(teacherURL) else {
            throw OptionRefusal("--checkpoint: \(spec.teacher) is not a MedSynth diffusion checkpoint")
        }
        let existing = DiffusionTrainer.existingRun(in: output)
        if !resume && !existing.isEmpty {
            throw OptionRefusal(
                "\(output.relativePath) already holds a run (\(existing.joined(separator: ", "))): pass --resume to continue it")
        }
        let source = try DiffusionImageSource(checkpoint: teacherURL)
        let split = try resolvedSplit(seed: spec.splitSeed, ratio: spec.splitRatio, sources: [source])
        for (option, given, teachers) in [
            ("--image-size", spec.imageSize, source.imageSize), ("--channels", spec.channels, source.channels),
        ] where given.map({ $0 != teachers }) ?? false {
            throw OptionRefusal("\(option) \(given!): the teacher \(spec.teacher) has \(teachers)")
        }
        // The data as `gan train --generator diffusion` loads it for this teacher's shape and classes.
        var data = GeneratorRunSpec()
        data.generator = .diffusion; data.data = spec.data; data.selection = spec.selection; data.seed = spec.seed
        data.selection?.seed = split.seed; data.split = split
        data.conditional = source.isConditional; data.className = source.isConditional ? nil : source.classNames.first
        data.imageSize = source.imageSize; data.channels = source.channels; data.maxReadBytes = spec.maxReadBytes
        let (images, _) = try trainingData(data, output: output, observe)
        try checkSameImages(teacher: teacherURL, output: output)
        var plan = TrainingPlan()
        plan.seed = spec.seed; plan.split = split; plan.checkpointEvery = spec.checkpointEvery
        plan.epochs = Ranges.epochs.upper; plan.maxSteps = spec.options.iterations * spec.options.stageSteps.count
        let distiller = try DiffusionDistiller(
            teacher: teacherURL,
            data: DiffusionTrainingData(
                pixels: images.pixels, count: images.count, channels: images.channels, size: images.size,
                labels: source.isConditional ? images.labels : nil, classNames: images.classNames),
            options: spec.options, plan: plan, outputDirectory: output)
        if resume {
            guard FileManager.default.fileExists(atPath: distiller.checkpointURL.path) else {
                throw OptionRefusal("--resume: no checkpoint at \(distiller.checkpointURL.path)")
            }
            try distiller.resume(from: distiller.checkpointURL)
            observe(.note("resumed at stage \(distiller.stage + 1), step \(distiller.position.globalStep)"))
        }
        let stages = distiller.record.stages.map { "\($0[0]) -> \($0[1])" }.joined(separator: ", ")
        observe(
            .note(
                "distilling \(spec.teacher) (guidance \(source.guidanceScale)) on \(images.count) images: stages "
                    + "\(stages) steps, \(spec.options.iterations) updates each"))
        let start = Date()
        try distiller.run { event in
            let steps = distiller.options.stageSteps[distiller.stage]
            report(
                event, recorder: nil, globalStep: distiller.position.globalStep, checkpointEvery: plan.checkpointEvery,
                metrics: { ["loss": Double($0)] },
                text: {
                    String(format: "stage %d (%d -> %d)  loss %.4f  %.1f img/s", distiller.stage + 1, 2 * steps, steps, $0, $1)
                },
                observe)
        }
        finished(steps: distiller.position.globalStep, since: start, checkpoint: distiller.checkpointURL, observe)
        return GeneratorRunResult(
            checkpoint: distiller.checkpointURL, steps: distiller.position.globalStep, epsilon: nil, runID: nil)
    }

    /// Refuses when the teacher's folder holds a `manifest.jsonl` (written by `gan train`) that
    /// names other training images than the one just written to `output`.
    static func checkSameImages(teacher: URL, output: URL) throws {
        let theirs = teacher.deletingLastPathComponent().appendingPathComponent("manifest.jsonl")
        guard FileManager.default.fileExists(atPath: theirs.path) else { return }
        func hashes(_ url: URL) throws -> [String] {
            try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
                try JSONDecoder().decode(ManifestEntry.self, from: Data($0.utf8)).sha256
            }.sorted()
        }
        guard try hashes(theirs) == hashes(output.appendingPathComponent("manifest.jsonl")) else {
            throw OptionRefusal(
                "\(theirs.path) names other training images than --data, --classes and --seed give: "
                    + "distil on the data and split seed the teacher was trained with")
        }
    }
}
