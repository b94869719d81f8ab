import Foundation

// Helpers shared by the test targets (a library target, depended on by tests only).

/// `shared/data/<relative>` beside the package root: the real data (the repository may be cloned
/// anywhere beside `shared/`).
public func sharedData(_ relative: String = "") -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let data = root.appendingPathComponent("shared/data")
    return relative.isEmpty ? data.path : data.appendingPathComponent(relative).path
}

/// A fresh temporary folder, removed by the caller with `removeTemporary` (or left to the
/// system); with `preferMemory`, on /dev/shm where it exists (fast for many small writes).
public func makeTemporaryFolder(preferMemory: Bool = false) throws -> String {
    let base =
        preferMemory && FileManager.default.isWritableFile(atPath: "/dev/shm")
        ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
    let url = base.appendingPathComponent("medsynth-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Removes a folder made by `makeTemporaryFolder`.
public func removeTemporary(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// The `medsynth` executable built beside the test bundle (nil when it was not built).
public func medsynthExecutable() -> URL? {
    var dir = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("medsynth")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}

/// Whether `python3 -c "import MODULES"` succeeds: the probe of the tests whose independent
/// check is a Python package (safetensors, onnxruntime, tritonclient). Those tests fail, never
/// skip, when it is false: scripts/setup.sh installs the packages.
public func pythonCanImport(_ modules: String) throws -> Bool {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import \(modules)"]
    probe.standardError = FileHandle.nullDevice
    try probe.run()
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}

/// Waits for `process` to end on a thread of its own. Swift's cooperative pool has one thread
/// per core (2 here) and the in-process servers of the serving tests answer on it: a test that
/// blocked a pool thread in `waitUntilExit` for minutes (the MPI grid, tritonclient) made their
/// deadline checks fail when the full suite ran.
public func exited(_ process: Process) async {
    nonisolated(unsafe) let p = process
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
            p.waitUntilExit()
            done.resume()
        }
    }
}

/// `exited`, reading `pipe` (the process's standard output or error) to its end on that same
/// thread of its own: what the process wrote there. Reading before waiting, as the blocking
/// versions did, so that a child that fills the pipe never waits for a reader.
public func exited(_ process: Process, reading pipe: Pipe) async -> Data {
    let p = process
    return await withCheckedContinuation { (done: CheckedContinuation<Data, Never>) in
        Thread.detachNewThread {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            done.resume(returning: data)
        }
    }
}

/// Runs `body` on a thread of its own (not one of the cooperative pool's, see `exited`) and
/// returns once it has: for a test's blocking work (a read that may hang, a semaphore).
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        Thread.detachNewThread { done.resume(returning: body()) }
    }
}

/// A small class-folder dataset in a fresh temporary folder: the first 30 malignant and 60
/// normal_or_benign images of the shared breastmnist-png (the experiment, worker and MPI tests).
public func smallDataset() throws -> String {
    let shared = URL(fileURLWithPath: sharedData("breastmnist-png"))
    let root = URL(fileURLWithPath: try makeTemporaryFolder())
    for (name, n) in [("malignant", 30), ("normal_or_benign", 60)] {
        let src = shared.appendingPathComponent(name), dst = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path).sorted().prefix(n) {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dst.appendingPathComponent(f))
        }
    }
    return root.path
}

/// The environment of the tests' child processes: one OpenMP thread (the same numbers in every
/// process layout), passive waiting, and Open MPI allowed to run as root (containers).
public func testEnvironment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["OMP_NUM_THREADS"] = "1"
    environment["OMP_WAIT_POLICY"] = "passive"
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return environment
}

/// Starts `executable arguments` in `testEnvironment()` with its output (both streams) written to `log`.
public func start(_ executable: String, _ arguments: [String], log: URL) throws -> Process {
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.environment = testEnvironment()
    p.standardOutput = handle; p.standardError = handle
    try p.run()
    return p
}

/// Runs `executable arguments` to the end, waiting off the cooperative pool (`exited`): its exit
/// status and output (both streams).
public func launch(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-run-\(UUID().uuidString).log")
    defer { try? FileManager.default.removeItem(at: log) }
    let p = try start(executable, arguments, log: log)
    await exited(p)
    return (p.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
}

/// An experiment's report.json in `out`, parsed.
public func readReport(_ out: URL) throws -> [String: Any] {
    let data = try Data(contentsOf: out.appendingPathComponent("report.json"))
    return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
}

/// Each arm's name and test scores (mean and std over seeds) in an experiment's report, as text.
public func reportNumbers(_ report: [String: Any]) -> [String] {
    ((report["arms"] as? [[String: Any]]) ?? []).map { arm in
        let test = arm["test"] as? [String: Any] ?? [:]
        let stats = ["balanced_accuracy", "accuracy", "macro_auc", "macro_f1"].map { key -> String in
            let s = test[key] as? [String: Any] ?? [:]
            return "\(key) \(s["mean"] ?? "-") \(s["std"] ?? "-")"
        }
        return "\(arm["name"] ?? "?") " + stats.joined(separator: " ")
    }
}

/// Every claim file under `folder` (an experiment's output leaves none behind).
public func claimFiles(_ folder: URL) -> [String] {
    let walker = FileManager.default.enumerator(atPath: folder.path)
    return (walker?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".claim") }
        .map { folder.appendingPathComponent($0).path }
}
