import CPNG
import CTurboJPEG
import Foundation
import SeededRandom

/// One decoded 8-bit image, interleaved HWC: `pixels[(y * width + x) * channels + c]`.
public struct DecodedImage: Equatable, Sendable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// 1 (gray) or 3 (RGB); alpha is always dropped.
    public var channels: Int
    /// `height * width * channels` bytes, row-major, channels interleaved.
    public var pixels: [UInt8]

    /// Creates an image; `pixels.count` must equal `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel count mismatch")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// The image formats the decoders recognise by signature.
public enum ImageFormat: String, Codable, Sendable {
    /// PNG, any bit depth and colour type.
    case png
    /// Baseline or progressive JPEG.
    case jpeg
    /// DICOM Part 10 file ("DICM" after the 128-byte preamble); see `readDICOM`.
    case dicom
}

/// Default cap on decoded image size: 64 megapixels.
public let defaultMaxPixels = 64 * 1024 * 1024

/// Recognises PNG, JPEG or DICOM by the file's first bytes (never by its name).
public func sniffImageFormat(_ bytes: [UInt8]) -> ImageFormat? {
    if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
    if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
    if hasDICOMPreamble(bytes) { return .dicom }
    return nil
}

/// Reads and decodes a PNG, JPEG or DICOM file.
public func decodeImage(at path: String, maxPixels: Int = defaultMaxPixels) throws -> DecodedImage {
    try decodeImage(readFileBytes(path), path: path, maxPixels: maxPixels)
}

/// Decodes PNG, JPEG or DICOM bytes (DICOM windowed to 8 bits, see `renderDICOM`); `path` only
/// names the source in errors.
public func decodeImage(_ bytes: [UInt8], path: String, maxPixels: Int = defaultMaxPixels) throws
    -> DecodedImage
{
    try decodeImageAndHeader(bytes, path: path, maxPixels: maxPixels).image
}

/// `decodeImage`, plus the DICOM header fields when the file is DICOM. A file without the DICOM
/// preamble whose name ends in `.dcm` or `.dicom` is still tried as DICOM (a bare dataset).
func decodeImageAndHeader(_ bytes: [UInt8], path: String, maxPixels: Int) throws -> (image: DecodedImage, dicom: DICOMInfo?) {
    if bytes.isEmpty { throw DatasetError.emptyFile(path: path) }
    switch sniffImageFormat(bytes) {
    case .png: return (try decodePNG(bytes, path: path, maxPixels: maxPixels), nil)
    case .jpeg: return (try decodeJPEG(bytes, path: path, maxPixels: maxPixels), nil)
    case .dicom:
        let dicom = try readDICOM(bytes, path: path, maxPixels: maxPixels)
        return (renderDICOM(dicom), dicom.info)
    case nil:
        if hasDICOMExtension(path) {
            let dicom = try readDICOM(bytes, path: path, maxPixels: maxPixels)
            return (renderDICOM(dicom), dicom.info)
        }
        // A PNG or JPEG cut inside its signature is still "truncated", not "not an image".
        if bytes.count < 8,
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A].starts(with: bytes)
                || [0xFF, 0xD8, 0xFF].starts(with: bytes)
        {
            throw DatasetError.truncated(path: path, reason: "file ends inside the signature")
        }
        throw DatasetError.notAnImage(path: path)
    }
}

// MARK: - PNG (libpng simplified API: errors come back in `image.message`, no longjmp)

/// Decodes a PNG of any bit depth (1-16) and colour type to 8-bit gray or RGB.
///
/// NOTE: libpng's simplified API treats 16-bit data without a gAMA chunk as *linear* and would
/// gamma-encode it on the way to 8 bits; `PNG_IMAGE_FLAG_16BIT_sRGB` says the samples are sRGB,
/// so 16-bit values map to 8 bits by plain rescaling (v * 255 / 65535, rounded).
func decodePNG(_ bytes: [UInt8], path: String, maxPixels: Int) throws -> DecodedImage {
    // The IHDR chunk always comes first (bytes 8..<33): refuse huge images from it alone,
    // whatever follows, before libpng allocates anything.
    if bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) {
        let be = { (i: Int) in bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        let (width, height) = (be(16), be(20))
        // NOTE: two 32-bit sides can multiply past Int.max (found by medsynth-fuzz): check the overflow.
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw DatasetError.imageTooLarge(path: path, width: width, height: height, limit: maxPixels)
        }
    }
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    return try bytes.withUnsafeBytes { raw -> DecodedImage in
        guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
            throw pngError(&image, path: path)
        }
        let width = Int(image.width), height = Int(image.height)
        guard width * height <= maxPixels else {
            png_image_free(&image)
            throw DatasetError.imageTooLarge(path: path, width: width, height: height, limit: maxPixels)
        }
        let color = image.format & PNG_FORMAT_FLAG_COLOR != 0
        let alpha = image.format & PNG_FORMAT_FLAG_ALPHA != 0
        let channels = color ? 3 : 1
        // Read with alpha when the file has it (8-bit sRGB output is not premultiplied), then drop
        // it: this keeps the stored colour values rather than compositing onto a background.
        image.format =
            (color ? png_uint_32(PNG_FORMAT_RGB) : png_uint_32(PNG_FORMAT_GRAY))
            | (alpha ? png_uint_32(PNG_FORMAT_FLAG_ALPHA) : 0)
        image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let stored = channels + (alpha ? 1 : 0)
        var buffer = [UInt8](repeating: 0, count: width * height * stored)
        let ok = buffer.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, png_int_32(width * stored), nil)
        }
        guard ok != 0 else { throw pngError(&image, path: path) }
        if alpha { buffer = dropAlpha(buffer, channels: channels) }
        return DecodedImage(width: width, height: height, channels: channels, pixels: buffer)
    }
}

private func dropAlpha(_ pixels: [UInt8], channels: Int) -> [UInt8] {
    let stride = channels + 1
    var out = [UInt8](repeating: 0, count: pixels.count / stride * channels)
    var o = 0
    for i in Swift.stride(from: 0, to: pixels.count, by: stride) {
        for c in 0..<channels { out[o + c] = pixels[i + c] }
        o += channels
    }
    return out
}

/// Turns a failed simplified-API call into a typed error (and frees the image's memory).
private func pngError(_ image: inout png_image, path: String) -> DatasetError {
    let message = withUnsafeBytes(of: image.message) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    png_image_free(&image)
    let lower = message.lowercased()
    if lower.contains("read error") || lower.contains("not enough") || lower.contains("end of")
        || lower.contains("truncated") || lower.contains("too short")
    {
        return .truncated(path: path, reason: "PNG: \(message)")
    }
    return .corrupt(path: path, reason: "PNG: \(message)")
}

/// Encodes 8-bit gray (1 channel) or RGB (3 channels) HWC pixels as a PNG file's bytes.
public func encodePNG(pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
    guard channels == 1 || channels == 3, width > 0, height > 0,
        pixels.count == width * height * channels
    else {
        throw DatasetError.invalidOption(
            name: "PNG image", value: "\(width)x\(height)x\(channels)",
            reason: "need 1 or 3 channels and width*height*channels = \(pixels.count) bytes")
    }
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    image.width = png_uint_32(width)
    image.height = png_uint_32(height)
    image.format = channels == 3 ? png_uint_32(PNG_FORMAT_RGB) : png_uint_32(PNG_FORMAT_GRAY)
    let rowStride = png_int_32(width * channels)
    // First call sizes the output, second call writes it.
    var size = 0
    _ = pixels.withUnsafeBytes {
        png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, rowStride, nil)
    }
    guard size > 0 else { throw DatasetError.writeFailed(path: "<PNG in memory>", reason: pngMessage(&image)) }
    var out = [UInt8](repeating: 0, count: size)
    let ok = out.withUnsafeMutableBytes { dst in
        pixels.withUnsafeBytes { src in
            png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, rowStride, nil)
        }
    }
    guard ok != 0 else { throw DatasetError.writeFailed(path: "<PNG in memory>", reason: pngMessage(&image)) }
    return Array(out.prefix(size))
}

private func pngMessage(_ image: inout png_image) -> String {
    let message = withUnsafeBytes(of: image.message) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    png_image_free(&image)
    return message
}

/// Encodes and writes a PNG file atomically (temporary file + rename).
public func writePNG(to path: String, pixels: [UInt8], width: Int, height: Int, channels: Int) throws {
    try writeFileAtomically(encodePNG(pixels: pixels, width: width, height: height, channels: channels), to: path)
}

// MARK: - JPEG (TurboJPEG)

/// Decodes a baseline or progressive JPEG to 8-bit gray (gray files) or RGB (all others).
func decodeJPEG(_ bytes: [UInt8], path: String, maxPixels: Int) throws -> DecodedImage {
    guard let handle = tjInitDecompress() else {
        throw DatasetError.corrupt(path: path, reason: "JPEG: cannot start the TurboJPEG decoder")
    }
    defer { tjDestroy(handle) }
    var width: Int32 = 0, height: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
    let header = bytes.withUnsafeBufferPointer {
        tjDecompressHeader3(handle, $0.baseAddress, UInt(bytes.count), &width, &height, &subsamp, &colorspace)
    }
    guard header == 0 else { throw jpegError(handle, path: path, hasEnd: bytes.suffix(2).elementsEqual([0xFF, 0xD9])) }
    guard Int(width) * Int(height) <= maxPixels else {
        throw DatasetError.imageTooLarge(path: path, width: Int(width), height: Int(height), limit: maxPixels)
    }
    let gray = colorspace == Int32(TJCS_GRAY.rawValue)
    let channels = gray ? 1 : 3
    var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
    // NOTE: without TJFLAG_STOPONWARNING a truncated file "succeeds" with grey filler rows and
    // only a warning; we want such files reported, so warnings stop decoding.
    let status = pixels.withUnsafeMutableBufferPointer { dst in
        bytes.withUnsafeBufferPointer { src in
            tjDecompress2(
                handle, src.baseAddress, UInt(bytes.count), dst.baseAddress, width, 0, height,
                Int32(gray ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue), TJFLAG_STOPONWARNING)
        }
    }
    guard status == 0 else { throw jpegError(handle, path: path, hasEnd: bytes.suffix(2).elementsEqual([0xFF, 0xD9])) }
    return DecodedImage(width: Int(width), height: Int(height), channels: channels, pixels: pixels)
}

/// A failed decode of a file without its end-of-image marker is reported as truncated.
private func jpegError(_ handle: tjhandle, path: String, hasEnd: Bool) -> DatasetError {
    let message = String(cString: tjGetErrorStr2(handle))
    if !hasEnd || message.lowercased().contains("premature end") {
        return .truncated(path: path, reason: "JPEG: \(message)")
    }
    return .corrupt(path: path, reason: "JPEG: \(message)")
}

/// Tiny fake data for `--dry-run` and tests: two classes, `dark` and `bright`, of `perClass`
/// 28 x 28 gray PNGs of seeded noise (0...120 and 120...240), as a class-folder tree in `folder`.
/// Returns `folder`.
@discardableResult
public func writeFakeClassFolders(in folder: String, perClass: Int = 16, seed: UInt64) throws -> String {
    var g = SeededGenerator(seed: seed)
    for (k, name) in ["dark", "bright"].enumerated() {
        let classFolder = (folder as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: classFolder, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let pixels = (0..<(28 * 28)).map { _ in UInt8(min(255, Float(k * 120) + g.uniform() * 120)) }
            try writePNG(
                to: (classFolder as NSString).appendingPathComponent("\(i).png"), pixels: pixels, width: 28, height: 28,
                channels: 1)
        }
    }
    return folder
}
