import Kernels
import SeededRandom
import Testing

@testable import Autodiff

// The U-Net's chain conv -> (+ embedding) -> group norm -> SiLU -> conv stays in the
// convolution's blocked layout. Each op there gives what it gives on the same values in plain
// layout: outputs and the gradients of every input.

private func maxError(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(b.map { Swift.abs($0) }.max() ?? 1, 1)
    return (zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0) / scale
}

/// Group norm on a convolution's blocked output (32 channels: nChw16c on AVX-512, nChw8c on AVX2)
/// equals group norm on its plain copy, and keeps the blocked layout.
@Test("group norm on a blocked activation equals the plain one", arguments: [1, 4, 8, 32])
func groupNormKeepsTheBlockedLayout(_ groups: Int) throws {
    let x = makeInput([3, 4, 6, 5], seed: 1, awayFromZero: false, distinct: false)
    let weight = makeInput([32, 4, 3, 3], seed: 2, awayFromZero: false, distinct: false)
    let scale = makeInput([32], seed: 3, awayFromZero: false, distinct: false)
    let shift = makeInput([32], seed: 4, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 5)
    let r = Tensor.randomNormal([3, 32, 6, 5], generator: &rg)
    func run(blocked: Bool) throws -> [[Float]] {
        let leaves = [x, scale, shift].map { $0.requiringGrad() }
        let conv = try leaves[0].conv2d(weight: weight, padding: 1)
        let h = blocked ? conv : conv.plain()
        let y = try h.groupNorm(groups: groups, scale: leaves[1], shift: leaves[2])
        if blocked { #expect(!conv.layout.isPlain && y.layout == conv.layout, "the norm reordered to plain") }
        y.silu().backward(seed: r)
        return try [y.scalars] + leaves.map { try #require($0.grad).scalars }
    }
    let (blocked, plain) = (try run(blocked: true), try run(blocked: false))
    for (name, (a, b)) in zip(["output", "d input", "d scale", "d shift"], zip(blocked, plain)) {
        #expect(maxError(a, b) < 1e-5, "\(name), \(groups) groups: \(maxError(a, b))")
    }
}

/// Adding an (N, C, 1, 1) embedding to a blocked activation, and adding a plain tensor to a
/// blocked one of the same shape, give what the plain additions give, in the blocked layout.
@Test("embedding and mixed-layout additions equal the plain ones")
func additionsKeepTheBlockedLayout() throws {
    let x = makeInput([2, 3, 5, 5], seed: 6, awayFromZero: false, distinct: false)
    let weight = makeInput([16, 3, 3, 3], seed: 7, awayFromZero: false, distinct: false)
    let embedding = makeInput([2, 16, 1, 1], seed: 8, awayFromZero: false, distinct: false)
    let shortcut = makeInput([2, 16, 5, 5], seed: 9, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 10)
    let r = Tensor.randomNormal([2, 16, 5, 5], generator: &rg)
    func run(blocked: Bool) throws -> [[Float]] {
        let leaves = [x, embedding, shortcut].map { $0.requiringGrad() }
        let conv = try leaves[0].conv2d(weight: weight, padding: 1)
        let h = blocked ? conv : conv.plain()
        let withEmbedding = try h + leaves[1]
        let y = try leaves[2] + withEmbedding  // plain + blocked
        if blocked { #expect(!withEmbedding.layout.isPlain && y.layout == conv.layout) }
        y.backward(seed: r)
        return try [y.scalars] + leaves.map { try #require($0.grad).scalars }
    }
    let (blocked, plain) = (try run(blocked: true), try run(blocked: false))
    for (name, (a, b)) in zip(["output", "d input", "d embedding", "d shortcut"], zip(blocked, plain)) {
        #expect(maxError(a, b) < 1e-5, "\(name): \(maxError(a, b))")
    }
}

/// The U-Net's skip concatenation (a convolution's blocked output with a plain tensor, and two
/// blocked ones) and its upsampling give what they give in plain layout, and stay blocked.
@Test("skip concatenation and upsampling equal the plain ones", arguments: [false, true])
func concatAndUpsampleKeepTheBlockedLayout(_ bothBlocked: Bool) throws {
    let x = makeInput([2, 3, 4, 5], seed: 11, awayFromZero: false, distinct: false)
    let w1 = makeInput([32, 3, 3, 3], seed: 12, awayFromZero: false, distinct: false)
    let w2 = makeInput([16, 3, 3, 3], seed: 13, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 14)
    let r = Tensor.randomNormal([2, 48, 8, 10], generator: &rg)
    func run(blocked: Bool) throws -> [[Float]] {
        let leaf = x.requiringGrad()
        var a = try leaf.conv2d(weight: w1, padding: 1), b = try leaf.conv2d(weight: w2, padding: 1)
        if !blocked { a = a.plain(); b = b.plain() }
        if blocked && !bothBlocked { b = b.plain() }
        let joined = try Tensor.concat([a, b], axis: 1)
        let y = try joined.upsampleNearest(factor: 2)
        if blocked { #expect(!joined.layout.isPlain && !y.layout.isPlain, "reordered to plain") }
        y.backward(seed: r)
        return [y.scalars, try #require(leaf.grad).scalars]
    }
    let (blocked, plain) = (try run(blocked: true), try run(blocked: false))
    for (name, (a, b)) in zip(["output", "d input"], zip(blocked, plain)) {
        #expect(maxError(a, b) < 1e-5, "\(name): \(maxError(a, b))")
    }
}

/// A convolution converts each input once: its weight gradient binds the input and the incoming
/// gradient as the forward and backward-data passes converted them (here plain f32 into the
/// blocked layout oneDNN chose; in bf16 also rounded), so forward and backward run the reorders
/// of the kernels called with `keepInput`/`keepGradOutput`, fewer than converting again.
@Test func convolutionConvertsEachInputOnce() throws {
    let x = makeInput([2, 16, 9, 9], seed: 11, awayFromZero: false, distinct: false)
    let weight = makeInput([32, 16, 3, 3], seed: 12, awayFromZero: false, distinct: false)
    var rg = SeededGenerator(seed: 13)
    let dy = Tensor.randomNormal([2, 32, 9, 9], generator: &rg)
    let g = try Tensor.convGeometry("conv2d", x, weight, bias: nil, stride: 1, padding: 1, outputPadding: 0, transposed: false)
    func reorders(_ executions: [KernelUse: Int]) -> Int {
        executions.filter { $0.key.primitive == "reorder" }.values.reduce(0, +)
    }
    let op = KernelImplementations.counting {
        let (xl, wl) = (x.requiringGrad(), weight.requiringGrad())
        (try? xl.conv2d(weight: wl, padding: 1))?.backward(seed: dy)
        return (xl.grad != nil, wl.grad != nil)
    }
    #expect(op.result == (true, true))
    func kernels(keep: Bool) -> (converted: Bool, reorders: Int) {
        let run = KernelImplementations.counting {
            let y = Tensor(uninitializedShape: g.outputShape, layout: Conv.forwardLayout(g))
            let dx = Tensor(uninitializedShape: g.inputShape, layout: Conv.backwardDataLayout(g))
            let dw = Tensor(uninitializedShape: g.weightShape)
            let keptX = Conv.forward(
                g, input: x.raw, inputLayout: x.layout, weight: weight.pointer, bias: nil, output: y.raw, keepInput: keep)
            let keptDy = Conv.backwardData(
                g, gradOutput: dy.raw, gradOutputLayout: dy.layout, weight: weight.pointer, gradInput: dx.raw,
                keepGradOutput: keep)
            Conv.backwardWeights(
                g, input: x.raw, inputLayout: x.layout, convertedInput: keptX, gradOutput: dy.raw,
                gradOutputLayout: dy.layout, convertedGradOutput: keptDy, gradWeight: dw.raw, gradBias: nil)
            _ = dx.plain().storage  // a leaf's gradient is stored plain
            return keptX != nil || keptDy != nil
        }
        return (run.result, reorders(run.executions))
    }
    let (reusing, again) = (kernels(keep: true), kernels(keep: false))
    #expect(reorders(op.executions) == reusing.reorders)
    if reusing.converted { #expect(reusing.reorders < again.reorders) }
}
