import Datasets
import SeededRandom
import Testing

@Suite("Batching and augmentation")
struct BatchingTests {
    @Test func epochOrderIsASeededPermutation() {
        let a = epochOrder(count: 100, epoch: 0, seed: 5)
        #expect(a.sorted() == Array(0..<100))
        #expect(a == epochOrder(count: 100, epoch: 0, seed: 5))
        #expect(a != epochOrder(count: 100, epoch: 1, seed: 5))
        #expect(a != epochOrder(count: 100, epoch: 0, seed: 6))
        let batches = epochBatches(count: 10, batchSize: 4, epoch: 2, seed: 1)
        #expect(batches.map(\.count) == [4, 4, 2] && batches.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(epochBatches(count: 10, batchSize: 4, epoch: 2, seed: 1, dropLast: true).count == 2)
    }

    @Test func classBalancedSamplerDrawsClassesUniformly() {
        let labels = Array(repeating: 0, count: 95) + Array(repeating: 1, count: 5)
        var sampler = ClassBalancedSampler(labels: labels, classCount: 3, seed: 9)  // class 2 is empty
        var again = sampler
        let draws = (0..<200).flatMap { _ in sampler.nextBatch(size: 50) }
        let minority = draws.filter { labels[$0] == 1 }.count
        #expect(abs(Double(minority) / Double(draws.count) - 0.5) < 0.02)
        #expect(Set(draws.filter { labels[$0] == 1 }) == Set(95..<100))
        #expect(again.nextBatch(size: 50) == Array(draws.prefix(50)))
    }

    func image() -> [Float] { (0..<2 * 6 * 6).map { Float($0 % 37) / 36 } }

    @Test func noneLeavesImagesUnchanged() {
        var augmenter = Augmenter(options: .none, scaling: .unit, seed: 1)
        var x = image()
        augmenter.apply(to: &x, channels: 2, height: 6, width: 6)
        #expect(x == image())
    }

    @Test func flipsAreExactMirrors() {
        let original = image()
        var mirrored = original
        for c in 0..<2 { for y in 0..<6 { for x in 0..<6 { mirrored[(c * 6 + y) * 6 + x] = original[(c * 6 + y) * 6 + 5 - x] } } }
        var options = AugmentationOptions.none
        options.horizontalFlip = true
        var augmenter = Augmenter(options: options, scaling: .unit, seed: 3)
        var seen = Set<Bool>()
        for _ in 0..<20 {
            var x = original
            augmenter.apply(to: &x, channels: 2, height: 6, width: 6)
            #expect(x == original || x == mirrored)
            seen.insert(x == mirrored)
        }
        #expect(seen == [true, false])
    }

    @Test func fullAugmentationIsDeterministicAndInRange() {
        for scaling in PixelScaling.allCases {
            var a = Augmenter(options: AugmentationOptions(verticalFlip: true), scaling: scaling, seed: 11)
            var b = a
            var batchA = (0..<4).flatMap { _ in image().map { scaling == .unit ? $0 : $0 * 2 - 1 } }
            var batchB = batchA
            let before = batchA
            a.apply(toBatch: &batchA, count: 4, channels: 2, height: 6, width: 6)
            b.apply(toBatch: &batchB, count: 4, channels: 2, height: 6, width: 6)
            #expect(batchA == batchB)
            #expect(batchA != before)
            #expect(batchA.allSatisfy { $0 >= scaling.black && $0 <= scaling.white })
        }
    }

    @Test func smallRotationKeepsTheCentre() {
        var options = AugmentationOptions.none
        options.maxRotationDegrees = 15
        var augmenter = Augmenter(options: options, scaling: .unit, seed: 4)
        var x = [Float](repeating: 0, count: 49)
        x[24] = 1  // centre of 7x7
        augmenter.apply(to: &x, channels: 1, height: 7, width: 7)
        #expect(x[24] == 1)  // rotation is about the centre
    }
}
