import Autodiff
import Datasets
import Evaluation
import Foundation

/// Settings of a quality and memorization audit.
public struct AuditOptions: Codable, Equatable, Sendable {
    /// KID subsets (subset size min(n_real, n_fake, 100)).
    public var kidSubsets = 50
    /// Neighbours for precision/recall/density/coverage.
    public var k = 5
    /// Flag synthetic images below this percentile of held-out nearest-training distances.
    public var percentile: Double = 1
    public var seed: UInt64 = 0
    public init() {}
}

/// Images of one class for an audit, NCHW in [-1, 1].
public struct AuditImages {
    public var images: Tensor
    public var names: [String]
    public init(images: Tensor, names: [String]) { self.images = images; self.names = names }
}

/// Quality and memorization of one class's synthetic images against its real ones.
public struct ClassAudit: Codable, Equatable, Sendable {
    public var className: String
    public var syntheticCount: Int, trainingCount: Int, heldOutCount: Int
    public var kid: KernelDistance
    public var frechetDistance: FrechetDistance
    public var prdc: PRDC
    public var diversity: Double
    public var memorization: MemorizationAudit

    /// Audits `synthetic` of class `className`. Fidelity and diversity (KID, FD, PRDC, diversity)
    /// compare the synthetic images with the training images the generator learned from;
    /// memorization thresholds come from the held-out images.
    public static func run(
        className: String, synthetic: AuditImages, training: Tensor, heldOut: Tensor,
        extractor: any FeatureExtractor, options: AuditOptions = .init()
    ) throws -> ClassAudit {
        let sf = try extractor.features(synthetic.images), tf = try extractor.features(training)
        let hf = try extractor.features(heldOut)
        let memorization = try MemorizationAudit.run(
            synthetic: (try FeatureMatrix(synthetic.images), sf, synthetic.names),
            training: (try FeatureMatrix(training), tf), heldOut: (try FeatureMatrix(heldOut), hf),
            percentile: options.percentile, seed: options.seed)
        return ClassAudit(
            className: className, syntheticCount: sf.count, trainingCount: tf.count, heldOutCount: hf.count,
            kid: try KernelDistance.compute(real: tf, fake: sf, subsets: options.kidSubsets, seed: options.seed),
            frechetDistance: try FrechetDistance.compute(real: tf, fake: sf),
            prdc: try PRDC.compute(real: tf, fake: sf, k: options.k),
            diversity: try relativeDiversity(real: tf, fake: sf), memorization: memorization)
    }
}

/// The whole audit: what was compared, with what, and the per-class results.
public struct AuditReport: Codable, Equatable, Sendable {
    public var synthetic: String
    public var data: String
    public var extractor: String
    public var options: AuditOptions
    public var classes: [ClassAudit]

    public init(synthetic: String, data: String, extractor: String, options: AuditOptions, classes: [ClassAudit]) {
        self.synthetic = synthetic; self.data = data; self.extractor = extractor; self.options = options
        self.classes = classes
    }

    /// Pretty JSON with sorted keys.
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// A self-contained HTML section: a table of the numbers and, per class, the PNG grid in
    /// `grids[className]` (synthetic image, then its nearest training images, one row each),
    /// embedded as base64.
    public func html(grids: [String: [UInt8]]) -> String {
        func f(_ x: Double) -> String { String(format: "%.4g", x) }
        var h = "<section class=\"medsynth-audit\">\n<h2>Synthetic image audit</h2>\n"
        h +=
            "<p>Synthetic: <code>\(escapeHTML(synthetic))</code>; real: <code>\(escapeHTML(data))</code>; features: "
            + "\(escapeHTML(extractor)). KID, FD, precision/recall/density/coverage (k = \(options.k)) and diversity compare "
            + "the synthetic images with the training split; memorization flags synthetic images nearer to a training "
            + "image than the \(f(options.percentile))th percentile of held-out (validation) images' nearest-training "
            + "distances.</p>\n<table>\n<tr><th>class</th><th>n synth / train / held-out</th><th>KID</th><th>FD</th>"
            + "<th>precision</th><th>recall</th><th>density</th><th>coverage</th><th>diversity</th><th>flagged</th></tr>\n"
        for c in classes {
            h +=
                "<tr><td>\(escapeHTML(c.className))</td><td>\(c.syntheticCount) / \(c.trainingCount) / \(c.heldOutCount)</td>"
                + "<td>\(f(c.kid.mean)) &plusmn; \(f(c.kid.std))</td><td>\(f(c.frechetDistance.value))</td>"
                + "<td>\(f(c.prdc.precision))</td><td>\(f(c.prdc.recall))</td><td>\(f(c.prdc.density))</td>"
                + "<td>\(f(c.prdc.coverage))</td><td>\(f(c.diversity))</td><td>\(c.memorization.flagged.count)</td></tr>\n"
        }
        h += "</table>\n"
        for c in classes {
            let m = c.memorization
            h += "<h3>\(escapeHTML(c.className))</h3>\n"
            for w in c.frechetDistance.warnings { h += "<p><em>\(escapeHTML(w))</em></p>\n" }
            h +=
                "<p>Thresholds: pixel \(f(m.pixelThreshold)), feature \(f(m.featureThreshold)) (from \(m.heldOutCount) "
                + "held-out images). "
            let rows = m.flagged.isEmpty ? m.shown : m.flagged
            h +=
                m.flagged.isEmpty
                ? "Nothing flagged; \(rows.count) random synthetic images with their nearest training images:"
                : "\(m.flagged.count) flagged: " + m.flagged.map { escapeHTML($0.name) }.joined(separator: ", ")
            h += "</p>\n"
            if let png = grids[c.className] {
                h += "<p>Each row: synthetic image, then its 3 nearest training images (pixel space).</p>\n"
                h +=
                    "<img alt=\"nearest neighbours, \(escapeHTML(c.className))\" src=\"data:image/png;base64,"
                    + Data(png).base64EncodedString() + "\">\n"
            }
        }
        return h + "</section>\n"
    }
}

/// Loads synthetic images, per class: a `.npz` (through `loadDataset`), a folder with one
/// sub-folder per class, or, with `className`, a folder of images of that one class.
/// Returns (class name, pixels NCHW, file names) for each class found.
public func loadSyntheticImages(
    at path: String, preprocessing: Preprocessing, className: String?, classNames: [String]? = nil
) throws
    -> [(className: String, pixels: [Float], names: [String])]
{
    if path.lowercased().hasSuffix(".npz") {
        let d: LabeledImages
        do {
            d = try loadDataset(at: path, options: LoadOptions(preprocessing: preprocessing)).images
        } catch DatasetError
            .noSplitArrays(_, _)
        {  // not MedMNIST's layout: the one `gan sample` writes
            return try syntheticImages(
                readImageLabelArrays(at: path), path: path, preprocessing: preprocessing, className: className,
                classNames: classNames)
        }
        return d.classNames.enumerated().compactMap { label, name in
            guard className == nil || className == name else { return nil }
            let idx = d.labels.indices.filter { d.labels[$0] == label }
            return idx.isEmpty ? nil : (name, d.gather(idx).pixels, idx.map { "\(name)#\($0)" })
        }
    }
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
        throw QualityError.invalidInput("\(path): not a folder or .npz of synthetic images")
    }
    let entries = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
    let folders = entries.filter {
        var d: ObjCBool = false; return fm.fileExists(atPath: "\(path)/\($0)", isDirectory: &d) && d.boolValue
    }
    if let className, !folders.contains(className) {
        let r = try readImages(in: path, preprocessing)
        return [(className, r.pixels, r.names)]
    }
    return try folders.filter { className == nil || $0 == className }.map { name in
        let r = try readImages(in: "\(path)/\(name)", preprocessing)
        return (name, r.pixels, r.names)
    }
}

/// The images of a `gan sample` npz (`images`, `labels`), per class: with `className`, a file of
/// one label is that class (a per-class model's samples, label 0 by default); otherwise each
/// label is an index into `classNames` (a conditional model's, trained on the same classes).
func syntheticImages(
    _ arrays: NPZSplitArrays, path: String, preprocessing p: Preprocessing, className: String?, classNames: [String]?
) throws -> [(className: String, pixels: [Float], names: [String])] {
    let labels = arrays.labels, distinct = Set(labels)
    let names: [Int: String]
    if let className, distinct.count == 1 {
        names = [labels[0]: className]
    } else if let classNames {
        if let bad = distinct.sorted().first(where: { !classNames.indices.contains($0) }) {
            throw QualityError.invalidInput(
                "\(path): label \(bad) is not a class index of the data (\(classNames.count) classes: "
                    + "\(classNames.joined(separator: ", ")))")
        }
        names = Dictionary(uniqueKeysWithValues: distinct.map { ($0, classNames[$0]) })
    } else {
        throw QualityError.invalidInput("\(path): labels \(distinct.sorted()) name no class; give --class for a one-class file")
    }
    let (h, w, c) = (arrays.height, arrays.width, arrays.channels), perImage = h * w * c
    return try names.keys.sorted().compactMap { label in
        let name = names[label]!
        guard className == nil || className == name else { return nil }
        let indices = labels.indices.filter { labels[$0] == label }
        var pixels: [Float] = []
        for i in indices {
            arrays.images.data[(i * perImage)..<((i + 1) * perImage)].withUnsafeBufferPointer {
                preprocessImage(
                    $0, width: w, height: h, channels: c, outChannels: p.channels ?? c, size: p.imageSize,
                    scaling: p.scaling, into: &pixels)
            }
        }
        guard !indices.isEmpty else { throw QualityError.invalidInput("\(path): no images of \(name)") }
        return (name, pixels, indices.map { "\(name)#\($0)" })
    }
}

/// The PNG/JPEG files directly in `folder`, decoded and preprocessed, sorted by name.
func readImages(in folder: String, _ p: Preprocessing) throws -> (pixels: [Float], names: [String]) {
    let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
        let l = $0.lowercased()
        return !$0.hasPrefix(".") && (l.hasSuffix(".png") || l.hasSuffix(".jpg") || l.hasSuffix(".jpeg"))
    }.sorted()
    guard !files.isEmpty else { throw QualityError.invalidInput("\(folder): no PNG or JPEG images") }
    var pixels: [Float] = []
    for f in files {
        let image = try decodeImage(at: "\(folder)/\(f)")
        let channels = p.channels ?? image.channels
        image.pixels.withUnsafeBufferPointer {
            preprocessImage(
                $0, width: image.width, height: image.height, channels: image.channels, outChannels: channels,
                size: p.imageSize, scaling: p.scaling, into: &pixels)
        }
    }
    return (pixels, files)
}
