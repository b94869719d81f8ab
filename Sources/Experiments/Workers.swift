import AtomicIO
import Foundation

/// Running the experiment's grid in several processes on one machine (`medsynth experiment --jobs N`).
///
/// Small classifiers and GANs (28 px, batch 64) keep two cores only partly busy with oneDNN's
/// threads: running two cells at once with one thread each is faster than one cell with two.
/// Workers share nothing but the output folder: each piece of the grid (a generator, an (arm,
/// seed) cell) is taken under a `FileClaim`, trained, and written as it finishes, exactly as a
/// single process writes it; the parent then reads every piece back (`run`) and writes the report.
/// A worker's numbers are those of a single process with the same thread count; a killed worker
/// loses only the piece it held, and a re-run takes it over.
extension Experiment {
    /// One worker: takes, in order, every seed's generators and then every (seed, arm) cell that
    /// no other live worker holds, waiting only for the pieces its own cells need.
    public func work(_ observe: (ExperimentEvent) -> Void = { _ in }) throws {
        try claimOutputFolder()
        let arms = options.allArms
        let kinds = Set(arms.compactMap(\.generator))
        for seed in options.seeds {
            var g = Generators()
            for task in generatorTasks(kinds: kinds) { _ = try generator(task, seed: seed, into: &g, wait: false, observe) }
            if kinds.contains(.diffusion) { _ = try diffusion(seed: seed, into: &g, wait: false, observe) }
        }
        for seed in options.seeds {
            for arm in arms { _ = try cell(arm, seed: seed, wait: false, observe) }
            generatorCache[seed] = nil  // one seed's generators in memory at a time
        }
    }

    /// The grid's one claim protocol (`claimPiece`), reporting waits as stages.
    func claimed<T>(
        _ claimPath: String, what: String, wait: Bool, _ observe: (ExperimentEvent) -> Void,
        finished: (_ firstLook: Bool) throws -> T?, make: () throws -> T
    ) throws -> T? {
        try claimPiece(
            claimPath, wait: wait, waiting: { observe(.stage("waiting for \(what), which another worker trains")) },
            finished: finished, make: make)
    }

    /// How many pieces of the grid (generators, cells) are finished on disk, of how many.
    public func gridProgress() -> (finished: Int, total: Int) {
        let arms = options.allArms
        let kinds = Set(arms.compactMap(\.generator))
        let tasks = generatorTasks(kinds: kinds).map(\.name) + (kinds.contains(.diffusion) ? ["diffusion"] : [])
        var finished = 0, total = 0
        for seed in options.seeds {
            for task in tasks {
                total += 1
                let done = generatorDirectory(task, seed: seed).appendingPathComponent("done.json")
                if FileManager.default.fileExists(atPath: done.path) { finished += 1 }
            }
            for arm in arms {
                total += 1
                if FileManager.default.fileExists(atPath: cellDirectory(arm, seed: seed).appendingPathComponent("cell.json").path)
                {
                    finished += 1
                }
            }
        }
        return (finished, total)
    }

    /// Runs `count` workers (`runWorkerProcesses`) with their logs in `OUT/workers/`. `started`
    /// runs once the output folder is claimed (a folder of other settings is refused first).
    public func runWorkers(
        executable: String, arguments: [String], count: Int, threadsPerWorker: Int,
        started: () -> Void = {}, poll: () -> Void
    ) throws {
        try claimOutputFolder()
        started()
        try runWorkerProcesses(
            executable: executable, arguments: arguments, count: count, threadsPerWorker: threadsPerWorker,
            logs: options.output.appendingPathComponent("workers"), poll: poll)
    }
}

/// The one claim protocol of every piece of work that worker processes share (an experiment's
/// generators and cells, the paper replica's datasets): a finished piece is read back
/// (`finished(true)` on the first look); else it is claimed at `claimPath` and, unless it finished
/// meanwhile, made by `make` while the claim is held. When another live worker holds the claim,
/// waits for it (calling `waiting` once), or returns nil at once when `wait` is false.
func claimPiece<T>(
    _ claimPath: String, wait: Bool, waiting: () -> Void,
    finished: (_ firstLook: Bool) throws -> T?, make: () throws -> T
) throws -> T? {
    var announced = false
    while true {
        if let piece = try finished(true) { return piece }
        if let claim = FileClaim.take(claimPath) {
            defer { claim.release() }
            return try finished(false) ?? make()
        }
        guard wait else { return nil }
        if !announced { waiting(); announced = true }
        Thread.sleep(forTimeInterval: 0.5)
    }
}

/// Runs `count` worker processes (`executable arguments`, each told its OpenMP thread count and
/// passive waiting), calling `poll` about once a second while they run; writes each one's output
/// to `logs/worker-I.log`. Throws when a worker fails (after every worker has stopped).
public func runWorkerProcesses(
    executable: String, arguments: [String], count: Int, threadsPerWorker: Int, logs: URL,
    poll: () -> Void
) throws {
    try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
    var processes: [(Process, String)] = []
    defer { for (p, _) in processes where p.isRunning { p.terminate() } }
    for i in 0..<count {
        let log = logs.appendingPathComponent("worker-\(i).log").path
        FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else {
            throw ExperimentError.invalidOption(name: "out", value: logs.path, reason: "cannot write \(log)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_NUM_THREADS"] = "\(threadsPerWorker)"
        environment["OMP_WAIT_POLICY"] = environment["OMP_WAIT_POLICY"] ?? "passive"
        p.environment = environment
        p.standardOutput = handle; p.standardError = handle
        try p.run()
        processes.append((p, log))
    }
    while processes.contains(where: { $0.0.isRunning }) {
        poll()
        Thread.sleep(forTimeInterval: 1)
    }
    poll()
    for (i, (p, log)) in processes.enumerated() where p.terminationStatus != 0 {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(8).joined(separator: "\n")
        throw ExperimentError.workerFailed(index: i, status: p.terminationStatus, log: log, lastLines: tail)
    }
}

/// Ends this worker process when its parent (the `--jobs` run that started it) ends: a killed or
/// interrupted run must not leave workers training into its folder. Checks once a second from a
/// thread of its own; what the worker held is lost, and its claim is taken over on the next run.
public func endWithParent() {
    let parent = getppid()
    Thread.detachNewThread {
        while getppid() == parent { Thread.sleep(forTimeInterval: 1) }
        exit(3)
    }
}

extension Experiment {
    /// Checks (or records) the output folder's settings as a run does, then removes every claim
    /// file (`*.claim`) under it; returns how many there were.
    ///
    /// The rule for MPI runs, whose ranks may sit on other hosts, where a holder's pid cannot be
    /// checked: a run started by `mpirun` owns its output folder, so every claim present before its
    /// ranks start working was left by an earlier run that died, and is stale. Rank 0 removes them
    /// all before any rank takes a piece (the ranks wait for it at a barrier). Two runs must not
    /// share one output folder at the same time.
    public func removeClaims() throws -> Int {
        try claimOutputFolder()
        let root = options.output
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return 0 }
        var removed = 0
        for case let path as String in walker where path.hasSuffix(".claim") {
            try FileManager.default.removeItem(at: root.appendingPathComponent(path))
            removed += 1
        }
        return removed
    }
}
