import Datasets
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import Serving

/// DICOM files made from a real JPEG with DCMTK's own tools: `img2dcm` (JPEG baseline inside
/// DICOM), `dcmdjpeg` (the same, uncompressed) and `dcmodify` (Rows x Columns raised to
/// 2000 x 2000 in the header, the pixel data left as it is). Waits off the cooperative pool.
func dcmtkFiles(from jpeg: String, in folder: String) async throws -> (jpeg: String, plain: String, huge: String) {
    func tool(_ name: String, _ arguments: [String]) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [name] + arguments
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        await exited(p)
        #expect(p.terminationStatus == 0, "\(name) \(arguments) failed (is DCMTK installed? scripts/setup.sh)")
    }
    let (compressed, plain, huge) = (folder + "/jpeg.dcm", folder + "/plain.dcm", folder + "/huge.dcm")
    try await tool("img2dcm", [jpeg, compressed])
    try await tool("dcmdjpeg", [compressed, plain])
    try FileManager.default.copyItem(atPath: plain, toPath: huge)
    try await tool("dcmodify", ["-nb", "-m", "(0028,0010)=2000", "-m", "(0028,0011)=2000", huge])
    return (compressed, plain, huge)
}

/// The server reads a DICOM body through the data loader's bounded DICOM reader: a JPEG-in-DICOM
/// and the same image uncompressed get the same answer (one decoder), close to the JPEG's own;
/// a header announcing more pixels than --max-image-pixels is refused with 413 before decoding.
@Test func predictAcceptsDICOMBodies() async throws {
    let app = buildApplication(state: try makeState())
    let folder = sharedData("dermamnist-jpeg/actinic_keratosis")
    let jpeg = folder + "/" + (try FileManager.default.contentsOfDirectory(atPath: folder).sorted()[0])
    let work = try makeTemporaryFolder()
    defer { removeTemporary(work) }
    let files = try await dcmtkFiles(from: jpeg, in: work)
    #expect(hasDICOMPreamble(try readFileBytes(files.plain)))
    try await app.test(.router) { client in
        func probabilities(_ path: String) async throws -> [String: Double] {
            try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(path)) {
                #expect($0.status == .ok, "\(path): \(String(buffer: $0.body))")
                return object($0.body)["probabilities"] as? [String: Double] ?? [:]
            }
        }
        let fromJPEG = try await probabilities(jpeg)
        let fromDICOM = try await probabilities(files.jpeg), fromPlainDICOM = try await probabilities(files.plain)
        #expect(fromDICOM.count == 2 && fromDICOM == fromPlainDICOM)
        for (name, p) in fromJPEG { #expect(abs(p - (fromDICOM[name] ?? -1)) < 0.05, "\(name): \(p) \(fromDICOM)") }
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: try fileBuffer(files.huge)) {
            #expect($0.status.code == 413)
            let error = object($0.body)["error"] as? String ?? ""
            #expect(error.contains("2000") && error.contains("request body"), "\(error)")
        }
    }
}

/// Found by medsynth-fuzz: DCMTK 3.6.7's JPEG decoder never moves past a TEM marker (FF 01)
/// before the frame header (its own `dcmdjpeg` never ends on such a file). A JPEG-in-DICOM body
/// with one right after SOI is refused with 400 at once instead of holding an inference thread.
@Test func aJPEGInDICOMBodyWithATEMMarkerIsRefusedNotHung() async throws {
    let app = buildApplication(state: try makeState())
    let folder = sharedData("dermamnist-jpeg/actinic_keratosis")
    let jpeg = folder + "/" + (try FileManager.default.contentsOfDirectory(atPath: folder).sorted()[0])
    let work = try makeTemporaryFolder()
    defer { removeTemporary(work) }
    var bytes = try readFileBytes(try await dcmtkFiles(from: jpeg, in: work).jpeg)
    // The first fragment: after Pixel Data (undefined length) and the empty basic offset table.
    let pixelData: [UInt8] = [0xE0, 0x7F, 0x10, 0x00, 0x4F, 0x42, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]
    let tag = try #require((0...(bytes.count - 12)).last { bytes[$0..<($0 + 12)].elementsEqual(pixelData) })
    let item = tag + 12 + 8 + Int(bytes[tag + 16])
    let soi = item + 8
    #expect(bytes[soi] == 0xFF && bytes[soi + 1] == 0xD8)
    bytes.insert(contentsOf: [0xFF, 0x01], at: soi + 2)
    #expect(bytes[item + 4] < 0xFE)
    bytes[item + 4] += 2  // the fragment's length, low byte
    let body = ByteBuffer(bytes: bytes)
    try await app.test(.router) { client in
        try await client.execute(uri: "/v1/models/breast/predict", method: .post, body: body) {
            #expect($0.status.code == 400)
            let error = object($0.body)["error"] as? String ?? ""
            #expect(error.contains("TEM marker"), "\(error)")
        }
    }
}
