import Foundation
import TestSupport

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

// MARK: - Hand-made PNGs (any bit depth and colour type; libpng's writer cannot make them all)

/// CRC-32 (IEEE), as PNG chunks and zip entries use.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func bigEndian32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let body = Array(type.utf8) + data
    return bigEndian32(UInt32(data.count)) + body + bigEndian32(crc32(body))
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

func ihdr(width: Int, height: Int, bitDepth: Int, colorType: Int) -> [UInt8] {
    pngChunk("IHDR", bigEndian32(UInt32(width)) + bigEndian32(UInt32(height)) + [UInt8(bitDepth), UInt8(colorType), 0, 0, 0])
}

/// A zlib stream of stored (uncompressed) deflate blocks.
func zlibStored(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x78, 0x01]
    var offset = 0
    repeat {
        let n = min(65535, data.count - offset)
        let final: UInt8 = offset + n == data.count ? 1 : 0
        out += [final, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
        out += data[offset..<offset + n]
        offset += n
    } while offset < data.count
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    return out + bigEndian32(b << 16 | a)
}

/// A PNG from per-pixel sample values (each < 2^bitDepth), packed MSB first, filter 0.
func makePNG(
    width: Int, height: Int, bitDepth: Int, colorType: Int, samples: [Int],
    palette: [UInt8]? = nil
) -> [UInt8] {
    let perPixel = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]!
    var raw = [UInt8]()
    for y in 0..<height {
        raw.append(0)
        var row = [UInt8](), acc = 0, bits = 0
        for s in samples[(y * width * perPixel)..<((y + 1) * width * perPixel)] {
            if bitDepth == 16 { row += [UInt8(s >> 8), UInt8(s & 255)]; continue }
            acc = acc << bitDepth | s
            bits += bitDepth
            if bits == 8 { row.append(UInt8(acc)); acc = 0; bits = 0 }
        }
        if bits > 0 { row.append(UInt8(acc << (8 - bits))) }
        raw += row
    }
    var png = pngSignature + ihdr(width: width, height: height, bitDepth: bitDepth, colorType: colorType)
    if let palette { png += pngChunk("PLTE", palette) }
    return png + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", [])
}
