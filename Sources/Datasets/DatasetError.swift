/// Everything that can go wrong while reading, checking, splitting or fetching a dataset.
///
/// Every case names the file (or URL) it is about and says what is wrong, so that a message
/// shown to a user points at the one file to look at.
public enum DatasetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path does not exist.
    case notFound(path: String)
    /// The file exists but could not be read (permissions, I/O error, a directory...).
    case unreadable(path: String, reason: String)
    /// The file holds zero bytes.
    case emptyFile(path: String)
    /// The file is neither a PNG, a JPEG nor a DICOM file (e.g. a text file named `.png`).
    case notAnImage(path: String)
    /// The data stops before the format says it should.
    case truncated(path: String, reason: String)
    /// The bytes are damaged or inconsistent.
    case corrupt(path: String, reason: String)
    /// A valid file this reader does not handle (a DICOM transfer syntax, photometric
    /// interpretation, bit depth, or a multi-frame file).
    case unsupported(path: String, reason: String)
    /// The header announces more pixels than the limit; refused before allocating.
    case imageTooLarge(path: String, width: Int, height: Int, limit: Int)
    /// One array inside an `.npz` (or a bare `.npy`) is malformed.
    case badArray(path: String, entry: String, reason: String)
    /// A label value is outside `0..<classCount`.
    case labelOutOfRange(path: String, entry: String, label: Int, classCount: Int)
    /// An `.npz` holds no `train_`/`val_`/`test_` images+labels pair.
    case noSplitArrays(path: String, entries: [String])
    /// A class folder holds no usable image.
    case emptyClass(path: String, className: String)
    /// Fewer than two classes: classification needs at least two.
    case tooFewClasses(path: String, found: [String])
    /// A class named explicitly (or by a test set) is not in the dataset.
    case unknownClass(path: String, className: String)
    /// A command-line style option has a bad value.
    case invalidOption(name: String, value: String, reason: String)
    /// A class selection (`--classes`, `--subsample`) does not fit the dataset at `path`.
    case classSelection(path: String, option: String, reason: String)
    /// A downloaded or cached file's checksum differs from the published one.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// A download failed.
    case downloadFailed(url: String, reason: String)
    /// Writing a file (manifest, PNG, cache) failed.
    case writeFailed(path: String, reason: String)
    /// A file, or what an archive inflates to, is larger than the reader's limit; refused before allocating.
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    /// A class-folder tree has problems (empty classes, unreadable or non-regular files); every one is listed.
    case problems(path: String, found: [String])

    /// One line naming the file and the problem.
    public var description: String {
        switch self {
        case let .notFound(path): "\(path): no such file or folder"
        case let .unreadable(path, reason): "\(path): cannot read: \(reason)"
        case let .emptyFile(path): "\(path): empty file (0 bytes)"
        case let .notAnImage(path): "\(path): not a PNG or JPEG image, nor DICOM (unrecognised signature)"
        case let .truncated(path, reason): "\(path): truncated: \(reason)"
        case let .corrupt(path, reason): "\(path): corrupt: \(reason)"
        case let .unsupported(path, reason): "\(path): not supported: \(reason)"
        case let .imageTooLarge(path, w, h, limit):
            // NOTE: the sides come from a header; their product may not fit in an Int (medsynth-fuzz).
            "\(path): image is \(w)x\(h) (\(w.multipliedReportingOverflow(by: h).overflow ? "over 2^63" : "\(w * h)") "
                + "pixels), over the limit of \(limit) pixels"
        case let .badArray(path, entry, reason): "\(path): array '\(entry)': \(reason)"
        case let .labelOutOfRange(path, entry, label, classCount):
            "\(path): array '\(entry)': label \(label) outside 0..<\(classCount)"
        case let .noSplitArrays(path, entries):
            "\(path): no train_/val_/test_ images+labels pair, nor the images/labels pair of gan sample (entries: \(entries.joined(separator: ", ")))"
        case let .emptyClass(path, className): "\(path): class '\(className)' has no usable image"
        case let .tooFewClasses(path, found):
            "\(path): found \(found.count) class(es) [\(found.joined(separator: ", "))]; "
                + "classification needs at least 2 (one sub-folder per class)"
        case let .unknownClass(path, className): "\(path): class '\(className)' not found"
        case let .invalidOption(name, value, reason): "invalid \(name) '\(value)': \(reason)"
        case let .classSelection(path, option, reason): "\(path): \(option): \(reason)"
        case let .checksumMismatch(path, expected, actual):
            "\(path): checksum mismatch: expected \(expected), got \(actual)"
        case let .downloadFailed(url, reason): "\(url): download failed: \(reason)"
        case let .writeFailed(path, reason): "\(path): cannot write: \(reason)"
        case let .fileTooLarge(path, bytes, limit):
            "\(path): \(bytes) bytes, over the reader's limit of \(limit) bytes (raise it with --max-read-bytes)"
        case let .problems(path, found):
            "\(path): \(found.count) problem(s):\n" + found.map { "  \($0)" }.joined(separator: "\n")
        }
    }
}

/// A file that was left out of a dataset, and why.
public struct SkippedFile: Codable, Equatable, Sendable {
    /// The file's path.
    public var path: String
    /// The error's description.
    public var reason: String

    /// Creates a record of a skipped file.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}
