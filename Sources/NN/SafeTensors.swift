import AtomicIO
import Autodiff
import Crypto
import Foundation
import Hashing

/// Errors reading or writing checkpoints; each names the file and the problem.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case io(path: String, reason: String)
    case notSafeTensors(path: String, reason: String)
    case truncated(path: String, expected: Int, actual: Int)
    case unsupported(path: String, tensor: String, reason: String)
    case stateMismatch(missing: [String], wrongShape: [String], unexpected: [String])
    /// The tensor bytes differ from the SHA-256 stored in the metadata when the file was written.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// A metadata value is out of range (e.g. a negative step).
    case invalidMetadata(path: String, key: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .notSafeTensors(path, reason): return "\(path) is not a safetensors checkpoint: \(reason)"
        case let .truncated(path, expected, actual):
            return "\(path) is truncated: expected \(expected) bytes, found \(actual)"
        case let .unsupported(path, tensor, reason): return "\(path): tensor \(tensor): \(reason)"
        case let .stateMismatch(missing, wrong, unexpected):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: \(missing.joined(separator: ", "))") }
            if !wrong.isEmpty { parts.append("wrong shapes: \(wrong.joined(separator: "; "))") }
            if !unexpected.isEmpty { parts.append("unexpected tensors: \(unexpected.joined(separator: ", "))") }
            return "checkpoint does not match the model: " + parts.joined(separator: "; ")
        case let .checksumMismatch(path, expected, actual):
            return "\(path) is corrupt: its tensor data hashes to sha256 \(actual.prefix(16))..., but was written as "
                + "\(expected.prefix(16))... (flipped bytes on disk or an edited file)"
        case let .invalidMetadata(path, key, value, reason): return "\(path): metadata \(key)=\(value): \(reason)"
        }
    }
}

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {..}}, then
/// the raw little-endian tensor bytes. We write F32 only, with dotted PyTorch-style names.
///
/// Integrity: the metadata key `tensors_sha256` holds the SHA-256 of all tensor bytes (everything
/// after the header), checked on every read; a file written before checksums has none and
/// still loads (`hasChecksum` tells the caller, who may say so).
public enum SafeTensors {
    /// Largest header we accept (the reference implementation's limit is 100 MB).
    static let maxHeaderBytes = 100_000_000
    /// The metadata key of the tensor bytes' SHA-256 (lower-case hex).
    public static let checksumKey = "tensors_sha256"

    /// Whether a file's metadata carries the tensor checksum (files written before it do not).
    public static func hasChecksum(_ metadata: [String: String]) -> Bool { metadata[checksumKey] != nil }

    /// Encodes tensors (sorted by name) and string metadata.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        let names = tensors.keys.sorted()
        var hasher = SHA256()
        for name in names {
            let t = tensors[name]!
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: t.storage.pointer, count: t.count * 4))
        }
        var metadata = metadata
        metadata[checksumKey] = hexString(hasher.finalize())
        header["__metadata__"] = metadata
        var offset = 0
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]] as [String: Any]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // NOTE: pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!
            out.append(UnsafeBufferPointer(start: t.storage.pointer, count: t.count))  // x86-64 is little-endian
        }
        return out
    }

    /// Decodes a safetensors file's bytes; `path` only names the file in errors.
    public static func decode(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard data.count >= 8 else { throw CheckpointError.truncated(path: path, expected: 8, actual: data.count) }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength > 1, headerLength <= UInt64(maxHeaderBytes) else {
            throw CheckpointError.notSafeTensors(path: path, reason: "header length \(headerLength) is implausible")
        }
        let dataStart = 8 + Int(headerLength)
        guard data.count >= dataStart else {
            throw CheckpointError.truncated(path: path, expected: dataStart, actual: data.count)
        }
        let headerBytes = data.subdata(in: 8..<dataStart)
        guard headerBytes.first == UInt8(ascii: "{"),
            let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any]
        else {
            throw CheckpointError.notSafeTensors(path: path, reason: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let m = m as? [String: String] else {
                throw CheckpointError.notSafeTensors(path: path, reason: "__metadata__ must map strings to strings")
            }
            metadata = m
        }
        let payload = data.count - dataStart
        if let expected = metadata[checksumKey] {
            let actual = data.withUnsafeBytes { hexString(SHA256.hash(data: UnsafeRawBufferPointer(rebasing: $0[dataStart...]))) }
            guard actual == expected else {
                throw CheckpointError.checksumMismatch(path: path, expected: expected, actual: actual)
            }
        }
        var tensors: [String: Tensor] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw CheckpointError.notSafeTensors(path: path, reason: "entry \(name) lacks dtype, shape or data_offsets")
            }
            guard dtype == "F32" else {
                throw CheckpointError.unsupported(path: path, tensor: name, reason: "dtype \(dtype), expected F32")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard shape.allSatisfy({ $0 >= 0 }), begin >= 0, begin <= end else {
                throw CheckpointError.notSafeTensors(path: path, reason: "entry \(name) has invalid shape or offsets")
            }
            guard end <= payload else {
                throw CheckpointError.truncated(path: path, expected: dataStart + end, actual: data.count)
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let r = acc.0.multipliedReportingOverflow(by: d); return (r.partialValue, acc.1 || r.overflow)
            }
            guard !overflow, count * 4 == end - begin else {
                throw CheckpointError.notSafeTensors(
                    path: path, reason: "entry \(name): shape \(shape) needs \(count * 4) bytes, offsets give \(end - begin)")
            }
            let t = Tensor(uninitializedShape: shape)
            data.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(t.storage.pointer).copyMemory(
                    from: raw.baseAddress! + dataStart + begin, byteCount: end - begin)
            }
            tensors[name] = t
            ranges.append((begin, end, name))
        }
        ranges.sort { $0.0 < $1.0 }
        var cursor = 0
        for (b, e, name) in ranges {
            guard b == cursor else {
                throw CheckpointError.notSafeTensors(path: path, reason: "tensor \(name) overlaps or leaves a gap")
            }
            cursor = e
        }
        guard cursor == payload else {
            throw CheckpointError.notSafeTensors(path: path, reason: "\(payload - cursor) trailing bytes after the last tensor")
        }
        return (tensors, metadata)
    }

    /// Writes atomically: a temporary file in the same folder, fsync, rename over `url`, fsync the folder.
    /// A crash at any point leaves either the old file or the new one, never a mix.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let data = try encode(tensors, metadata: metadata)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        do { try AtomicFile.write(data, to: url.path) } catch { throw CheckpointError.io(path: url.path, reason: error.reason) }
    }

    public static func read(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw CheckpointError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, path: url.path)
    }
}

/// A training checkpoint: several modules' and optimizers' states plus metadata in one file.
/// Names: `<module>.<param>` and `optim.<optimizer>.<param>.exp_avg`, ...
public enum Checkpoint {
    public static func save(
        modules: [String: any Module], optimizers: [String: any Optimizer] = [:],
        extra: [String: Tensor] = [:], metadata: [String: String] = [:], to url: URL
    ) throws {
        var all = extra
        for (prefix, m) in modules { for (k, v) in m.stateDict() { all["\(prefix).\(k)"] = v } }
        for (prefix, o) in optimizers { for (k, v) in o.stateTensors() { all["optim.\(prefix).\(k)"] = v } }
        try SafeTensors.write(all, metadata: metadata, to: url)
    }

    /// Loads into the given modules and optimizers; returns the whole file for extra state.
    @discardableResult
    public static func load(from url: URL, modules: [String: any Module], optimizers: [String: any Optimizer] = [:]) throws
        -> (tensors: [String: Tensor], metadata: [String: String])
    {
        let file = try SafeTensors.read(url)
        try restore(file, modules: modules, optimizers: optimizers)
        return file
    }

    /// Loads an already read file into the given modules and optimizers (after the caller has
    /// checked its metadata).
    public static func restore(
        _ file: (tensors: [String: Tensor], metadata: [String: String]), modules: [String: any Module],
        optimizers: [String: any Optimizer] = [:]
    ) throws {
        for (prefix, m) in modules { try m.loadStateDict(file.tensors, prefix: prefix + ".", strict: false) }
        for (prefix, o) in optimizers {
            let p = "optim.\(prefix)."
            let sub = Dictionary(
                uniqueKeysWithValues: file.tensors.filter { $0.key.hasPrefix(p) }.map {
                    (String($0.key.dropFirst(p.count)), $0.value)
                })
            try o.loadState(sub)
        }
    }
}
