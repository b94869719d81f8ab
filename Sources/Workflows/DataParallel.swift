import Cluster
import Foundation
import NN

extension GradientSync {
    /// This job's ranks (`Cluster.Ranks`): data-parallel under `mpirun -np N` (N > 1), where the
    /// sum over ranks is an MPI allreduce that sleeps while it waits; `single` otherwise.
    public static var ranks: GradientSync {
        guard Ranks.size > 1 else { return .single }
        return GradientSync(rank: Ranks.rank, size: Ranks.size) { Ranks.allreduceSum(&$0) }
    }

    /// Runs `body` on rank 0 alone (what it writes before the others read it, e.g. the dry run's
    /// fake data), then waits for every rank. When `body` throws on rank 0, rank 0 rethrows and
    /// every other rank throws `DataParallelError.rankZeroFailed`, so that no rank waits for ever.
    public func rankZeroFirst(_ body: () throws -> Void) throws {
        var failed: [Float] = [0]
        var caught: (any Error)?
        if writesOutputs {
            do { try body() } catch { caught = error; failed[0] = 1 }
        }
        failed = sum(failed)
        if let caught { throw caught }
        if failed[0] > 0 { throw DataParallelError.rankZeroFailed }
    }

    /// Waits until every rank has called it (an allreduce of one value; nothing in one process).
    public func barrier() { _ = sum([0]) }
}

/// Why a rank of a data-parallel job stopped.
public enum DataParallelError: Error, CustomStringConvertible {
    /// Rank 0 failed in a step the others wait for (its message says why).
    case rankZeroFailed

    public var description: String {
        switch self {
        case .rankZeroFailed: return "rank 0 failed before training (its message says why)"
        }
    }
}
