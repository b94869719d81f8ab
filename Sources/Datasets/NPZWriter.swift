import Foundation
import ZIPFoundation

extension NPYArray {
    /// An array of unsigned bytes (`|u1`), e.g. images (N, H, W) or (N, H, W, 3).
    public static func uint8(_ values: [UInt8], shape: [Int]) -> NPYArray {
        precondition(values.count == shape.reduce(1, *), "\(values.count) bytes for shape \(shape)")
        return NPYArray(dtype: .uint8, shape: shape, data: values)
    }

    /// An array of little-endian 64-bit signed integers (`<i8`, NumPy's default int), e.g. labels (N,).
    public static func int64(_ values: [Int], shape: [Int]) -> NPYArray {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let bytes = values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: Int64(v) >> (8 * $0)) } }
        return NPYArray(dtype: NPYDType(size: 8, signed: true, littleEndian: true, isBool: false), shape: shape, data: bytes)
    }
}

/// The bytes of a version 1.0 `.npy` file: magic, header dict padded with spaces so the data
/// starts at a multiple of 64 bytes, then the raw C-order data.
/// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
public func encodeNPY(_ array: NPYArray) -> [UInt8] {
    let dims = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(array.dtype)', 'fortran_order': False, 'shape': \(dims), }"
    // magic (6) + version (2) + header length (2) + header + "\n"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let n = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 255), UInt8(n >> 8)] + Array(header.utf8) + array.data
}

/// Writes named arrays as a `.npz` (a zip of deflated `<name>.npy` entries, as `numpy.savez_compressed`),
/// atomically (temporary file + rename).
public func writeNPZ(_ arrays: [(name: String, array: NPYArray)], to path: String) throws {
    let bytes: Data
    do {
        let archive = try Archive(accessMode: .create)
        for (name, array) in arrays {
            let data = Data(encodeNPY(array))
            try archive.addEntry(
                with: name + ".npy", type: .file, uncompressedSize: Int64(data.count),
                compressionMethod: .deflate
            ) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        guard let data = archive.data else { throw DatasetError.writeFailed(path: path, reason: "the zip archive is empty") }
        bytes = data
    } catch let error as DatasetError {
        throw error
    } catch {
        throw DatasetError.writeFailed(path: path, reason: "cannot build the zip archive (\(error))")
    }
    try writeFileAtomically(bytes, to: path)
}
