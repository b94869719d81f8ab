import Autodiff

// Data-parallel training: N processes (MPI ranks) train one model. Every rank holds the same
// weights, draws the same global batch, and runs forward and backward on its own contiguous
// shard of it; before each optimizer step the gradients are averaged over the ranks, so every
// rank takes the same step that one process would take on the whole batch.
//
// Legend: B rows in the global batch, N ranks, r this rank, n_r = |shard r|.
// NOTE: batch norm normalises each shard with its own statistics (as torch's
// DistributedDataParallel without SyncBatchNorm); with batch norm the result is therefore close
// to one process's, not equal. The running statistics are averaged over the ranks at every
// step (`GradientSync.average`), so every rank evaluates with the same ones.

/// The rows of a global batch of `total` rows that one rank trains on.
public struct BatchShard: Equatable, Sendable {
    /// This rank's rows: a contiguous part of `0..<total`.
    public var rows: Range<Int>
    /// Rows in the global batch (B).
    public var total: Int

    public init(rows: Range<Int>, total: Int) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= total, "shard \(rows) outside a batch of \(total)")
        self.rows = rows; self.total = total
    }

    /// Every row: one process.
    public static func whole(_ total: Int) -> BatchShard { BatchShard(rows: 0..<total, total: total) }

    /// Whether the shard is the whole batch.
    public var isWhole: Bool { rows.count == total }

    /// This shard's entries of a per-row array of the global batch (labels, shifts).
    public func take<T>(_ values: [T]) -> [T] {
        precondition(values.count == total, "\(values.count) values for a batch of \(total)")
        return Array(values[rows])
    }

    /// This shard's rows of a tensor (B, ...) of the global batch: (n_r, ...); the tensor itself when whole.
    public func take(_ x: Tensor) throws -> Tensor {
        isWhole ? x : try x.slice(axis: 0, start: rows.lowerBound, length: rows.count)
    }
}

/// How the ranks of a data-parallel job average their gradients; `single` (one process) does nothing.
///
/// The sum over ranks is a closure (an MPI allreduce in the `Cluster` module, handed in by
/// `Workflows`), so no trainer sees MPI. Every rank must call `average` the same number of
/// times with the same parameters, in the same order.
public struct GradientSync: Sendable {
    /// This process's rank in `0..<size`.
    public let rank: Int
    /// How many ranks train together (N).
    public let size: Int
    let allreduceSum: @Sendable (inout [Float]) -> Void

    /// A job of `size` ranks whose element-wise sum over ranks is `allreduceSum`.
    public init(rank: Int, size: Int, allreduceSum: @escaping @Sendable (inout [Float]) -> Void) {
        precondition(size >= 1 && (0..<size).contains(rank), "rank \(rank) of \(size)")
        self.rank = rank; self.size = size; self.allreduceSum = allreduceSum
    }

    /// One process: every batch whole, nothing to average.
    public static let single = GradientSync(rank: 0, size: 1) { _ in }

    /// Whether several ranks train together.
    public var isDataParallel: Bool { size > 1 }

    /// Whether this rank writes the run's files (checkpoints, logs, grids, the run store): rank 0.
    public var writesOutputs: Bool { rank == 0 }

    /// This rank's contiguous rows of a global batch of `total`: rows `r B / N ..< (r + 1) B / N`
    /// (integer division), so shard sizes differ by at most one and rank order is row order.
    public func shard(of total: Int) -> BatchShard {
        BatchShard(rows: rank * total / size..<(rank + 1) * total / size, total: total)
    }

    /// Averages over the ranks, in one allreduce: each gradient of `parameters` becomes
    /// sum_r share_r g_r, each running statistic of `modules` (batch norm's running mean and
    /// variance; not the step counter, the same on every rank) sum_r share_r b_r, and each of
    /// `extras` (losses, counts, already weighted by the caller) its plain sum over ranks.
    ///
    /// `share` is this rank's part of the global loss's normaliser: n_r / B for a mean over the
    /// batch, so that the result is the gradient of the global batch's mean loss. Parameters
    /// without a gradient (frozen) are skipped, on every rank alike. Does nothing in one process.
    public func average(
        gradientsOf parameters: [(String, Parameter)], share: Float, runningStatisticsOf modules: [any Module] = [],
        extras: inout [Float]
    ) {
        guard size > 1 else { return }
        let gradients = parameters.compactMap { $0.1.grad }.map { ($0.storage.pointer, $0.count) }
        // NOTE: num_batches_tracked is equal on every rank; a weighted sum would only round it.
        let statistics = modules.flatMap(\.buffers).filter { !$0.0.hasSuffix("num_batches_tracked") }.map(\.1)
        var flat = [Float]()
        flat.reserveCapacity(gradients.reduce(0) { $0 + $1.1 } + statistics.reduce(0) { $0 + $1.count } + extras.count)
        for (g, n) in gradients { for i in 0..<n { flat.append(share * g[i]) } }
        for s in statistics { for i in 0..<s.count { flat.append(share * s.pointer[i]) } }
        flat += extras
        allreduceSum(&flat)
        var at = 0
        for (g, n) in gradients {
            for i in 0..<n { g[i] = flat[at + i] }
            at += n
        }
        for s in statistics {
            for i in 0..<s.count { s.pointer[i] = flat[at + i] }
            at += s.count
        }
        extras = Array(flat[at...])
    }

    /// `average` with nothing extra to sum.
    public func average(
        gradientsOf parameters: [(String, Parameter)], share: Float, runningStatisticsOf modules: [any Module] = []
    ) {
        var none: [Float] = []
        average(gradientsOf: parameters, share: share, runningStatisticsOf: modules, extras: &none)
    }

    /// The plain sum over ranks of `values` (the values themselves in one process).
    public func sum(_ values: [Float]) -> [Float] {
        var v = values
        if size > 1 { allreduceSum(&v) }
        return v
    }
}

extension Module {
    /// Tells every dropout layer below this module which rows of the global batch its next
    /// training forward passes see (nil: the whole batch), so that each draws the masks of the
    /// whole batch and keeps its shard's: the ranks' masks together are one process's.
    public func setBatchShard(_ shard: BatchShard?) {
        if let dropout = self as? Dropout { dropout.shard = shard }
        for (_, child) in children { child.setBatchShard(shard) }
    }
}
