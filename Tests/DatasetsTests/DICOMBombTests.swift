import Datasets
import Foundation
import Testing
import ZIPFoundation

/// A DICOM file (preamble, a meta group naming Deflated Explicit VR Little Endian) whose dataset
/// -- a 16 x 16 8-bit image header and a Pixel Data element of `pixelBytes` zeros -- is raw deflate
/// data: about a thousandth of what it inflates to. The zeros are made and deflated a megabyte at
/// a time, so the test never holds them.
func deflatedDICOM(pixelBytes: Int) throws -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16) }
    func element(_ group: Int, _ number: Int, _ vr: String, _ value: [UInt8]) -> [UInt8] {
        u16(group) + u16(number) + Array(vr.utf8) + u16(value.count) + value
    }
    let syntax = Array("1.2.840.10008.1.2.1.99".utf8)  // 22 characters: even, no padding
    let meta = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8) + element(0x0002, 0x0010, "UI", syntax)
    var dataset = element(0x0028, 0x0002, "US", u16(1)) + element(0x0028, 0x0004, "CS", Array("MONOCHROME2 ".utf8))
    for (number, value) in [(0x0010, 16), (0x0011, 16), (0x0100, 8), (0x0101, 8), (0x0102, 7), (0x0103, 0)] {
        dataset += element(0x0028, number, "US", u16(value))
    }
    dataset += u16(0x7FE0) + u16(0x0010) + Array("OB".utf8) + [0, 0] + u32(pixelBytes)
    let header = Data(dataset), total = dataset.count + pixelBytes
    var deflated = Data()
    _ = try Data.compress(
        size: Int64(total), bufferSize: 1 << 20,
        provider: { position, size in
            let start = Int(position)
            guard start < header.count else { return Data(count: size) }
            return header.subdata(in: start..<min(header.count, start + size)) + Data(count: max(0, start + size - header.count))
        },
        consumer: { deflated += $0 })
    return meta + Array(deflated)
}

/// Peak resident memory of this process, in bytes (Linux reports kilobytes).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

/// A small deflated DICOM file that inflates to 1 GiB is refused, naming the file, before
/// anything near that size is allocated; the same layout of a real size reads. (Without the
/// check, DCMTK inflated the whole Pixel Data element into memory first.)
@Test func aDeflatedDICOMBombIsRefusedBeforeInflating() throws {
    let small = try deflatedDICOM(pixelBytes: 256)
    let image = try readDICOM(small, path: "small.dcm")
    #expect(image.width == 16 && image.height == 16 && image.info.transferSyntax == "1.2.840.10008.1.2.1.99")

    let bomb = try deflatedDICOM(pixelBytes: 1 << 30)
    #expect(bomb.count < 2 << 20, "\(bomb.count) bytes")
    let before = peakResidentBytes()
    let error = #expect(throws: DatasetError.self) { _ = try readDICOM(bomb, path: "bomb.dcm") }
    let message = error.map { "\($0)" } ?? ""
    #expect(message.contains("bomb.dcm") && message.contains("inflates to more than"), "\(message)")
    // The limit follows --max-image-pixels' pixel budget: a smaller budget refuses sooner.
    #expect(throws: DatasetError.self) { _ = try readDICOM(bomb, path: "bomb.dcm", maxPixels: 1024) }
    #expect(peakResidentBytes() - before < 256 << 20, "peak memory grew by \(peakResidentBytes() - before) bytes")
    #expect(maxInflatedBytes(maxPixels: 1024) == 1024 * 6 + (16 << 20))
}
