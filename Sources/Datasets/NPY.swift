import Foundation

/// One array read from a NumPy `.npy` file: element type, shape and raw little/big-endian bytes.
public struct NPYArray: Equatable, Sendable {
    /// The element type.
    public var dtype: NPYDType
    /// The shape, outermost first (C order).
    public var shape: [Int]
    /// `shape.product * dtype.size` raw bytes, C order.
    public var data: [UInt8]

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The elements as `Int`s (integer and bool dtypes only; `UInt64` values above `Int.max`
    /// wrap, which a label check then rejects).
    public func integers() -> [Int] {
        let size = dtype.size
        return (0..<count).map { i in
            var value: UInt64 = 0
            for b in 0..<size {
                let byte = UInt64(data[i * size + (dtype.littleEndian ? b : size - 1 - b)])
                value |= byte << (8 * UInt64(b))
            }
            if dtype.signed, size < 8, value & (1 << (8 * UInt64(size) - 1)) != 0 {
                value |= ~0 << (8 * UInt64(size))  // sign-extend
            }
            return Int(truncatingIfNeeded: value)
        }
    }
}

/// The integer element types the reader accepts (`|u1`, `<i8`, `>u2`, `|b1`, ...).
public struct NPYDType: Equatable, Sendable, CustomStringConvertible {
    /// Bytes per element: 1, 2, 4 or 8.
    public var size: Int
    /// Whether values are signed.
    public var signed: Bool
    /// Byte order (irrelevant for 1-byte types).
    public var littleEndian: Bool
    /// Whether this is NumPy's `bool`.
    public var isBool: Bool

    /// The `descr` string as NumPy writes it.
    public var description: String {
        let order = size == 1 ? "|" : (littleEndian ? "<" : ">")
        return order + (isBool ? "b" : (signed ? "i" : "u")) + String(size)
    }

    /// Unsigned bytes, the only image type MedMNIST uses.
    public static let uint8 = NPYDType(size: 1, signed: false, littleEndian: true, isBool: false)

    /// Parses a `descr` string; nil for anything but integer and bool types.
    public init?(descr: String) {
        let chars = Array(descr)
        guard chars.count >= 3, "<>|=".contains(chars[0]), let size = Int(String(chars[2...])),
            [1, 2, 4, 8].contains(size)
        else { return nil }
        switch chars[1] {
        case "u": (signed, isBool) = (false, false)
        case "i": (signed, isBool) = (true, false)
        case "b" where size == 1: (signed, isBool) = (false, true)
        default: return nil
        }
        self.size = size
        littleEndian = chars[0] != ">"  // '=' is native, little-endian on every platform we run
    }

    init(size: Int, signed: Bool, littleEndian: Bool, isBool: Bool) {
        (self.size, self.signed, self.littleEndian, self.isBool) = (size, signed, littleEndian, isBool)
    }
}

/// Largest array the reader accepts (4 GiB of data): anything bigger is treated as corrupt.
public let maxNPYBytes = 1 << 32

/// Most bytes an `.npz` may inflate to by default (512 MiB: 680,000 images of 28x28, or 10,000 of
/// 224x224). Raise it with `LoadOptions.maxReadBytes` (`--max-read-bytes`) for larger sets.
public let defaultMaxArchiveBytes = 512 << 20

/// Parses a `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// Rejects wrong magic, unknown versions, malformed or oversized headers, non-integer dtypes,
/// `fortran_order: True`, negative or absurd shapes, and data shorter or longer than the shape
/// says. `path` and `entry` only name the source in errors.
public func parseNPY(_ bytes: [UInt8], path: String, entry: String) throws -> NPYArray {
    func fail(_ reason: String) -> DatasetError { .badArray(path: path, entry: entry, reason: reason) }
    let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
    guard bytes.count >= 10 else { throw fail("truncated: \(bytes.count) bytes, shorter than a .npy preamble") }
    guard bytes.starts(with: magic) else { throw fail("wrong magic: not a .npy array") }
    let major = bytes[6], minor = bytes[7]
    guard [1, 2, 3].contains(major), minor == 0 else { throw fail("unsupported .npy version \(major).\(minor)") }
    let lengthBytes = major == 1 ? 2 : 4
    guard bytes.count >= 8 + lengthBytes else { throw fail("truncated inside the header length") }
    var headerLength = 0
    for i in 0..<lengthBytes { headerLength |= Int(bytes[8 + i]) << (8 * i) }
    let headerStart = 8 + lengthBytes
    guard headerLength <= 1 << 20 else { throw fail("header length \(headerLength) is absurd") }
    guard bytes.count >= headerStart + headerLength else {
        throw fail("truncated: header says \(headerLength) bytes, file has \(bytes.count - headerStart)")
    }
    // Versions 1 and 2 are latin-1 (ASCII in practice), version 3 UTF-8; the dict is ASCII.
    let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
    let dict: [String: HeaderValue]
    do { var parser = HeaderParser(header); dict = try parser.parseDict() } catch let reason as HeaderParser.Failure {
        throw fail("malformed header (\(reason.message)): \(header.trimmingCharacters(in: .whitespacesAndNewlines).prefix(120))")
    }
    guard Set(dict.keys) == ["descr", "fortran_order", "shape"] else {
        throw fail("header keys \(dict.keys.sorted()) are not descr, fortran_order, shape")
    }
    guard case let .string(descr)? = dict["descr"] else { throw fail("descr is not a string") }
    guard let dtype = NPYDType(descr: descr) else { throw fail("unsupported dtype '\(descr)' (need an integer type)") }
    guard case let .bool(fortran)? = dict["fortran_order"] else { throw fail("fortran_order is not True/False") }
    guard !fortran else { throw fail("fortran_order True is not supported (save with C order)") }
    guard case let .tuple(shape)? = dict["shape"] else { throw fail("shape is not a tuple") }
    var elements = 1
    for dim in shape {
        let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
        guard !overflow, product <= maxNPYBytes else { throw fail("shape \(shape) is absurdly large") }
        elements = product
    }
    let expected = elements * dtype.size
    guard expected <= maxNPYBytes else { throw fail("shape \(shape) is absurdly large") }
    let available = bytes.count - headerStart - headerLength
    guard available >= expected else {
        throw fail("truncated: shape \(shape) of \(descr) needs \(expected) bytes, found \(available)")
    }
    guard available == expected else {
        throw fail("shape \(shape) of \(descr) needs \(expected) bytes, found \(available) (trailing data)")
    }
    let start = headerStart + headerLength
    return NPYArray(dtype: dtype, shape: shape, data: Array(bytes[start...]))
}

/// A value in a `.npy` header dict.
enum HeaderValue: Equatable {
    case string(String), bool(Bool), tuple([Int])
}

/// A tiny parser for the Python dict literal in a `.npy` header:
/// `{'descr': '|u1', 'fortran_order': False, 'shape': (4708, 28, 28), }`.
struct HeaderParser {
    struct Failure: Error { var message: String }
    private let chars: [Character]
    private var i = 0

    init(_ text: String) { chars = Array(text) }

    mutating func parseDict() throws -> [String: HeaderValue] {
        try expect("{")
        var dict = [String: HeaderValue]()
        while true {
            skipSpace()
            if peek() == "}" { i += 1; break }
            guard case let .string(key) = try parseValue() else { throw Failure(message: "key is not a string") }
            try expect(":")
            guard dict.updateValue(try parseValue(), forKey: key) == nil else {
                throw Failure(message: "duplicate key '\(key)'")
            }
            skipSpace()
            if peek() == "," { i += 1 } else if peek() != "}" { throw Failure(message: "expected ',' or '}'") }
        }
        skipSpace()
        guard i == chars.count else { throw Failure(message: "text after the dict") }
        return dict
    }

    private mutating func parseValue() throws -> HeaderValue {
        skipSpace()
        guard let c = peek() else { throw Failure(message: "unexpected end") }
        if c == "'" || c == "\"" {
            i += 1
            guard let end = chars[i...].firstIndex(of: c) else { throw Failure(message: "unterminated string") }
            defer { i = end + 1 }
            return .string(String(chars[i..<end]))
        }
        if c == "(" {
            i += 1
            var dims = [Int]()
            while true {
                skipSpace()
                if peek() == ")" { i += 1; break }
                dims.append(try parseInt())
                skipSpace()
                if peek() == "," { i += 1 } else if peek() != ")" { throw Failure(message: "expected ',' or ')' in shape") }
            }
            return .tuple(dims)
        }
        for (word, value) in [("True", true), ("False", false)] where chars[i...].starts(with: word) {
            i += word.count
            return .bool(value)
        }
        throw Failure(message: "unexpected '\(c)'")
    }

    private mutating func parseInt() throws -> Int {
        var digits = ""
        while let c = peek(), c.isASCII, c.isNumber, digits.count < 19 { digits.append(c); i += 1 }
        if let c = peek(), c == "L" { i += 1 }  // Python 2 long suffix
        guard let value = Int(digits) else { throw Failure(message: "bad dimension in shape") }
        return value
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard peek() == c else { throw Failure(message: "expected '\(c)'") }
        i += 1
    }

    private mutating func skipSpace() { while let c = peek(), c.isWhitespace { i += 1 } }
    private func peek() -> Character? { i < chars.count ? chars[i] : nil }
}
