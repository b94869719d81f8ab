import Foundation
import Kernels
import TestSupport
import Testing

/// A `medsynth` whose parent started it with SIGTERM blocked (Foundation's `Process` passes on
/// the mask of the spawning thread, and Dispatch's threads block it) or ignored (an ignored
/// disposition survives exec, and a server's swift-service-lifecycle leaves SIGTERM ignored) still
/// ends on `kill PID`: without `TerminationSignals.restore()` the signal stays pending, or is
/// dropped, and training goes on.
@Test(arguments: ["blocked", "ignored"])
func sigtermEndsAMedsynthStartedWithIt(_ how: String) async throws {
    let executable = try #require(medsynthExecutable(), "medsynth was not built beside the tests")
    let dir = try makeTemporaryFolder()
    defer { removeTemporary(dir) }
    let log = URL(fileURLWithPath: dir).appendingPathComponent("train.log")
    let train = [
        "gan", "train", "--dry-run", "--max-steps", "100000", "--epochs", "100000", "--grid-every", "100000",
        "--out", dir + "/run",
    ]
    // Spawned from a thread of its own that blocks SIGTERM, as a Dispatch worker thread does; or
    // through a shell that ignores SIGTERM and then execs medsynth (same process).
    nonisolated(unsafe) var child: Process?
    let spawned: Bool = await onOwnThread {
        if how == "blocked" {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &set, nil)
            child = try? start(executable.path, train, log: log)
        } else {
            child = try? start("/bin/sh", ["-c", "trap '' TERM; exec \"$0\" \"$@\"", executable.path] + train, log: log)
        }
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

/// medsynth re-executes itself with its OpenMP waiting settings when the user set none: passive
/// in f32, a short spin (GOMP_SPINCOUNT=1000) when its convolutions run in bf16 (on a CPU with
/// AVX512_BF16; elsewhere bf16 is ignored and the run is f32). Read from the running process's
/// /proc/PID/environ.
@Test(arguments: ["f32", "bf16"])
func openMPWaitingFollowsThePrecision(_ precision: String) async throws {
    let executable = try #require(medsynthExecutable(), "medsynth was not built beside the tests")
    let dir = try makeTemporaryFolder()
    defer { removeTemporary(dir) }
    var environment = testEnvironment()
    for name in ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MEDSYNTH_OPENMP_SET"] { environment[name] = nil }
    environment["MEDSYNTH_CONV_PRECISION"] = precision
    let p = Process()
    p.executableURL = executable
    p.arguments = [
        "gan", "train", "--dry-run", "--max-steps", "100000", "--epochs", "100000", "--grid-every", "100000",
        "--out", dir + "/run",
    ]
    p.environment = environment
    p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
    try p.run()
    defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    for _ in 0..<600 where !FileManager.default.fileExists(atPath: dir + "/run/checkpoint.safetensors") && p.isRunning {
        try await Task.sleep(for: .milliseconds(100))
    }
    let raw = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(p.processIdentifier)/environ"))
    let variables = Set(raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
    let bf16 = precision == "bf16" && CPUFeatures.hasAVX512BF16
    #expect(variables.contains("MEDSYNTH_OPENMP_SET=1"))
    #expect(variables.contains("GOMP_SPINCOUNT=1000") == bf16, "\(variables.filter { $0.contains("OMP") })")
    #expect(variables.contains("OMP_WAIT_POLICY=passive") == !bf16, "\(variables.filter { $0.contains("OMP") })")
}
