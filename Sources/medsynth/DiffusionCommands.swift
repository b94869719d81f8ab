import ArgumentParser
import Datasets
import Diffusion
import Foundation
import GAN

// `gan train --generator diffusion` and `gan sample` of a diffusion checkpoint.
//
// Why one command with a `--generator` option rather than a sibling `medsynth diffusion ...`: the
// issue asks for one generator interface, and everything around the model is shared -- the data,
// class selection, split and manifest, the output folder's layout (checkpoint, losses.jsonl,
// grids), resume and overwrite, run tracking, and `gan sample` reading either kind of checkpoint
// (it tells them apart by the checkpoint's metadata). The options that only one family has are
// refused with the other, by name, so no option is silently ignored.

/// The generator families `gan train` trains.
enum GeneratorFamily: String, ExpressibleByArgument, CaseIterable {
    case dcgan, cdcgan, diffusion
}

extension DiffusionPrediction: ExpressibleByArgument {}
extension NoiseScheduleKind: ExpressibleByArgument {}

/// `gan train` options of diffusion models (nil: the library's default).
struct DiffusionTrainOptions: ParsableArguments {
    @Option(help: Ranges.diffusionWidth.help("U-Net base width, a multiple of 8 (default 32; levels 1x, 2x, 2x).")) var width:
        Int?
    @Flag(help: "Self-attention at the U-Net's lowest resolution.") var attention = false
    @Option(help: "What the U-Net predicts: v or epsilon (default v).") var prediction: DiffusionPrediction?
    @Option(help: "Noise schedule: cosine or linear (default cosine).") var schedule: NoiseScheduleKind?
    @Option(help: Ranges.learningRate.help("Adam learning rate (default 5e-4).")) var lr: Float?
    @Option(
        help: Ranges.classDrop.help("Probability of training without the class, for guidance (default 0.1; with --conditional)."))
    var classDrop: Float?
    @Option(help: Ranges.samplingSteps.help("DDIM steps of the grids and of sampling (default 25).")) var samplingSteps: Int?
    @Option(help: Ranges.guidanceScale.help("Classifier-free guidance scale of the grids and of sampling (default 2; 1 = none)."))
    var guidanceScale: Float?

    /// The options given, by name (to refuse them with a GAN).
    var given: [String] {
        [
            ("--width", width != nil), ("--attention", attention), ("--prediction", prediction != nil),
            ("--schedule", schedule != nil),
            ("--lr", lr != nil), ("--class-drop", classDrop != nil), ("--sampling-steps", samplingSteps != nil),
            ("--guidance-scale", guidanceScale != nil),
        ].filter(\.1).map(\.0)
    }

    func validate() throws {
        try Ranges.diffusionWidth.check(width, "--width")
        if let width, width % 8 != 0 {
            throw ValidationError("--width \(width) is not a multiple of 8 (the group norms' 8 groups)")
        }
        try Ranges.learningRate.check(lr, "--lr"); try Ranges.classDrop.check(classDrop, "--class-drop")
        try Ranges.samplingSteps.check(samplingSteps, "--sampling-steps");
        try Ranges.guidanceScale.check(guidanceScale, "--guidance-scale")
    }

    /// The library's options with these applied.
    func options(batchSize: Int, emaDecay: Float) -> DiffusionOptions {
        var o = DiffusionOptions()
        o.batchSize = batchSize
        o.emaDecay = emaDecay > 0 ? emaDecay : nil
        if let prediction { o.prediction = prediction }
        if let schedule { o.schedule = schedule }
        if let lr { o.learningRate = lr }
        if let classDrop { o.classDropProbability = classDrop }
        if let samplingSteps { o.samplingSteps = samplingSteps }
        if let guidanceScale { o.guidanceScale = guidanceScale }
        return o
    }
}

extension GANCommand.Train {
    /// Refuses what the chosen family cannot use, naming the option.
    func validateFamily() throws {
        guard generator == .diffusion else {
            if let first = diffusion.given.first { throw ValidationError("\(first) applies to --generator diffusion only") }
            return
        }
        var ganOnly: [String] = []
        if loss != .bce { ganOnly.append("--loss") }
        if lrG != 2e-4 || lrD != 2e-4 { ganOnly.append("--lr-g/--lr-d (use --lr)") }
        if noDiffAugment { ganOnly.append("--no-diff-augment") }
        if spectralNorm { ganOnly.append("--spectral-norm") }
        if dp.enabled { ganOnly.append("differential privacy (--dp-*)") }
        if let first = ganOnly.first { throw ValidationError("\(first) applies to GANs, not to --generator diffusion") }
        guard [28, 32, 64].contains(imageSize) else {
            throw ValidationError("--image-size \(imageSize) is not supported by --generator diffusion: use 28, 32 or 64")
        }
    }

    /// Trains a diffusion model: the same data, folder layout, resume and tracking as a GAN.
    func runDiffusion() throws {
        let folder = URL(fileURLWithPath: out)
        let existing = DiffusionTrainer.existingRun(in: folder)
        if !resume && !overwrite && !existing.isEmpty {
            throw ValidationError(
                "\(out) already holds a run (\(existing.joined(separator: ", "))): "
                    + "pass --resume to continue it or --overwrite to start afresh")
        }
        let g = try dryRun ? fakeData() : loadTrainingData()
        let data = DiffusionTrainingData(
            pixels: g.pixels, count: g.count, channels: g.channels, size: g.size,
            labels: isConditional ? g.labels : nil, classNames: g.classNames)
        let config = try UNetConfig(
            imageSize: imageSize, channels: data.channels, baseWidth: dryRun ? 8 : diffusion.width ?? 32,
            attention: diffusion.attention, classes: isConditional ? data.classNames.count : nil)
        var options = diffusion.options(batchSize: dryRun ? 8 : batchSize ?? 32, emaDecay: emaDecay)
        if dryRun { options.samplingSteps = min(options.samplingSteps, 3) }
        var plan = DiffusionTrainingPlan()
        let gp = self.plan
        plan.epochs = gp.epochs; plan.maxSteps = gp.maxSteps; plan.seed = gp.seed
        plan.checkpointEvery = gp.checkpointEvery; plan.gridEvery = gp.gridEvery
        let trainer = try DiffusionTrainer(
            model: DiffusionModel(config: config, options: options, seed: seed), data: data, plan: plan,
            outputDirectory: folder)
        var progress = ProgressLine()
        if resume {
            guard FileManager.default.fileExists(atPath: trainer.checkpointURL.path) else {
                throw ValidationError("--resume: no checkpoint at \(trainer.checkpointURL.path)")
            }
            try trainer.resume(from: trainer.checkpointURL)
            progress.note("resumed at epoch \(trainer.epoch), step \(trainer.globalStep)")
        }
        progress.note(
            "training \(isConditional ? "a conditional" : "a") diffusion model (\(trainer.model.unet.parameterCount) parameters) on "
                + "\(data.count) images (\(data.classNames.joined(separator: ", "))), \(config.channels)x\(config.imageSize)"
                + "x\(config.imageSize), \(options.prediction.rawValue)-prediction, \(options.schedule.rawValue) schedule")
        let start = Date()
        struct Recorded: Encodable {
            let generator: String; let config: UNetConfig; let options: DiffusionOptions; let plan: DiffusionTrainingPlan;
            let data: String?
            let selection: ClassSelection?
        }
        let recorded = Recorded(
            generator: "diffusion", config: config, options: options, plan: plan, data: self.data,
            selection: try selection.selection(seed: seed))
        let runID = try tracking.record(kind: .gan, config: recorded, seed: seed) { recorder -> String? in
            try trainer.run { event in
                switch event {
                case let .step(epoch, step, perEpoch, global, total, loss, ips, eta):
                    if global % 10 == 0 || global == total { try? recorder?.log(["loss": Double(loss)], step: global) }
                    progress.update(
                        fraction: Double(global) / Double(max(total, 1)),
                        String(
                            format: "epoch %d step %d/%d  loss %.4f  %.1f img/s  ETA %@", epoch + 1, step, perEpoch, loss, ips,
                            formatDuration(eta)), force: global == total)
                case let .grid(path, _): progress.note("grid: \(path)"); _ = try? recorder?.artifact(path: path, kind: "grid")
                case let .checkpoint(path, step):
                    if step == trainer.globalStep && step % plan.checkpointEvery != 0 { progress.note("checkpoint: \(path)") }
                }
            }
            _ = try recorder?.artifact(path: trainer.checkpointURL.path, kind: "checkpoint")
            return recorder?.runID
        }
        progress.finish()
        progress.note(
            String(
                format: "done: %d steps in %@; checkpoint %@", trainer.globalStep,
                formatDuration(Date().timeIntervalSince(start)), trainer.checkpointURL.path))
        if let runID { progress.note("run \(runID)") }
    }
}

/// The generator stored in a checkpoint: a GAN or a diffusion model, told apart by the
/// checkpoint's metadata; `expected` (the user's --generator) must agree when given.
func openGenerator(checkpoint path: String, expected: GeneratorFamily?) throws -> any SyntheticImages {
    let url = URL(fileURLWithPath: path)
    let isDiffusion = DiffusionImageSource.holdsDiffusionModel(url)
    if let expected, (expected == .diffusion) != isDiffusion {
        throw ValidationError("--generator \(expected.rawValue): \(path) holds \(isDiffusion ? "a diffusion model" : "a GAN")")
    }
    return isDiffusion ? try DiffusionImageSource(checkpoint: url) : try SyntheticImageSource(checkpoint: url)
}
