import SeededRandom
import Testing

@testable import Autodiff

/// Batch norm with the ReLU fused gives what batch norm then `.relu()` gives: the output and the
/// gradients of input, scale and shift, in training and evaluation mode, on plain data and on a
/// convolution's blocked output (16 channels: the layout the ResNet's batch norms see).
@Test("fused batch norm + ReLU equals batch norm then relu", arguments: [false, true], [false, true])
func fusedBatchNormReLUEqualsTheComposition(_ blocked: Bool, _ training: Bool) throws {
    let x = makeInput([3, 4, 6, 6], seed: 1, awayFromZero: false, distinct: false)
    let weight = makeInput([16, 4, 3, 3], seed: 2, awayFromZero: false, distinct: false)
    let scale = makeInput([16], seed: 3, awayFromZero: false, distinct: false)
    let shift = makeInput([16], seed: 4, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 5)
    let r = Tensor.randomNormal([3, 16, 6, 6], generator: &rg)
    let (mean, variance) = (Tensor.randomUniform([16], low: -0.5, high: 0.5, generator: &rg), Tensor.ones([16]) * 1.5)
    func run(fused: Bool) throws -> [[Float]] {
        let leaves = [x, scale, shift].map { $0.requiringGrad() }
        let conv = try leaves[0].conv2d(weight: weight, padding: 1)
        let h = blocked ? conv : conv.plain()
        #expect(h.layout.isPlain != blocked)
        let y =
            training
            ? try h.batchNormTraining(scale: leaves[1], shift: leaves[2], thenReLU: fused).output
            : try h.batchNormInference(scale: leaves[1], shift: leaves[2], mean: mean, variance: variance, thenReLU: fused)
        let out = fused ? y : y.relu()
        out.backward(seed: r)
        return try [out.scalars] + leaves.map { try #require($0.grad).scalars }
    }
    let (fused, composed) = (try run(fused: true), try run(fused: false))
    #expect(composed[0].contains(0) && composed[0].contains { $0 > 0 })
    for (name, (a, b)) in zip(["output", "d input", "d scale", "d shift"], zip(fused, composed)) {
        let scale = max(b.map { Swift.abs($0) }.max() ?? 1, 1)
        let err = zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(err / scale < 1e-5, "\(name): max error \(err) (scale \(scale))")
    }
}

/// `residualReLU(x, shortcut)` gives what `(x + shortcut).relu()` gives, output and both inputs'
/// gradients: on two convolutions' blocked outputs (the ResNet's case), on plain tensors, and
/// when the layouts differ (it falls back to the composition).
@Test("residual add + ReLU equals add then relu", arguments: ["blocked", "plain", "mixed"])
func residualReLUEqualsTheComposition(_ layouts: String) throws {
    let x = makeInput([2, 3, 6, 6], seed: 1, awayFromZero: false, distinct: false)
    let w1 = makeInput([16, 3, 3, 3], seed: 2, awayFromZero: false, distinct: false)
    let w2 = makeInput([16, 3, 3, 3], seed: 3, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 4)
    let r = Tensor.randomNormal([2, 16, 6, 6], generator: &rg)
    func run(fused: Bool) throws -> [[Float]] {
        let leaf = x.requiringGrad()
        var a = try leaf.conv2d(weight: w1, padding: 1), b = try leaf.conv2d(weight: w2, padding: 1)
        if layouts != "blocked" { a = a.plain() }
        if layouts == "plain" { b = b.plain() }
        #expect((a.layout == b.layout) == (layouts != "mixed"))
        let out = fused ? try Tensor.residualReLU(a, b) : try (a + b).relu()
        out.backward(seed: r)
        return [out.scalars, try #require(leaf.grad).scalars]
    }
    let (fused, composed) = (try run(fused: true), try run(fused: false))
    #expect(composed[0].contains(0) && composed[0].contains { $0 > 0 })
    for (a, b) in zip(fused, composed) {
        let scale = max(b.map { Swift.abs($0) }.max() ?? 1, 1)
        #expect((zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0) / scale < 1e-5)
    }
}
