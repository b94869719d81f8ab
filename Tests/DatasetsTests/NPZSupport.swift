import Datasets
import Foundation
import ZIPFoundation

/// A `.npy` file: preamble, Python-dict header padded to 64 bytes, raw data.
func makeNPY(descr: String, shape: [Int], data: [UInt8], fortran: Bool = false, version: UInt8 = 1) -> [UInt8] {
    let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(dims), }"
    let preamble = version == 1 ? 10 : 12
    while (preamble + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let n = header.utf8.count
    let length: [UInt8] =
        version == 1
        ? [UInt8(n & 255), UInt8(n >> 8)]
        : [UInt8(n & 255), UInt8(n >> 8 & 255), UInt8(n >> 16 & 255), UInt8(n >> 24)]
    return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + Array(header.utf8) + data
}

/// A zip of named entries (deflated like `savez_compressed`, or stored like `savez`).
func makeNPZ(_ entries: [(String, [UInt8])], deflate: Bool = true) throws -> [UInt8] {
    let archive = try Archive(accessMode: .create)
    for (name, bytes) in entries {
        let data = Data(bytes)
        try archive.addEntry(
            with: name, type: .file, uncompressedSize: Int64(data.count),
            compressionMethod: deflate ? .deflate : .none
        ) { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }
    }
    return Array(archive.data!)
}

/// Little-endian bytes of Int64 labels.
func int64Bytes(_ values: [Int]) -> [UInt8] {
    values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: Int64(v) >> (8 * $0)) } }
}

/// A valid MedMNIST-like npz: `n` gray `h` x `w` images per split in `splits`, labels 0/1.
func makeMedMNIST(n: Int = 4, h: Int = 5, w: Int = 5, splits: [String] = ["train", "val"], deflate: Bool = true) throws
    -> [UInt8]
{
    var entries = [(String, [UInt8])]()
    for (k, split) in splits.enumerated() {
        let pixels = (0..<n * h * w).map { UInt8(($0 * 7 + k * 13) % 256) }
        entries.append(("\(split)_images.npy", makeNPY(descr: "|u1", shape: [n, h, w], data: pixels)))
        entries.append(("\(split)_labels.npy", makeNPY(descr: "<i8", shape: [n, 1], data: int64Bytes((0..<n).map { $0 % 2 }))))
    }
    return try makeNPZ(entries, deflate: deflate)
}

/// Writes `bytes` to `folder/name` and reads it as a MedMNIST npz.
func readNPZ(_ bytes: [UInt8], in folder: String, name: String) throws -> [NPZSplitArrays] {
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name))
    return try readMedMNISTArrays(at: folder + "/" + name)
}
