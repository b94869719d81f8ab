import Autodiff
import Datasets
import Foundation
import NN
import SeededRandom

/// Real training images for a GAN: (N, C, S, S) in [-1, 1], with class labels when conditional.
public typealias GANTrainingData = GeneratorTrainingData

/// How long and how often: epochs, checkpoints, grids (shared with diffusion training).
public typealias GANTrainingPlan = TrainingPlan

/// What the trainer reports while it runs: a step's `GANStepStats`, grids, checkpoints, alarms.
public typealias GANEvent = GeneratorEvent<GANStepStats>

/// Trains a `GANModel` on real images: epochs of shuffled batches (deterministic from the seed),
/// losses as JSON Lines, fixed-noise grids, atomic full-state checkpoints and exact resume,
/// and alarms when training collapses.
public final class GANTrainer {
    public let model: GANModel
    public let data: GANTrainingData
    public let plan: GANTrainingPlan
    public let outputDirectory: URL
    /// The shared loop: position, batch order, step log, checkpoint and grid cadence.
    let loop: TrainingLoop
    public var epoch: Int { loop.position.epoch }
    public var stepInEpoch: Int { loop.position.stepInEpoch }
    public var globalStep: Int { loop.position.globalStep }
    /// Fixed latent vectors (and labels) for the sample grids.
    let fixedLatent: Tensor
    let fixedLabels: [Int]?
    var dWinsStreak = 0, alarmed = Set<String>()
    /// Differentially private discriminator updates (see PrivateTraining.swift); nil = ordinary training.
    public internal(set) var privacy: DiscriminatorPrivacy?

    public init(model: GANModel, data: GANTrainingData, plan: GANTrainingPlan, outputDirectory: URL) throws {
        guard data.channels == model.config.channels, data.size == model.config.imageSize else {
            throw GANError.invalidOption(
                "images are \(data.channels)x\(data.size)x\(data.size) but the model expects "
                    + "\(model.config.channels)x\(model.config.imageSize)x\(model.config.imageSize)")
        }
        guard data.count > 0 else { throw GANError.invalidOption("no training images") }
        if let problem = plan.problem { throw GANError.invalidOption(problem) }
        guard model.options.batchSize >= 1 else {
            throw GANError.invalidOption("batch size \(model.options.batchSize) is below 1")
        }
        if model.sync.isDataParallel, min(model.options.batchSize, data.count) < model.sync.size {
            throw GANError.invalidOption(
                "batch size \(min(model.options.batchSize, data.count)) over \(model.sync.size) ranks: "
                    + "every rank needs at least one image of each batch")
        }
        self.model = model; self.data = data; self.plan = plan; self.outputDirectory = outputDirectory
        loop = TrainingLoop(
            plan: plan, count: data.count, batchSize: min(model.options.batchSize, data.count),
            stepLog: outputDirectory.appendingPathComponent("losses.jsonl"), writesOutputs: model.sync.writesOutputs)
        var g = SeededGenerator(seed: plan.seed &+ 0x5EED)
        if let classes = model.config.classes {
            fixedLabels = (0..<classes).flatMap { Array(repeating: $0, count: 8) }  // one row per class
            fixedLatent = Tensor.randomNormal([classes * 8, model.config.latent, 1, 1], generator: &g)
        } else {
            fixedLabels = nil
            fixedLatent = Tensor.randomNormal([64, model.config.latent, 1, 1], generator: &g)
        }
        // Data-parallel: rank 0 alone writes (the directory, losses, grids, checkpoints).
        if model.sync.writesOutputs {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        }
    }

    public var checkpointURL: URL { outputDirectory.appendingPathComponent("checkpoint.safetensors") }
    var stepsPerEpoch: Int { max(1, data.count / model.options.batchSize) }

    /// Runs until `plan.epochs` (or `plan.maxSteps`) from wherever the trainer stands.
    public func run(_ observe: (GANEvent) -> Void = { _ in }) throws {
        if privacy != nil && model.sync.isDataParallel {
            throw GANError.invalidOption("DP-SGD does not run data-parallel: train a private GAN as one process")
        }
        try loop.run(
            totalSteps: plan.totalSteps(stepsPerEpoch: stepsPerEpoch), checkpointPath: checkpointURL.path,
            step: { batch in
                let (real, labels) = data.batch(privacy?.dpsgd.sampleBatch() ?? batch)
                return try privacy.map { try model.privateStep(real: real, labels: labels, privacy: $0) }
                    ?? model.step(real: real, labels: labels)
            },
            logLine: { stats, at in
                String(
                    format: "{\"step\":%d,\"epoch\":%d,\"loss_d\":%.6g,\"loss_g\":%.6g,\"d_real\":%.6g,\"d_fake\":%.6g}",
                    at.globalStep, at.epoch, stats.discriminatorLoss, stats.generatorLoss, stats.realScore, stats.fakeScore)
            },
            afterStep: { checkCollapse($0, observe) }, checkpoint: { try saveCheckpoint() },
            grid: { try writeGrid(observe, final: $0) }, observe)
    }

    /// Alarm when D wins outright for long (D(x) > 0.99 and D(G(z)) < 0.01 for two epochs or 100
    /// steps, whichever is longer): G then gets no useful gradient.
    func checkCollapse(_ s: GANStepStats, _ observe: (GANEvent) -> Void) {
        dWinsStreak = s.realScore > 0.99 && s.fakeScore < 0.01 ? dWinsStreak + 1 : 0
        if dWinsStreak >= max(100, 2 * stepsPerEpoch), alarmed.insert("d-wins").inserted {
            observe(
                .alarm(
                    "the discriminator has won outright for \(dWinsStreak) steps (D(x) > 0.99, D(G(z)) < 0.01): "
                        + "the generator gets no gradient. Enable DiffAugment, lower D's learning rate, try "
                        + "--loss hinge, or keep the last checkpoint before this step."))
        }
    }

    /// The fixed-noise grid: `grid-epoch-NNNN.png` and `grid-final.png`; alarms when samples lose diversity.
    func writeGrid(_ observe: (GANEvent) -> Void, final: Bool = false) throws {
        let images = try model.sample(latent: fixedLatent, labels: fixedLabels)
        let name = final ? "grid-final.png" : String(format: "grid-epoch-%04d.png", epoch)
        let path = outputDirectory.appendingPathComponent(name).path
        try ImageGrid.write(images, columns: 8, to: path)
        observe(.grid(path: path, epoch: epoch))
        let n = min(64, data.count)
        let realSpread = ImageGrid.meanPairwiseDistance(data.batch(Array(0..<n)).0)
        let fakeSpread = try sampleSpread(images)
        // Early samples are near-constant by construction, so judge diversity only after a while.
        let settled = epoch >= max(5, plan.epochs / 10)
        if settled, realSpread > 0, fakeSpread < 0.25 * realSpread, alarmed.insert("diversity").inserted {
            observe(
                .alarm(
                    String(
                        format: "samples have lost diversity (mean pairwise distance %.2f%@ against %.2f among real "
                            + "images): likely mode collapse. Look at %@; resume from an earlier checkpoint with "
                            + "DiffAugment on or a lower learning rate.", fakeSpread,
                        model.config.classes == nil ? "" : " within a class", realSpread, path)))
        }
    }

    /// Diversity of the fixed-noise samples: their mean pairwise distance. A conditional model can
    /// collapse within each class while its classes still differ (G ignores z), so for it the
    /// smallest spread among the grid's rows (8 images of one class each).
    func sampleSpread(_ images: Tensor) throws -> Float {
        guard model.config.classes != nil else { return ImageGrid.meanPairwiseDistance(images) }
        return try (0..<images.shape[0] / 8).map {
            ImageGrid.meanPairwiseDistance(try images.slice(axis: 0, start: $0 * 8, length: 8))
        }
        .min() ?? 0
    }

    // MARK: Checkpoints

    /// Everything needed to continue exactly: both networks, EMA weights, both optimizers, the
    /// position (epoch, step), the random stream, and the configuration.
    public func saveCheckpoint(to url: URL? = nil) throws {
        var extra: [String: Tensor] = [:]
        for (name, p) in model.ema ?? [] { extra["ema.\(name)"] = p.value.copy() }
        let encoder = JSONEncoder()
        var meta: [String: String] = [
            "format": "medsynth-gan-1",
            "config": String(decoding: try encoder.encode(model.config), as: UTF8.self),
            "options": String(decoding: try encoder.encode(model.options), as: UTF8.self),
            "plan": String(decoding: try encoder.encode(plan), as: UTF8.self),
            "class_names": String(decoding: try encoder.encode(data.classNames), as: UTF8.self),
            "epoch": "\(epoch)", "step_in_epoch": "\(stepInEpoch)", "global_step": "\(globalStep)",
            "noise_state": model.noise.state.map { String($0) }.joined(separator: ","),
        ]
        if let privacy { meta.merge(try privacy.metadata()) { $1 } }
        try Checkpoint.save(
            modules: ["generator": model.generator, "discriminator": model.discriminator],
            optimizers: ["generator": model.generatorOptimizer, "discriminator": model.discriminatorOptimizer],
            extra: extra, metadata: meta, to: url ?? checkpointURL)
    }

    /// A configuration in a user's words: "a conditional DCGAN of 2 classes on 1x28x28 images".
    static func describe(_ c: DCGANConfig) -> String {
        (c.classes.map { "a conditional DCGAN of \($0) classes" } ?? "a per-class DCGAN")
            + " on \(c.channels)x\(c.imageSize)x\(c.imageSize) images"
            + " (widths \(c.generatorWidth)/\(c.discriminatorWidth)\(c.spectralNorm ? ", spectral norm" : "")"
            + "\(c.discriminatorBatchNorm ? "" : ", no batch norm in D"))"
    }

    /// Whether `folder` already holds a training run (a checkpoint or a loss log), which a new
    /// run would overwrite: the caller refuses unless resuming or told to overwrite.
    public static func existingRun(in folder: URL) -> [String] {
        ["checkpoint.safetensors", "losses.jsonl"].filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
        }
    }

    /// Whether the checkpoint last resumed from carried a tensor checksum (files written before
    /// checksums load unverified; the caller may say so).
    public private(set) var resumedChecksumVerified = true

    /// Restores the state written by `saveCheckpoint` into this trainer. Refuses, before loading
    /// any weight, a checkpoint of other classes, image size, channels or conditional-ness, other
    /// training options (naming the fields), another seed or split, and one whose position
    /// (epoch, steps) is negative or inconsistent. Epochs and steps may change: a run is extended.
    public func resume(from url: URL) throws {
        let file = try SafeTensors.read(url)
        let m = file.metadata
        guard m["format"] == "medsynth-gan-1", let e = m["epoch"].flatMap(Int.init), let s = m["step_in_epoch"].flatMap(Int.init),
            let gs = m["global_step"].flatMap(Int.init),
            let noise = m["noise_state"].flatMap({ SeededGenerator(state: $0.split(separator: ",").compactMap { UInt64($0) }) })
        else { throw CheckpointError.notSafeTensors(path: url.path, reason: "not a MedSynth GAN training checkpoint") }
        for (key, value) in [("epoch", e), ("step_in_epoch", s), ("global_step", gs)] where value < 0 {
            throw CheckpointError.invalidMetadata(
                path: url.path, key: key, value: "\(value)", reason: "a position cannot be negative")
        }
        guard s <= gs, e <= gs else {
            throw CheckpointError.invalidMetadata(
                path: url.path, key: "global_step", value: "\(gs)",
                reason: "below epoch \(e) or step in epoch \(s)")
        }
        guard let config = m["config"], let saved = try? JSONDecoder().decode(DCGANConfig.self, from: Data(config.utf8)) else {
            throw CheckpointError.notSafeTensors(path: url.path, reason: "its configuration is missing or unreadable")
        }
        if saved != model.config {
            throw GANError.invalidOption(
                "--resume: \(url.path) holds \(Self.describe(saved)), but this run asks for "
                    + "\(Self.describe(model.config)) (use another --out, or the checkpoint's options)")
        }
        if let names = m["class_names"], let saved = try? JSONDecoder().decode([String].self, from: Data(names.utf8)),
            saved != data.classNames
        {
            throw GANError.invalidOption(
                "--resume: \(url.path) was trained on class(es) \(saved.joined(separator: ", ")), "
                    + "not \(data.classNames.joined(separator: ", "))")
        }
        if let text = m["options"], let saved = try? JSONDecoder().decode(GANTrainingOptions.self, from: Data(text.utf8)),
            saved != model.options
        {
            throw GANError.invalidOption(
                "--resume: \(url.path) was trained with other options (\(differingFields(saved, model.options).joined(separator: ", "))"
                    + " differ): resume with the options it was started with, or use another --out")
        }
        if let text = m["plan"], let saved = try? JSONDecoder().decode(GANTrainingPlan.self, from: Data(text.utf8)) {
            if saved.seed != plan.seed {
                throw GANError.invalidOption(
                    "--resume: \(url.path) was trained with --seed \(saved.seed), not \(plan.seed): its batches and noise would change"
                )
            }
            if saved.trainingSplit != plan.trainingSplit {
                throw GANError.invalidOption(
                    "--resume: \(url.path) was trained on the \(saved.trainingSplit), not the \(plan.trainingSplit)")
            }
        }
        try Checkpoint.restore(
            file, modules: ["generator": model.generator, "discriminator": model.discriminator],
            optimizers: ["generator": model.generatorOptimizer, "discriminator": model.discriminatorOptimizer])
        resumedChecksumVerified = SafeTensors.hasChecksum(m)
        for (name, p) in model.ema ?? [] {
            guard let t = file.tensors["ema.\(name)"] else {
                throw CheckpointError.stateMismatch(missing: ["ema.\(name)"], wrongShape: [], unexpected: [])
            }
            try p.assign(t)
        }
        try resumePrivacy(metadata: m, atStep: gs, path: url.path)
        loop.position = TrainingPosition(epoch: e, stepInEpoch: s, globalStep: gs); model.noise = noise
    }
}
