import AtomicIO
import Foundation
import TestSupport
import Testing

@testable import Experiments

/// One process takes a claim; a second taker gets nil; a claim left by a dead process (or by this
/// process in an earlier, failed attempt) is taken over; a released claim is free again.
@Test func fileClaimsAreExclusiveAndStaleOnesAreTakenOver() async throws {
    let dir = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { removeTemporary(dir.path) }
    // A live holder: a child process that sleeps.
    let sleeper = Process()
    sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
    sleeper.arguments = ["30"]
    try sleeper.run()
    defer { sleeper.terminate() }
    let host = ProcessInfo.processInfo.hostName
    let live = dir.appendingPathComponent("live.claim").path
    let localHost = FileClaim.hostName()
    try "\(sleeper.processIdentifier)\n\(localHost)\n".write(toFile: live, atomically: false, encoding: .utf8)
    #expect(FileClaim.take(live) == nil)
    #expect(!FileClaim.isStale(live))
    // The same holder on another host is never judged dead from here.
    try "999999\nanother-\(host)\n".write(toFile: live, atomically: false, encoding: .utf8)
    #expect(FileClaim.take(live) == nil)
    // A dead holder: a child that has exited.
    let done = Process()
    done.executableURL = URL(fileURLWithPath: "/bin/true")
    try done.run()
    await exited(done)
    let dead = dir.appendingPathComponent("dead.claim").path
    try "\(done.processIdentifier)\n\(localHost)\n".write(toFile: dead, atomically: false, encoding: .utf8)
    let taken = try #require(FileClaim.take(dead))
    #expect(FileClaim.holder(dead)?.pid == getpid())
    taken.release()
    #expect(!FileManager.default.fileExists(atPath: dead))
    // Free, then held by us: a second `take` in the same process sees its own leftover as stale.
    let free = dir.appendingPathComponent("free.claim").path
    let first = try #require(FileClaim.take(free))
    #expect(FileClaim.holder(free)?.pid == getpid())
    first.release()
    #expect(FileClaim.take(free) != nil)
}

/// `--jobs 2` runs two worker processes that split the grid between them (each trains something,
/// nothing is trained twice), and the report's numbers equal those of one process with the same
/// thread count (one OpenMP thread).
@Test func twoWorkersGiveTheReportOfOneProcess() async throws {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let data = try smallDataset()
    let base = URL(fileURLWithPath: try makeTemporaryFolder())
    defer { removeTemporary(base.path); removeTemporary(data) }
    // One OpenMP thread in each process (`testEnvironment`): the same numbers in every layout.
    func run(_ out: URL, jobs: Int) async throws -> [String: Any] {
        let run = try await launch(
            exe.path,
            [
                "experiment", "--data", data, "--out", out.path, "--arms", "original,weighted,dcgan,cdcgan,cdcgan+filter",
                "--seeds", "2", "--epochs", "2", "--batch-size", "16", "--gan-steps", "2", "--gan-width", "4",
                "--arch", "paper-cnn", "--resamples", "200", "--no-audit", "--no-track", "--jobs", "\(jobs)",
            ])
        #expect(run.status == 0, "experiment --jobs \(jobs) failed:\n\(run.output)")
        return try readReport(out)
    }
    let one = try await run(base.appendingPathComponent("one"), jobs: 1)
    let two = try await run(base.appendingPathComponent("two"), jobs: 2)
    #expect(reportNumbers(one) == reportNumbers(two))
    #expect(reportNumbers(two).count == 5)
    // Both workers trained something; no generator or cell was trained twice.
    let logs = base.appendingPathComponent("two/workers")
    var trained: [String] = []
    for i in 0..<2 {
        let text = try String(contentsOf: logs.appendingPathComponent("worker-\(i).log"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.contains("training ") || $0.hasPrefix("cell ") }
        #expect(!lines.isEmpty, "worker \(i) trained nothing:\n\(text)")
        trained += lines.map(String.init)
    }
    #expect(Set(trained).count == trained.count, "\(trained)")
    #expect(claimFiles(base.appendingPathComponent("two")).isEmpty, "\(claimFiles(base.appendingPathComponent("two")))")
}

/// A worker ends when the run that started it does: killing the parent (here a shell standing in
/// for `experiment --jobs`) must not leave the worker training into the folder.
@Test func aWorkerEndsWhenItsParentIsKilled() async throws {
    let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
    let data = try smallDataset()
    let out = URL(fileURLWithPath: try makeTemporaryFolder()).appendingPathComponent("out")
    defer { removeTemporary(out.deletingLastPathComponent().path); removeTemporary(data) }
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/bin/sh")
    // The worker runs long (many epochs); the shell prints its pid and waits for it.
    shell.arguments = [
        "-c",
        "\"$0\" experiment --data \"$1\" --out \"$2\" --arms original --seeds 1 --epochs 1000 --patience 1000 "
            + "--arch paper-cnn --no-audit --no-track --worker > /dev/null 2>&1 & echo $!; wait",
        exe.path, data, out.path,
    ]
    let pipe = Pipe()
    shell.standardOutput = pipe
    try shell.run()
    let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
    let worker = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)), "no pid: \(line)")
    try await Task.sleep(for: .seconds(2))
    #expect(kill(worker, 0) == 0, "the worker did not start")
    kill(shell.processIdentifier, SIGKILL)  // not waited for: Foundation's wait can outlast the worker
    var alive = true
    for _ in 0..<100 where alive {  // up to 10 s
        try await Task.sleep(for: .milliseconds(100))
        alive = kill(worker, 0) == 0 && !isZombie(worker)
    }
    if alive { kill(worker, SIGKILL) }
    #expect(!alive, "the worker went on after its parent was killed")
}

/// Whether `pid` has exited but not been reaped (state Z in /proc).
private func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false
}
