import Foundation
import SeededRandom

/// Which classes of a dataset to keep, under which names, and how many images of each.
///
/// The text forms, as the command line takes them:
/// - classes: `"benign=melanocytic_nevus,malignant=melanoma+basal_cell_carcinoma,vascular_lesion"`: comma-separated
///   entries; `name=a+b` makes class `name` of the source classes `a` and `b` (merged), a name
///   alone keeps that class as it is; the entries' order is the label order; unlisted classes are
///   dropped.
/// - subsample: `"benign=1800,normal=235"`: at most N images of each named (output) class, drawn
///   without replacement with `seed`, after merging and before splitting.
///
/// `loadDataset` applies it (`LoadOptions.selection`), so every reader, folders and npz, gets it.
public struct ClassSelection: Codable, Equatable, Sendable, CustomStringConvertible {
    /// One output class and the source classes it is made of.
    public struct OutputClass: Codable, Equatable, Sendable {
        /// The class's name after selection.
        public var name: String
        /// The dataset's class names merged into it, at least one.
        public var sources: [String]

        /// Creates an output class.
        public init(name: String, sources: [String]) { (self.name, self.sources) = (name, sources) }
    }

    /// A cap on one output class.
    public struct Cap: Codable, Equatable, Sendable {
        /// The output class.
        public var className: String
        /// Most images kept (positive).
        public var count: Int

        /// Creates a cap.
        public init(className: String, count: Int) { (self.className, self.count) = (className, count) }
    }

    /// Output classes in label order; nil keeps every class as it is.
    public var classes: [OutputClass]?
    /// Caps, in the order given.
    public var caps: [Cap]
    /// Seeds the subsample (commands pass their split seed).
    public var seed: UInt64

    /// Creates a selection; `validate()` checks it.
    public init(classes: [OutputClass]? = nil, caps: [Cap] = [], seed: UInt64 = 0) {
        (self.classes, self.caps, self.seed) = (classes, caps, seed)
    }

    /// Parses the command-line forms (see the type's summary); nil text means "no change".
    ///
    /// Throws `invalidOption` naming `--classes` or `--subsample` for malformed text, an empty
    /// name, a class listed twice, a source class used twice, or a cap that is not a positive integer.
    public init(classes: String?, subsample: String?, seed: UInt64) throws {
        self.init(seed: seed)
        if let classes {
            self.classes = try Self.entries(classes, option: "--classes").map { entry in
                let (name, rest) = Self.split(entry, at: "=")
                guard let name = name.nonEmpty else {
                    throw DatasetError.invalidOption(
                        name: "--classes", value: classes, reason: "entry '\(entry)' has no class name")
                }
                guard let rest else { return OutputClass(name: name, sources: [name]) }
                let sources = rest.split(separator: "+", omittingEmptySubsequences: false).map(Self.trim)
                guard !sources.isEmpty, sources.allSatisfy({ !$0.isEmpty && !$0.contains("=") }) else {
                    throw DatasetError.invalidOption(
                        name: "--classes", value: classes,
                        reason: "entry '\(entry)': expected NAME=SOURCE or NAME=SOURCE+SOURCE+...")
                }
                return OutputClass(name: name, sources: sources)
            }
        }
        if let subsample {
            caps = try Self.entries(subsample, option: "--subsample").map { entry in
                let (name, rest) = Self.split(entry, at: "=")
                guard let name = name.nonEmpty, let rest, let count = Int(rest) else {
                    throw DatasetError.invalidOption(
                        name: "--subsample", value: subsample,
                        reason: "entry '\(entry)': expected CLASS=N, e.g. benign=1800")
                }
                guard count > 0 else {
                    throw DatasetError.invalidOption(
                        name: "--subsample", value: subsample,
                        reason: "entry '\(entry)': a class must keep at least 1 image")
                }
                return Cap(className: name, count: count)
            }
        }
        try validate()
    }

    /// Checks what can be checked without the data: names unique, sources used once, caps positive and unique.
    public func validate() throws {
        if let classes {
            let text = classes.map { "\($0.name)=\($0.sources.joined(separator: "+"))" }.joined(separator: ",")
            guard !classes.isEmpty else {
                throw DatasetError.invalidOption(name: "--classes", value: text, reason: "selects no class")
            }
            if let name = Self.firstRepeat(classes.map(\.name)) {
                throw DatasetError.invalidOption(name: "--classes", value: text, reason: "class '\(name)' is listed twice")
            }
            if let source = Self.firstRepeat(classes.flatMap(\.sources)) {
                throw DatasetError.invalidOption(
                    name: "--classes", value: text,
                    reason: "source class '\(source)' is used twice: each image belongs to one class")
            }
        }
        let text = caps.map { "\($0.className)=\($0.count)" }.joined(separator: ",")
        if let name = Self.firstRepeat(caps.map(\.className)) {
            throw DatasetError.invalidOption(name: "--subsample", value: text, reason: "class '\(name)' is capped twice")
        }
        if let cap = caps.first(where: { $0.count < 1 }) {
            throw DatasetError.invalidOption(
                name: "--subsample", value: text,
                reason: "'\(cap.className)=\(cap.count)': a class must keep at least 1 image")
        }
    }

    /// `"benign=melanocytic_nevus, malignant=melanoma; subsample benign=1800 (seed 0)"`.
    public var description: String {
        var parts = [
            classes.map {
                $0.map { $0.sources == [$0.name] ? $0.name : "\($0.name)=\($0.sources.joined(separator: "+"))" }
                    .joined(separator: ",")
            } ?? "all classes"
        ]
        if !caps.isEmpty {
            parts.append("subsample " + caps.map { "\($0.className)=\($0.count)" }.joined(separator: ",") + " (seed \(seed))")
        }
        return parts.joined(separator: "; ")
    }

    /// The selection applied to one loaded dataset (what `loadDataset` does with `LoadOptions.selection`).
    ///
    /// Samples of unlisted classes are dropped; merged classes take their new label; each capped
    /// class keeps a seeded random `count` of its images (all of them, with a warning, when it
    /// has fewer), in dataset order. Preset splits and shapes follow their samples; each kept
    /// sample records its source class (`SampleSource.sourceClass`, the manifest's `source_class`).
    /// Throws `classSelection` for a class the data does not have (naming the ones it has) and
    /// for a selection that leaves no image.
    public func apply(to dataset: LoadedDataset) throws -> LoadedDataset {
        try validate()
        let known = dataset.images.classNames
        let outputs = classes ?? known.map { OutputClass(name: $0, sources: [$0]) }
        var labelOf = [Int: Int]()  // source label -> output label
        for (k, output) in outputs.enumerated() {
            for source in output.sources {
                guard let label = known.firstIndex(of: source) else {
                    throw DatasetError.classSelection(
                        path: dataset.path, option: "--classes",
                        reason: "class '\(source)' is not in the data; its classes are \(known.joined(separator: ", "))")
                }
                labelOf[label] = k
            }
        }
        for cap in caps where !outputs.contains(where: { $0.name == cap.className }) {
            throw DatasetError.classSelection(
                path: dataset.path, option: "--subsample",
                reason:
                    "class '\(cap.className)' is not a selected class; they are \(outputs.map(\.name).joined(separator: ", "))")
        }
        var members = [[Int]](repeating: [], count: outputs.count)  // dataset indices per output class
        for (i, label) in dataset.images.labels.enumerated() { if let k = labelOf[label] { members[k].append(i) } }
        var warnings = [String]()
        let root = SeededGenerator(seed: seed)
        for cap in caps {
            let k = outputs.firstIndex { $0.name == cap.className }!
            guard members[k].count > cap.count else {
                warnings.append(
                    "--subsample \(cap.className)=\(cap.count): the class has only \(members[k].count) images; all kept")
                continue
            }
            var rng = root.fork(UInt64(k))
            var chosen = members[k]
            rng.shuffle(&chosen)
            members[k] = chosen.prefix(cap.count).sorted()
        }
        let kept = members.flatMap { $0 }.sorted()
        guard !kept.isEmpty else {
            throw DatasetError.classSelection(
                path: dataset.path, option: "--classes", reason: "the selection (\(self)) leaves no image")
        }
        var images = dataset.images.subset(kept)
        images.classNames = outputs.map(\.name)
        images.labels = kept.map { labelOf[dataset.images.labels[$0]]! }
        for (j, i) in kept.enumerated() { images.sources[j].sourceClass = known[dataset.images.labels[i]] }
        var result = dataset
        result.images = images
        result.presetSplits = dataset.presetSplits.map { preset in kept.map { preset[$0] } }
        result.originalShapes = kept.map { dataset.originalShapes[$0] }
        result.dicom = dataset.dicom.isEmpty ? [] : kept.map { dataset.dicom[$0] }
        result.warnings += warnings
        result.selection = self
        return result
    }

    // MARK: Parsing helpers

    private static func entries(_ text: String, option: String) throws -> [String] {
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map(trim)
        guard !entries.isEmpty, entries.allSatisfy({ !$0.isEmpty }) else {
            throw DatasetError.invalidOption(name: option, value: text, reason: "an entry is empty (stray comma?)")
        }
        return entries
    }

    private static func split(_ entry: String, at separator: Character) -> (String, String?) {
        guard let i = entry.firstIndex(of: separator) else { return (trim(entry), nil) }
        return (trim(entry[..<i]), trim(entry[entry.index(after: i)...]))
    }

    private static func trim(_ s: some StringProtocol) -> String {
        String(s).trimmingCharacters(in: .whitespaces)
    }

    private static func firstRepeat(_ names: [String]) -> String? {
        var seen = Set<String>()
        return names.first { !seen.insert($0).inserted }
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
