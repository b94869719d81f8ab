import SeededRandom

/// A shuffled order of `0..<count` for one epoch; the same (seed, epoch) gives the same order.
public func epochOrder(count: Int, epoch: Int, seed: UInt64) -> [Int] {
    var rng = SeededGenerator(seed: seed).fork(UInt64(truncatingIfNeeded: epoch))
    var order = Array(0..<count)
    rng.shuffle(&order)
    return order
}

/// Mini-batches of sample indices for one epoch, from `epochOrder`.
///
/// With `dropLast` a final short batch is left out (useful with BatchNorm).
public func epochBatches(count: Int, batchSize: Int, epoch: Int, seed: UInt64, dropLast: Bool = false) -> [[Int]] {
    precondition(batchSize > 0, "batch size must be positive")
    let order = epochOrder(count: count, epoch: epoch, seed: seed)
    return stride(from: 0, to: count, by: batchSize).compactMap { start in
        let end = min(start + batchSize, count)
        return dropLast && end - start < batchSize ? nil : Array(order[start..<end])
    }
}

/// Draws class-balanced batches: each sample picks a class uniformly, then an image uniformly
/// within that class (with replacement), so minority classes are seen as often as majority ones.
public struct ClassBalancedSampler: Sendable {
    /// Sample indices per class (classes with no samples are never drawn).
    public let members: [[Int]]
    private let drawable: [Int]
    private var rng: SeededGenerator

    /// Creates a sampler over `labels` with `classCount` classes.
    public init(labels: [Int], classCount: Int, seed: UInt64) {
        var members = [[Int]](repeating: [], count: classCount)
        for (i, label) in labels.enumerated() { members[label].append(i) }
        self.members = members
        drawable = members.indices.filter { !members[$0].isEmpty }
        precondition(!drawable.isEmpty, "no samples to draw from")
        rng = SeededGenerator(seed: seed)
    }

    /// The next batch of `size` sample indices.
    public mutating func nextBatch(size: Int) -> [Int] {
        (0..<size).map { _ in
            let cls = members[drawable[rng.int(below: drawable.count)]]
            return cls[rng.int(below: cls.count)]
        }
    }
}
