import Datasets
import Foundation
import TestSupport
import Testing

@Suite("Class-folder reader")
struct ClassFolderTests {
    /// A hand-made PNG with one byte of its IDAT data flipped (the chunk CRC then fails).
    func flippedIDAT() -> [UInt8] {
        var bytes = makePNG(width: 8, height: 8, bitDepth: 8, colorType: 0, samples: Array(repeating: 3, count: 64))
        bytes[60] ^= 0x5A
        return bytes
    }

    /// root/a: 3 PNGs, root/b: 3 PNGs (one .PNG upper-case), plus hidden clutter.
    func makeTree() throws -> String {
        let root = try makeTemporaryFolder()
        for (cls, values) in [("a", [10, 20, 30]), ("b", [40, 50, 60])] {
            for (i, v) in values.enumerated() {
                try writeBytes(png(UInt8(v)), to: "\(root)/\(cls)/img\(i).\(i == 2 ? "PNG" : "png")")
            }
        }
        try writeBytes(png(99), to: root + "/a/.hidden.png")
        try writeBytes(png(99), to: root + "/.cache/x.png")
        try writeBytes(Array("notes".utf8), to: root + "/b/readme.txt")
        return root
    }

    @Test func readsSortedClassesAndIgnoresHiddenFiles() throws {
        let root = try makeTree()
        defer { removeTemporary(root) }
        let data = try loadDataset(at: root)
        #expect(data.images.classNames == ["a", "b"])
        #expect(data.images.classCounts == [3, 3])
        #expect(data.skipped.isEmpty)
        #expect(data.images.sources.allSatisfy { !$0.location.contains("/.") })
        #expect(data.images.pixels[0] == Float(10) / 255)
    }

    @Test func explicitClassListSetsLabelOrder() throws {
        let root = try makeTree()
        defer { removeTemporary(root) }
        let data = try loadDataset(at: root, options: LoadOptions(classes: ["b", "a"]))
        #expect(data.images.classNames == ["b", "a"])
        #expect(data.images.labels.first == 0 && data.images.sources.first!.location.hasSuffix("/b/img0.png"))
        #expect(throws: DatasetError.unknownClass(path: root, className: "c")) {
            try loadDataset(at: root, options: LoadOptions(classes: ["a", "c"]))
        }
    }

    @Test func emptyClassFolderIsReported() throws {
        let root = try makeTree()
        defer { removeTemporary(root) }
        try FileManager.default.createDirectory(atPath: root + "/c", withIntermediateDirectories: true)
        #expect(throws: DatasetError.emptyClass(path: root + "/c", className: "c")) { try loadDataset(at: root) }
    }

    @Test func singleClassIsAnError() throws {
        let root = try makeTemporaryFolder()
        defer { removeTemporary(root) }
        try writeBytes(png(1), to: root + "/only/x.png")
        do {
            _ = try loadDataset(at: root)
            Issue.record("expected tooFewClasses")
        } catch let error as DatasetError {
            #expect(error == .tooFewClasses(path: root, found: ["only"]))
            #expect(error.description.contains("at least 2"))
        }
    }

    @Test func nonASCIINamesWork() throws {
        let root = try makeTemporaryFolder()
        defer { removeTemporary(root) }
        try writeBytes(png(1), to: root + "/пневмония/снимок 1.png")
        try writeBytes(png(2), to: root + "/正常/画像 é.jpg".replacingOccurrences(of: ".jpg", with: ".png"))
        let data = try loadDataset(at: root)
        #expect(Set(data.images.classNames) == ["пневмония", "正常"])
        #expect(data.images.count == 2)
    }

    @Test func badFilesAreSkippedAndListedOrFatalWhenStrict() throws {
        let root = try makeTree()
        defer { removeTemporary(root) }
        let good = try png(7)
        let bad: [(String, [UInt8])] = [
            ("a/empty.png", []),
            ("a/text.png", Array("this is text\n".utf8)),
            ("a/cut.png", Array(good.prefix(good.count - 20))),
            ("b/cut.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]),
            ("b/flip.png", flippedIDAT()),
        ]
        for (name, bytes) in bad { try writeBytes(bytes, to: root + "/" + name) }
        // An unreadable file: a symlink loop fails for every user, root included.
        symlink(root + "/a/loop.png", root + "/a/loop.png")
        var expectedSkips = Set(bad.map { root + "/" + $0.0 } + [root + "/a/loop.png"])
        // chmod 000 blocks reads only for non-root users; include it when it does.
        try writeBytes(good, to: root + "/b/locked.png")
        chmod(root + "/b/locked.png", 0)
        if access(root + "/b/locked.png", R_OK) != 0 { expectedSkips.insert(root + "/b/locked.png") }

        let data = try loadDataset(at: root)
        #expect(Set(data.skipped.map(\.path)) == expectedSkips)
        for skip in data.skipped { #expect(skip.reason.hasPrefix(skip.path + ": ")) }
        let reasons = Dictionary(uniqueKeysWithValues: data.skipped.map { ($0.path, $0.reason) })
        #expect(reasons[root + "/a/empty.png"]!.contains("empty file"))
        #expect(reasons[root + "/a/text.png"]!.contains("not a PNG or JPEG"))
        #expect(reasons[root + "/a/cut.png"]!.contains("truncated"))
        #expect(reasons[root + "/b/cut.jpg"]!.contains("truncated"))
        #expect(reasons[root + "/b/flip.png"]!.contains("corrupt"))
        #expect(reasons[root + "/a/loop.png"]!.contains("cannot read"))
        #expect(data.images.count == 6 + (expectedSkips.contains(root + "/b/locked.png") ? 0 : 1))

        #expect(throws: DatasetError.self) { try loadDataset(at: root, options: LoadOptions(strict: true)) }
    }

    @Test func classWhoseFilesAreAllBadIsEmpty() throws {
        let root = try makeTree()
        defer { removeTemporary(root) }
        try writeBytes([], to: root + "/c/x.png")
        #expect(throws: DatasetError.emptyClass(path: root + "/c", className: "c")) { try loadDataset(at: root) }
    }

    @Test func missingPathIsNotFound() {
        #expect(throws: DatasetError.notFound(path: "/nonexistent/medsynth")) { try loadDataset(at: "/nonexistent/medsynth") }
    }
}
