import Foundation
import Hashing

/// One row of a dataset manifest.
public struct ManifestEntry: Codable, Equatable, Sendable {
    /// Position in the dataset.
    public var index: Int
    /// File path or `file.npz#entry[i]`.
    public var source: String
    /// Class name.
    public var className: String
    /// The split the sample belongs to.
    public var split: Split
    /// SHA-256 of the sample's bytes.
    public var sha256: String
    /// True for GAN-generated images (always false for loaded data).
    public var synthetic: Bool
    /// The sample's class in the data before a class selection renamed or merged it (nil: no selection).
    public var sourceClass: String?

    /// Creates a manifest row (the GAN layer uses `synthetic: true` for generated images).
    public init(
        index: Int, source: String, className: String, split: Split, sha256: String, synthetic: Bool,
        sourceClass: String? = nil
    ) {
        self.index = index
        self.source = source
        self.className = className
        self.split = split
        self.sha256 = sha256
        self.synthetic = synthetic
        self.sourceClass = sourceClass
    }

    enum CodingKeys: String, CodingKey {
        case index, source, className = "class", split, sha256, synthetic, sourceClass = "source_class"
    }
}

/// Manifest file formats.
public enum ManifestFormat: String, Codable, Sendable {
    /// Comma-separated values with a header row.
    case csv
    /// One JSON object per line.
    case jsonl

    /// `.csv` gives CSV; anything else JSON Lines.
    public init(path: String) { self = path.lowercased().hasSuffix(".csv") ? .csv : .jsonl }
}

/// Renders a manifest as CSV (with header) or JSON Lines. Rows of a class selection carry
/// `source_class` (in CSV a last column, present when any row has one).
public func renderManifest(_ entries: [ManifestEntry], format: ManifestFormat) throws -> String {
    switch format {
    case .csv:
        let selected = entries.contains { $0.sourceClass != nil }
        let rows = entries.map { e in
            (["\(e.index)", csvField(e.source), csvField(e.className), e.split.rawValue, e.sha256, "\(e.synthetic)"]
                + (selected ? [csvField(e.sourceClass ?? "")] : [])).joined(separator: ",")
        }
        let header = "index,source,class,split,sha256,synthetic" + (selected ? ",source_class" : "")
        return ([header] + rows).joined(separator: "\n") + "\n"
    case .jsonl:
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try entries.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
    }
}

/// SHA-256 of a manifest in JSON Lines: the data fingerprint runs and models carry.
public func manifestHash(_ entries: [ManifestEntry]) throws -> String {
    sha256Hex(Data(try renderManifest(entries, format: .jsonl).utf8))
}

/// Writes a manifest atomically (temporary file + rename); format from the extension.
public func writeManifest(_ entries: [ManifestEntry], to path: String) throws {
    try writeFileAtomically(Array(renderManifest(entries, format: ManifestFormat(path: path)).utf8), to: path)
}

/// RFC 4180 quoting when a field holds a comma, quote or line break.
private func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Writes a manifest to `path` and, when its data went through a class selection, the
/// selection (mapping, caps, seed) and the images per class and split the manifest holds to
/// `selection.json` in the same folder (removing one left by an earlier run without a
/// selection). The one writer of every command that reads data: `train` (the whole split),
/// `gan train` (the training images it learns from), `reproduce paper` (each dataset's split).
public func writeSplitManifest(_ entries: [ManifestEntry], selection: ClassSelection?, to path: String) throws {
    try writeManifest(entries, to: path)
    let folder = (path as NSString).deletingLastPathComponent
    let selectionPath = (folder.isEmpty ? "." : folder) + "/selection.json"
    guard let selection else {
        // NOTE: experiment workers and MPI ranks all write the same manifest; one may remove a
        // stale selection.json just before another looks, so a missing file is no error.
        if unlink(selectionPath) != 0 && errno != ENOENT {
            throw DatasetError.writeFailed(path: selectionPath, reason: errnoMessage(errno))
        }
        return
    }
    struct Record: Encodable {
        let selection: ClassSelection
        let summary: String
        let counts: [String: [String: Int]]
    }
    var counts = [String: [String: Int]]()
    for entry in entries { counts[entry.className, default: [:]][entry.split.rawValue, default: 0] += 1 }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeFileAtomically(
        Array(try encoder.encode(Record(selection: selection, summary: selection.description, counts: counts))),
        to: selectionPath)
}
