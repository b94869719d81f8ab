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
