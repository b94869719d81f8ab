import AtomicIO
import Foundation
import TestSupport
import Testing

/// `mpirun -np 2 --oversubscribe medsynth experiment` on this machine: the ranks split the grid
/// through the output folder's claim files and rank 0 writes the report.
///
/// These fail (never skip) when `mpirun` is missing: scripts/setup.sh installs openmpi-bin and
/// libopenmpi-dev. A medsynth built without MPI fails them too, saying so in its output.
@Suite(.serialized) struct MPIGridTests {
    /// The grid of `mpiGridGivesTheReportOfOneProcess`: two seeds of three arms, one with generators.
    static let small = [
        "--arms", "original,weighted,dcgan", "--seeds", "2", "--epochs", "2", "--batch-size", "16", "--gan-steps", "2",
        "--gan-width", "4", "--arch", "paper-cnn", "--resamples", "200", "--no-audit", "--no-track",
    ]

    /// The two-rank run's report has the numbers of one plain process (both with one OpenMP
    /// thread), records `ranks` 2 (the plain one 1), both ranks trained something and nothing was
    /// trained twice, and no claim is left behind.
    @Test func mpiGridGivesTheReportOfOneProcess() async throws {
        let mpirun = try #require(findMPIRun(), "mpirun not found on PATH: install openmpi-bin (scripts/setup.sh)")
        let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
        let data = try smallDataset()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-mpi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let one = base.appendingPathComponent("one"), two = base.appendingPathComponent("two")
        let plain = try await launch(exe.path, ["experiment", "--data", data, "--out", one.path] + Self.small)
        #expect(plain.status == 0, "the plain run failed:\n\(plain.output)")
        let ranked = try await launch(
            mpirun, mpiArguments(ranks: 2) + [exe.path, "experiment", "--data", data, "--out", two.path] + Self.small)
        #expect(ranked.status == 0, "the mpirun run failed:\n\(ranked.output)")
        let r1 = try readReport(one), r2 = try readReport(two)
        #expect(reportNumbers(r1) == reportNumbers(r2))
        #expect(reportNumbers(r2).count == 3)
        #expect(r1["ranks"] as? Int == 1)
        #expect(r2["ranks"] as? Int == 2)
        // Each rank trained something (a generator or a cell); nothing was trained twice.
        let trained = trainingLines(ranked.output)
        for rank in 0..<2 {
            #expect(trained.contains { $0.hasPrefix("rank \(rank)/2:") }, "rank \(rank) trained nothing:\n\(ranked.output)")
        }
        let pieces = trained.map { $0.split(separator: ":", maxSplits: 1)[1] }
        #expect(Set(pieces).count == pieces.count, "\(trained)")
        #expect(pieces.count == 2 * (1 + 3), "per seed, one DCGAN (the minority class) and 3 cells: \(trained)")
        #expect(claimFiles(two).isEmpty, "\(claimFiles(two))")
    }

    /// Killing one rank while it holds a cell ends the job (mpirun stops the other rank); running
    /// the same command again removes the dead run's claims, trains only the cells that had not
    /// finished, leaves the finished ones' files untouched, and writes the report.
    @Test func killingOneRankThenRerunningSkipsFinishedCells() async throws {
        let mpirun = try #require(findMPIRun(), "mpirun not found on PATH: install openmpi-bin (scripts/setup.sh)")
        let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
        let data = try smallDataset()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-mpi-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let arms = ["original", "weighted", "oversample"], seeds = 4
        let arguments =
            mpiArguments(ranks: 2) + [
                exe.path, "experiment", "--data", data, "--out", out.path, "--arms", arms.joined(separator: ","),
                "--seeds", "\(seeds)", "--epochs", "4", "--patience", "4", "--batch-size", "16", "--arch", "paper-cnn",
                "--resamples", "200", "--no-audit", "--no-track",
            ]
        let cells = arms.flatMap { arm in (0..<seeds).map { out.appendingPathComponent("arms/\(arm)/seed-\($0)/cell.json") } }
        func finished() -> [URL] { cells.filter { FileManager.default.fileExists(atPath: $0.path) } }

        // The first run: once a cell has finished, kill the rank holding another one.
        let log = out.deletingLastPathComponent().appendingPathComponent(out.lastPathComponent + ".log")
        defer { try? FileManager.default.removeItem(at: log) }
        let first = try start(mpirun, arguments, log: log)
        var killed: Int32? = nil
        for _ in 0..<6000 where killed == nil && first.isRunning {  // up to 10 min
            try await Task.sleep(for: .milliseconds(100))
            guard !finished().isEmpty else { continue }
            for claim in claimFiles(out) {
                if let holder = FileClaim.holder(claim), kill(holder.pid, SIGKILL) == 0 { killed = holder.pid; break }
            }
        }
        await exited(first)
        let firstOutput = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try #require(killed != nil, "no rank was caught holding a cell:\n\(firstOutput)")
        #expect(first.terminationStatus != 0, "the job went on after a rank was killed:\n\(firstOutput)")
        let done = finished()
        try #require(!done.isEmpty && done.count < cells.count, "\(done.count) of \(cells.count) cells finished before the kill")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("report.json").path))
        let before = try done.map { try Data(contentsOf: $0) }
        let stamps = done.map { try? FileManager.default.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date }

        // The re-run.
        let second = try await launch(mpirun, arguments)
        #expect(second.status == 0, "the re-run failed:\n\(second.output)")
        #expect(second.output.contains("left by an earlier run"), "the dead run's claims were not removed:\n\(second.output)")
        let trained = trainingLines(second.output)
        #expect(
            trained.count == cells.count - done.count, "re-trained \(trained.count), \(done.count) finished before:\n\(trained)")
        for (i, url) in done.enumerated() {
            #expect(try Data(contentsOf: url) == before[i], "\(url.path) changed")
            let stamp = try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date
            #expect(stamp == stamps[i], "\(url.path) was rewritten")
        }
        let report = try readReport(out)
        #expect(report["ranks"] as? Int == 2)
        #expect(reportNumbers(report).count == arms.count)
        #expect(claimFiles(out).isEmpty)
    }

    /// Every command but `experiment`, `train` and `gan train` refuses to run as one of several ranks, and `experiment`
    /// refuses `--jobs` under mpirun, before any work (nothing is written to `--out`).
    @Test func otherCommandsAndJobsRefuseSeveralRanks() async throws {
        let mpirun = try #require(findMPIRun(), "mpirun not found on PATH: install openmpi-bin (scripts/setup.sh)")
        let exe = try #require(medsynthExecutable(), "medsynth executable not found next to the tests")
        let data = try smallDataset()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-mpi-refuse-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let evaluate = try await launch(
            mpirun, mpiArguments(ranks: 2) + [exe.path, "evaluate", "--model", out.path + "/model.safetensors", "--data", data])
        #expect(evaluate.status != 0)
        #expect(evaluate.output.contains("does not run over several MPI ranks"), "\(evaluate.output)")
        let jobs = try await launch(
            mpirun,
            mpiArguments(ranks: 2) + [exe.path, "experiment", "--data", data, "--out", out.path, "--jobs", "2"] + Self.small)
        #expect(jobs.status != 0)
        #expect(jobs.output.contains("leave --jobs out"), "\(jobs.output)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}

/// `mpirun` on PATH, if any.
func findMPIRun() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// mpirun's own options for `ranks` ranks on this machine (more ranks than cores allowed, no
/// binding to cores on a shared machine).
func mpiArguments(ranks: Int) -> [String] {
    ["--oversubscribe", "--bind-to", "none", "-np", "\(ranks)"]
}

/// The lines in which a rank starts training a generator or a cell.
func trainingLines(_ output: String) -> [String] {
    output.split(separator: "\n").map(String.init).filter {
        $0.hasPrefix("rank ") && ($0.contains(": training ") || $0.contains(": cell "))
    }
}
