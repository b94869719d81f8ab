import Datasets
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
    import TestSupport
#endif

/// Inputs a careless or hostile user produces (tracker #13): the readers must neither hang nor
/// allocate without bound, and `inspectDataset` must list every problem at once.
@Suite("Hostile inputs")
struct HostileInputTests {
    /// A small copy of the real breast set (`perClass` images per class), plus an empty class folder.
    func makeBreastTree(perClass: Int = 5) throws -> String {
        let root = try makeTemporaryFolder()
        for name in ["malignant", "normal_or_benign"] {
            let source = sharedData("breastmnist-png/" + name)
            let files = try FileManager.default.contentsOfDirectory(atPath: source).sorted().prefix(perClass)
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            for file in files {
                try FileManager.default.copyItem(atPath: source + "/" + file, toPath: root + "/" + name + "/" + file)
            }
        }
        return root
    }

    /// Runs `body` on a thread; if it has not returned after `seconds`, records a hang and opens
    /// `fifo` for writing, which releases a reader blocked in `open`. The waiting is done on a
    /// thread of its own too (TestSupport's `onOwnThread`), not on the cooperative pool.
    func withoutHanging(_ seconds: Double, unblocking fifo: String, _ body: @escaping @Sendable () -> Void) async {
        let hung = await onOwnThread {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                body(); done.signal()
            }
            guard done.wait(timeout: .now() + seconds) == .timedOut else { return false }
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            done.wait()
            return true
        }
        if hung { Issue.record("reading hung on the FIFO \(fifo)") }
    }

    @Test func aFIFONamedLikeAnImageIsSkippedAndListedWithoutHanging() async throws {
        let root = try makeBreastTree()
        defer { removeTemporary(root) }
        let fifo = root + "/malignant/zz.png"
        #expect(mkfifo(fifo, 0o644) == 0)
        let result = LockedBox<Result<LoadedDataset, Error>?>(nil)
        await withoutHanging(20, unblocking: fifo) { result.value = Result { try loadDataset(at: root) } }
        let loaded = try #require(try result.value?.get())
        #expect(loaded.images.classCounts == [5, 5])
        #expect(loaded.skipped.map(\.path) == [fifo])
        #expect(loaded.skipped.first?.reason.contains("not a regular file (a FIFO)") == true)
    }

    @Test func inspectListsEveryProblemInTheTree() async throws {
        let root = try makeBreastTree()
        defer { removeTemporary(root) }
        try FileManager.default.createDirectory(atPath: root + "/empty_class", withIntermediateDirectories: true)
        #expect(mkfifo(root + "/malignant/zz.png", 0o644) == 0)
        try writeBytes(Array("not an image".utf8), to: root + "/normal_or_benign/broken.png")
        let first = try FileManager.default.contentsOfDirectory(atPath: root + "/malignant").sorted()[0]
        try FileManager.default.copyItem(atPath: root + "/malignant/" + first, toPath: root + "/normal_or_benign/copy.png")
        let result = LockedBox<Result<InspectionReport, Error>?>(nil)
        await withoutHanging(20, unblocking: root + "/malignant/zz.png") {
            result.value = Result { try inspectDataset(at: root) }
        }
        let report = try #require(try result.value?.get())
        let problems = report.problems.joined(separator: "\n")
        #expect(report.problems.count == 4, "\(problems)")
        #expect(problems.contains("class 'empty_class' has no usable image"))
        #expect(problems.contains("zz.png: cannot read: not a regular file (a FIFO)"))
        #expect(problems.contains("broken.png: not a PNG or JPEG"))
        #expect(problems.contains("duplicate image"))
        #expect(report.classes.map(\.total) == [0, 5, 6])
        // The report stays JSON-encodable with an empty class (no infinite ratio).
        _ = try JSONEncoder().encode(report)
    }

    @Test func aHealthyTreeHasNoProblems() throws {
        let root = try makeBreastTree()
        defer { removeTemporary(root) }
        #expect(try inspectDataset(at: root).problems.isEmpty)
    }

    @Test func oneColourImageAmongGrayOnesIsReported() throws {
        let root = try makeBreastTree()
        defer { removeTemporary(root) }
        let dermatology = sharedData("dermamnist-jpeg/dermatofibroma")
        let jpeg = try FileManager.default.contentsOfDirectory(atPath: dermatology).sorted()[0]
        try FileManager.default.copyItem(atPath: dermatology + "/" + jpeg, toPath: root + "/malignant/colour.jpg")
        let loaded = try loadDataset(at: root)
        #expect(loaded.images.channels == 3)
        #expect(loaded.warnings.contains { $0.contains("1 of 11 images are colour") && $0.contains("colour.jpg") })
        let gray = try makeBreastTree(perClass: 2)
        defer { removeTemporary(gray) }
        #expect(try loadDataset(at: gray).warnings.isEmpty)
    }

    @Test(arguments: [1 << 40, 5_000_000])
    func anNPZWithALabelFarBeyondItsImagesIsRefusedQuickly(_ label: Int) throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        let npz = try makeNPZ([
            ("train_images.npy", makeNPY(descr: "|u1", shape: [4, 5, 5], data: Array(repeating: 7, count: 100))),
            ("train_labels.npy", makeNPY(descr: "<i8", shape: [4], data: int64Bytes([0, 1, label, 0]))),
        ])
        try Data(npz).write(to: URL(fileURLWithPath: dir + "/labels.npz"))
        let start = Date()
        #expect(
            throws: DatasetError.labelOutOfRange(path: dir + "/labels.npz", entry: "train_labels", label: label, classCount: 1000)
        ) {
            try loadDataset(at: dir + "/labels.npz")
        }
        #expect(Date().timeIntervalSince(start) < 2)
        // A label within reach (below max(images, 1000)) still loads, naming the classes in between.
        let fine = try makeNPZ([
            ("train_images.npy", makeNPY(descr: "|u1", shape: [4, 5, 5], data: Array(repeating: 7, count: 100))),
            ("train_labels.npy", makeNPY(descr: "<i8", shape: [4], data: int64Bytes([0, 1, 999, 0]))),
        ])
        try Data(fine).write(to: URL(fileURLWithPath: dir + "/fine.npz"))
        #expect(try loadDataset(at: dir + "/fine.npz").images.classNames.count == 1000)
    }

    @Test func aDeflateBombIsRefusedBeforeItInflates() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        // 1M x 28 x 28 zeros, as the issue's 1.1 MB bomb declares: patch a small valid npz's
        // declared size. Were it inflated, the short stream would fail with another error.
        var npz = try makeMedMNIST(n: 4, h: 28, w: 28, splits: ["train"])
        let declared = UInt32(1_000_000 * 28 * 28 + 128)
        #expect(patchDeclaredSize(of: "train_images.npy", in: &npz, to: declared) == 2)
        try Data(npz).write(to: URL(fileURLWithPath: dir + "/bomb.npz"))
        let start = Date()
        do {
            _ = try loadDataset(at: dir + "/bomb.npz")
            Issue.record("the bomb was accepted")
        } catch let DatasetError.fileTooLarge(path, bytes, limit) {
            #expect(path == dir + "/bomb.npz" && bytes > Int(declared) && limit == defaultMaxArchiveBytes)
        }
        #expect(Date().timeIntervalSince(start) < 2)

        // A real deflated run of zeros (3 MB) against a 1 MiB limit; the limit can be raised.
        let zeros = try makeNPZ([
            ("train_images.npy", makeNPY(descr: "|u1", shape: [4000, 28, 28], data: Array(repeating: 0, count: 4000 * 784))),
            ("train_labels.npy", makeNPY(descr: "<i8", shape: [4000], data: int64Bytes((0..<4000).map { $0 % 2 }))),
        ])
        #expect(zeros.count < 100_000)
        try Data(zeros).write(to: URL(fileURLWithPath: dir + "/zeros.npz"))
        #expect(throws: DatasetError.self) {
            try loadDataset(at: dir + "/zeros.npz", options: LoadOptions(maxReadBytes: 1 << 20))
        }
        #expect(try loadDataset(at: dir + "/zeros.npz", options: LoadOptions(maxReadBytes: 8 << 20)).images.count == 4000)
    }

    @Test func anImageFileAboveTheLimitIsRefusedBeforeReading() throws {
        let dir = try makeTemporaryFolder()
        defer { removeTemporary(dir) }
        try writeBytes(Array(repeating: 0, count: 4096), to: dir + "/big.png")
        #expect(throws: DatasetError.fileTooLarge(path: dir + "/big.png", bytes: 4096, limit: 1024)) {
            try readFileBytes(dir + "/big.png", limit: 1024)
        }
    }
}

/// Sets the declared uncompressed size of `name` in a zip's local and central headers; returns
/// how many headers were patched.
func patchDeclaredSize(of name: String, in zip: inout [UInt8], to size: UInt32) -> Int {
    let nameBytes = Array(name.utf8)
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(zip[i + $1]) << (8 * UInt32($1)) } }
    func u16(_ i: Int) -> Int { Int(zip[i]) | Int(zip[i + 1]) << 8 }
    func put(_ i: Int) { for k in 0..<4 { zip[i + k] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(k))) } }
    var patched = 0
    for i in 0..<(zip.count - 46) {
        if u32(i) == 0x0403_4B50, u16(i + 26) == nameBytes.count, Array(zip[(i + 30)..<(i + 30 + nameBytes.count)]) == nameBytes {
            put(i + 22); patched += 1
        }
        if u32(i) == 0x0201_4B50, u16(i + 28) == nameBytes.count, Array(zip[(i + 46)..<(i + 46 + nameBytes.count)]) == nameBytes {
            put(i + 24); patched += 1
        }
    }
    return patched
}

/// A value written by one thread and read by another after a semaphore.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
