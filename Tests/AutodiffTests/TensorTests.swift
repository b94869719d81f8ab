import SeededRandom
import Testing

@testable import Autodiff

@Test func shapeMismatchNamesBothShapes() throws {
    let a = Tensor.zeros([2, 3]), b = Tensor.zeros([4, 3])
    #expect(throws: TensorError.shapeMismatch(op: "add", lhs: [2, 3], rhs: [4, 3])) { try a + b }
    let mismatch = #expect(throws: TensorError.self) { try Tensor.matmul(a, b) }
    #expect(mismatch == .shapeMismatch(op: "matmul", lhs: [2, 3], rhs: [4, 3]))
    #expect(mismatch?.description == "matmul: shapes [2, 3] and [4, 3] do not match")
    #expect(throws: TensorError.self) { try Tensor.zeros([1, 3, 8, 8]).conv2d(weight: Tensor.zeros([4, 2, 3, 3])) }
    #expect(throws: TensorError.self) { try Tensor(shape: [2, 2], scalars: [1, 2, 3]) }
}

@Test func noGradRecordsNothing() throws {
    let w = Tensor.ones([3]).requiringGrad()
    let y = try noGrad { try w * w }
    #expect(!y.requiresGrad)
    #expect(try (w * w).requiresGrad)
}

@Test func gradientsAccumulateAcrossUses() throws {
    let x = try Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
    try (x * x + x).sum().backward()  // d/dx (x^2 + x) = 2x + 1
    #expect(x.grad!.scalars == [3, 5])
}

@Test func seededRandomIsDeterministicAndRestorable() {
    var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
    #expect((0..<5).map { _ in a.next() } == (0..<5).map { _ in b.next() })
    let saved = a.state
    let next = a.normal()
    var restored = SeededGenerator(state: saved)!
    #expect(restored.normal() == next)
    // Another seed, or another fork, is another stream; a fork is a function of the state and stream.
    var c = SeededGenerator(seed: 43), d = SeededGenerator(seed: 42)
    #expect((0..<5).map { _ in c.next() } != (0..<5).map { _ in d.next() })
    let parent = SeededGenerator(seed: 42)
    var f0 = parent.fork(0), f0again = parent.fork(0), f1 = parent.fork(1), p = parent
    let stream0 = (0..<5).map { _ in f0.next() }
    #expect(stream0 == (0..<5).map { _ in f0again.next() })
    #expect(stream0 != (0..<5).map { _ in f1.next() })
    #expect(stream0 != (0..<5).map { _ in p.next() })
    #expect(SeededGenerator(state: [0, 0, 0, 0]) == nil && SeededGenerator(state: [1, 2, 3]) == nil)
}

/// Known answers from the reference C code (Blackman and Vigna, https://prng.di.unimi.it/):
/// SplitMix64 from 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, ... (the seeding), and
/// xoshiro256** from the state {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240.
@Test func seededRandomMatchesTheReferenceAlgorithms() {
    #expect(
        SeededGenerator(seed: 0).state == [
            0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f,
            0xf88b_b8a8_724c_81ec,
        ])
    var g = SeededGenerator(state: [1, 2, 3, 4])!
    #expect((0..<4).map { _ in g.next() } == [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
}
