import Datasets
import Foundation
import TestSupport
import Testing

@Suite("Fetch and inspect", .serialized)
struct FetchInspectTests {
    /// Serves `folder` on 127.0.0.1 with Python's http.server; stop it with `stop`.
    func startServer(serving folder: String) async throws -> (Process, Int) {
        let port = try freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "\(port)", "--directory", folder]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // Wait (at most 10 s) until the port accepts connections.
        for _ in 0..<100 {
            if server.isRunning && canConnect(port: port) { return (server, port) }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop(server)
        throw DatasetError.downloadFailed(url: "http://127.0.0.1:\(port)/", reason: "test server did not start")
    }

    /// SIGKILL: the child may inherit a blocked SIGTERM from the test runner's thread.
    func stop(_ server: Process) async {
        kill(server.processIdentifier, SIGKILL)
        await exited(server)
    }

    func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// A port the kernel says is free on 127.0.0.1 (bind to port 0, read it back).
    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(ok)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func fetchFromLocalServerChecksMD5() async throws {
        let served = try makeTemporaryFolder(), cache = try makeTemporaryFolder()
        defer { removeTemporary(served); removeTemporary(cache) }
        let source = sharedData("pneumoniamnist/pneumoniamnist-trainval.npz")
        try FileManager.default.copyItem(atPath: source, toPath: served + "/p.npz")
        let md5 = try md5Hex(ofFile: source)
        let (server, port) = try await startServer(serving: served)
        do {
            try await fetchChecksMD5(port: port, source: source, md5: md5, cache: cache)
        } catch {
            await stop(server)
            throw error
        }
        await stop(server)
    }

    /// `fetchFromLocalServerChecksMD5` with the server up on `port` (stopped by the caller).
    func fetchChecksMD5(port: Int, source: String, md5: String, cache: String) async throws {
        let url = "http://127.0.0.1:\(port)/p.npz"

        // Wrong MD5: fails, and leaves nothing in the cache (not even a partial file).
        await #expect(throws: DatasetError.checksumMismatch(path: url, expected: String(repeating: "0", count: 32), actual: md5))
        {
            try await fetchMedMNIST(
                name: "trainval-copy", cacheDirectory: cache, url: url, md5: String(repeating: "0", count: 32))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).isEmpty)

        let result = try await fetchMedMNIST(name: "trainval-copy", cacheDirectory: cache, url: url, md5: md5)
        #expect(result.verified && result.downloaded && result.md5 == md5)
        #expect(result.path == cache + "/trainval-copy.npz")
        #expect(try readFileBytes(result.path) == readFileBytes(source))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache) == ["trainval-copy.npz"])
        let again = try await fetchMedMNIST(name: "trainval-copy", cacheDirectory: cache, url: url, md5: md5)
        #expect(!again.downloaded)

        await #expect(throws: DatasetError.self) {
            try await fetchMedMNIST(name: "missing", cacheDirectory: cache, url: "http://127.0.0.1:\(port)/missing.npz")
        }
    }

    @Test func fetchRejectsBadRequestsWithoutNetwork() async {
        await #expect(throws: DatasetError.self) {
            try await fetchMedMNIST(name: "pneumoniamnist", size: 32, cacheDirectory: "/tmp")
        }
        await #expect(throws: DatasetError.self) { try await fetchMedMNIST(name: "nosuchmnist", cacheDirectory: "/tmp") }
    }

    @Test func catalogKnowsOfficialNamesAndURLs() throws {
        let info = try #require(MedMNISTInfo.lookup("pneumoniamnist-trainval.npz"))
        #expect(info.classNames == ["normal", "pneumonia"])
        #expect(info.md5[28] == "28209eda62fecd6e6a2d98b1501bb15f")  // as the data README verified
        #expect(info.url(size: 64) == "https://zenodo.org/records/10519652/files/pneumoniamnist_64.npz?download=1")
        #expect(MedMNISTInfo.lookup("breastmnist")?.classNames == ["malignant", "normal_or_benign"])
        #expect(MedMNISTInfo.lookup("organcmnist_128.npz")?.name == "organcmnist")
    }

    @Test func inspectReportsCountsImbalanceAndProblems() throws {
        let report = try inspectDataset(at: sharedData("breastmnist-png"))
        #expect(report.classes.map(\.name) == ["malignant", "normal_or_benign"])
        #expect(report.classes.map(\.total) == [168, 456])
        #expect(abs(report.classes[0].imbalanceRatio - 456.0 / 168.0) < 1e-9)
        #expect(report.classes[0].shapes == ["28x28x1": 168])
        #expect(report.splitTotals.values.reduce(0, +) == 624)
        #expect(report.outputShape == "1x28x28")
        let json = try JSONEncoder().encode(report)
        #expect(try JSONDecoder().decode(InspectionReport.self, from: json).total == 624)

        let root = try makeTemporaryFolder()
        defer { removeTemporary(root) }
        for cls in ["x", "y"] {
            for i in 0..<3 { try writeBytes(try png(UInt8(i * 50 + (cls == "x" ? 1 : 2))), to: "\(root)/\(cls)/\(i).png") }
        }
        try writeBytes(Array("oops".utf8), to: root + "/y/bad.png")
        let small = try inspectDataset(at: root)
        #expect(small.unreadable.map(\.path) == [root + "/y/bad.png"])
        // The table `data inspect` prints: a row per class, the totals, then every problem.
        let lines = small.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[2].hasPrefix("class           train      val     test    total    share  imbalance"), "\(lines[2])")
        #expect(lines.contains { $0.hasPrefix("all   ") && $0.hasSuffix("        6") }, "\(small.text)")
        #expect(lines.contains("unreadable files: 1"), "\(small.text)")
    }
}
