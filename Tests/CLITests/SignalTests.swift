import Foundation
import TestSupport
import Testing

/// A `medsynth` whose parent started it with SIGTERM blocked (Foundation's `Process` passes on
/// the mask of the spawning thread, and Dispatch's threads block it) still ends on `kill PID`:
/// without `TerminationSignals.unblock()` the signal stays pending and training goes on.
@Test func sigtermEndsAMedsynthStartedWithItBlocked() async throws {
    let executable = try #require(medsynthExecutable(), "medsynth was not built beside the tests")
    let dir = try makeTemporaryFolder()
    defer { removeTemporary(dir) }
    let log = URL(fileURLWithPath: dir).appendingPathComponent("train.log")
    // Spawned from a thread of its own that blocks SIGTERM, as a Dispatch worker thread does.
    nonisolated(unsafe) var child: Process?
    let spawned: Bool = await onOwnThread {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        child = try? start(
            executable.path,
            [
                "gan", "train", "--dry-run", "--max-steps", "100000", "--epochs", "100000", "--grid-every", "100000",
                "--out", dir + "/run",
            ], log: log)
        return child != nil
    }
    #expect(spawned)
    guard let p = child else { return }
    defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    // Training has started once the first checkpoint exists (or after 60 s at most).
    let checkpoint = dir + "/run/checkpoint.safetensors"
    for _ in 0..<600 where !FileManager.default.fileExists(atPath: checkpoint) && p.isRunning {
        try await Task.sleep(for: .milliseconds(100))
    }
    #expect(p.isRunning, "gan train ended before the signal: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    kill(p.processIdentifier, SIGTERM)
    for _ in 0..<100 where p.isRunning { try await Task.sleep(for: .milliseconds(100)) }
    #expect(!p.isRunning, "gan train still runs 10 s after SIGTERM")
    if !p.isRunning {
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM)
    }
}
