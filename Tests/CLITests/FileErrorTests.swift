import CommandOptions
import Foundation
import TestSupport
import Testing

/// A file-system failure reads as the path and the system's reason, in the library function and in
/// what the tool prints, never as Foundation's `NSCocoaErrorDomain ... UserInfo={...}` dictionary.
@Test func fileErrorsReadAsPathAndReason() async throws {
    let dir = try makeTemporaryFolder()
    defer { removeTemporary(dir) }
    let file = dir + "/plain"
    #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
    let created = #expect(throws: (any Error).self) {
        try FileManager.default.createDirectory(atPath: file + "/out", withIntermediateDirectories: true)
    }
    #expect(created.map { "\(plainFileError($0))" } == "\(file)/out: Not a directory")
    let read = #expect(throws: (any Error).self) { _ = try Data(contentsOf: URL(fileURLWithPath: dir + "/missing")) }
    #expect(read.map { "\(plainFileError($0))" } == "\(dir)/missing: No such file or directory")
    struct Other: Error {}
    #expect(plainFileError(Other()) is Other)

    let exe = try #require(medsynthExecutable(), "medsynth not built")
    let (status, output) = try await launch(
        exe.path, ["train", "--dry-run", "--epochs", "1", "--no-track", "--out", file + "/run"])
    #expect(status != 0)
    #expect(output.contains("\(file)/run: Not a directory"), "\(output)")
    #expect(!output.contains("NSCocoaErrorDomain"), "\(output)")
}
