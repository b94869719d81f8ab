import Testing
import SeededRandom
@testable import Autodiff

@Test func shapeMismatchNamesBothShapes() throws {
    let a = Tensor.zeros([2, 3]), b = Tensor.zeros([4, 3])
    #expect(throws: TensorError.shapeMismatch(op: "add", lhs: [2, 3], rhs: [4, 3])) { try a + b }
    do { _ = try Tensor.matmul(a, b) } catch { #expect("\(error)".contains("[2, 3]") && "\(error)".contains("[4, 3]")) }
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
    try (x * x + x).sum().backward()      // d/dx (x^2 + x) = 2x + 1
    #expect(x.grad!.scalars == [3, 5])
}

@Test func seededRandomIsDeterministicAndRestorable() {
    var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
    #expect((0..<5).map { _ in a.next() } == (0..<5).map { _ in b.next() })
    let saved = a.state
    let next = a.normal()
    var restored = SeededGenerator(state: saved)!
    #expect(restored.normal() == next)
    var c = SeededGenerator(seed: 43)
    #expect(c.next() != SeededGenerator(seed: 42).fork(0).state[0])
}
