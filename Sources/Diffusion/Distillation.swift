import Autodiff
import Datasets
import Foundation
import Hashing
import NN
import SeededRandom

// Progressive distillation (Salimans and Ho 2022) with classifier-free guidance absorbed into the
// student (Meng et al. 2023, "On distillation of guided diffusion models"): a student learns to do
// in one DDIM step what its teacher does in two, then becomes the next stage's teacher.
//
//   stage 1: teacher = the checkpoint's EMA U-Net, guided (2 rows per image), 2N_1 steps
//            student (conditional only, 1 row per image) learns N_1 = fromSteps / 2 steps
//   stage k: teacher = stage k-1's student (EMA), guidance 1, 2N_k steps; student N_k = N_{k-1} / 2
//   ... until N_k = steps.
//
// Legend: z_t the noisy image at timestep t, alpha = sqrt(abar_t), sigma = sqrt(1 - abar_t),
// z_t = alpha x0 + sigma eps; t > t' > t'' the student's time, the teacher's midpoint and the
// student's next time (t'' = "clean" at the student's last step: alpha'' = 1, sigma'' = 0).

/// What progressive distillation does: its stages, iterations and optimiser.
public struct DistillationOptions: Codable, Equatable, Sendable {
    /// DDIM steps of the first teacher; each stage halves them.
    public var fromSteps = 32
    /// DDIM steps of the final student (fromSteps / 2^k for some k >= 1).
    public var steps = 4
    /// Student updates per stage.
    public var iterations = 500
    /// Real images per update.
    public var batchSize = 32
    /// Adam's rate at the start of each stage, decayed linearly to 0 over the stage (Salimans and
    /// Ho 2022, appendix: 1e-4 for their smaller models, decayed linearly within each stage).
    public var learningRate: Float = 1e-4
    /// Decay of the EMA of the student's weights (nil = off); the next teacher and the output use it.
    public var emaDecay: Float? = 0.999
    /// Gradients rescaled to at most this global L2 norm (nil = off), as `DiffusionModel.step` does.
    public var gradientClip: Float? = 1

    public init() {}

    /// The student's DDIM steps of each stage: fromSteps / 2, fromSteps / 4, ..., steps.
    public var stageSteps: [Int] {
        Array(sequence(first: fromSteps / 2) { $0 / 2 > 0 && $0 > steps ? $0 / 2 : nil })
    }

    /// Throws unless every number is in range and `fromSteps` halves down to `steps`.
    public func validate() throws {
        guard steps >= 1 else { throw DiffusionError.invalidOption("\(steps) distilled steps: use at least 1") }
        var n = fromSteps
        while n > steps && n % 2 == 0 { n /= 2 }
        guard fromSteps > steps, n == steps else {
            throw DiffusionError.invalidOption(
                "from \(fromSteps) steps to \(steps): the teacher's steps must be the student's times a power of 2 (2, 4, 8, ...)"
            )
        }
        guard iterations >= 1 else { throw DiffusionError.invalidOption("\(iterations) iterations per stage: use at least 1") }
        guard batchSize >= 1 else { throw DiffusionError.invalidOption("batch size \(batchSize) is below 1") }
        guard learningRate.isFinite, learningRate > 0 else {
            throw DiffusionError.invalidOption("learning rate \(learningRate) is not positive")
        }
        if let d = emaDecay, !(0..<1).contains(d) { throw DiffusionError.invalidOption("EMA decay \(d) is not in [0, 1)") }
        if let c = gradientClip, !(c > 0) { throw DiffusionError.invalidOption("gradient clip \(c) is not positive") }
    }
}

/// What a distilled checkpoint records about where it came from (its `distillation` metadata entry).
public struct DistillationRecord: Codable, Equatable, Sendable {
    /// The teacher checkpoint as given, and the SHA-256 of its bytes.
    public var teacher: String
    public var teacherSHA256: String
    /// The first teacher's guidance scale (absorbed into the student).
    public var teacherGuidanceScale: Float
    /// (teacher steps, student steps) of each stage.
    public var stages: [[Int]]
    public var options: DistillationOptions
}

/// Progressive distillation of a trained diffusion checkpoint (its EMA weights) into a student
/// that samples in `options.steps` DDIM steps with one U-Net row per image (guidance scale 1).
///
/// One update (`step`), for real training images x0 with their labels:
/// - the student's time t = grid_N[i], i ~ U{0..N-1}; z_t = alpha x0 + sigma eps, eps ~ N(0, I);
/// - the teacher's two DDIM steps t -> t' -> t'' on grid_2N (`DiffusionModel.ddimStep`, x0 clipped
///   to [-1, 1], guided in the first stage), landing on z'';
/// - the x-target x~ for which one student DDIM step from z_t lands on z'' (`target`);
/// - the student's x^ = alpha z_t - sigma v^ and the loss mean(max(alpha^2 / sigma^2, 1) (x^ - x~)^2)
///   ("truncated SNR" weighting, Salimans and Ho 2022, eq. 10);
/// - Adam (rate decayed linearly to 0 within the stage), gradient clipping, the EMA.
///
/// Around it, `TrainingLoop` (as `DiffusionTrainer`): shuffled batches of the training split from
/// the seed, `losses.jsonl`, atomic full-state checkpoints (stage, position, student, its EMA and
/// Adam state, the stage's teacher, the random stream) and exact resume. The checkpoint is a
/// `medsynth-diffusion-1` checkpoint of the student at the current stage's steps and guidance 1,
/// which every sampler reads unchanged, with a `distillation` entry (`DistillationRecord`).
public final class DiffusionDistiller {
    public let teacherURL: URL
    public let record: DistillationRecord
    public let config: UNetConfig
    /// The teacher checkpoint's options (prediction, schedule, guidance).
    public let teacherOptions: DiffusionOptions
    public let data: DiffusionTrainingData
    public let plan: TrainingPlan
    public let outputDirectory: URL
    let loop: TrainingLoop
    /// The stage the student is in (0-based), its teacher and the student.
    public private(set) var stage = 0
    public private(set) var teacher: DiffusionModel
    public private(set) var student: DiffusionModel
    /// Student times and noise (saved for an exact resume).
    public var noise: SeededGenerator

    public var options: DistillationOptions { record.options }
    public var position: TrainingPosition { loop.position }
    public var totalSteps: Int { options.iterations * options.stageSteps.count }
    public var checkpointURL: URL { outputDirectory.appendingPathComponent("checkpoint.safetensors") }

    /// Reads the teacher (refusing anything but a v-prediction diffusion checkpoint whose classes,
    /// channels and size are the data's) and sets the first stage up: its student starts from the
    /// teacher's EMA weights.
    public init(
        teacher url: URL, data: DiffusionTrainingData, options: DistillationOptions, plan: TrainingPlan,
        outputDirectory: URL
    ) throws {
        try options.validate()
        if let problem = plan.problem { throw DiffusionError.invalidOption(problem) }
        let source = try DiffusionImageSource(checkpoint: url)
        let teacherOptions = source.model.options, config = source.config
        guard teacherOptions.prediction == .v else {
            throw DiffusionError.invalidOption(
                "\(url.path) predicts \(teacherOptions.prediction.rawValue): distillation needs a v-prediction model "
                    + "(x0 = alpha z - sigma v; from eps it would divide by alpha, near 0 at the last timestep)")
        }
        guard options.fromSteps <= teacherOptions.timesteps else {
            throw DiffusionError.invalidOption(
                "from \(options.fromSteps) steps: the teacher has only \(teacherOptions.timesteps) timesteps")
        }
        guard data.channels == config.channels, data.size == config.imageSize else {
            throw DiffusionError.invalidOption(
                "images are \(data.channels)x\(data.size)x\(data.size) but the teacher expects "
                    + "\(config.channels)x\(config.imageSize)x\(config.imageSize)")
        }
        guard data.count > 0 else { throw DiffusionError.invalidOption("no training images") }
        guard data.classNames == source.classNames, (data.labels == nil) == (config.classes == nil) else {
            throw DiffusionError.invalidOption(
                "the teacher was trained on \(config.classes == nil ? "class" : "the classes") "
                    + "\(source.classNames.joined(separator: ", ")), these images are of "
                    + "\(data.classNames.joined(separator: ", "))\(data.labels == nil ? " (unlabelled)" : "")")
        }
        let bytes: Data
        do { bytes = try Data(contentsOf: url) } catch {
            throw DiffusionError.notADiffusionCheckpoint(path: url.path, reason: "unreadable: \(error.localizedDescription)")
        }
        let steps = options.stageSteps
        let schedule = NoiseSchedule(teacherOptions.schedule, steps: teacherOptions.timesteps)
        for n in steps { try Self.checkNesting(schedule, n) }
        teacherURL = url; self.config = config; self.teacherOptions = teacherOptions
        record = DistillationRecord(
            teacher: url.path, teacherSHA256: sha256Hex(bytes), teacherGuidanceScale: teacherOptions.guidanceScale,
            stages: steps.map { [2 * $0, $0] }, options: options)
        self.data = data; self.plan = plan; self.outputDirectory = outputDirectory
        noise = SeededGenerator(seed: plan.seed).fork(0xD157)
        loop = TrainingLoop(
            plan: plan, count: data.count, batchSize: min(options.batchSize, data.count),
            stepLog: outputDirectory.appendingPathComponent("losses.jsonl"))
        // The first teacher: the checkpoint's EMA weights, guided as the checkpoint samples.
        let weights = Self.samplingWeights(source.model)
        var first = teacherOptions
        first.emaDecay = nil; first.samplingSteps = 2 * steps[0]
        teacher = try Self.model(config, first, weights: weights)
        student = try Self.model(config, Self.studentOptions(teacherOptions, options, steps: steps[0]), weights: weights)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
    }

    // MARK: The math

    /// Image k's x-target x~: the x0 for which one student DDIM step from z_t (at `t[k]`) lands
    /// where the teacher's two steps land, z'' (at `next[k]`, nil: clean).
    ///
    /// A DDIM step with prediction x^ is z'' = alpha'' x^ + sigma'' (z_t - alpha x^) / sigma, so
    /// x~ = (z'' - (sigma'' / sigma) z_t) / (alpha'' - (sigma'' / sigma) alpha)
    ///    = (sigma z'' - sigma'' z_t) / (alpha'' sigma - sigma'' alpha)      (times sigma / sigma).
    /// At the student's last step (clean: alpha'' = 1, sigma'' = 0) this is z'' itself, the
    /// teacher's final x0: one formula for every step.
    /// NOTE: the denominator alpha'' sigma - sigma'' alpha is sigma sigma'' (SNR''^1/2 - SNR^1/2) > 0
    /// because the SNR falls strictly with t (and sigma > 0 at the clean image); it would be 0 if
    /// t'' = t (grids not nested, see `checkNesting`). Multiplying through by sigma keeps sigma'' / sigma from blowing up where
    /// sigma is near 0 (t near 0), and alpha near 0 (t = T - 1: abar < 1e-6 on the cosine
    /// schedule) leaves the denominator near alpha'' sigma, away from 0. Computed in Double.
    /// NOTE: x~ is not clipped: the student's sampler clips its x0 to [-1, 1], as the teacher's does,
    /// so where x~ leaves that range the student cannot reproduce z'' exactly, whatever it learns.
    static func target(schedule: NoiseSchedule, z: Tensor, zNext: Tensor, t: [Int], next: [Int?]) throws -> Tensor {
        func coefficients(_ t: Int?) -> (Double, Double) {
            guard let t else { return (1, 0) }
            return (schedule.alphaBar[t].squareRoot(), (1 - schedule.alphaBar[t]).squareRoot())
        }
        var cNext = [Float](), cZ = [Float]()
        for (t, n) in zip(t, next) {
            let (a, s) = coefficients(t), (aN, sN) = coefficients(n)
            let d = aN * s - sN * a
            cNext.append(Float(s / d)); cZ.append(Float(sN / d))
        }
        return try zNext * DiffusionModel.perImage(cNext) - z * DiffusionModel.perImage(cZ)
    }

    /// The teacher's two DDIM steps from z_t (image k at student grid index `index[k]` of N steps):
    /// t = grid_2N[2i + 1] -> t' = grid_2N[2i] -> t'' = grid_2N[2i - 1] (clean when i = 0), exactly as
    /// `DiffusionModel.sample` steps, with the teacher's weights and guidance. Returns z'' and t''.
    static func teacherSteps(
        _ teacher: DiffusionModel, z: Tensor, index: [Int], studentSteps n: Int, labels: [Int]?
    ) throws -> (zNext: Tensor, t: [Int], next: [Int?]) {
        let grid = teacher.schedule.samplingTimesteps(2 * n)
        let t = index.map { grid[2 * $0 + 1] }, middle = index.map { grid[2 * $0] }
        let next = index.map { $0 > 0 ? grid[2 * $0 - 1] : nil }
        let w = teacher.options.guidanceScale
        let zNext = try noGrad {
            let zMiddle = try teacher.ddimStep(z, t: t, to: middle, labels: labels, guidanceScale: w).next
            return try teacher.ddimStep(zMiddle, t: middle, to: next, labels: labels, guidanceScale: w).next
        }
        return (zNext, t, next)
    }

    /// Refuses N whose grid is not every other timestep of 2N's (trailing spacing makes it so:
    /// round((2j + 2) T / 2N) = round((j + 1) T / N), and IEEE division rounds both alike).
    static func checkNesting(_ schedule: NoiseSchedule, _ n: Int) throws {
        let coarse = schedule.samplingTimesteps(n), fine = schedule.samplingTimesteps(2 * n)
        guard fine.count == 2 * n, coarse == stride(from: 1, to: fine.count, by: 2).map({ fine[$0] }) else {
            throw DiffusionError.invalidOption(
                "the \(n)-step DDIM grid is not every other timestep of the \(2 * n)-step grid (T = \(schedule.steps))")
        }
    }

    /// One update of the student on real images x0 (N, C, S, S) with their labels (nil:
    /// unconditional). Returns the weighted loss.
    @discardableResult
    public func step(x0: Tensor, labels: [Int]?) throws -> Float {
        let steps = options.stageSteps[stage], n = x0.shape[0]
        let index = (0..<n).map { _ in noise.int(below: steps) }
        let eps = Tensor.randomNormal(x0.shape, generator: &noise)
        let grid = student.schedule.samplingTimesteps(steps)
        let (a, s) = student.perImageCoefficients(index.map { grid[$0] })
        let z = try x0 * a + eps * s  // z_t (N, C, S, S)
        let (zNext, t, next) = try Self.teacherSteps(teacher, z: z, index: index, studentSteps: steps, labels: labels)
        let target = try Self.target(schedule: student.schedule, z: z, zNext: zNext, t: t, next: next)
        // Truncated SNR weighting max(alpha^2 / sigma^2, 1), in Double (sigma > 0 at every t >= 0).
        let weight = DiffusionModel.perImage(
            t.map { Float(max(student.schedule.alphaBar[$0] / (1 - student.schedule.alphaBar[$0]), 1)) })
        student.unet.train(); student.unet.zeroGrad()
        let v = try student.unet(z, timesteps: t.map(Float.init), labels: labels)
        let xHat = try z * a - v * s
        let loss = try ((xHat - target).squared() * weight).mean()
        loss.backward()
        if let clip = options.gradientClip { student.clipGradients(maxNorm: clip) }
        student.optimizer.step()
        student.updateEMA()
        return loss.item
    }

    // MARK: Stages

    /// The student's options in a stage of `steps` steps: the teacher's schedule and prediction,
    /// this run's optimiser, one row per image (guidance 1), no class dropping.
    static func studentOptions(_ teacher: DiffusionOptions, _ options: DistillationOptions, steps: Int) -> DiffusionOptions {
        var o = teacher
        o.batchSize = options.batchSize; o.learningRate = options.learningRate
        o.emaDecay = options.emaDecay; o.gradientClip = options.gradientClip
        o.classDropProbability = 0; o.samplingSteps = steps; o.guidanceScale = 1
        return o
    }

    /// A model of `config` and `options` holding `weights` (by parameter name), with a fresh Adam
    /// and an EMA that starts at those weights.
    static func model(_ config: UNetConfig, _ options: DiffusionOptions, weights: [String: Tensor]) throws -> DiffusionModel {
        let m = try DiffusionModel(config: config, options: options, seed: 0)
        try m.unet.loadStateDict(weights, prefix: "", strict: true)
        for (name, p) in m.ema ?? [] { try p.assign(weights[name]!) }
        if options.emaDecay == nil { m.unet.train(false) }  // a teacher only predicts
        return m
    }

    /// The weights a model samples with: its EMA when kept, else its live weights.
    static func samplingWeights(_ m: DiffusionModel) -> [String: Tensor] {
        var w = m.unet.stateDict()
        for (name, p) in m.ema ?? [] { w[name] = p.value.copy() }
        return w
    }

    /// Stage `next` (one after the current): the student's EMA becomes the teacher (guidance 1,
    /// 2N steps) and the initial weights of a new student (fresh Adam and EMA).
    func advance(to next: Int) throws {
        let weights = Self.samplingWeights(student)
        var o = student.options
        o.emaDecay = nil
        teacher = try Self.model(config, o, weights: weights)
        student = try Self.model(
            config, Self.studentOptions(teacherOptions, options, steps: options.stageSteps[next]), weights: weights)
        stage = next
    }

    /// Runs every stage from wherever the distiller stands (or stops after `limit` updates in all,
    /// with a checkpoint, as an interrupted run would).
    public func run(until limit: Int? = nil, _ observe: (DiffusionEvent) -> Void = { _ in }) throws {
        try loop.run(
            totalSteps: min(limit ?? totalSteps, totalSteps), checkpointPath: checkpointURL.path,
            step: { batch in
                let s = loop.position.globalStep / options.iterations
                if s != stage { try advance(to: s) }
                // Linear decay to 0 within the stage: the rate of update j (0-based) is lr (K - j) / K.
                let j = loop.position.globalStep % options.iterations
                student.optimizer.learningRate = options.learningRate * Float(options.iterations - j) / Float(options.iterations)
                let (x0, labels) = data.batch(batch)
                return try step(x0: x0, labels: labels)
            },
            logLine: { loss, at in
                String(
                    format: "{\"step\":%d,\"stage\":%d,\"student_steps\":%d,\"loss\":%.6g}", at.globalStep, stage + 1,
                    options.stageSteps[stage], loss)
            },
            checkpoint: { try saveCheckpoint() },
            grid: { final in if final { try writeGrid(observe) } }, observe)
    }

    /// `grid-final.png`: the student's samples (its steps, guidance 1), one row of 8 per class.
    func writeGrid(_ observe: (DiffusionEvent) -> Void) throws {
        var g = SeededGenerator(seed: plan.seed &+ 0x5EED)
        let labels = config.classes.map { k in (0..<k).flatMap { Array(repeating: $0, count: 8) } }
        let count = labels?.count ?? 32
        let images = try student.sample(count: count, labels: labels, generator: &g)
        let path = outputDirectory.appendingPathComponent("grid-final.png").path
        try ImageGrid.write(
            images.scalars, count: count, channels: config.channels, size: config.imageSize, columns: 8, to: path)
        observe(.grid(path: path, epoch: loop.position.epoch))
    }

    // MARK: Checkpoints

    /// The student as a `medsynth-diffusion-1` checkpoint (its options: the stage's steps,
    /// guidance 1) plus the run's state: stage, position, Adam, random stream, and, while a later
    /// stage is under way, its teacher (`teacher.*`; the first teacher is the checkpoint itself).
    public func saveCheckpoint() throws {
        var extra: [String: Tensor] = [:]
        for (name, p) in student.ema ?? [] { extra["ema.\(name)"] = p.value.copy() }
        var modules: [String: any Module] = ["unet": student.unet]
        if stage > 0 && loop.position.globalStep < totalSteps { modules["teacher"] = teacher.unet }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let p = loop.position
        let meta: [String: String] = [
            "format": DiffusionTrainer.format, "config": try json(config), "options": try json(student.options),
            "plan": try json(plan), "class_names": try json(data.classNames), "distillation": try json(record),
            "distillation_stage": "\(stage)", "epoch": "\(p.epoch)", "step_in_epoch": "\(p.stepInEpoch)",
            "global_step": "\(p.globalStep)", "noise_state": noise.state.map { String($0) }.joined(separator: ","),
        ]
        try Checkpoint.save(
            modules: modules, optimizers: ["unet": student.optimizer], extra: extra, metadata: meta, to: checkpointURL)
    }

    /// Restores what `saveCheckpoint` wrote. Refuses, before loading any weight, a checkpoint of
    /// another distillation (teacher bytes, stages, options), configuration or classes.
    public func resume(from url: URL) throws {
        let file = try SafeTensors.read(url)
        let m = file.metadata, decoder = JSONDecoder()
        guard m["format"] == DiffusionTrainer.format,
            let saved = m["distillation"].flatMap({ try? decoder.decode(DistillationRecord.self, from: Data($0.utf8)) }),
            let stage = m["distillation_stage"].flatMap(Int.init), let e = m["epoch"].flatMap(Int.init),
            let s = m["step_in_epoch"].flatMap(Int.init), let gs = m["global_step"].flatMap(Int.init),
            let noise = m["noise_state"].flatMap({ SeededGenerator(state: $0.split(separator: ",").compactMap { UInt64($0) }) })
        else {
            throw DiffusionError.notADiffusionCheckpoint(path: url.path, reason: "no distillation state in its metadata")
        }
        guard saved.teacherSHA256 == record.teacherSHA256, saved.stages == record.stages, saved.options == options else {
            throw DiffusionError.invalidOption(
                "--resume: \(url.path) distils another teacher or with other options (teacher \(saved.teacher), "
                    + "stages \(saved.stages), \(saved.options))")
        }
        guard (0..<options.stageSteps.count).contains(stage), e >= 0, s >= 0, s <= gs, gs <= totalSteps,
            stage == min(max(gs - 1, 0) / options.iterations, options.stageSteps.count - 1)
        else {
            throw CheckpointError.invalidMetadata(
                path: url.path, key: "global_step", value: "\(gs)", reason: "inconsistent with stage \(stage)")
        }
        guard m["config"].flatMap({ try? decoder.decode(UNetConfig.self, from: Data($0.utf8)) }) == config,
            m["class_names"].flatMap({ try? decoder.decode([String].self, from: Data($0.utf8)) }) == data.classNames
        else {
            throw DiffusionError.invalidOption("--resume: \(url.path) holds another U-Net or other classes")
        }
        if stage > 0 {
            var o = Self.studentOptions(teacherOptions, options, steps: options.stageSteps[stage - 1])
            o.emaDecay = nil
            if gs < totalSteps { teacher = try Self.model(config, o, weights: Self.weights(file.tensors, prefix: "teacher.")) }
        }
        student = try Self.model(
            config, Self.studentOptions(teacherOptions, options, steps: options.stageSteps[stage]),
            weights: Self.weights(file.tensors, prefix: "unet."))
        try Checkpoint.restore(file, modules: ["unet": student.unet], optimizers: ["unet": student.optimizer])
        try student.restoreEMA(file.tensors)
        self.stage = stage; self.noise = noise
        loop.position = TrainingPosition(epoch: e, stepInEpoch: s, globalStep: gs)
    }

    /// A checkpoint's `<prefix><name>` tensors by parameter name.
    static func weights(_ tensors: [String: Tensor], prefix: String) -> [String: Tensor] {
        Dictionary(
            uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(prefix) }.map {
                (String($0.key.dropFirst(prefix.count)), $0.value)
            })
    }
}
