import Autodiff
import Datasets
import Foundation
import NN
import SeededRandom

/// Real training images: (N, C, S, S) in [-1, 1], with class labels for a conditional model.
public typealias DiffusionTrainingData = GeneratorTrainingData

/// How long and how often: epochs, checkpoints, grids (shared with GAN training).
public typealias DiffusionTrainingPlan = TrainingPlan

/// What the trainer reports while it runs: a step's loss, grids, checkpoints.
public typealias DiffusionEvent = GeneratorEvent<Float>

/// Trains a `DiffusionModel` on real images: epochs of shuffled batches (deterministic from the
/// seed), the loss as JSON Lines, fixed-noise DDIM grids, atomic full-state checkpoints (weights,
/// EMA, Adam moments, position, random stream) and exact resume -- as `GANTrainer` does for GANs.
///
/// Cost, measured with `medsynth bench diffusion` on this project's 2-core machine (AVX2, release
/// build, OMP_WAIT_POLICY=passive) while other work kept its load average near 10: one step at
/// batch 32 of the default 28-px U-Net (base width 32, multipliers 1, 2, 2, 1 channel, 777k
/// parameters) took 811 ms median (26.3 GFLOP counted), 970 ms with attention at 7 x 7; the 28-px
/// DCGAN step (`bench dcgan`, width 64, batch 32) took 304 ms (8.5 GFLOP) at the same time.
/// 1,500 steps of the conditional model on 498 breast images took 26 minutes, grids included.
public final class DiffusionTrainer {
    public let model: DiffusionModel
    public let data: DiffusionTrainingData
    public let plan: DiffusionTrainingPlan
    public let outputDirectory: URL
    /// The shared loop: position, batch order, step log, checkpoint and grid cadence.
    let loop: TrainingLoop
    public var epoch: Int { loop.position.epoch }
    public var stepInEpoch: Int { loop.position.stepInEpoch }
    public var globalStep: Int { loop.position.globalStep }
    /// Grid labels (one row of 8 per class) and the grid's noise seed.
    let gridLabels: [Int]?
    let gridSeed: UInt64

    public init(model: DiffusionModel, data: DiffusionTrainingData, plan: DiffusionTrainingPlan, outputDirectory: URL) throws {
        guard data.channels == model.config.channels, data.size == model.config.imageSize else {
            throw DiffusionError.invalidOption(
                "images are \(data.channels)x\(data.size)x\(data.size) but the model expects "
                    + "\(model.config.channels)x\(model.config.imageSize)x\(model.config.imageSize)")
        }
        guard data.count > 0 else { throw DiffusionError.invalidOption("no training images") }
        guard (data.labels == nil) == (model.config.classes == nil) else {
            throw DiffusionError.invalidOption(
                model.config.classes == nil
                    ? "an unconditional model trains without labels"
                    : "a conditional model needs a label per image")
        }
        if let labels = data.labels, let bad = labels.first(where: { $0 < 0 || $0 >= model.config.classes! }) {
            throw DiffusionError.invalidOption("label \(bad) is outside the model's \(model.config.classes!) classes")
        }
        if let problem = plan.problem { throw DiffusionError.invalidOption(problem) }
        self.model = model; self.data = data; self.plan = plan; self.outputDirectory = outputDirectory
        loop = TrainingLoop(
            plan: plan, count: data.count, batchSize: min(model.options.batchSize, data.count),
            stepLog: outputDirectory.appendingPathComponent("losses.jsonl"))
        gridLabels = model.config.classes.map { classes in (0..<classes).flatMap { Array(repeating: $0, count: 8) } }
        gridSeed = plan.seed &+ 0x5EED
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
    }

    public var checkpointURL: URL { outputDirectory.appendingPathComponent("checkpoint.safetensors") }
    var batchSize: Int { min(model.options.batchSize, data.count) }
    var stepsPerEpoch: Int { max(1, data.count / batchSize) }

    /// Total steps of the plan: epochs x steps per epoch, capped by `maxSteps`.
    public var totalSteps: Int {
        plan.totalSteps(stepsPerEpoch: stepsPerEpoch)
    }

    /// Runs until `plan.epochs` (or `plan.maxSteps`) from wherever the trainer stands.
    public func run(_ observe: (DiffusionEvent) -> Void = { _ in }) throws {
        try loop.run(
            totalSteps: totalSteps, checkpointPath: checkpointURL.path,
            step: { batch in
                let (x0, labels) = data.batch(batch)
                return try model.step(x0: x0, labels: labels)
            },
            logLine: { loss, at in String(format: "{\"step\":%d,\"epoch\":%d,\"loss\":%.6g}", at.globalStep, at.epoch, loss) },
            checkpoint: { try saveCheckpoint() }, grid: { try writeGrid(observe, final: $0) }, observe)
    }

    /// The fixed-noise DDIM grid, `grid-epoch-NNNN.png` and `grid-final.png`: one row of 8 per
    /// class for a conditional model, 32 images otherwise. Its noise has its own seed, so drawing
    /// a grid never moves the training stream.
    func writeGrid(_ observe: (DiffusionEvent) -> Void, final: Bool = false) throws {
        var g = SeededGenerator(seed: gridSeed)
        let count = gridLabels?.count ?? 32
        let images = try model.sample(count: count, labels: gridLabels, generator: &g)
        let name = final ? "grid-final.png" : String(format: "grid-epoch-%04d.png", epoch)
        let path = outputDirectory.appendingPathComponent(name).path
        try ImageGrid.write(
            images.scalars, count: count, channels: model.config.channels, size: model.config.imageSize,
            columns: 8, to: path)
        observe(.grid(path: path, epoch: epoch))
    }

    // MARK: Checkpoints

    /// The metadata format of diffusion checkpoints.
    public static let format = "medsynth-diffusion-1"

    /// Everything needed to continue exactly: the U-Net, its EMA, Adam's moments and step, the
    /// position (epoch, step), the random stream, and the configuration.
    public func saveCheckpoint(to url: URL? = nil) throws {
        var extra: [String: Tensor] = [:]
        for (name, p) in model.ema ?? [] { extra["ema.\(name)"] = p.value.copy() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let meta: [String: String] = [
            "format": Self.format,
            "config": String(decoding: try encoder.encode(model.config), as: UTF8.self),
            "options": String(decoding: try encoder.encode(model.options), as: UTF8.self),
            "plan": String(decoding: try encoder.encode(plan), as: UTF8.self),
            "class_names": String(decoding: try encoder.encode(data.classNames), as: UTF8.self),
            "epoch": "\(epoch)", "step_in_epoch": "\(stepInEpoch)", "global_step": "\(globalStep)",
            "noise_state": model.noise.state.map { String($0) }.joined(separator: ","),
        ]
        try Checkpoint.save(
            modules: ["unet": model.unet], optimizers: ["unet": model.optimizer], extra: extra, metadata: meta,
            to: url ?? checkpointURL)
    }

    /// Whether `folder` already holds a training run, which a new run would overwrite.
    public static func existingRun(in folder: URL) -> [String] {
        ["checkpoint.safetensors", "losses.jsonl"].filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
        }
    }

    /// Restores the state written by `saveCheckpoint`. Refuses, before loading any weight, a
    /// checkpoint of another configuration, options or classes, or an inconsistent position.
    public func resume(from url: URL) throws {
        let file = try SafeTensors.read(url)
        let m = file.metadata, decoder = JSONDecoder()
        guard m["format"] == Self.format, let e = m["epoch"].flatMap(Int.init), let s = m["step_in_epoch"].flatMap(Int.init),
            let gs = m["global_step"].flatMap(Int.init),
            let noise = m["noise_state"].flatMap({ SeededGenerator(state: $0.split(separator: ",").compactMap { UInt64($0) }) })
        else {
            throw DiffusionError.notADiffusionCheckpoint(
                path: url.path, reason: "no \(Self.format) training state in its metadata")
        }
        guard e >= 0, s >= 0, gs >= 0, s <= gs, e <= gs else {
            throw CheckpointError.invalidMetadata(
                path: url.path, key: "global_step", value: "\(gs)",
                reason: "inconsistent with epoch \(e) and step in epoch \(s)")
        }
        guard let config = try? decoder.decode(UNetConfig.self, from: Data((m["config"] ?? "").utf8)),
            let options = try? decoder.decode(DiffusionOptions.self, from: Data((m["options"] ?? "").utf8))
        else {
            throw DiffusionError.notADiffusionCheckpoint(path: url.path, reason: "its configuration or options are unreadable")
        }
        guard config == model.config else {
            throw DiffusionError.invalidOption(
                "--resume: \(url.path) holds another U-Net (\(config)), this run asks for \(model.config)")
        }
        guard options == model.options else {
            throw DiffusionError.invalidOption(
                "--resume: \(url.path) was trained with other options (\(differingFields(options, model.options).joined(separator: ", "))"
                    + " differ): resume with the options it was started with, or use another --out")
        }
        if let saved = try? decoder.decode(DiffusionTrainingPlan.self, from: Data((m["plan"] ?? "").utf8)) {
            guard saved.seed == plan.seed else {
                throw DiffusionError.invalidOption(
                    "--resume: \(url.path) was trained with --seed \(saved.seed), not \(plan.seed): its batches and noise would change"
                )
            }
            guard saved.trainingSplit == plan.trainingSplit else {
                throw DiffusionError.invalidOption(
                    "--resume: \(url.path) was trained on the \(saved.trainingSplit), not the \(plan.trainingSplit)")
            }
        }
        if let names = try? decoder.decode([String].self, from: Data((m["class_names"] ?? "").utf8)), names != data.classNames {
            throw DiffusionError.invalidOption(
                "--resume: \(url.path) was trained on class(es) \(names.joined(separator: ", ")), "
                    + "not \(data.classNames.joined(separator: ", "))")
        }
        try Checkpoint.restore(file, modules: ["unet": model.unet], optimizers: ["unet": model.optimizer])
        try model.restoreEMA(file.tensors)
        loop.position = TrainingPosition(epoch: e, stepInEpoch: s, globalStep: gs); model.noise = noise
    }
}

extension DiffusionModel {
    /// Loads `ema.<name>` tensors into the moving average (when kept).
    func restoreEMA(_ tensors: [String: Tensor]) throws {
        for (name, p) in ema ?? [] {
            guard let t = tensors["ema.\(name)"] else {
                throw CheckpointError.stateMismatch(missing: ["ema.\(name)"], wrongShape: [], unexpected: [])
            }
            try p.assign(t)
        }
    }
}
