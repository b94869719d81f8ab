import ArgumentParser
import Foundation
import Quality
import Workflows

/// `medsynth audit`: quality (KID, FD, precision/recall/density/coverage, diversity) and
/// memorization of synthetic images, per class, against the real data's training split.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit synthetic images: quality metrics and nearest-training-image memorization checks, per class.")

    @Option(
        help: ArgumentHelp(
            "Synthetic images: a .npz, a folder with one sub-folder per class, a folder of one class "
                + "(--class), or a GAN checkpoint (.safetensors) to sample from."))
    var synthetic: String
    @Option(help: Ranges.sampleCount.help("Images to sample per class from a GAN checkpoint.")) var count = 100
    @Option(help: "The real dataset the generator was trained on (class folders or MedMNIST .npz).") var data: String
    @OptionGroup var selection: ClassSelectionOptions
    @Option(name: .customLong("class"), help: "Audit this class only (required for a folder of one class's images).")
    var className: String?
    @Option(help: "Split seed: must equal the seed the generator was trained with, so the training split matches.")
    var seed: UInt64 = 0
    @Option(help: Ranges.imageSize.help("Image size the images are compared at.")) var imageSize = 28
    @Option(help: Ranges.percentile.help("Flag synthetic images nearer to training than this percentile of held-out images."))
    var percentile = 1.0
    @Option(help: Ranges.kidSubsets.help("KID subsets.")) var kidSubsets = 50
    @Option(help: "Output folder (audit.json, audit.html, neighbours-<class>.png).") var out: String

    func validate() throws {
        try Ranges.sampleCount.check(count, "--count"); try Ranges.imageSize.check(imageSize, "--image-size")
        try Ranges.percentile.check(percentile, "--percentile"); try Ranges.kidSubsets.check(kidSubsets, "--kid-subsets")
    }

    func run() throws {
        var spec = SyntheticAuditSpec(synthetic: synthetic, data: data)
        spec.count = count; spec.selection = try selection.selection(seed: seed); spec.className = className
        spec.seed = seed; spec.imageSize = imageSize
        spec.options.percentile = percentile; spec.options.kidSubsets = kidSubsets
        let progress = ProgressLine()
        _ = try SyntheticAudit.run(spec, output: URL(fileURLWithPath: out)) { audit in
            progress.note(
                String(
                    format: "%@: KID %.4f +- %.4f  FD %.3f  P %.2f R %.2f D %.2f C %.2f  diversity %.2f  flagged %d/%d",
                    audit.className, audit.kid.mean, audit.kid.std, audit.frechetDistance.value, audit.prdc.precision,
                    audit.prdc.recall, audit.prdc.density, audit.prdc.coverage, audit.diversity,
                    audit.memorization.flagged.count, audit.syntheticCount))
            for w in audit.frechetDistance.warnings { progress.note("warning: \(w)") }
        }
        progress.note("wrote \(out)/audit.json and \(out)/audit.html")
    }
}
