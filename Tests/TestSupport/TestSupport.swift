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
