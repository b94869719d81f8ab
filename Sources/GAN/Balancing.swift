import AtomicIO
import Datasets
import Foundation
import Hashing

/// How many training images each class should end up with.
public enum BalanceTarget: Equatable, Sendable, CustomStringConvertible {
    /// The largest class's training count.
    case majority
    /// A fixed count per class.
    case count(Int)

    /// Parses `majority` or a positive integer.
    public init?(_ text: String) {
        if text == "majority" { self = .majority } else if let n = Int(text), n > 0 { self = .count(n) } else { return nil }
    }

    public var description: String {
        switch self {
        case .majority: return "majority"
        case .count(let n): return "\(n)"
        }
    }
}

/// Which of the generated candidates are kept.
public enum SyntheticSelection: String, Codable, Sendable, CaseIterable {
    /// Keep the first ones generated.
    case none
    /// Generate `candidatesFactor` times as many and keep those the discriminator scores highest.
    case discriminator
}

/// Options of `balanceTrainingSet`.
public struct BalanceOptions: Sendable {
    /// Images per class to reach.
    public var target: BalanceTarget = .majority
    /// At most this many synthetic images per real image of a class (nil = unlimited).
    public var maxSyntheticRatio: Double? = nil
    /// Keep the first generated images, or the discriminator's favourites.
    public var selection: SyntheticSelection = .none
    /// With `.discriminator`: candidates generated per image kept.
    public var candidatesFactor = 4
    /// Generation seeds derive from this (class c uses `seed + c`).
    public var seed: UInt64 = 0
    /// Defaults: majority target, no ratio cap, no selection, seed 0.
    public init() {}
}

/// Where a synthetic image came from, enough to regenerate it: the checkpoint's generator
/// (`SyntheticImageSource` or `DiffusionImageSource`) `.generate(className:count:seed:)[sampleIndex]`
/// (for a GAN, with the same batch size).
public struct SyntheticProvenance: Codable, Equatable, Sendable {
    /// Path of the generator's checkpoint (a GAN's or a diffusion model's).
    public var checkpoint: String
    /// Seed of the `generate` call.
    public var seed: UInt64
    /// Position among the images (candidates) that call produced.
    public var sampleIndex: Int
}

/// What balancing did for one class.
public struct ClassBalance: Sendable, Equatable {
    /// The class.
    public var className: String
    /// Real training images of the class.
    public var real: Int
    /// Synthetic images added.
    public var synthetic: Int
    /// The checkpoint used (nil when none covers the class or none was needed).
    public var checkpoint: String?
}

/// A training set with synthetic images added: real images first (in the given order), then
/// the synthetic ones class by class. Pixels NCHW in the scaling of the real images.
public struct BalancedSet: Sendable {
    /// Class names; labels index them.
    public var classNames: [String]
    /// Image channels and side length.
    public var channels: Int, size: Int
    /// (count, channels, size, size) NCHW.
    public var pixels: [Float]
    /// One class index per image.
    public var labels: [Int]
    /// True for generated images.
    public var synthetic: [Bool]
    /// Per image: the real image's source location, or nil for synthetic ones.
    public var realSources: [String?]
    /// Per image: the generator and seed for synthetic ones, nil for real ones.
    public var provenance: [SyntheticProvenance?]
    /// One entry per class, in class order.
    public var perClass: [ClassBalance]
    /// Classes below the target that no checkpoint covers, and similar remarks.
    public var warnings: [String]

    /// Number of images, real and synthetic.
    public var count: Int { labels.count }
}

/// Adds synthetic images to the classes of `train` that have fewer than the target, from the
/// checkpoint that covers each class (a per-class model named after it, else a conditional model
/// that knows it; the first given wins). `scaling` is the real images' pixel range; generated
/// images ([-1, 1]) are converted to it.
///
/// Per class: synthetic = min(target - real, floor(maxSyntheticRatio * real)), never negative.
public func balanceTrainingSet(
    _ train: LabeledImages, scaling: PixelScaling = .symmetric, sources: [any SyntheticImages],
    options: BalanceOptions = .init()
) throws -> BalancedSet {
    guard train.height == train.width else {
        throw GANError.invalidOption("training images are \(train.height)x\(train.width); generators make square images")
    }
    for s in sources where s.imageSize != train.width || s.channels != train.channels {
        throw GANError.invalidOption(
            "\(s.url.path) makes \(s.channels)x\(s.imageSize)x\(s.imageSize) images "
                + "but the training set is \(train.channels)x\(train.height)x\(train.width)")
    }
    if options.selection == .discriminator, let s = sources.first(where: { !($0 is SyntheticImageSource) }) {
        throw GANError.invalidOption("\(s.url.path) is not a GAN: selecting by discriminator score needs GAN checkpoints")
    }
    for s in sources where !s.classNames.contains(where: train.classNames.contains) {
        throw GANError.invalidOption(
            "\(s.url.path) knows \(s.classNames.joined(separator: ", ")), none of which is a class of "
                + "the training set (\(train.classNames.joined(separator: ", ")))")
    }
    guard options.candidatesFactor >= 1 else { throw GANError.invalidOption("candidates factor must be at least 1") }
    if let r = options.maxSyntheticRatio, !(r >= 0) { throw GANError.invalidOption("max synthetic ratio must be >= 0, not \(r)") }
    let counts = train.classCounts
    let target: Int
    switch options.target {
    case .majority: target = counts.max() ?? 0
    case .count(let n): target = n
    }
    var set = BalancedSet(
        classNames: train.classNames, channels: train.channels, size: train.width, pixels: train.pixels,
        labels: train.labels, synthetic: Array(repeating: false, count: train.count),
        realSources: train.sources.map(\.location), provenance: Array(repeating: nil, count: train.count),
        perClass: [], warnings: [])
    for (c, name) in train.classNames.enumerated() {
        let real = counts[c]
        var wanted = max(0, target - real)
        if let r = options.maxSyntheticRatio { wanted = min(wanted, Int((r * Double(real)).rounded(.down))) }
        let source =
            sources.first { !$0.isConditional && $0.classNames == [name] }
            ?? sources.first { $0.isConditional && $0.classNames.contains(name) }
        guard wanted > 0, let source else {
            if wanted > 0 { set.warnings.append("class \(name) has \(real) of \(target) images and no checkpoint covers it") }
            set.perClass.append(ClassBalance(className: name, real: real, synthetic: 0, checkpoint: nil))
            continue
        }
        let seed = options.seed &+ UInt64(c)
        let factor = options.selection == .discriminator ? options.candidatesFactor : 1
        let candidates = try source.generate(className: name, count: wanted * factor, seed: seed)
        let perImage = train.channels * train.width * train.width
        var kept = Array(0..<wanted)
        if options.selection == .discriminator, let gan = source as? SyntheticImageSource {
            let scores = try gan.discriminatorScores(candidates, className: name)
            // Highest scores first; ties by generation order so the choice is deterministic.
            kept = Array(scores.indices.sorted { (scores[$0], $1) > (scores[$1], $0) }.prefix(wanted)).sorted()
        }
        for i in kept {
            let image = candidates[(i * perImage)..<((i + 1) * perImage)]
            set.pixels.append(contentsOf: scaling == .symmetric ? Array(image) : image.map { ($0 + 1) / 2 })
            set.labels.append(c); set.synthetic.append(true); set.realSources.append(nil)
            set.provenance.append(SyntheticProvenance(checkpoint: source.url.path, seed: seed, sampleIndex: i))
        }
        set.perClass.append(ClassBalance(className: name, real: real, synthetic: wanted, checkpoint: source.url.path))
    }
    return set
}

/// One line of a balanced set's `manifest.jsonl`.
public struct BalancedManifestEntry: Codable, Equatable, Sendable {
    /// Position in the balanced set.
    public var index: Int
    /// The real image's original location, or the checkpoint for a synthetic one.
    public var source: String
    /// The PNG, relative to the output folder.
    public var file: String
    /// The class name (`class` in JSON).
    public var className: String
    /// Always `train`: only the training split is balanced.
    public var split: Split
    /// SHA-256 of the PNG file.
    public var sha256: String
    /// True for generated images.
    public var synthetic: Bool
    /// Synthetic images: the checkpoint, seed and position that regenerate them (`sample_index` in JSON).
    public var checkpoint: String?
    public var seed: UInt64?
    public var sampleIndex: Int?

    enum CodingKeys: String, CodingKey {
        case index, source, file, className = "class", split, sha256, synthetic, checkpoint, seed, sampleIndex = "sample_index"
    }
}

/// Writes a balanced set as a class-folder tree: `<dir>/<class>/real-NNNNN.png` (real images,
/// numbered by their position in the set), `<dir>/<class>/syn-NNNNN.png` (synthetic, numbered
/// within their class), and `<dir>/manifest.jsonl`. Refuses a folder that already holds a manifest.
@discardableResult
public func writeBalancedSet(_ set: BalancedSet, scaling: PixelScaling = .symmetric, to dir: String) throws
    -> [BalancedManifestEntry]
{
    let manifestPath = (dir as NSString).appendingPathComponent("manifest.jsonl")
    guard !FileManager.default.fileExists(atPath: manifestPath) else {
        throw GANError.invalidOption("\(dir) already holds a balanced set (\(manifestPath)); choose a new output folder")
    }
    for name in set.classNames {
        try FileManager.default.createDirectory(
            atPath: (dir as NSString).appendingPathComponent(name),
            withIntermediateDirectories: true)
    }
    let symmetric = scaling == .symmetric ? set.pixels : set.pixels.map { $0 * 2 - 1 }
    let images = imageBytes(symmetric, channels: set.channels, size: set.size)
    var syntheticNumber = [Int](repeating: 0, count: set.classNames.count)
    var entries = [BalancedManifestEntry]()
    for (i, bytes) in images.enumerated() {
        let c = set.labels[i], className = set.classNames[c]
        let name: String
        if set.synthetic[i] {
            name = String(format: "syn-%05d.png", syntheticNumber[c]); syntheticNumber[c] += 1
        } else {
            name = String(format: "real-%05d.png", i)
        }
        let file = className + "/" + name
        let png = try encodePNG(pixels: bytes, width: set.size, height: set.size, channels: set.channels)
        try AtomicFile.write(png, to: (dir as NSString).appendingPathComponent(file))
        let p = set.provenance[i]
        entries.append(
            BalancedManifestEntry(
                index: i, source: set.realSources[i] ?? p?.checkpoint ?? "", file: file,
                className: className, split: .train, sha256: sha256Hex(png),
                synthetic: set.synthetic[i], checkpoint: p?.checkpoint, seed: p?.seed,
                sampleIndex: p?.sampleIndex))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let text = try entries.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
    try AtomicFile.write(Array(text.utf8), to: manifestPath)
    return entries
}
