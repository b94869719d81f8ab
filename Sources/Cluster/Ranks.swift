import Foundation

#if MEDSYNTH_MPI
    import CMPI
#endif

/// The processes of one `mpirun` (or `srun`) job: this process's rank and how many there are.
///
/// One binary runs both ways. Started plainly (no launcher in the environment), it is rank 0 of
/// 1 and MPI is never initialised. Started by a launcher (Open MPI's `OMPI_COMM_WORLD_SIZE`, or
/// PMIx's `PMIX_RANK`, or PMI's `PMI_SIZE` in the environment), `start()` initialises MPI and
/// reads rank and size from `MPI_COMM_WORLD`. A build without MPI (no `libopenmpi-dev` when it
/// was built) refuses to run as one of several ranks instead of running N copies of one job.
///
/// NOTE: Open MPI's blocking calls (`MPI_Barrier`, `MPI_Recv`, `MPI_Finalize`'s fence) poll a
/// core while they wait; a rank that waits for others must not take the core a working rank
/// needs. Every wait here is a non-blocking request tested every `poll` seconds, sleeping between.
/// This is the only module that sees MPI's C types.
public enum Ranks {
    /// This process's rank in `[0, size)`; 0 when not launched by MPI.
    public private(set) nonisolated(unsafe) static var rank = 0
    /// How many ranks run this job; 1 when not launched by MPI.
    public private(set) nonisolated(unsafe) static var size = 1
    /// Whether MPI was initialised (and so must be finished or aborted before exit).
    public private(set) nonisolated(unsafe) static var started = false

    /// Whether this binary was built with MPI (`libopenmpi-dev` present at build time).
    public static var builtWithMPI: Bool {
        #if MEDSYNTH_MPI
            return true
        #else
            return false
        #endif
    }

    /// Whether an MPI launcher started this process, from its environment; and the job's size
    /// when the launcher says (Open MPI, PMI).
    public static func launcher(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> (
        launched: Bool, size: Int?
    ) {
        let size = (environment["OMPI_COMM_WORLD_SIZE"] ?? environment["PMI_SIZE"]).flatMap { Int($0) }
        let launched = size != nil || environment["PMIX_RANK"] != nil
        return (launched, size)
    }

    /// How many ranks of this job share this machine (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`),
    /// when the launcher says.
    public static var localSize: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) }
    }

    /// Initialises MPI when a launcher started this process; does nothing otherwise, or when
    /// called again. Throws when this build has no MPI and the launcher runs several ranks, or
    /// when MPI cannot start.
    public static func start() throws(RanksError) {
        guard !started else { return }
        let (launched, launchedSize) = launcher()
        guard launched else { return }
        #if MEDSYNTH_MPI
            var provided: Int32 = 0
            let code = cmpi_init_serialized(&provided)
            guard code == 0 else { throw .initFailed(code: code) }
            started = true
            // SERIALIZED: one thread at a time calls MPI (Swift's async commands may hop threads).
            guard provided >= cmpi_thread_serialized() else {
                _ = cmpi_abort(1)
                throw .threadLevel(provided: provided)
            }
            var r: Int32 = 0, s: Int32 = 0
            _ = cmpi_rank(&r); _ = cmpi_size(&s)
            rank = Int(r); size = Int(s)
        #else
            if let launchedSize, launchedSize > 1 { throw .notBuiltWithMPI(size: launchedSize) }
        #endif
    }

    /// Waits until every rank has called `barrier` (a no-op for one rank), sleeping `poll` seconds
    /// between tests rather than spinning.
    public static func barrier(poll: TimeInterval = 0.05) {
        #if MEDSYNTH_MPI
            guard started else { return }
            var request: MPI_Request? = nil
            _ = cmpi_ibarrier(&request)
            wait(&request, poll: poll)
        #endif
    }

    /// Replaces `values` by their sum over all ranks, element by element (every rank passes the
    /// same count); unchanged for one rank.
    public static func allreduceSum(_ values: inout [Float], poll: TimeInterval = 0.0002) {
        #if MEDSYNTH_MPI
            guard started, size > 1, !values.isEmpty else { return }
            var request: MPI_Request? = nil
            values.withUnsafeMutableBufferPointer { buffer in
                _ = cmpi_iallreduce_sum_float(buffer.baseAddress, Int32(buffer.count), &request)
                wait(&request, poll: poll)
            }
        #endif
    }

    #if MEDSYNTH_MPI
        private static func wait(_ request: inout MPI_Request?, poll: TimeInterval) {
            var done: Int32 = 0
            while true {
                _ = cmpi_test(&request, &done)
                if done != 0 { return }
                Thread.sleep(forTimeInterval: poll)
            }
        }
    #endif

    /// Ends MPI after a success: waits (without spinning) for every rank, then `MPI_Finalize`.
    public static func finish() {
        #if MEDSYNTH_MPI
            guard started else { return }
            barrier()
            _ = cmpi_finalize()
            started = false
        #endif
    }

    /// Ends the whole job after a failure: `MPI_Abort`, which stops every rank (a rank waiting in
    /// `barrier` for a rank that failed would wait for ever); else exits with `code`.
    public static func abort(code: Int32) -> Never {
        #if MEDSYNTH_MPI
            if started { _ = cmpi_abort(code) }
        #endif
        exit(code)
    }
}

/// Why MPI could not start.
public enum RanksError: Error, CustomStringConvertible, Equatable {
    /// An MPI launcher runs `size` ranks but this binary was built without MPI.
    case notBuiltWithMPI(size: Int)
    /// `MPI_Init_thread` returned this error code.
    case initFailed(code: Int32)
    /// MPI cannot let one thread at a time call it (`MPI_THREAD_SERIALIZED`).
    case threadLevel(provided: Int32)

    public var description: String {
        switch self {
        case .notBuiltWithMPI(let size):
            return "started by an MPI launcher as one of \(size) ranks, but this medsynth was built without MPI: "
                + "install libopenmpi-dev (scripts/setup.sh) and rebuild, or run it without mpirun"
        case .initFailed(let code): return "MPI_Init_thread failed (error \(code))"
        case .threadLevel(let provided):
            return "MPI provides thread level \(provided), below MPI_THREAD_SERIALIZED"
        }
    }
}
