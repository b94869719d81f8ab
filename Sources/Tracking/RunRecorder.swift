import Foundation

/// The handle a command uses to record one run: metrics, artifacts, alarms, the final status.
///
/// Typical use wraps a command's body (see `RunRecorder.recording`), so a thrown error marks the
/// run `failed` and a killed process leaves it `running`, shown as `interrupted`.
public final class RunRecorder: Sendable {
    /// The store the run lives in.
    public let store: RunStore
    /// The run's id.
    public let runID: String

    init(store: RunStore, runID: String) {
        self.store = store
        self.runID = runID
    }

    /// Starts a run: stores its configuration (any `Encodable`, as sorted-key JSON), command
    /// line, code version, data manifest hash and seed, with status `running`.
    public static func start(
        store: RunStore, kind: RunKind, config: some Encodable,
        commandLine: [String] = CommandLine.arguments, dataManifestHash: String? = nil, seed: UInt64? = nil,
        codeDirectory: String = FileManager.default.currentDirectoryPath, now: Date = Date()
    ) throws -> RunRecorder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json: String
        do { json = String(decoding: try encoder.encode(config), as: UTF8.self) } catch {
            throw TrackingError.invalidConfig(reason: "\(error)")
        }
        let code = CodeVersion.current(in: codeDirectory)
        let run = Run(
            id: makeRunID(at: now), kind: kind, commandLine: commandLine.joined(separator: " "), config: json,
            codeCommit: code?.commit, codeDirty: code?.dirty, dataManifestHash: dataManifestHash,
            seed: seed.map { Int64(bitPattern: $0) }, started: now, ended: nil, status: .running,
            pid: ProcessInfo.processInfo.processIdentifier, host: ProcessInfo.processInfo.hostName)
        try store.insert(run)
        return RunRecorder(store: store, runID: run.id)
    }

    /// Records one metric value at one step (epoch, iteration, ...).
    public func log(metric: String, step: Int, value: Double) throws {
        try store.log([MetricPoint(runID: runID, name: metric, step: step, value: value)])
    }

    /// Records several metric values at one step in one transaction.
    public func log(_ values: [String: Double], step: Int) throws {
        try store.log(
            values.sorted { $0.key < $1.key }.map {
                MetricPoint(runID: runID, name: $0.key, step: step, value: $0.value)
            })
    }

    /// Records a file the run produced (hashed now). Kinds the registry reads: `model` (the
    /// weights `models register` picks) and `reference-stats` (`ReferenceStats` JSON for drift).
    @discardableResult
    public func artifact(path: String, kind: String) throws -> Artifact {
        try store.addArtifact(runID: runID, path: path, kind: kind)
    }

    /// Records an alarm (e.g. "D wins outright"); model cards list them.
    public func alarm(_ message: String) throws {
        try store.record(Event(runID: runID, kind: "alarm", message: message))
    }

    /// Ends the run with a final status.
    public func finish(status: RunStatus) throws {
        try store.finish(runID, status: status)
    }

    /// Wraps a synchronous command's body in a run: starts it, hands the recorder to `body`, and
    /// finishes it `finished`, or `failed` when `body` throws (the error is rethrown).
    public static func recording<T>(
        store: RunStore, kind: RunKind, config: some Encodable, commandLine: [String] = CommandLine.arguments,
        dataManifestHash: String? = nil, seed: UInt64? = nil,
        _ body: (RunRecorder) throws -> T
    ) throws -> T {
        let recorder = try start(
            store: store, kind: kind, config: config, commandLine: commandLine,
            dataManifestHash: dataManifestHash, seed: seed)
        do {
            let result = try body(recorder)
            try recorder.finish(status: .finished)
            return result
        } catch {
            try? recorder.finish(status: .failed)
            throw error
        }
    }

    /// Wraps an async command's body in a run: starts it, hands the recorder to `body`, and finishes
    /// it `finished`, `interrupted` (on `CancellationError`) or `failed` (any other error, rethrown).
    public static func recording<T>(
        store: RunStore, kind: RunKind, config: some Encodable, commandLine: [String] = CommandLine.arguments,
        dataManifestHash: String? = nil, seed: UInt64? = nil,
        _ body: (RunRecorder) async throws -> T
    ) async throws -> T {
        let recorder = try start(
            store: store, kind: kind, config: config, commandLine: commandLine,
            dataManifestHash: dataManifestHash, seed: seed)
        do {
            let result = try await body(recorder)
            try recorder.finish(status: .finished)
            return result
        } catch {
            try? recorder.finish(status: error is CancellationError ? .interrupted : .failed)
            throw error
        }
    }
}

/// `yyyyMMdd-HHmmss-` (UTC) + 6 random hex digits: sorts by time, unique in practice.
func makeRunID(at date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    return formatter.string(from: date) + "-" + String(format: "%06x", UInt32.random(in: 0..<(1 << 24)))
}

/// The git commit a directory's code is at, and whether tracked files were modified.
public struct CodeVersion: Sendable, Equatable {
    /// Full commit hash.
    public var commit: String
    /// Whether tracked files had uncommitted changes.
    public var dirty: Bool

    /// Asks `git`; nil outside a work tree or without git.
    public static func current(in directory: String) -> CodeVersion? {
        guard let commit = git(["rev-parse", "HEAD"], in: directory), !commit.isEmpty,
            let status = git(["status", "--porcelain", "--untracked-files=no"], in: directory)
        else { return nil }
        return CodeVersion(commit: commit, dirty: !status.isEmpty)
    }

    static func git(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
