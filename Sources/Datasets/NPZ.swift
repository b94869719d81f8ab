import Foundation
import ZIPFoundation

/// The image and label arrays of one split of a MedMNIST-style `.npz`.
public struct NPZSplitArrays: Sendable {
    /// Which split the `<split>_images`/`<split>_labels` pair is.
    public var split: Split
    /// `(N, H, W)` or `(N, H, W, C)` unsigned bytes, C = 1 or 3.
    public var images: NPYArray
    /// N integer labels (from an `(N,)` or `(N, 1)` array).
    public var labels: [Int]

    /// Number of samples.
    public var count: Int { images.shape[0] }
    /// Image height.
    public var height: Int { images.shape[1] }
    /// Image width.
    public var width: Int { images.shape[2] }
    /// Channels per pixel (1 or 3).
    public var channels: Int { images.shape.count == 4 ? images.shape[3] : 1 }
    /// The `.npy` entry name of the images, for naming samples and errors.
    public var imagesEntry: String { "\(split.rawValue)_images" }
}

/// Reads a MedMNIST `.npz` (a zip of stored or deflated `.npy` files), returning whichever of
/// the train/val/test images+labels pairs it holds.
///
/// Checks every array (dtype, shape, byte count), that each images/labels pair has one N, and
/// that all splits share one image shape. Only the needed entries are inflated.
///
/// At most `maxBytes` are inflated in all: the entries' declared sizes are summed and checked
/// before anything is inflated (a deflate bomb of zeros is refused up front), and an entry that
/// inflates past its declared size is stopped at that size.
///
/// NOTE: ZIPFoundation 0.9.20's in-memory archives (`Archive(data:)`) trap on a zip whose
/// offsets point past the end (found by the fuzz test); file-backed archives read safely,
/// so this reader only opens files.
public func readMedMNISTArrays(at path: String, maxBytes: Int = defaultMaxArchiveBytes) throws -> [NPZSplitArrays] {
    let (archive, entries) = try openArchive(path, maxBytes: maxBytes)
    let needed = Split.allCases.flatMap { split in
        ["\(split.rawValue)_images.npy", "\(split.rawValue)_labels.npy"].compactMap { entries[$0] }
    }
    let declared = needed.reduce(UInt64(0)) { total, entry in total &+ min(entry.uncompressedSize, UInt64(Int.max) / 4) }
    guard declared <= UInt64(maxBytes) else {
        throw DatasetError.fileTooLarge(path: path, bytes: Int(declared), limit: maxBytes)
    }
    var result = [NPZSplitArrays]()
    for split in Split.allCases {
        let imageName = "\(split.rawValue)_images", labelName = "\(split.rawValue)_labels"
        guard let imageEntry = entries[imageName + ".npy"], let labelEntry = entries[labelName + ".npy"] else {
            continue
        }
        let images = try parseNPY(extract(imageEntry, from: archive, path: path), path: path, entry: imageName)
        let labels = try parseNPY(extract(labelEntry, from: archive, path: path), path: path, entry: labelName)
        try checkImages(images, path: path, entry: imageName)
        let n = images.shape[0]
        guard labels.shape == [n] || labels.shape == [n, 1] else {
            throw DatasetError.badArray(
                path: path, entry: labelName,
                reason: "shape \(labels.shape) does not match \(n) images (need (\(n),) or (\(n), 1))")
        }
        result.append(NPZSplitArrays(split: split, images: images, labels: labels.integers()))
    }
    guard let first = result.first else {
        throw DatasetError.noSplitArrays(path: path, entries: entries.keys.sorted())
    }
    for arrays in result where arrays.images.shape.dropFirst() != first.images.shape.dropFirst() {
        throw DatasetError.badArray(
            path: path, entry: arrays.imagesEntry,
            reason: "image shape \(Array(arrays.images.shape.dropFirst())) differs from "
                + "\(first.imagesEntry)'s \(Array(first.images.shape.dropFirst()))")
    }
    return result
}

/// Reads an `.npz` of one image array and its labels, as `gan sample --out FILE.npz` writes it:
/// uint8 `images` (N, H, W) or (N, H, W, 3) and integer `labels` (N,). Bounded and checked as
/// `readMedMNISTArrays`; an npz without the pair is refused naming its entries.
public func readImageLabelArrays(at path: String, maxBytes: Int = defaultMaxArchiveBytes) throws -> NPZSplitArrays {
    let (archive, entries) = try openArchive(path, maxBytes: maxBytes)
    guard let imageEntry = entries["images.npy"], let labelEntry = entries["labels.npy"] else {
        throw DatasetError.noSplitArrays(path: path, entries: entries.keys.sorted())
    }
    guard imageEntry.uncompressedSize &+ labelEntry.uncompressedSize <= UInt64(maxBytes) else {
        throw DatasetError.fileTooLarge(
            path: path, bytes: Int(min(imageEntry.uncompressedSize &+ labelEntry.uncompressedSize, UInt64(Int.max))),
            limit: maxBytes)
    }
    let images = try parseNPY(extract(imageEntry, from: archive, path: path), path: path, entry: "images")
    let labels = try parseNPY(extract(labelEntry, from: archive, path: path), path: path, entry: "labels")
    try checkImages(images, path: path, entry: "images")
    let n = images.shape[0]
    guard labels.shape == [n] || labels.shape == [n, 1] else {
        throw DatasetError.badArray(
            path: path, entry: "labels", reason: "shape \(labels.shape) does not match \(n) images (need (\(n),))")
    }
    return NPZSplitArrays(split: .train, images: images, labels: labels.integers())
}

/// The zip at `path` (a regular, non-empty file of at most `maxBytes`) and its file entries by name.
private func openArchive(_ path: String, maxBytes: Int) throws -> (Archive, [String: Entry]) {
    let (fd, size) = try openRegularFile(path)
    close(fd)
    if size == 0 { throw DatasetError.emptyFile(path: path) }
    guard size <= maxBytes else { throw DatasetError.fileTooLarge(path: path, bytes: size, limit: maxBytes) }
    let archive: Archive
    do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
        throw DatasetError.corrupt(path: path, reason: "not a readable zip archive (\(error))")
    }
    var entries = [String: Entry]()
    for entry in archive where entry.type == .file { entries[entry.path] = entry }
    return (archive, entries)
}

private func checkImages(_ images: NPYArray, path: String, entry: String) throws {
    guard images.dtype == .uint8 || images.dtype.description == "<u1" else {
        throw DatasetError.badArray(path: path, entry: entry, reason: "dtype \(images.dtype) (images must be |u1)")
    }
    let s = images.shape
    guard s.count == 3 || (s.count == 4 && (s[3] == 1 || s[3] == 3)), s[1] > 0, s[2] > 0 else {
        throw DatasetError.badArray(
            path: path, entry: entry, reason: "shape \(s) (images must be (N, H, W) or (N, H, W, 3))")
    }
}

/// Extracts one zip entry into memory, refusing absurd sizes and checking its CRC-32.
private func extract(_ entry: Entry, from archive: Archive, path: String) throws -> [UInt8] {
    let name = entry.path
    let declared = entry.uncompressedSize
    guard declared <= UInt64(maxNPYBytes) else {
        throw DatasetError.badArray(path: path, entry: name, reason: "entry of \(declared) bytes is absurdly large")
    }
    var data = [UInt8]()
    data.reserveCapacity(Int(min(declared, 1 << 26)))  // never trust a header for a big allocation
    let checksum: CRC32
    do {
        checksum = try archive.extract(entry) { chunk in
            // A deflate stream may inflate past its declared size (a zip bomb): stop it early.
            guard UInt64(data.count + chunk.count) <= declared else {
                throw DatasetError.badArray(
                    path: path, entry: name, reason: "inflates past its declared size of \(declared) bytes")
            }
            data.append(contentsOf: chunk)
        }
    } catch let error as DatasetError {
        throw error
    } catch {
        throw DatasetError.badArray(path: path, entry: name, reason: "cannot extract from the zip (\(error))")
    }
    guard UInt64(data.count) == declared else {
        throw DatasetError.badArray(path: path, entry: name, reason: "truncated: \(data.count) of \(declared) bytes")
    }
    guard checksum == entry.checksum else {
        throw DatasetError.badArray(path: path, entry: name, reason: "CRC-32 mismatch: the zip entry is corrupt")
    }
    return data
}
