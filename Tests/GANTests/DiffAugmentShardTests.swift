import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import GAN
@testable import NN

/// DiffAugment on shards applies what one process applies to the whole batch (colour, shifts,
/// cutout drawn for every image), and leaves every rank's stream where one process leaves it.
@Test(arguments: [1, 3])
func diffAugmentShardsTogetherAugmentLikeTheWholeBatch(channels: Int) throws {
    var g = SeededGenerator(seed: 11)
    let x = Tensor.randomUniform([5, channels, 8, 8], low: -1, high: 1, generator: &g)
    var reference = SeededGenerator(seed: 12)
    let whole = try DiffAugment()(x, generator: &reference).scalars
    var stacked: [Float] = []
    for rank in 0..<2 {
        var stream = SeededGenerator(seed: 12)
        let shard = GradientSync(rank: rank, size: 2) { _ in }.shard(of: 5)
        stacked += try DiffAugment()(try shard.take(x), generator: &stream, shard: shard).scalars
        #expect(stream == reference)
    }
    #expect(stacked == whole)
}
