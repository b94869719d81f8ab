import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import NN

/// The shards of a global batch partition it in rank order, their sizes differing by at most one.
@Test(arguments: [(16, 2), (7, 3), (5, 5), (64, 3)])
func shardsPartitionTheBatch(total: Int, size: Int) {
    let shards = (0..<size).map { GradientSync(rank: $0, size: size) { _ in }.shard(of: total) }
    #expect(shards.map(\.rows.lowerBound) == [0] + shards.dropLast().map(\.rows.upperBound))
    #expect(shards.last?.rows.upperBound == total)
    let counts = shards.map(\.rows.count)
    #expect(counts.max()! - counts.min()! <= 1)
    #expect(GradientSync.single.shard(of: total).isWhole)
}

/// Dropout on shards draws what one process draws for the whole batch: the ranks' masks,
/// stacked in rank order, are the whole batch's mask, and every rank's stream stays in step.
@Test func dropoutShardsTogetherDrawTheWholeBatchsMask() throws {
    var g = SeededGenerator(seed: 7)
    let whole = Dropout(0.5, generator: &g)
    let x = Tensor(repeating: 1, shape: [6, 2, 3])
    let reference = try whole(x).scalars
    var stacked: [Float] = []
    for rank in 0..<2 {
        var g = SeededGenerator(seed: 7)
        let layer = Dropout(0.5, generator: &g)
        let shard = GradientSync(rank: rank, size: 2) { _ in }.shard(of: 6)
        layer.setBatchShard(shard)
        stacked += try layer(try shard.take(x)).scalars
        #expect(layer.generator == whole.generator)
    }
    #expect(stacked == reference)
    #expect(reference.contains(0) && reference.contains(2))
}
