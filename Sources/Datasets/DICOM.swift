import CDICOM
import Foundation

// DICOM images through DCMTK (the CDICOM shim). The shim parses and decompresses and returns one
// frame of modality values (stored value x Rescale Slope + Rescale Intercept, PS3.3 C.11.1);
// this file turns them into the same 8-bit `DecodedImage` the PNG and JPEG decoders produce:
//
//   gray:  modality values -> VOI window -> 0...255 -> inverted when MONOCHROME1
//   RGB:   stored values scaled from 0...(2^BitsStored - 1) to 0...255 (no window)
//
// The window is the file's first Window Center / Window Width pair when both are present (the
// DICOM "LINEAR" function, PS3.3 C.11.2.1.2.1), otherwise the 0.5th to 99.5th percentile of the
// image's own modality values (linear interpolation between order statistics, numpy's default).
// NOTE: the windowed values are rounded to 8 bits, like every PNG and JPEG this project reads, so
// one pipeline serves all three; a 12-bit CT loses the precision outside its window by design.
//
// Privacy: nothing here reads a patient attribute. Only the fields in `DICOMInfo` leave the shim,
// and errors quote DCMTK's condition text and header numbers, never an attribute value.

/// What a DICOM header says about its image; no patient or study attribute is kept.
public struct DICOMInfo: Codable, Equatable, Sendable {
    /// Modality (0008,0060), e.g. `CT`, `MR`, `CR`; empty when absent.
    public var modality: String
    /// Photometric Interpretation: `MONOCHROME1`, `MONOCHROME2` or `RGB` (after decompression).
    public var photometric: String
    /// Bits Allocated: 8 or 16.
    public var bitsAllocated: Int
    /// Bits Stored: 1...bitsAllocated.
    public var bitsStored: Int
    /// Pixel Representation 1: two's complement stored values.
    public var isSigned: Bool
    /// Rescale Slope and Intercept (1 and 0 when absent).
    public var rescaleSlope: Double
    /// See `rescaleSlope`.
    public var rescaleIntercept: Double
    /// First Window Center value, when Window Center and Window Width are both present.
    public var windowCenter: Double?
    /// First Window Width value (see `windowCenter`).
    public var windowWidth: Double?
    /// The file's transfer syntax UID (before decompression).
    public var transferSyntax: String

    /// One line for inspection: `"CT, 12/16-bit signed, MONOCHROME2"`.
    public var summary: String {
        let modality = modality.isEmpty ? "no modality" : modality
        return "\(modality), \(bitsStored)/\(bitsAllocated)-bit\(isSigned ? " signed" : ""), \(photometric)"
    }
}

/// One decoded DICOM frame before display mapping: modality values, interleaved HWC.
public struct DICOMImage: Sendable {
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int
    /// 1 (MONOCHROME1/2) or 3 (RGB).
    public var channels: Int
    /// `height * width * channels` modality values (gray) or stored values (RGB).
    public var values: [Float]
    /// The header fields.
    public var info: DICOMInfo
}

/// True when `bytes` carries the DICOM preamble: "DICM" at offset 128 (PS3.10 7.1).
public func hasDICOMPreamble(_ bytes: some Collection<UInt8>) -> Bool {
    bytes.count >= 132 && bytes.dropFirst(128).prefix(4).elementsEqual("DICM".utf8)
}

/// Parses and decodes a single-frame DICOM file's bytes (`path` only names it in errors).
///
/// Supported transfer syntaxes: implicit and explicit VR little endian, explicit big endian,
/// deflated, RLE lossless, JPEG baseline, extended and lossless (processes 1, 2/4, 14, 14 SV1) and
/// JPEG-LS (lossless and near-lossless). Others (JPEG 2000, MPEG, HTJ2K...) throw `unsupported`.
/// Rows x Columns over `maxPixels` throws `imageTooLarge` before anything is decompressed;
/// multi-frame files throw `unsupported` (one frame per file is the rule). A deflated dataset is
/// inflated once through a small buffer first and refused (`corrupt`) when it inflates past
/// `maxInflatedBytes(maxPixels:)`, before DCMTK inflates it into memory: a small file that
/// inflates to gigabytes allocates nothing.
public func readDICOM(_ bytes: [UInt8], path: String, maxPixels: Int = defaultMaxPixels) throws -> DICOMImage {
    if bytes.isEmpty { throw DatasetError.emptyFile(path: path) }
    if jpegFragmentStallsDCMTK(bytes) {
        throw DatasetError.corrupt(
            path: path, reason: "DICOM: a TEM marker (FF 01) among the JPEG fragment's markers; refused before decoding")
    }
    if let start = deflatedDatasetOffset(bytes) {
        let limit = maxInflatedBytes(maxPixels: maxPixels)
        let inflated = bytes.withUnsafeBufferPointer {
            cdicom_inflated_length($0.baseAddress! + start, $0.count - start, Int64(limit))
        }
        if inflated > Int64(limit) {
            throw DatasetError.corrupt(
                path: path,
                reason: "DICOM: the deflated dataset inflates to more than \(limit) bytes, more than one frame of at most "
                    + "\(maxPixels) pixels needs; refused before inflating it")
        }
    }
    var info = cdicom_info()
    var status = CDICOM_OK
    var message = [CChar](repeating: 0, count: 512)
    let handle = bytes.withUnsafeBufferPointer {
        cdicom_open($0.baseAddress, $0.count, Int64(maxPixels), &info, &status, &message, message.count)
    }
    guard let handle else { throw dicomError(status, message, info: info, path: path, maxPixels: maxPixels) }
    defer { cdicom_close(handle) }
    let (height, width, channels) = (Int(info.rows), Int(info.columns), Int(info.samples_per_pixel))
    var values = [Float](repeating: 0, count: height * width * channels)
    let read = values.withUnsafeMutableBufferPointer {
        cdicom_read_frame(handle, $0.baseAddress, $0.count, &message, message.count)
    }
    guard read == CDICOM_OK else { throw dicomError(read, message, info: info, path: path, maxPixels: maxPixels) }
    return DICOMImage(width: width, height: height, channels: channels, values: values, info: DICOMInfo(info))
}

/// Most bytes a deflated dataset may inflate to: one frame of `maxPixels` pixels of 3 samples of
/// 16 bits (the most `readDICOM` decodes), plus 16 MiB for every other element.
public func maxInflatedBytes(maxPixels: Int) -> Int {
    let (frame, overflow) = maxPixels.multipliedReportingOverflow(by: 3 * 2)
    return overflow ? Int.max / 2 : frame + (16 << 20)
}

/// Deflated Explicit VR Little Endian (PS3.5 A.5): the dataset after the file meta group is raw deflate data.
let deflatedTransferSyntax = "1.2.840.10008.1.2.1.99"

/// Where the dataset starts when the file meta group (explicit VR little endian, after the
/// preamble) names the deflated transfer syntax; nil otherwise, and when the meta group cannot be
/// walked (DCMTK then says what is wrong). Every length is checked against the bytes there are.
func deflatedDatasetOffset(_ bytes: [UInt8]) -> Int? {
    guard hasDICOMPreamble(bytes) else { return nil }
    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    let longLengthVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
    var offset = 132, syntax: String?
    while offset + 8 <= bytes.count, u16(offset) == 0x0002 {
        let vr = String(decoding: bytes[(offset + 4)..<(offset + 6)], as: UTF8.self)
        let long = longLengthVRs.contains(vr)
        let header = long ? 12 : 8
        guard offset + header <= bytes.count else { return nil }
        let length = long ? u16(offset + 8) | u16(offset + 10) << 16 : u16(offset + 6)
        guard length <= bytes.count - offset - header else { return nil }
        if u16(offset + 2) == 0x0010 {
            syntax = String(decoding: bytes[(offset + header)..<(offset + header + length)], as: UTF8.self)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\u{0} "))
        }
        offset += header + length
    }
    return syntax == deflatedTransferSyntax ? offset : nil
}

/// Whether the first JPEG fragment of an encapsulated Pixel Data element would stall DCMTK.
///
/// NOTE: DCMTK 3.6.7's JPEG decoder walks the first fragment's markers for the bit depth and never
/// moves past a TEM marker (FF 01): `dcmdjpeg` itself never ends on such a file, and a mutated
/// JPEG-in-DICOM file hung the reader for good (found by medsynth-fuzz). The same walk is done
/// here first (skipping RST/SOI/EOI, skipping marker segments by their length, stopping at a SOF or
/// at anything that is not a marker, as DCMTK does), so such a file is refused instead.
func jpegFragmentStallsDCMTK(_ bytes: [UInt8]) -> Bool {
    let pixelData: [UInt8] = [0xE0, 0x7F, 0x10, 0x00, 0x4F, 0x42, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]
    guard bytes.count > pixelData.count,
        let tag = stride(from: bytes.count - pixelData.count, through: 0, by: -1).first(where: {
            bytes[$0] == 0xE0 && bytes[$0..<($0 + pixelData.count)].elementsEqual(pixelData)
        })
    else { return false }
    func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
    func isItem(_ at: Int) -> Bool { at + 8 <= bytes.count && bytes[at..<(at + 4)].elementsEqual([0xFE, 0xFF, 0x00, 0xE0]) }
    var at = tag + pixelData.count
    guard isItem(at) else { return false }
    at += 8 + u32(at + 4)  // the basic offset table
    guard at >= 0, isItem(at) else { return false }
    let start = at + 8, end = min(bytes.count, start + u32(at + 4))
    var offset = start
    while offset + 4 < end {
        switch Int(bytes[offset]) << 8 | Int(bytes[offset + 1]) {
        case 0xFFC0...0xFFC3, 0xFFC5...0xFFC7, 0xFFC9...0xFFCB, 0xFFCD...0xFFCF: return false  // SOF: DCMTK stops
        case 0xFF01: return true
        case 0xFFD0...0xFFD9: offset += 2
        case 0xFFC0...0xFFFE: offset += (Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])) + 2
        default: return false
        }
    }
    return false
}

extension DICOMInfo {
    fileprivate init(_ c: cdicom_info) {
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        let hasWindow = c.has_window != 0
        self.init(
            modality: text(c.modality), photometric: text(c.photometric), bitsAllocated: Int(c.bits_allocated),
            bitsStored: Int(c.bits_stored), isSigned: c.pixel_representation == 1, rescaleSlope: c.rescale_slope,
            rescaleIntercept: c.rescale_intercept, windowCenter: hasWindow ? c.window_center : nil,
            windowWidth: hasWindow ? c.window_width : nil, transferSyntax: text(c.transfer_syntax))
    }
}

private func dicomError(_ status: cdicom_status, _ message: [CChar], info: cdicom_info, path: String, maxPixels: Int)
    -> DatasetError
{
    let reason = String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    switch status {
    case CDICOM_TOO_LARGE:
        return .imageTooLarge(path: path, width: Int(info.columns), height: Int(info.rows), limit: maxPixels)
    case CDICOM_TRUNCATED: return .truncated(path: path, reason: reason)
    case CDICOM_UNSUPPORTED: return .unsupported(path: path, reason: reason)
    default: return .corrupt(path: path, reason: reason)
    }
}

/// Maps a decoded DICOM frame to 8-bit display values (see the top of this file).
public func renderDICOM(_ image: DICOMImage) -> DecodedImage {
    let info = image.info
    var pixels: [UInt8]
    if image.channels == 3 {
        let top = Float((1 << info.bitsStored) - 1)
        pixels = image.values.map { quantize($0 / top * 255) }
    } else if let center = info.windowCenter, let width = info.windowWidth, width >= 1 {
        pixels = image.values.map { quantize(linearWindow(Double($0), center: center, width: width)) }
    } else {
        let (low, high) = percentileWindow(image.values)
        let span = high - low
        pixels = image.values.map { span > 0 ? quantize(($0 - low) / span * 255) : 0 }
    }
    if info.photometric == "MONOCHROME1" { pixels = pixels.map { 255 - $0 } }
    return DecodedImage(width: image.width, height: image.height, channels: image.channels, pixels: pixels)
}

/// The DICOM VOI "LINEAR" function onto 0...255 (PS3.3 C.11.2.1.2.1); `width >= 1`.
func linearWindow(_ x: Double, center c: Double, width w: Double) -> Float {
    if x <= c - 0.5 - (w - 1) / 2 { return 0 }
    if x > c - 0.5 + (w - 1) / 2 { return 255 }
    return Float(((x - (c - 0.5)) / (w - 1) + 0.5) * 255)
}

/// The 0.5th and 99.5th percentiles of `values` (linear interpolation between order statistics).
func percentileWindow(_ values: [Float]) -> (low: Float, high: Float) {
    let sorted = values.sorted()
    func percentile(_ p: Double) -> Float {
        let position = p / 100 * Double(sorted.count - 1)
        let i = Int(position.rounded(.down)), t = Float(position - Double(i))
        return i + 1 < sorted.count ? sorted[i] + (sorted[i + 1] - sorted[i]) * t : sorted[i]
    }
    return sorted.isEmpty ? (0, 0) : (percentile(0.5), percentile(99.5))
}

private func quantize(_ v: Float) -> UInt8 { UInt8(min(255, max(0, v.rounded()))) }
