import ArgumentParser
import Diffusion
import Workflows

// `gan train --generator diffusion` and `gan sample` of a diffusion checkpoint.
//
// Why one command with a `--generator` option rather than a sibling `medsynth diffusion ...`: the
// issue asks for one generator interface, and everything around the model is shared -- the data,
// class selection, split and manifest, the output folder's layout (checkpoint, losses.jsonl,
// grids), resume and overwrite, run tracking, and `gan sample` reading either kind of checkpoint
// (it tells them apart by the checkpoint's metadata). The options that only one family has are
// refused with the other, by name, so no option is silently ignored.

extension GeneratorFamily: ExpressibleByArgument {}

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
}
