import Datasets

/// The real images a GAN trains on, and the manifest that names each of them.
public struct GANTrainingSet: Sendable {
    /// The images, (N, C, S, S) in [-1, 1].
    public var data: GANTrainingData
    /// One row per training image (split `train`), in `data` order.
    public var manifest: [ManifestEntry]
    /// The class selection the data was loaded with, if any (recorded beside the manifest).
    public var selection: ClassSelection?
    /// What loading and splitting left out or warn of (skipped files, colour among gray images,
    /// small classes, duplicates), as lines to print (`LoadedDataset.problemNotes`).
    public var notes: [String]
}

/// Loads the training split of a dataset for a GAN: `makeSplits` (the split every command
/// uses, so no image a classifier is tested on is ever shown to the GAN), of one class
/// (`className`) or of every class (with labels when `conditional`).
///
/// `options.preprocessing.scaling` is set to `.symmetric` (DCGAN's tanh range); the class
/// selection in `options` applies before the split, as for every other reader.
public func loadGANTrainingSet(
    at path: String, options: LoadOptions, className: String? = nil, conditional: Bool = false,
    ratio: SplitRatio = .standard, seed: UInt64
) throws -> GANTrainingSet {
    var options = options
    options.preprocessing.scaling = .symmetric
    let dataset = try loadDataset(at: path, options: options)
    let split = try makeSplits(dataset, ratio: ratio, seed: seed)
    var indices = split.indices(of: .train)
    var names = split.images.classNames
    if let className {
        guard let label = names.firstIndex(of: className) else {
            throw GANError.invalidOption("class \"\(className)\" is not in \(path): classes are \(names.joined(separator: ", "))")
        }
        indices = indices.filter { split.images.labels[$0] == label }
        names = [className]
    }
    let train = split.images.subset(indices)
    let manifest = split.manifest()
    let data = GANTrainingData(
        pixels: train.pixels, count: train.count, channels: train.channels,
        size: options.preprocessing.imageSize, labels: conditional && className == nil ? train.labels : nil,
        classNames: names)
    return GANTrainingSet(
        data: data, manifest: indices.map { manifest[$0] }, selection: split.selection,
        notes: dataset.problemNotes + split.warnings.map { "warning: \($0)" })
}
