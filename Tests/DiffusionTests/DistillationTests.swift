import Datasets
import Foundation
import SeededRandom
import TestSupport
import Testing

@testable import Autodiff
@testable import Diffusion
@testable import NN

// Progressive distillation (Diffusion/Distillation.swift): the target's algebra, the nesting of
// the DDIM grids, that a distilled stage moves the student towards its teacher's trajectory,
// exact resume, and the refusals.

// MARK: - Fixtures

/// A tiny conditional teacher: `steps` updates on `data`, checkpoint written to `dir`.
func tinyTeacher(_ dir: URL, data: DiffusionTrainingData, steps: Int, width: Int = 8, prediction: DiffusionPrediction = .v)
    throws -> URL
{
    var options = DiffusionOptions()
    options.batchSize = 8; options.learningRate = 2e-3; options.samplingSteps = 4; options.prediction = prediction
    var plan = DiffusionTrainingPlan()
    plan.epochs = 10_000; plan.maxSteps = steps; plan.seed = 5; plan.checkpointEvery = 100_000; plan.gridEvery = 100_000
    let config = try UNetConfig(
        imageSize: 28, channels: data.channels, baseWidth: width, attention: false, classes: data.classNames.count, groups: 4)
    let trainer = try DiffusionTrainer(
        model: DiffusionModel(config: config, options: options, seed: 5), data: data, plan: plan, outputDirectory: dir)
    try trainer.run()
    return trainer.checkpointURL
}

/// `perClass` real breast-ultrasound images of each class (28 x 28 gray) in [-1, 1], labelled.
func labelledBreastImages(perClass: Int) throws -> DiffusionTrainingData {
    let shared = URL(fileURLWithPath: sharedData("breastmnist-png"))
    let root = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    for name in ["malignant", "normal_or_benign"] {
        let src = shared.appendingPathComponent(name), dst = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path).sorted().prefix(perClass) {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dst.appendingPathComponent(f))
        }
    }
    let set = try loadDataset(
        at: root.path, options: LoadOptions(preprocessing: Preprocessing(imageSize: 28, channels: 1, scaling: .symmetric))
    ).images
    return DiffusionTrainingData(
        pixels: set.pixels, count: set.count, channels: 1, size: 28, labels: set.labels, classNames: set.classNames)
}

func distillationOptions(from: Int, to: Int, iterations: Int, batchSize: Int = 8) -> DistillationOptions {
    var o = DistillationOptions()
    o.fromSteps = from; o.steps = to; o.iterations = iterations; o.batchSize = batchSize; o.learningRate = 1e-3
    return o
}

func distillationPlan(checkpointEvery: Int = 100_000) -> TrainingPlan {
    var plan = TrainingPlan()
    plan.epochs = 10_000; plan.seed = 9; plan.checkpointEvery = checkpointEvery
    return plan
}

// MARK: - The math

/// One student DDIM step from z_t with x^ = x~ (the target) lands on the teacher's two-step z''
/// (x'' = alpha'' x^ + sigma'' (z_t - alpha x^) / sigma, computed here in Double), at every student
/// time, the last (to the clean image) included; and the teacher's two steps from pure noise at a
/// 1-step student are exactly `sample` at 2 steps.
@Test(arguments: [1, 2, 4]) func oneStudentStepOnTheTargetLandsOnTheTeachersTwoSteps(_ n: Int) throws {
    var options = DiffusionOptions()
    options.emaDecay = nil  // `sample` uses the weights set here, not an average of the initial ones
    let teacher = try DiffusionModel(config: try tinyConfig(attention: false), options: options, seed: 2)
    var g = SeededGenerator(seed: 4)
    // Random weights in the zero-initialised layers, so the teacher's output is not trivial.
    for (_, p) in teacher.unet.parameters where p.value.scalars.allSatisfy({ $0 == 0 }) && p.shape.count == 4 {
        try p.assign(Tensor.randomNormal(p.shape, std: 0.1, generator: &g))
    }
    let index = (0..<6).map { $0 % n }, labels = (0..<6).map { $0 % 2 }
    let z = Tensor.randomNormal([6, 1, 28, 28], generator: &g)
    let (zNext, t, next) = try DiffusionDistiller.teacherSteps(teacher, z: z, index: index, studentSteps: n, labels: labels)
    let x = try DiffusionDistiller.target(schedule: teacher.schedule, z: z, zNext: zNext, t: t, next: next).scalars
    let per = 28 * 28
    var worst = 0.0
    for k in 0..<6 {
        let ab = teacher.schedule.alphaBar[t[k]], abN = next[k].map { teacher.schedule.alphaBar[$0] } ?? 1
        let (a, s, aN, sN) = (ab.squareRoot(), (1 - ab).squareRoot(), abN.squareRoot(), (1 - abN).squareRoot())
        for j in (k * per)..<((k + 1) * per) {
            let xHat = Double(x[j]), zt = Double(z.scalars[j])
            let landed = aN * xHat + sN * (zt - a * xHat) / s
            worst = max(worst, abs(landed - Double(zNext.scalars[j])))
        }
    }
    #expect(worst < 1e-5, "largest distance from the teacher's z'': \(worst)")

    var noise = SeededGenerator(seed: 8)
    let sampled = try teacher.sample(count: 2, labels: [0, 1], steps: 2, guidanceScale: 2, generator: &noise)
    noise = SeededGenerator(seed: 8)
    let start = Tensor.randomNormal([2, 1, 28, 28], generator: &noise)
    let two = try DiffusionDistiller.teacherSteps(teacher, z: start, index: [0, 0], studentSteps: 1, labels: [0, 1])
    #expect(two.next == [nil, nil])
    let mismatches = zip(two.zNext.scalars, sampled.scalars).filter { $0 != $1 }.count
    #expect(mismatches == 0, "\(mismatches) pixels differ from `sample` at 2 steps")
}

/// Trailing spacing nests the grids: N's timesteps are every other one of 2N's (so the teacher's
/// midpoint is a timestep of its own grid), for the step counts distillation uses and some others.
@Test(arguments: [NoiseScheduleKind.cosine, .linear]) func studentGridsAreEveryOtherTeacherTimestep(_ kind: NoiseScheduleKind)
    throws
{
    for T in [1000, 999, 4000] {
        let schedule = NoiseSchedule(kind, steps: T)
        for n in [1, 2, 3, 4, 5, 8, 16, 25, 32, 64, 128, 250, 256, 499] where 2 * n <= T {
            let fine = schedule.samplingTimesteps(2 * n), coarse = schedule.samplingTimesteps(n)
            #expect(coarse == stride(from: 1, to: 2 * n, by: 2).map { fine[$0] }, "T = \(T), N = \(n)")
            #expect(Set(fine).count == 2 * n, "T = \(T), 2N = \(2 * n): repeated timesteps")
            try DiffusionDistiller.checkNesting(schedule, n)
        }
    }
    #expect(distillationOptions(from: 32, to: 4, iterations: 1).stageSteps == [16, 8, 4])
    #expect(distillationOptions(from: 8, to: 4, iterations: 1).stageSteps == [4])
    #expect(distillationOptions(from: 6, to: 3, iterations: 1).stageSteps == [3])
}

// MARK: - A real stage

/// A tiny teacher trained briefly on 8 real breast images, distilled one stage 4 -> 2 steps:
/// from the same noise, the student's 2-step samples (guidance 1) are closer to the teacher's
/// 4-step guided samples than the teacher's own 2-step guided samples are.
@Test func aDistilledStageFollowsTheTeachersTrajectory() throws {
    let data = try labelledBreastImages(perClass: 4)
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let teacherURL = try tinyTeacher(dir.appendingPathComponent("teacher"), data: data, steps: 6)
    let distiller = try DiffusionDistiller(
        teacher: teacherURL, data: data, options: distillationOptions(from: 4, to: 2, iterations: 12, batchSize: 4),
        plan: distillationPlan(), outputDirectory: dir.appendingPathComponent("student"))
    try distiller.run()

    let teacher = try DiffusionImageSource(checkpoint: teacherURL)
    let student = try DiffusionImageSource(checkpoint: distiller.checkpointURL)
    #expect(student.steps == 2 && student.guidanceScale == 1)
    func images(_ source: DiffusionImageSource, steps: Int, guidance: Float) throws -> [Float] {
        source.steps = steps; source.guidanceScale = guidance
        return try source.generate(className: "malignant", count: 8, seed: 21)
    }
    let reference = try images(teacher, steps: 4, guidance: 2)
    func mse(_ a: [Float]) -> Double {
        zip(a, reference).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(a.count)
    }
    let distilled = mse(try images(student, steps: 2, guidance: 1)), undistilled = mse(try images(teacher, steps: 2, guidance: 2))
    #expect(distilled < undistilled, "MSE to the teacher's 4 steps: student \(distilled), teacher at 2 steps \(undistilled)")
}

// MARK: - Resume and refusals

/// Two stages (8 -> 4 -> 2 steps, 3 updates each) straight, or stopped after `stop` updates and
/// resumed by a fresh distiller from its checkpoint: bit-identical student, EMA, Adam and stream
/// (stopping at 2 resumes before the stage boundary, at 4 inside the second stage, whose teacher
/// comes from the checkpoint).
@Test(arguments: [2, 4]) func distillationResumesExactly(_ stop: Int) throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let teacherURL = try tinyTeacher(dir.appendingPathComponent("teacher"), data: fakeData(), steps: 1)
    let options = distillationOptions(from: 8, to: 2, iterations: 3)
    func distiller(_ name: String) throws -> DiffusionDistiller {
        try DiffusionDistiller(
            teacher: teacherURL, data: fakeData(), options: options, plan: distillationPlan(),
            outputDirectory: dir.appendingPathComponent(name))
    }
    let straight = try distiller("straight")
    try straight.run()
    #expect(straight.stage == 1 && straight.position.globalStep == 6)

    try distiller("interrupted").run(until: stop)
    let resumed = try distiller("interrupted")
    try resumed.resume(from: resumed.checkpointURL)
    #expect(resumed.position.globalStep == stop)
    try resumed.run()

    func state(_ d: DiffusionDistiller) -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for (k, v) in d.student.unet.stateDict() { s["unet." + k] = v.scalars }
        for (k, v) in d.student.optimizer.stateTensors() { s["optim." + k] = v.scalars }
        for (k, p) in d.student.ema ?? [] { s["ema." + k] = p.value.scalars }
        return s
    }
    let a = state(straight), b = state(resumed)
    #expect(a.keys.sorted() == b.keys.sorted() && a.keys.contains { $0.hasPrefix("ema.") })
    let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
    #expect(differing.isEmpty, "tensors that differ: \(differing.prefix(5))")
    #expect(straight.noise == resumed.noise)
    let lines = try String(contentsOf: resumed.outputDirectory.appendingPathComponent("losses.jsonl"), encoding: .utf8)
    #expect(lines.split(separator: "\n").count == 6)

    // The output is an ordinary diffusion checkpoint of the last stage's steps, without guidance.
    let source = try DiffusionImageSource(checkpoint: straight.checkpointURL)
    #expect(source.steps == 2 && source.guidanceScale == 1)
    let record = try SafeTensors.read(straight.checkpointURL).metadata["distillation"] ?? ""
    #expect(record.contains("\"stages\":[[8,4],[4,2]]") && record.contains(straight.record.teacherSHA256), "\(record)")
}

@Test func outOfRangeOptionsAreRefused() {
    let bad: [(String, (inout DistillationOptions) -> Void)] = [
        ("steps 0", { $0.steps = 0 }), ("from 12 to 4", { $0.fromSteps = 12 }), ("from 4 to 4", { $0.fromSteps = 4 }),
        ("from 2 to 4", { $0.fromSteps = 2 }), ("iterations 0", { $0.iterations = 0 }), ("batch 0", { $0.batchSize = 0 }),
        ("lr 0", { $0.learningRate = 0 }), ("lr nan", { $0.learningRate = .nan }), ("ema 1", { $0.emaDecay = 1 }),
        ("clip 0", { $0.gradientClip = 0 }),
    ]
    for (what, change) in bad {
        var o = DistillationOptions()
        change(&o)
        #expect(throws: DiffusionError.self, "\(what)") { try o.validate() }
    }
    #expect(throws: Never.self) { try DistillationOptions().validate() }
}

@Test func refusesWhatItCannotDistil() throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = fakeData()
    func distil(_ url: URL, _ data: DiffusionTrainingData = fakeData(), from: Int = 4) throws {
        _ = try DiffusionDistiller(
            teacher: url, data: data, options: distillationOptions(from: from, to: 2, iterations: 1),
            plan: distillationPlan(), outputDirectory: dir.appendingPathComponent("out"))
    }
    // A GAN's checkpoint (or any other file of tensors).
    let foreign = dir.appendingPathComponent("gan.safetensors")
    try SafeTensors.write(["w": .zeros([2])], metadata: ["format": "medsynth-gan-1"], to: foreign)
    #expect(throws: DiffusionError.self) { try distil(foreign) }
    // An epsilon-prediction teacher.
    let epsilon = try tinyTeacher(dir.appendingPathComponent("eps"), data: data, steps: 1, prediction: .epsilon)
    #expect(throws: DiffusionError.self) { try distil(epsilon) }
    // Images of other classes, or unlabelled, for a conditional teacher; more steps than timesteps.
    let teacher = try tinyTeacher(dir.appendingPathComponent("v"), data: data, steps: 1)
    var renamed = data
    renamed.classNames = ["a", "c"]
    #expect(throws: DiffusionError.self) { try distil(teacher, renamed) }
    var unlabelled = data
    unlabelled.labels = nil
    #expect(throws: DiffusionError.self) { try distil(teacher, unlabelled) }
    #expect(throws: DiffusionError.self) { try distil(teacher, from: 2048) }
    try distil(teacher)
}
