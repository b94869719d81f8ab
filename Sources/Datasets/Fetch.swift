import Crypto
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
    import Hashing
#endif

/// What `fetchMedMNIST` did.
public struct FetchResult: Codable, Sendable {
    /// Path of the cached file.
    public var path: String
    /// MD5 of the file.
    public var md5: String
    /// True when the MD5 was compared with a published or given one.
    public var verified: Bool
    /// False when a verified copy was already in the cache.
    public var downloaded: Bool
}

/// `~/.cache/medsynth`.
public var defaultCacheDirectory: String {
    FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/medsynth").path
}

/// Image sizes MedMNIST publishes.
public let medMNISTSizes = [28, 64, 128, 224]

/// Downloads a MedMNIST `.npz` into `cacheDirectory`, checking its MD5, written atomically.
///
/// The source is the official Zenodo file for `name` and `size` unless `url` is given; the
/// expected MD5 is `md5` if given, else the published one (none for an unknown name with a
/// `url`: then the file is kept unverified). A verified file already in the cache is reused.
/// On a mismatch nothing is left in the cache.
public func fetchMedMNIST(
    name: String, size: Int = 28, cacheDirectory: String = defaultCacheDirectory,
    url: String? = nil, md5: String? = nil
) async throws -> FetchResult {
    guard medMNISTSizes.contains(size) else {
        throw DatasetError.invalidOption(name: "size", value: "\(size)", reason: "MedMNIST sizes are 28, 64, 128, 224")
    }
    let info = MedMNISTInfo.lookup(name)
    guard let source = url ?? info?.url(size: size), let remote = URL(string: source) else {
        let known = MedMNISTInfo.catalog.map(\.name).joined(separator: ", ")
        throw DatasetError.invalidOption(name: "dataset", value: name, reason: "unknown; known: \(known), or give --url")
    }
    let expected = (md5 ?? info?.md5[size])?.lowercased()
    let fileName = info?.fileName(size: size) ?? (name.hasSuffix(".npz") ? name : "\(name).npz")
    do {
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
    } catch {
        throw DatasetError.writeFailed(path: cacheDirectory, reason: "\(error.localizedDescription)")
    }
    let destination = join(cacheDirectory, fileName)
    if let expected, FileManager.default.fileExists(atPath: destination), try md5Hex(ofFile: destination) == expected {
        return FetchResult(path: destination, md5: expected, verified: true, downloaded: false)
    }
    let partial = temporarySibling(of: destination)
    defer { try? FileManager.default.removeItem(atPath: partial) }
    try await download(remote, to: partial)
    let actual = try md5Hex(ofFile: partial)
    if let expected, actual != expected {
        throw DatasetError.checksumMismatch(path: source, expected: expected, actual: actual)
    }
    guard rename(partial, destination) == 0 else {
        throw DatasetError.writeFailed(path: destination, reason: errnoMessage(errno))
    }
    return FetchResult(path: destination, md5: actual, verified: expected != nil, downloaded: true)
}

/// Downloads `url` to `path` with URLSession (the session's temporary file is moved at once).
private func download(_ url: URL, to path: String) async throws {
    let session = URLSession(configuration: .ephemeral)
    defer { session.finishTasksAndInvalidate() }
    let source = url.absoluteString
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        let task = session.downloadTask(with: url) { location, response, error in
            if let error {
                return continuation.resume(throwing: DatasetError.downloadFailed(url: source, reason: error.localizedDescription))
            }
            if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                return continuation.resume(throwing: DatasetError.downloadFailed(url: source, reason: "HTTP \(http.statusCode)"))
            }
            guard let location else {
                return continuation.resume(throwing: DatasetError.downloadFailed(url: source, reason: "no data"))
            }
            do {
                try FileManager.default.moveItem(at: location, to: URL(fileURLWithPath: path))
                continuation.resume()
            } catch {
                continuation.resume(throwing: DatasetError.writeFailed(path: path, reason: error.localizedDescription))
            }
        }
        task.resume()
    }
}

/// Lower-case hex MD5 of a file, read in 1 MiB chunks.
public func md5Hex(ofFile path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw DatasetError.unreadable(path: path, reason: "cannot open")
    }
    defer { try? handle.close() }
    var hasher = Insecure.MD5()
    while true {
        let chunk: Data?
        do { chunk = try handle.read(upToCount: 1 << 20) } catch {
            throw DatasetError.unreadable(path: path, reason: error.localizedDescription)
        }
        guard let chunk, !chunk.isEmpty else { break }
        hasher.update(data: chunk)
    }
    return hexString(hasher.finalize())
}
