import Foundation
import Tracking

/// Where the retraining job stands.
public struct RetrainStatus: Codable, Sendable, Equatable {
    /// Not started, running, its run registered as challenger, or failed.
    public enum State: String, Codable, Sendable { case idle, running, registered, failed }
    /// Where the job stands.
    public var state: State
    /// The shell command.
    public var command: String?
    /// The run id the command reported (`MEDSYNTH_RUN_ID=<id>` on its last output line).
    public var runID: String?
    /// The version registered as `challenger`.
    public var registeredVersion: Int?
    public var message: String?
}

/// Launches the retraining command at most once, without blocking requests, and registers
/// its result as the `challenger`.
///
/// Contract with the command: it runs under `/bin/sh -c`, exits 0, and prints
/// `MEDSYNTH_RUN_ID=<id>` as its last non-empty stdout line, `<id>` being a run in the same store
/// with a `model` artifact (and ideally `reference-stats`).
public final class RetrainLauncher: @unchecked Sendable {
    // NOTE: @unchecked: `status` is guarded by `lock`.
    public let command: String
    let store: RunStore
    let modelName: String
    private let lock = NSLock()
    private var current = RetrainStatus(state: .idle)

    public init(command: String, store: RunStore, modelName: String) {
        self.command = command
        self.store = store
        self.modelName = modelName
    }

    /// The job's state.
    public var status: RetrainStatus { lock.withLock { current } }

    /// Starts the command unless it has been started before; returns whether it started now.
    /// `completion` runs on a background thread when the command has ended and been handled.
    @discardableResult
    public func launchOnce(reason: String, completion: @escaping @Sendable (RetrainStatus) -> Void = { _ in }) -> Bool {
        let first = lock.withLock {
            guard current.state == .idle else { return false }
            current = RetrainStatus(state: .running, command: command, message: reason)
            return true
        }
        guard first else { return false }
        // NOTE: a plain thread, not a Task: reading the pipe and waiting for the child block, and
        // must not hold a cooperative-pool thread that requests need.
        Thread.detachNewThread { [self] in
            let result = run()
            lock.withLock { current = result }
            // NOTE: the outcome is kept in `status` (and `/v1/monitor`) even if this write fails.
            _ = try? store.record(Event(model: modelName, kind: "retrain", message: describe(result)))
            completion(result)
        }
        return true
    }

    private func run() -> RetrainStatus {
        var status = RetrainStatus(state: .failed, command: command)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            status.message = "could not start /bin/sh: \(error)"
            return status
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            status.message = "exited with status \(process.terminationStatus)"
            return status
        }
        let last = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let last, last.hasPrefix("MEDSYNTH_RUN_ID=") else {
            status.message = "last output line is not MEDSYNTH_RUN_ID=<id>"
            return status
        }
        let runID = String(last.dropFirst("MEDSYNTH_RUN_ID=".count)).trimmingCharacters(in: .whitespaces)
        status.runID = runID
        do {
            let model = try store.register(runID: runID, name: modelName)
            try store.setAlias(.challenger, name: modelName, version: model.version)
            status.state = .registered
            status.registeredVersion = model.version
        } catch {
            status.message = "registering run \(runID): \(error)"
        }
        return status
    }

    private func describe(_ status: RetrainStatus) -> String {
        switch status.state {
        case .registered: "run \(status.runID ?? "?") registered as \(modelName)@\(status.registeredVersion ?? 0) (challenger)"
        default: "`\(command)` failed: \(status.message ?? "")"
        }
    }
}
