import ArgumentParser
import Autodiff
import Datasets
import Foundation
import GAN
import Quality

/// `medsynth audit`: quality (KID, FD, precision/recall/density/coverage, diversity) and
/// memorization of synthetic images, per class, against the real data's training split.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit synthetic images: quality metrics and nearest-training-image memorization checks, per class.")

    @Option(help: "Synthetic images: a .npz, a folder with one sub-folder per class, or a folder of one class (--class).")
    var synthetic: String
    @Option(help: "The real dataset the generator was trained on (class folders or MedMNIST .npz).") var data: String
    @Option(name: .customLong("class"), help: "Audit this class only (required for a folder of one class's images).")
    var className: String?
    @Option(help: "Split seed: must equal the seed the generator was trained with, so the training split matches.")
    var seed: UInt64 = 0
    @Option(help: "Image size the images are compared at.") var imageSize = 28
    @Option(help: "Flag synthetic images nearer to training than this percentile of held-out images.") var percentile = 1.0
    @Option(help: "KID subsets.") var kidSubsets = 50
    @Option(help: "Output folder (audit.json, audit.html, neighbours-<class>.png).") var out: String

    func run() throws {
        let real = try loadDataset(at: data, options: LoadOptions(
            preprocessing: Preprocessing(imageSize: imageSize, scaling: .symmetric)))
        let splits = try makeSplits(real, seed: seed)
        let (train, val) = (splits.subset(.train), splits.subset(.val))
        let channels = real.images.channels
        let fakes = try loadSyntheticImages(at: synthetic, preprocessing: Preprocessing(imageSize: imageSize, channels: channels,
                                                                                        scaling: .symmetric),
                                            className: className)
        guard !fakes.isEmpty else { throw ValidationError("\(synthetic): no synthetic images\(className.map { " of class \($0)" } ?? "")") }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var options = AuditOptions()
        options.percentile = percentile; options.kidSubsets = kidSubsets; options.seed = seed
        // Fixed feature seed: numbers stay comparable across audits whatever the split seed.
        let extractor = RandomCNNFeatures(channels: channels, seed: 0)
        let shape = [channels, imageSize, imageSize], d = channels * imageSize * imageSize
        var audits: [ClassAudit] = [], grids: [String: [UInt8]] = [:]
        let progress = ProgressLine()
        for fake in fakes {
            guard let label = train.classNames.firstIndex(of: fake.className) else {
                throw ValidationError("synthetic class \"\(fake.className)\" is not in \(data): classes are "
                                      + train.classNames.joined(separator: ", "))
            }
            func images(_ s: LabeledImages) throws -> Tensor {
                let idx = s.labels.indices.filter { s.labels[$0] == label }
                return try Tensor(shape: [idx.count] + shape, scalars: s.gather(idx).pixels)
            }
            let trainImages = try images(train)
            let audit = try ClassAudit.run(
                className: fake.className,
                synthetic: AuditImages(images: try Tensor(shape: [fake.pixels.count / d] + shape, scalars: fake.pixels),
                                       names: fake.names),
                training: trainImages, heldOut: try images(val), extractor: extractor, options: options)
            audits.append(audit)
            // Grid: one row per flagged (or shown) image: the synthetic image, then its nearest training images.
            let rows = Array((audit.memorization.flagged.isEmpty ? audit.memorization.shown : audit.memorization.flagged).prefix(16))
            if !rows.isEmpty {
                var pixels: [Float] = []
                for r in rows {
                    pixels += fake.pixels[(r.index * d)..<((r.index + 1) * d)]
                    for n in r.neighbours { pixels += trainImages.scalars[(n * d)..<((n + 1) * d)] }
                }
                let columns = 1 + rows[0].neighbours.count
                let grid = ImageGrid.compose(try Tensor(shape: [pixels.count / d] + shape, scalars: pixels), columns: columns,
                                             scale: imageSize < 64 ? 2 : 1)
                let png = try encodePNG(pixels: grid.pixels, width: grid.width, height: grid.height, channels: grid.channels)
                try writeFileAtomically(png, to: "\(out)/neighbours-\(fake.className).png")
                grids[fake.className] = png
            }
            progress.note(String(format: "%@: KID %.4f +- %.4f  FD %.3f  P %.2f R %.2f D %.2f C %.2f  diversity %.2f  flagged %d/%d",
                                 fake.className, audit.kid.mean, audit.kid.std, audit.frechetDistance.value, audit.prdc.precision,
                                 audit.prdc.recall, audit.prdc.density, audit.prdc.coverage, audit.diversity,
                                 audit.memorization.flagged.count, audit.syntheticCount))
            for w in audit.frechetDistance.warnings { progress.note("warning: \(w)") }
        }
        let report = AuditReport(synthetic: synthetic, data: data, extractor: extractor.name, options: options, classes: audits)
        try writeFileAtomically(try report.json(), to: "\(out)/audit.json")
        try writeFileAtomically(Array(report.html(grids: grids).utf8), to: "\(out)/audit.html")
        progress.note("wrote \(out)/audit.json and \(out)/audit.html")
    }
}
