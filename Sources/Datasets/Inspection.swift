/// A summary of a dataset for people: counts per class and split, imbalance, shapes, problems.
public struct InspectionReport: Codable, Sendable {
    /// One class's row.
    public struct ClassSummary: Codable, Sendable {
        /// Class name.
        public var name: String
        /// Samples per split (`train`, `val`, `test`).
        public var counts: [String: Int]
        /// Samples in all splits.
        public var total: Int
        /// Fraction of the whole dataset.
        public var share: Double
        /// Size of the largest class divided by this class's size (1 for the largest, 0 for an
        /// empty class: JSON has no infinity).
        public var imbalanceRatio: Double
        /// Stored image shapes (`"28x28x3"`) and how many images have each.
        public var shapes: [String: Int]
        /// DICOM images by modality, bit depth and photometric interpretation
        /// (`"CT, 12/16-bit signed, MONOCHROME2"`, see `DICOMInfo.summary`) and how many have each;
        /// empty when the class has no DICOM file.
        public var dicom: [String: Int] = [:]
    }

    /// The inspected path.
    public var path: String
    /// Folder tree or npz.
    public var format: DatasetFormat
    /// Where the splits come from: the file's own arrays, or the seeded stratified split.
    public var splitSource: String
    /// One row per class, in label order.
    public var classes: [ClassSummary]
    /// Samples per split over all classes.
    public var splitTotals: [String: Int]
    /// All samples.
    public var total: Int
    /// Shape after preprocessing, `"CxHxW"`.
    public var outputShape: String
    /// Files that could not be read, with reasons.
    public var unreadable: [SkippedFile]
    /// Small classes, duplicates, ignored folders.
    public var warnings: [String]
    /// Every problem found: class folders without a usable image, unreadable or non-regular
    /// files, duplicate images. A healthy dataset has none; `data inspect` exits non-zero otherwise.
    public var problems: [String]
}

/// Loads a dataset, splits it (its own splits, or stratified by `ratio` and `seed`) and
/// summarises it. Unreadable files and empty class folders are listed, never fatal (unless
/// `options.strict`), so one look shows every problem in the tree.
public func inspectDataset(
    at path: String, options: LoadOptions = LoadOptions(),
    ratio: SplitRatio = .standard, seed: UInt64 = 0
) throws -> InspectionReport {
    var options = options
    options.keepEmptyClasses = true
    let loaded = try loadDataset(at: path, options: options)
    let split = try makeSplits(loaded, ratio: ratio, seed: seed)
    let images = split.images
    let counts = images.classCounts
    let largest = counts.max() ?? 0
    let classes = images.classNames.indices.map { label -> InspectionReport.ClassSummary in
        let members = images.labels.indices.filter { images.labels[$0] == label }
        var perSplit = Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0.rawValue, 0) })
        var shapes = [String: Int](), dicom = [String: Int]()
        for i in members {
            perSplit[split.splits[i].rawValue, default: 0] += 1
            shapes[loaded.originalShapes[i].description, default: 0] += 1
            if i < loaded.dicom.count, let header = loaded.dicom[i] { dicom[header.summary, default: 0] += 1 }
        }
        let n = members.count
        return .init(
            name: images.classNames[label], counts: perSplit, total: n,
            share: images.count == 0 ? 0 : Double(n) / Double(images.count),
            imbalanceRatio: n == 0 ? 0 : Double(largest) / Double(n), shapes: shapes, dicom: dicom)
    }
    var totals = Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0.rawValue, 0) })
    for s in split.splits { totals[s.rawValue, default: 0] += 1 }
    return InspectionReport(
        path: path, format: loaded.format,
        splitSource: loaded.presetSplits != nil ? "arrays in the file" : "stratified \(ratio), seed \(seed)",
        classes: classes, splitTotals: totals, total: images.count,
        outputShape: "\(images.channels)x\(images.height)x\(images.width)",
        unreadable: loaded.skipped, warnings: loaded.warnings + split.warnings,
        problems: loaded.emptyClasses + loaded.skipped.map(\.reason)
            + split.warnings.filter { $0.hasPrefix("duplicate image") })
}
