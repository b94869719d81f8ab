import Foundation
import SeededRandom

/// Relative sizes of train, val and test, e.g. `8:1:1`.
public struct SplitRatio: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Weight of the training part.
    public var train: Double
    /// Weight of the validation part.
    public var val: Double
    /// Weight of the test part (0 when a test set is given separately).
    public var test: Double

    /// The default 8:1:1.
    public static let standard = SplitRatio(train: 8, val: 1, test: 1)

    /// Creates a ratio from three non-negative parts (train must be positive).
    public init(train: Double, val: Double, test: Double) {
        (self.train, self.val, self.test) = (train, val, test)
    }

    /// Parses `"8:1:1"` (or `"80:10:10"`, `"0.8:0.1:0.1"`, `"9:1"` for train:val only).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ $0 != nil && $0!.isFinite && $0! >= 0 }),
            let train = parts[0], train > 0
        else {
            throw DatasetError.invalidOption(
                name: "split ratio", value: text, reason: "expected train:val:test of non-negative numbers, e.g. 8:1:1")
        }
        self.init(train: train, val: parts[1]!, test: parts.count == 3 ? parts[2]! : 0)
    }

    /// `"8:1:1"`.
    public var description: String { "\(train.clean):\(val.clean):\(test.clean)" }
}

private extension Double {
    var clean: String { rounded() == self ? String(Int(self)) : String(self) }
}

/// Per-sample split assignment and any warnings raised while making it.
public struct SplitAssignment: Sendable {
    /// One split per sample.
    public var splits: [Split]
    /// E.g. a class too small to appear in every split.
    public var warnings: [String]
}

/// Stratified split: each class is shuffled (seeded) and cut by `ratio` on its own.
///
/// A class with at least 3 samples gets at least one in every split whose ratio part is
/// positive; a smaller class goes to train first, then val, then test, with a warning.
/// With `groups` (one key per sample, e.g. its SHA-256), samples that share a key end up in
/// one split: each takes the split of the group's first sample, so an image stored twice can
/// never be trained on and tested on. The same labels, ratio and seed always give the same assignment.
public func stratifiedSplit(
    labels: [Int], classNames: [String], ratio: SplitRatio, seed: UInt64,
    groups: [String]? = nil
) -> SplitAssignment {
    var splits = [Split](repeating: .train, count: labels.count)
    var warnings = [String]()
    let root = SeededGenerator(seed: seed)
    let total = ratio.train + ratio.val + ratio.test
    for (label, name) in classNames.enumerated() {
        var members = labels.indices.filter { labels[$0] == label }
        var rng = root.fork(UInt64(label))
        rng.shuffle(&members)
        let n = members.count
        var nVal = ratio.val > 0 ? Int((Double(n) * ratio.val / total).rounded()) : 0
        var nTest = ratio.test > 0 ? Int((Double(n) * ratio.test / total).rounded()) : 0
        let wanted = 1 + (ratio.val > 0 ? 1 : 0) + (ratio.test > 0 ? 1 : 0)
        if n >= wanted {
            if ratio.val > 0 { nVal = max(1, nVal) }
            if ratio.test > 0 { nTest = max(1, nTest) }
            while n - nVal - nTest < 1 { if nVal >= nTest { nVal -= 1 } else { nTest -= 1 } }
        } else {
            // Too few to cover every split: one each, train first.
            nVal = ratio.val > 0 && n >= 2 ? 1 : 0
            nTest = ratio.test > 0 && n - 1 - nVal >= 1 ? 1 : 0
            warnings.append("class '\(name)' has \(n) sample(s), too few to appear in every split")
        }
        for (k, index) in members.enumerated() {
            splits[index] = k < nTest ? .test : (k < nTest + nVal ? .val : .train)
        }
    }
    if let groups {
        // NOTE: after the cut, not before: the per-class shares move by at most the number of duplicates.
        var first = [String: Split]()
        for i in labels.indices {
            if let s = first[groups[i]] { splits[i] = s } else { first[groups[i]] = splits[i] }
        }
    }
    return SplitAssignment(splits: splits, warnings: warnings)
}

/// A dataset with every sample assigned to train, val or test.
public struct SplitDataset: Sendable {
    /// All samples (the explicit test set, if any, appended at the end).
    public var images: LabeledImages
    /// One split per sample.
    public var splits: [Split]
    /// Small classes, duplicate images across splits or classes, ...
    public var warnings: [String]
    /// The class selection the data was loaded with, if any.
    public var selection: ClassSelection? = nil

    /// Indices of the samples in `split`, in dataset order.
    public func indices(of split: Split) -> [Int] { splits.indices.filter { splits[$0] == split } }

    /// The samples of one split as their own set.
    public func subset(_ split: Split) -> LabeledImages { images.subset(indices(of: split)) }

    /// One manifest row per sample.
    public func manifest() -> [ManifestEntry] {
        images.sources.indices.map { i in
            ManifestEntry(
                index: i, source: images.sources[i].location,
                className: images.classNames[images.labels[i]], split: splits[i],
                sha256: images.sources[i].sha256, synthetic: false, sourceClass: images.sources[i].sourceClass)
        }
    }
}

/// Which split a model's training images came from: `makeSplits` with this seed and ratio. Every
/// command that reads data takes both (`--split-seed`, `--ratio`; defaults 0 and 8:1:1), apart
/// from the seeds of weights and noise, so a generator and a classifier trained with different
/// `--seed`s still share one split and no test image reaches a generator. Generator checkpoints
/// record it (`TrainingPlan.split`); `audit` and `balance` use it and refuse another.
public struct SplitChoice: Codable, Equatable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var ratio: SplitRatio

    public init(seed: UInt64 = 0, ratio: SplitRatio = .standard) { self.seed = seed; self.ratio = ratio }

    /// `"split seed 0, ratio 8:1:1"`.
    public var description: String { "split seed \(seed), ratio \(ratio)" }
}

/// Assigns splits to a loaded dataset: the one split function every command and library uses,
/// so a GAN never trains on an image that a classifier is later tested on.
///
/// - An npz's own train/val arrays are kept unless `resplit` is true. When they hold no test
///   split and no `explicitTest` is given (e.g. MedMNIST files without their test arrays), a
///   stratified test part is cut from the preset train split by `ratio.test : ratio.train`, so
///   the official validation split stays as it is.
/// - `explicitTest` (loaded with the same preprocessing) becomes the whole test split; `ratio`
///   then applies to train:val only. Its classes are matched to the dataset's by name.
/// - Otherwise `stratifiedSplit` with `ratio` and `seed`.
/// Identical images (equal SHA-256) always share a split. Warnings include duplicates across
/// splits (only an npz's own splits or an explicit test set can still have them) or classes.
/// The same inputs always give the same split (`medsynth evaluate` relies on it).
public func makeSplits(
    _ dataset: LoadedDataset, ratio: SplitRatio = .standard, seed: UInt64,
    resplit: Bool = false, explicitTest: LoadedDataset? = nil
) throws -> SplitDataset {
    var images = dataset.images
    var splits: [Split]
    var warnings = [String]()
    let hashes = images.sources.map(\.sha256)
    if let preset = dataset.presetSplits, !resplit, explicitTest == nil {
        splits = preset
        if !preset.contains(.test), ratio.test > 0 {
            let trainIndices = splits.indices.filter { splits[$0] == .train }
            let carve = stratifiedSplit(
                labels: trainIndices.map { images.labels[$0] }, classNames: images.classNames,
                ratio: SplitRatio(train: ratio.train, val: 0, test: ratio.test), seed: seed,
                groups: trainIndices.map { hashes[$0] })
            for (k, i) in trainIndices.enumerated() where carve.splits[k] == .test { splits[i] = .test }
            warnings += carve.warnings
        }
    } else {
        let trainVal = explicitTest == nil ? ratio : SplitRatio(train: ratio.train, val: ratio.val, test: 0)
        let assignment = stratifiedSplit(
            labels: images.labels, classNames: images.classNames, ratio: trainVal, seed: seed,
            groups: hashes)
        (splits, warnings) = (assignment.splits, assignment.warnings)
    }
    if let test = explicitTest {
        let t = test.images
        guard (t.channels, t.height, t.width) == (images.channels, images.height, images.width) else {
            throw DatasetError.invalidOption(
                name: "test set", value: test.path,
                reason: "images are \(t.channels)x\(t.height)x\(t.width), dataset is "
                    + "\(images.channels)x\(images.height)x\(images.width): load both with the same preprocessing")
        }
        var labels = [Int]()
        for label in t.labels {
            guard let mapped = images.classNames.firstIndex(of: t.classNames[label]) else {
                throw DatasetError.unknownClass(path: test.path, className: t.classNames[label])
            }
            labels.append(mapped)
        }
        images = LabeledImages(
            classNames: images.classNames, channels: images.channels, height: images.height,
            width: images.width, pixels: images.pixels + t.pixels,
            labels: images.labels + labels, sources: images.sources + t.sources)
        splits += Array(repeating: .test, count: t.count)
    }
    warnings += duplicateWarnings(images: images, splits: splits)
    return SplitDataset(images: images, splits: splits, warnings: warnings, selection: dataset.selection)
}

/// Warnings for identical images (same SHA-256) that sit in two splits or two classes.
public func duplicateWarnings(images: LabeledImages, splits: [Split]) -> [String] {
    var groups = [String: [Int]]()
    for (i, source) in images.sources.enumerated() { groups[source.sha256, default: []].append(i) }
    var warnings = [String]()
    for (hash, members) in groups.sorted(by: { $0.key < $1.key }) where members.count > 1 {
        let inSplits = Set(members.map { splits[$0] }), inClasses = Set(members.map { images.labels[$0] })
        guard inSplits.count > 1 || inClasses.count > 1 else { continue }
        let kind = inClasses.count > 1 ? "different classes" : "different splits"
        let where_ = members.prefix(4).map {
            "\(images.sources[$0].location) (\(images.classNames[images.labels[$0]]), \(splits[$0].rawValue))"
        }
        warnings.append(
            "duplicate image sha256 \(hash.prefix(12)) in \(kind): \(where_.joined(separator: "; "))"
                + (members.count > 4 ? " and \(members.count - 4) more" : ""))
    }
    return warnings
}
