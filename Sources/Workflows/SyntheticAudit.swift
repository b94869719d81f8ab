import AtomicIO
import Autodiff
import Datasets
import Diffusion
import Foundation
import GAN
import Quality

/// What `medsynth audit` compares: synthetic images (files, or sampled from a GAN checkpoint)
/// against the training split of the real data the generator learned from.
public struct SyntheticAuditSpec: Sendable {
    /// A `.npz`, a folder with one sub-folder per class, a folder of one class (`className`),
    /// or a GAN checkpoint (`.safetensors`) to sample from.
    public var synthetic: String
    /// Images sampled per class from a checkpoint.
    public var count = 100
    /// The real dataset the generator was trained on.
    public var data: String
    public var selection: ClassSelection?
    /// Audit this class only (required for a folder of one class's images).
    public var className: String?
    /// The split whose training images the synthetic ones are compared with. nil fields: a
    /// checkpoint's own split (`SyntheticImages.trainingSplit`), else seed 0 and 8:1:1; a given
    /// value that differs from a checkpoint's is refused.
    public var splitSeed: UInt64?
    public var splitRatio: SplitRatio?
    /// Seed of sampling from a checkpoint.
    public var seed: UInt64 = 0
    /// Side the images are compared at.
    public var imageSize = 28
    /// Percentile, KID subsets, neighbours (`options.seed` is set from `seed`).
    public var options = AuditOptions()

    public init(synthetic: String, data: String) { self.synthetic = synthetic; self.data = data }
}

/// Synthetic images of one class, NCHW in [-1, 1], with a name for each.
public struct SyntheticClassImages {
    public var className: String
    public var pixels: [Float]
    public var names: [String]
}

/// Quality and memorization audit of synthetic images, per class (see `ClassAudit`): writes
/// `audit.json`, `audit.html` and, per class, `neighbours-<class>.png` (each flagged or shown
/// synthetic image beside its nearest training images) to `output`.
public enum SyntheticAudit {
    public static func run(_ spec: SyntheticAuditSpec, output: URL, progress: (ClassAudit) -> Void = { _ in }) throws
        -> AuditReport
    {
        let source =
            try spec.synthetic.hasSuffix(".safetensors")
            ? openGenerator(checkpoint: spec.synthetic, expected: nil) : nil
        let split = try resolvedSplit(
            seed: spec.splitSeed, ratio: spec.splitRatio, sources: source.map { [$0] } ?? [])
        var selection = spec.selection
        selection?.seed = split.seed
        let real = try loadDataset(
            at: spec.data,
            options: LoadOptions(
                preprocessing: Preprocessing(imageSize: spec.imageSize, scaling: .symmetric), selection: selection))
        let splits = try makeSplits(real, ratio: split.ratio, seed: split.seed)
        let (train, val) = (splits.subset(.train), splits.subset(.val))
        let channels = real.images.channels
        let fakes =
            try source.map {
                try sample(
                    source: $0, className: spec.className, count: spec.count, seed: spec.seed, imageSize: spec.imageSize,
                    channels: channels)
            }
            ?? loadSyntheticImages(
                at: spec.synthetic,
                preprocessing: Preprocessing(
                    imageSize: spec.imageSize, channels: channels,
                    scaling: .symmetric),
                className: spec.className, classNames: train.classNames
            ).map { SyntheticClassImages(className: $0.0, pixels: $0.1, names: $0.2) }
        guard !fakes.isEmpty else {
            throw QualityError.invalidInput(
                "\(spec.synthetic): no synthetic images\(spec.className.map { " of class \($0)" } ?? "")")
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var options = spec.options
        options.seed = spec.seed
        // Fixed feature seed: numbers stay comparable across audits whatever the split seed.
        let extractor = RandomCNNFeatures(channels: channels, seed: 0)
        let shape = [channels, spec.imageSize, spec.imageSize], d = channels * spec.imageSize * spec.imageSize
        var audits: [ClassAudit] = [], grids: [String: [UInt8]] = [:]
        for fake in fakes {
            guard let label = train.classNames.firstIndex(of: fake.className) else {
                throw QualityError.invalidInput(
                    "synthetic class \"\(fake.className)\" is not in \(spec.data): classes are "
                        + train.classNames.joined(separator: ", "))
            }
            func images(_ s: LabeledImages) throws -> Tensor {
                let idx = s.labels.indices.filter { s.labels[$0] == label }
                return try Tensor(shape: [idx.count] + shape, scalars: s.gather(idx).pixels)
            }
            let trainImages = try images(train)
            let audit = try ClassAudit.run(
                className: fake.className,
                synthetic: AuditImages(
                    images: try Tensor(shape: [fake.pixels.count / d] + shape, scalars: fake.pixels),
                    names: fake.names),
                training: trainImages, heldOut: try images(val), extractor: extractor, options: options)
            audits.append(audit)
            // One row per flagged (or shown) image: the synthetic image, then its nearest training images.
            let rows = Array(
                (audit.memorization.flagged.isEmpty ? audit.memorization.shown : audit.memorization.flagged).prefix(16))
            if !rows.isEmpty {
                var pixels: [Float] = []
                for r in rows {
                    pixels += fake.pixels[(r.index * d)..<((r.index + 1) * d)]
                    for n in r.neighbours { pixels += trainImages.scalars[(n * d)..<((n + 1) * d)] }
                }
                let grid = ImageGrid.compose(
                    try Tensor(shape: [pixels.count / d] + shape, scalars: pixels),
                    columns: 1 + rows[0].neighbours.count, scale: spec.imageSize < 64 ? 2 : 1)
                let png = try encodePNG(pixels: grid.pixels, width: grid.width, height: grid.height, channels: grid.channels)
                try AtomicFile.write(png, to: output.appendingPathComponent("neighbours-\(fake.className).png").path)
                grids[fake.className] = png
            }
            progress(audit)
        }
        let report = AuditReport(
            synthetic: spec.synthetic, data: spec.data, extractor: extractor.name, options: options,
            classes: audits)
        try AtomicFile.write(try report.json(), to: output.appendingPathComponent("audit.json").path)
        try AtomicFile.write(Array(report.html(grids: grids).utf8), to: output.appendingPathComponent("audit.html").path)
        return report
    }

    /// `count` images of each class of a generator checkpoint (or of `className` only): a GAN's
    /// moving-average generator in full batches (`SyntheticImageSource.generate`: batch norm never
    /// normalises a batch of one), or a diffusion model with DDIM (`DiffusionImageSource`), told
    /// apart by the checkpoint's metadata. The checkpoint must make `channels` x `imageSize` images.
    public static func sample(checkpoint: URL, className: String?, count: Int, seed: UInt64, imageSize: Int, channels: Int) throws
        -> [SyntheticClassImages]
    {
        try sample(
            source: openGenerator(checkpoint: checkpoint.path, expected: nil), className: className, count: count, seed: seed,
            imageSize: imageSize, channels: channels)
    }

    /// `sample(checkpoint:...)` from a generator already opened.
    static func sample(
        source: any SyntheticImages, className: String?, count: Int, seed: UInt64, imageSize: Int, channels: Int
    ) throws -> [SyntheticClassImages] {
        guard source.imageSize == imageSize, source.channels == channels else {
            throw SamplingError.shapeMismatch(
                path: source.url.path,
                reason: "it makes \(source.channels)x\(source.imageSize) px images; the data is "
                    + "\(channels)x\(imageSize) (set the image size)")
        }
        return try (className.map { [$0] } ?? source.classNames).map { name in
            SyntheticClassImages(
                className: name, pixels: try source.generate(className: name, count: count, seed: seed),
                names: (0..<count).map { "\(name)-sample\($0)" })
        }
    }
}

extension ClassAudit {
    /// What `audit` prints for a class: its scores in one line, then the Fréchet distance's warnings.
    public var summaryLines: [String] {
        [
            String(
                format: "%@: KID %.4f +- %.4f  FD %.3f  P %.2f R %.2f D %.2f C %.2f  diversity %.2f  flagged %d/%d",
                className, kid.mean, kid.std, frechetDistance.value, prdc.precision, prdc.recall, prdc.density,
                prdc.coverage, diversity, memorization.flagged.count, syntheticCount)
        ] + frechetDistance.warnings.map { "warning: \($0)" }
    }
}
