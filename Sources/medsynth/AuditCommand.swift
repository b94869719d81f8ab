import ArgumentParser
import Autodiff
import Datasets
import Diffusion
import Foundation
import GAN
import NN
import Quality

/// `medsynth audit`: quality (KID, FD, precision/recall/density/coverage, diversity) and
/// memorization of synthetic images, per class, against the real data's training split.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit synthetic images: quality metrics and nearest-training-image memorization checks, per class.")

    @Option(help: ArgumentHelp("Synthetic images: a .npz, a folder with one sub-folder per class, a folder of one class "
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
        let real = try loadDataset(at: data, options: LoadOptions(
            preprocessing: Preprocessing(imageSize: imageSize, scaling: .symmetric), selection: try selection.selection(seed: seed)))
        let splits = try makeSplits(real, seed: seed)
        let (train, val) = (splits.subset(.train), splits.subset(.val))
        let channels = real.images.channels
        let fakes = synthetic.hasSuffix(".safetensors")
            ? try sampleCheckpoint(channels: channels)
            : try loadSyntheticImages(at: synthetic, preprocessing: Preprocessing(imageSize: imageSize, channels: channels,
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

    /// `count` images per class from a `gan train` checkpoint, with its moving-average generator
    /// weights when saved, as (class, pixels, names); a diffusion checkpoint samples with DDIM.
    func sampleCheckpoint(channels: Int) throws -> [(className: String, pixels: [Float], names: [String])] {
        let url = URL(fileURLWithPath: synthetic)
        if DiffusionImageSource.holdsDiffusionModel(url) { return try sampleDiffusion(url, channels: channels) }
        let meta = try SafeTensors.read(url).metadata
        let decoder = JSONDecoder()
        guard meta["format"] == "medsynth-gan-1", let c = meta["config"], let o = meta["options"], let n = meta["class_names"] else {
            throw ValidationError("\(synthetic) is not a medsynth GAN checkpoint")
        }
        // Checkpoints written before `discriminatorBatchNorm` existed lack the key; they had batch norm.
        var object = try JSONSerialization.jsonObject(with: Data(c.utf8)) as? [String: Any] ?? [:]
        if object["discriminatorBatchNorm"] == nil { object["discriminatorBatchNorm"] = true }
        let config = try decoder.decode(DCGANConfig.self, from: JSONSerialization.data(withJSONObject: object))
        var options = try decoder.decode(GANTrainingOptions.self, from: Data(o.utf8))
        let classNames = try decoder.decode([String].self, from: Data(n.utf8))
        guard config.imageSize == imageSize, config.channels == channels else {
            throw ValidationError("\(synthetic) makes \(config.channels)x\(config.imageSize) px images; the data is "
                                  + "\(channels)x\(imageSize) (set --image-size)")
        }
        // The saved EMA weights are loaded into the generator directly, so the model keeps no average of its own.
        options.emaDecay = nil
        let model = GANModel(config: config, options: options, seed: seed)
        let file = try Checkpoint.load(from: url, modules: ["generator": model.generator, "discriminator": model.discriminator])
        for (name, p) in model.generator.parameters { if let t = file.tensors["ema.\(name)"] { try p.assign(t) } }
        let classes: [(Int?, String)] = config.classes == nil
            ? [(nil, className ?? (classNames.count == 1 ? classNames[0] : ""))]
            : classNames.enumerated().filter { className == nil || $0.element == className }.map { ($0.offset, $0.element) }
        guard !classes.contains(where: { $0.1.isEmpty }) else {
            throw ValidationError("\(synthetic) is an unconditional model of several classes; name the class with --class")
        }
        return try classes.map { label, name in
            var pixels: [Float] = []
            for start in stride(from: 0, to: count, by: 64) {
                let b = min(64, count - start)
                pixels += try model.sample(latent: model.sampleLatent(b), labels: label.map { Array(repeating: $0, count: b) }).scalars
            }
            return (name, pixels, (0..<count).map { "\(name)-sample\($0)" })
        }
    }

    /// `count` images per class (or of `--class`) from a diffusion checkpoint.
    func sampleDiffusion(_ url: URL, channels: Int) throws -> [(className: String, pixels: [Float], names: [String])] {
        let source = try DiffusionImageSource(checkpoint: url)
        guard source.imageSize == imageSize, source.channels == channels else {
            throw ValidationError("\(synthetic) makes \(source.channels)x\(source.imageSize) px images; the data is "
                                  + "\(channels)x\(imageSize) (set --image-size)")
        }
        let names = source.isConditional ? source.classNames.filter { className == nil || $0 == className } : [source.classNames[0]]
        return try names.map { name in
            (name, try source.generate(className: name, count: count, seed: seed), (0..<count).map { "\(name)-sample\($0)" })
        }
    }
}
