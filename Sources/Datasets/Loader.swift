import Foundation
import Hashing

/// Options for `loadDataset`.
public struct LoadOptions: Sendable {
    /// Resize, channels and scaling.
    public var preprocessing: Preprocessing
    /// Class names in label order; nil means the sorted sub-folder names (folders) or the
    /// built-in MedMNIST table, else "0", "1", ... (npz).
    public var classes: [String]?
    /// When true the first unreadable image is fatal; otherwise it is skipped and listed.
    public var strict: Bool
    /// Largest image accepted, in pixels (checked from the header, before decoding).
    public var maxPixels: Int
    /// Classes kept, renamed, merged and subsampled after reading (nil: all, as they are).
    public var selection: ClassSelection?
    /// Most bytes read from one image file, or inflated from one `.npz` (refused before allocating).
    public var maxReadBytes: Int
    /// Diagnosis (`inspectDataset`): a class folder without a usable image is listed in the
    /// warnings and kept with no images, instead of stopping the load.
    public var keepEmptyClasses = false

    /// Creates loading options.
    public init(
        preprocessing: Preprocessing = Preprocessing(), classes: [String]? = nil,
        strict: Bool = false, maxPixels: Int = defaultMaxPixels, selection: ClassSelection? = nil,
        maxReadBytes: Int = defaultMaxArchiveBytes
    ) {
        self.preprocessing = preprocessing
        self.classes = classes
        self.strict = strict
        self.maxPixels = maxPixels
        self.selection = selection
        self.maxReadBytes = maxReadBytes
    }
}

/// The two on-disk layouts the loader understands.
public enum DatasetFormat: String, Codable, Sendable {
    /// One sub-folder of PNG/JPEG files per class.
    case classFolders
    /// A MedMNIST `.npz` of `<split>_images`/`<split>_labels` arrays.
    case npz
}

/// A loaded dataset: the images, and what the loader learned on the way.
public struct LoadedDataset: Sendable {
    /// The path that was loaded.
    public var path: String
    /// Folder tree or npz.
    public var format: DatasetFormat
    /// The preprocessed images.
    public var images: LabeledImages
    /// Per-sample split given by the file itself (npz arrays); nil for folders.
    public var presetSplits: [Split]?
    /// Per-sample shape as stored, before preprocessing.
    public var originalShapes: [ImageShape]
    /// Files left out, with reasons (empty with `strict`).
    public var skipped: [SkippedFile]
    /// Non-fatal remarks (e.g. ignored folders, colour images among gray ones).
    public var warnings: [String]
    /// The class selection applied while loading, if any.
    public var selection: ClassSelection? = nil
    /// Classes without a usable image (only with `LoadOptions.keepEmptyClasses`).
    public var emptyClasses: [String] = []
    /// Per sample, the DICOM header fields (nil for PNG and JPEG); empty for npz.
    public var dicom: [DICOMInfo?] = []
}

/// Loads a class-folder tree or a MedMNIST `.npz` (chosen by whether `path` is a folder), then
/// applies `options.selection`.
public func loadDataset(at path: String, options: LoadOptions = LoadOptions()) throws -> LoadedDataset {
    try options.preprocessing.validate()
    try options.selection?.validate()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw DatasetError.notFound(path: path)
    }
    let loaded =
        isDirectory.boolValue
        ? try loadClassFolders(at: path, options: options)
        : try loadNPZ(at: path, options: options)
    return try options.selection?.apply(to: loaded) ?? loaded
}

// MARK: - Class folders

/// The image files of one class, sorted by name.
public struct ClassFolder: Sendable {
    /// The class (folder) name.
    public var name: String
    /// Full paths of its `.png`/`.jpg`/`.jpeg`/`.dcm`/`.dicom` files (case-insensitive), and of its
    /// files without an extension that carry the DICOM preamble; hidden files excluded.
    public var files: [String]
}

/// Lists the classes of a folder tree without decoding anything.
///
/// Hidden files and folders (names starting with ".") are ignored. With `classes`, exactly
/// those folders are used in that order; otherwise every sub-folder, sorted by name.
/// Throws `tooFewClasses` for fewer than two classes and `emptyClass` for a class without images
/// (unless `allowEmpty`). Non-regular files (FIFOs, sockets, devices) stay in the lists: reading
/// refuses them without blocking, so they are skipped and listed like any unreadable file.
public func scanClassFolders(at root: String, classes: [String]? = nil, allowEmpty: Bool = false) throws
    -> (classes: [ClassFolder], warnings: [String])
{
    let folders = try listDirectory(root).filter { isDirectory(join(root, $0)) }.sorted()
    var warnings = [String]()
    let names: [String]
    if let classes {
        for name in classes where !folders.contains(name) { throw DatasetError.unknownClass(path: root, className: name) }
        for name in folders where !classes.contains(name) { warnings.append("\(join(root, name)): not a listed class, ignored") }
        names = classes
    } else {
        names = folders
    }
    guard Set(names).count >= 2 else { throw DatasetError.tooFewClasses(path: root, found: names) }
    let result = try names.map { name -> ClassFolder in
        let folder = join(root, name)
        let files = try listDirectory(folder).filter { isImageFile(folder: folder, name: $0) }.sorted().map { join(folder, $0) }
            .filter { !isDirectory($0) }
        guard !files.isEmpty || allowEmpty else { throw DatasetError.emptyClass(path: folder, className: name) }
        return ClassFolder(name: name, files: files)
    }
    return (result, warnings)
}

func loadClassFolders(at root: String, options: LoadOptions) throws -> LoadedDataset {
    let (classes, warnings) = try scanClassFolders(at: root, classes: options.classes, allowEmpty: options.keepEmptyClasses)
    var accumulator = ImageAccumulator(options: options.preprocessing)
    var skipped = [SkippedFile](), emptyClasses = [String](), dicom = [DICOMInfo?]()
    for (label, folder) in classes.enumerated() {
        let before = accumulator.labels.count
        for file in folder.files {
            do {
                let bytes = try readFileBytes(file, limit: options.maxReadBytes)
                let (image, header) = try decodeImageAndHeader(bytes, path: file, maxPixels: options.maxPixels)
                dicom.append(header)
                let source = SampleSource(location: file, sha256: sha256Hex(bytes))
                image.pixels.withUnsafeBufferPointer {
                    accumulator.append(
                        $0,
                        shape: ImageShape(
                            width: image.width, height: image.height,
                            channels: image.channels),
                        label: label, source: source)
                }
            } catch let error as DatasetError {
                if options.strict { throw error }
                skipped.append(SkippedFile(path: file, reason: error.description))
            }
        }
        if accumulator.labels.count == before {
            let error = DatasetError.emptyClass(path: join(root, folder.name), className: folder.name)
            guard options.keepEmptyClasses else { throw error }
            emptyClasses.append(error.description)
        }
    }
    return LoadedDataset(
        path: root, format: .classFolders, images: accumulator.finish(classNames: classes.map(\.name)),
        presetSplits: nil, originalShapes: accumulator.shapes, skipped: skipped,
        warnings: warnings + accumulator.channelWarnings, emptyClasses: emptyClasses, dicom: dicom)
}

private func listDirectory(_ path: String) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }
    } catch {
        let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
        throw DatasetError.unreadable(path: path, reason: reason)
    }
}

private func isDirectory(_ path: String) -> Bool {
    var flag: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
}

/// A `.png`, `.jpg`, `.jpeg`, `.dcm` or `.dicom` name, or a regular file without an extension
/// that starts with the DICOM preamble (many scanners write DICOM files with no extension).
private func isImageFile(folder: String, name: String) -> Bool {
    guard let dot = name.lastIndex(of: ".") else { return startsWithDICOMPreamble(join(folder, name)) }
    return ["png", "jpg", "jpeg", "dcm", "dicom"].contains(name[name.index(after: dot)...].lowercased())
}

func join(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
}

// MARK: - MedMNIST npz

/// "0", "1", ... up to the largest label, for an npz without class names. A label far beyond
/// the number of images (at most max(images, 1000) classes) is refused: it would name millions
/// of empty classes, and is a corrupt file far more often than a real one.
func numberedClassNames(_ parts: [NPZSplitArrays], path: String) throws -> [String] {
    let images = parts.reduce(0) { $0 + $1.count }
    let limit = max(images, 1000)
    for part in parts {
        if let bad = part.labels.first(where: { $0 < 0 || $0 >= limit }) {
            throw DatasetError.labelOutOfRange(path: path, entry: "\(part.split.rawValue)_labels", label: bad, classCount: limit)
        }
    }
    let maxLabel = parts.lazy.flatMap(\.labels).max() ?? 0
    return (0...max(1, maxLabel)).map(String.init)
}

func loadNPZ(at path: String, options: LoadOptions) throws -> LoadedDataset {
    let parts = try readMedMNISTArrays(at: path, maxBytes: options.maxReadBytes)
    let classNames = try options.classes ?? MedMNISTInfo.lookup(path)?.classNames ?? numberedClassNames(parts, path: path)
    var accumulator = ImageAccumulator(options: options.preprocessing)
    var splits = [Split]()
    for part in parts {
        let shape = ImageShape(width: part.width, height: part.height, channels: part.channels)
        let imageBytes = part.height * part.width * part.channels
        guard part.width * part.height <= options.maxPixels else {
            throw DatasetError.imageTooLarge(path: path, width: part.width, height: part.height, limit: options.maxPixels)
        }
        try part.images.data.withUnsafeBufferPointer { all in
            for n in 0..<part.count {
                let label = part.labels[n]
                guard (0..<classNames.count).contains(label) else {
                    throw DatasetError.labelOutOfRange(
                        path: path, entry: "\(part.split.rawValue)_labels",
                        label: label, classCount: classNames.count)
                }
                let slice = UnsafeBufferPointer(rebasing: all[n * imageBytes..<(n + 1) * imageBytes])
                let source = SampleSource(location: "\(path)#\(part.imagesEntry)[\(n)]", sha256: sha256Hex(slice))
                accumulator.append(slice, shape: shape, label: label, source: source)
                splits.append(part.split)
            }
        }
    }
    return LoadedDataset(
        path: path, format: .npz, images: accumulator.finish(classNames: classNames), presetSplits: splits,
        originalShapes: accumulator.shapes, skipped: [], warnings: accumulator.channelWarnings)
}

extension LoadedDataset {
    /// What loading left out or changed (skipped files, colour among gray images), as
    /// `data inspect` lists it, so that no image disappears without a word.
    public var problemNotes: [String] {
        (skipped.isEmpty ? [] : ["skipped \(skipped.count) unreadable file(s):"]) + skipped.map { "  \($0.reason)" }
            + warnings.map { "warning: \($0)" }
    }
}
