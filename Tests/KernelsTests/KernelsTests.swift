import Foundation
import SeededRandom
import Testing

@testable import Kernels

func randomArray(_ count: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.normal() }
}

func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let scale = max(b.map { abs($0) }.max() ?? 1, 1e-3)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

/// Runs a kernel that writes `shape` in `layout`, and returns the values in plain order.
func plain(_ shape: [Int], _ layout: Layout, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    var raw = [Float](repeating: .nan, count: layout.physicalCount(shape))
    raw.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    var out = [Float](repeating: .nan, count: shape.reduce(1, *))
    Reorder.run(shape: shape, from: layout, raw, to: .plain, &out)
    return out
}

func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

/// Awkward shapes: odd sizes, batch 1, one channel, stride 1 and 2, padding, output padding.
let convCases: [ConvGeometry] =
    [
        ConvGeometry(n: 1, c: 1, h: 5, w: 5, k: 1, r: 3, s: 3),
        ConvGeometry(n: 2, c: 3, h: 7, w: 9, k: 5, r: 3, s: 3, stride: 2, padding: 1, hasBias: true),
        ConvGeometry(n: 3, c: 16, h: 8, w: 8, k: 8, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 1, c: 3, h: 13, w: 11, k: 7, r: 1, s: 1),
        ConvGeometry(n: 2, c: 8, h: 7, w: 7, k: 1, r: 7, s: 7),
        ConvGeometry(n: 1, c: 5, h: 1, w: 1, k: 16, r: 4, s: 4, transposed: true),
        ConvGeometry(n: 2, c: 16, h: 4, w: 4, k: 3, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(
            n: 3, c: 7, h: 5, w: 3, k: 9, r: 3, s: 3, stride: 2, padding: 1, outputPadding: 1, transposed: true, hasBias: true),
        ConvGeometry(n: 1, c: 1, h: 6, w: 6, k: 1, r: 3, s: 3, stride: 1, padding: 1, transposed: true),
    ] + winogradCases

/// Winograd F(4x4, 3x3) geometries: odd sides not multiples of its 4x4 tiles, padding 0 and 1,
/// a bias, batch 1; each also forced direct, so both algorithms meet the same reference.
let winogradCases: [ConvGeometry] = [
    ConvGeometry(n: 3, c: 16, h: 9, w: 11, k: 32, r: 3, s: 3, padding: 1, algorithm: .winograd),
    ConvGeometry(n: 2, c: 32, h: 7, w: 5, k: 16, r: 3, s: 3, hasBias: true, algorithm: .winograd),
    ConvGeometry(n: 1, c: 48, h: 6, w: 6, k: 16, r: 3, s: 3, padding: 1, algorithm: .winograd),
    ConvGeometry(n: 3, c: 16, h: 9, w: 11, k: 32, r: 3, s: 3, padding: 1, algorithm: .direct),
]

@Test("conv and deconv forward equal the reference", arguments: convCases)
func convForwardMatchesReference(_ g: ConvGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 1)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 2)
    let b = randomArray(g.k, seed: 3)
    let y = plain(g.outputShape, Conv.forwardLayout(g)) {
        Conv.forward(g, input: x, weight: w, bias: g.hasBias ? b : nil, output: $0)
    }
    let expected = Reference.convForward(g, input: x, weight: w, bias: g.hasBias ? b : nil)
    #expect(maxRelativeError(y, expected) < 1e-5, "\(g)")
}

@Test("conv and deconv backward equal the reference", arguments: convCases)
func convBackwardMatchesReference(_ g: ConvGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 4)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 5)
    let dy = randomArray(g.outputShape.reduce(1, *), seed: 6)
    let dx = plain(g.inputShape, Conv.backwardDataLayout(g)) { Conv.backwardData(g, gradOutput: dy, weight: w, gradInput: $0) }
    #expect(maxRelativeError(dx, Reference.convBackwardData(g, gradOutput: dy, weight: w)) < 1e-5, "\(g)")
    var dw = [Float](repeating: .nan, count: w.count), db = [Float](repeating: .nan, count: g.k)
    Conv.backwardWeights(g, input: x, gradOutput: dy, gradWeight: &dw, gradBias: &db)
    let ref = Reference.convBackwardWeights(g, input: x, gradOutput: dy)
    #expect(maxRelativeError(dw, ref.weight) < 1e-5, "\(g)")
    if g.hasBias { #expect(maxRelativeError(db, ref.bias) < 1e-5) }
}

/// <conv(x), y> = <x, conv_backward_data(y)>: catches a layout bound wrongly at execution,
/// which oneDNN 2.6 does not check.
@Test(
    "adjoint identity for the DCGAN shapes",
    arguments: [
        ConvGeometry(n: 4, c: 64, h: 32, w: 32, k: 128, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 4, c: 3, h: 64, w: 64, k: 64, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 4, c: 128, h: 16, w: 16, k: 64, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 4, c: 64, h: 32, w: 32, k: 3, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 4, c: 100, h: 1, w: 1, k: 512, r: 4, s: 4, transposed: true),
    ])
func adjointIdentity(_ g: ConvGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 7)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 8)
    let y = randomArray(g.outputShape.reduce(1, *), seed: 9)
    let cx = plain(g.outputShape, Conv.forwardLayout(g)) { Conv.forward(g, input: x, weight: w, bias: nil, output: $0) }
    let aty = plain(g.inputShape, Conv.backwardDataLayout(g)) { Conv.backwardData(g, gradOutput: y, weight: w, gradInput: $0) }
    let lhs = dot(cx, y), rhs = dot(x, aty)
    #expect(abs(lhs - rhs) <= 1e-3 * max(abs(lhs), 1), "\(g): \(lhs) vs \(rhs)")
    // <dW(x, y), w> = <conv(x; w), y> too: checks the backward-weights layout.
    var dw = [Float](repeating: 0, count: w.count)
    Conv.backwardWeights(g, input: x, gradOutput: y, gradWeight: &dw, gradBias: nil)
    #expect(abs(dot(dw, w) - lhs) <= 1e-3 * max(abs(lhs), 1), "\(g)")
}

/// The DCGAN hot paths must not fall back to oneDNN's reference implementations.
@Test(
    "no ref: implementation on DCGAN hot paths",
    arguments: [
        ConvGeometry(n: 64, c: 100, h: 1, w: 1, k: 512, r: 4, s: 4, transposed: true),
        ConvGeometry(n: 64, c: 512, h: 4, w: 4, k: 256, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 64, c: 64, h: 32, w: 32, k: 3, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 64, c: 100, h: 1, w: 1, k: 256, r: 7, s: 7, transposed: true),
        ConvGeometry(n: 64, c: 128, h: 14, w: 14, k: 1, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 64, c: 3, h: 64, w: 64, k: 64, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 64, c: 1, h: 28, w: 28, k: 64, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 64, c: 256, h: 8, w: 8, k: 512, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 64, c: 512, h: 4, w: 4, k: 1, r: 4, s: 4),
        ConvGeometry(n: 64, c: 128, h: 7, w: 7, k: 1, r: 7, s: 7),
    ])
func noReferenceImplementations(_ g: ConvGeometry) {
    let impl = Conv.implementations(g)
    for name in [impl.forward, impl.backwardData, impl.backwardWeights] {
        #expect(!name.hasPrefix("ref"), "\(g) uses \(name)")
    }
}

/// Where Winograd applies it is what runs on a CPU with oneDNN's AVX-512 Winograd kernels (a
/// silent fallback to direct would lose its speed without failing any numeric test), and only
/// there: stride 2, 1x1, channels not multiples of 16 and transposed convolutions stay direct.
@Test func winogradRunsWhereItApplies() {
    for g in winogradCases where g.algorithm == .winograd {
        #expect(g.usesWinograd, "\(g)")
        guard VectorISA.avx512.isSupported else { continue }
        let impl = Conv.implementations(g)
        for name in [impl.forward, impl.backwardData, impl.backwardWeights] {
            #expect(name.contains("wino"), "\(g) runs \(name)")
        }
    }
    let direct = ConvGeometry(n: 3, c: 16, h: 9, w: 11, k: 32, r: 3, s: 3, padding: 1, algorithm: .direct)
    #expect(!direct.usesWinograd)
    #expect(!Conv.implementations(direct).forward.contains("wino"))
    let notApplicable = [
        ConvGeometry(n: 2, c: 32, h: 8, w: 8, k: 32, r: 3, s: 3, stride: 2, padding: 1, algorithm: .winograd),
        ConvGeometry(n: 2, c: 32, h: 8, w: 8, k: 32, r: 1, s: 1, algorithm: .winograd),
        ConvGeometry(n: 2, c: 3, h: 8, w: 8, k: 32, r: 3, s: 3, padding: 1, algorithm: .winograd),
        ConvGeometry(n: 2, c: 32, h: 8, w: 8, k: 24, r: 3, s: 3, padding: 1, algorithm: .winograd),
        ConvGeometry(n: 2, c: 32, h: 8, w: 8, k: 32, r: 3, s: 3, padding: 1, transposed: true, algorithm: .winograd),
    ]
    for g in notApplicable {
        #expect(!g.usesWinograd, "\(g)")
        #expect(!Conv.implementations(g).forward.contains("wino"), "\(g)")
    }
}

/// Primitives are created on one thread and run on others (the cooperative pool, the server's
/// inference threads). With oneDNN's default scratchpad, a thread-local buffer sized on the
/// creating thread, a Winograd convolution (megabytes of scratchpad) run on a thread that never
/// created a primitive wrote through a null buffer and crashed; every primitive now brings its
/// scratchpad from `DNNLContext`. Each pass runs here first, then on a fresh thread.
@Test func primitivesRunOnThreadsThatDidNotCreateThem() async {
    let g = ConvGeometry(n: 16, c: 64, h: 28, w: 28, k: 64, r: 3, s: 3, padding: 1, algorithm: .winograd)
    let x = randomArray(g.inputShape.reduce(1, *), seed: 21), w = randomArray(g.weightShape.reduce(1, *), seed: 22)
    let dy = randomArray(g.outputShape.reduce(1, *), seed: 23)
    @Sendable func passes() -> [[Float]] {
        let y = plain(g.outputShape, Conv.forwardLayout(g)) { Conv.forward(g, input: x, weight: w, bias: nil, output: $0) }
        let dx = plain(g.inputShape, Conv.backwardDataLayout(g)) {
            Conv.backwardData(g, gradOutput: dy, weight: w, gradInput: $0)
        }
        var dw = [Float](repeating: .nan, count: w.count), db = [Float](repeating: .nan, count: g.k)
        Conv.backwardWeights(g, input: x, gradOutput: dy, gradWeight: &dw, gradBias: &db)
        return [y, dx, dw]
    }
    let here = passes()
    let there = await withCheckedContinuation { (done: CheckedContinuation<[[Float]], Never>) in
        Thread.detachNewThread { done.resume(returning: passes()) }
    }
    #expect(here == there)
}

@Test(
    "batch norm forward and backward equal the reference",
    arguments: [
        BatchNormGeometry(n: 1, c: 1, h: 3, w: 5), BatchNormGeometry(n: 3, c: 7, h: 5, w: 3),
        BatchNormGeometry(n: 4, c: 16, h: 1, w: 1),
    ])
func batchNormMatchesReference(_ g: BatchNormGeometry) {
    let x = randomArray(g.shape.reduce(1, *), seed: 10).map { $0 * 2 + 1 }
    let scale = randomArray(g.c, seed: 11), shift = randomArray(g.c, seed: 12)
    var y = x, mean = [Float](repeating: 0, count: g.c), variance = mean
    BatchNormKernel.forwardTraining(g, input: x, scale: scale, shift: shift, output: &y, mean: &mean, variance: &variance)
    let stats = Reference.batchNormStatistics(g, input: x)
    #expect(maxRelativeError(mean, stats.mean) < 1e-5)
    #expect(maxRelativeError(variance, stats.variance) < 1e-4)
    let expected = Reference.batchNormForward(g, input: x, scale: scale, shift: shift, mean: stats.mean, variance: stats.variance)
    #expect(maxRelativeError(y, expected) < 1e-4)
    var yi = x
    BatchNormKernel.forwardInference(
        g, input: x, scale: scale, shift: shift, mean: stats.mean, variance: stats.variance, output: &yi)
    #expect(maxRelativeError(yi, expected) < 1e-4)
    let dy = randomArray(x.count, seed: 13)
    var dx = x, dscale = scale, dshift = shift
    BatchNormKernel.backward(
        g, input: x, gradOutput: dy, scale: scale, shift: shift, mean: mean, variance: variance,
        gradInput: &dx, gradScale: &dscale, gradShift: &dshift)
    let ref = Reference.batchNormBackward(g, input: x, gradOutput: dy, scale: scale, mean: stats.mean, variance: stats.variance)
    if g.n * g.h * g.w > 1 { #expect(maxRelativeError(dx, ref.input) < 1e-3) }
    #expect(maxRelativeError(dscale, ref.scale) < 1e-4)
    #expect(maxRelativeError(dshift, ref.shift) < 1e-4)
}

/// Batch norm with the ReLU fused (training forward, its backward through the saved mask, and
/// inference) equals the reference batch norm followed by max(0, y), on plain data and on the
/// blocked layout a convolution writes (24 channels: one block padded).
@Test("fused batch norm + ReLU equals the reference", arguments: [false, true])
func fusedBatchNormReLUMatchesReference(_ blocked: Bool) {
    let cg = ConvGeometry(n: 3, c: 5, h: 9, w: 9, k: 24, r: 3, s: 3, stride: 2, padding: 1)
    let g = BatchNormGeometry(n: cg.n, c: cg.k, h: cg.p, w: cg.q)
    let layout = blocked ? Conv.forwardLayout(cg) : .plain
    #expect(layout.isPlain != blocked)
    let x = randomArray(g.shape.reduce(1, *), seed: 30).map { $0 * 2 + 1 }
    let scale = randomArray(g.c, seed: 31), shift = randomArray(g.c, seed: 32), dy = randomArray(x.count, seed: 33)
    let physical = layout.physicalCount(g.shape)
    func toLayout(_ a: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: physical)
        Reorder.run(shape: g.shape, from: .plain, a, to: layout, &out)
        return out
    }
    func toPlain(_ a: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        Reorder.run(shape: g.shape, from: layout, a, to: .plain, &out)
        return out
    }
    var y = [Float](repeating: 0, count: physical), mean = [Float](repeating: 0, count: g.c), variance = mean
    var mask = [UInt8](repeating: 0, count: BatchNormKernel.workspaceBytes(g, layout: layout))
    #expect(!mask.isEmpty)
    mask.withUnsafeMutableBytes { w in
        BatchNormKernel.forwardTraining(
            g, layout: layout, input: toLayout(x), scale: scale, shift: shift, output: &y, mean: &mean,
            variance: &variance, reluWorkspace: w.baseAddress)
    }
    let stats = Reference.batchNormStatistics(g, input: x)
    let normed = Reference.batchNormForward(g, input: x, scale: scale, shift: shift, mean: stats.mean, variance: stats.variance)
    let expected = normed.map { max($0, 0) }
    #expect(maxRelativeError(toPlain(y), expected) < 1e-4)
    #expect(expected.contains(0) && expected.contains { $0 > 0 }, "both sides of the ReLU are exercised")
    var dx = [Float](repeating: 0, count: physical), dscale = scale, dshift = shift
    mask.withUnsafeBytes { w in
        BatchNormKernel.backward(
            g, layout: layout, input: toLayout(x), gradOutput: toLayout(dy), scale: scale, shift: shift, mean: mean,
            variance: variance, gradInput: &dx, gradScale: &dscale, gradShift: &dshift, reluWorkspace: w.baseAddress)
    }
    let maskedDy = zip(dy, normed).map { $1 > 0 ? $0 : 0 }
    let ref = Reference.batchNormBackward(
        g, input: x, gradOutput: maskedDy, scale: scale, mean: stats.mean, variance: stats.variance)
    #expect(maxRelativeError(toPlain(dx), ref.input) < 1e-3)
    #expect(maxRelativeError(dscale, ref.scale) < 1e-4)
    #expect(maxRelativeError(dshift, ref.shift) < 1e-4)
    var yi = [Float](repeating: 0, count: physical)
    BatchNormKernel.forwardInference(
        g, layout: layout, input: toLayout(x), scale: scale, shift: shift, mean: stats.mean,
        variance: stats.variance, output: &yi, fusedReLU: true)
    #expect(maxRelativeError(toPlain(yi), expected) < 1e-4)
    let impl = BatchNormKernel.implementations(g, layout: layout, fusedReLU: true)
    #expect(!impl.forward.hasPrefix("ref") && !impl.backward.hasPrefix("ref"), "\(impl)")
}

/// The residual add + ReLU and the ReLU backward read from the output equal their scalar
/// references, at counts around the 16-float vector width (tails included), with exact zeros.
@Test(
    "residual add + ReLU loops equal the reference",
    arguments: [1, 15, 16, 17, 1031, VectorKernels.parallelMinimum + 17, 200_003])
func residualReLULoopsMatchReference(_ count: Int) {
    let a = randomArray(count, seed: 40), b = randomArray(count, seed: 41).enumerated().map { $0 % 5 == 0 ? -a[$0] : $1 }
    let g = randomArray(count, seed: 42)
    var out = [Float](repeating: .nan, count: count), expected = out
    VectorKernels.addReLU(a, b, output: &out, count: count)
    Reference.addReLU(range: 0..<count, a, b, output: &expected)
    #expect(out == expected)
    #expect(expected == zip(a, b).map { max($0 + $1, 0) })
    var dx = [Float](repeating: .nan, count: count), dxExpected = dx
    VectorKernels.reluBackward(output: out, gradOutput: g, gradInput: &dx, count: count)
    Reference.reluBackward(range: 0..<count, output: out, gradOutput: g, gradInput: &dxExpected)
    #expect(dx == dxExpected)
    #expect(dxExpected == zip(out, g).map { $0 > 0 ? $1 : 0 })
    var sum = [Float](repeating: .nan, count: count)
    VectorKernels.add(a, b, output: &sum, count: count)
    #expect(sum == zip(a, b).map { $0 + $1 })
}

@Test(
    "activations equal the reference",
    arguments: [Activation.relu(slope: 0), .relu(slope: 0.2), .tanh, .sigmoid, .silu])
func activationsMatchReference(_ a: Activation) {
    for count in [1, 7, 1031] {
        let x = randomArray(count, seed: 14).map { $0 * 3 }
        var y = x
        ActivationKernel.forward(a, shape: [count], input: x, output: &y)
        #expect(maxRelativeError(y, x.map { Reference.activation(a, $0) }) < 1e-5)
        let dy = randomArray(count, seed: 15)
        let saved = ActivationKernel.backwardUsesOutput(a) ? y : x
        var dx = x
        ActivationKernel.backward(a, shape: [count], saved: saved, gradOutput: dy, gradInput: &dx)
        let expected = zip(saved, dy).map { Reference.activationDerivative(a, saved: $0) * $1 }
        #expect(maxRelativeError(dx, expected) < 1e-5)
    }
}

@Test(
    "pooling equals the reference",
    arguments: [
        PoolGeometry(kind: .max, n: 1, c: 1, h: 5, w: 5, kernel: 2, stride: 2),
        PoolGeometry(kind: .max, n: 2, c: 3, h: 7, w: 6, kernel: 3, stride: 2, padding: 1),
        PoolGeometry(kind: .average, n: 2, c: 3, h: 7, w: 7, kernel: 2, stride: 2),
        PoolGeometry(kind: .average, n: 1, c: 5, h: 6, w: 6, kernel: 6, stride: 6),
    ])
func poolingMatchesReference(_ g: PoolGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 16)
    var y = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
    var ws = [UInt8](repeating: 0, count: max(PoolKernel.workspaceBytes(g), 1))
    ws.withUnsafeMutableBytes { w in PoolKernel.forward(g, input: x, output: &y, workspace: w.baseAddress) }
    #expect(maxRelativeError(y, Reference.poolForward(g, input: x)) < 1e-6)
    let dy = randomArray(y.count, seed: 17)
    var dx = x
    ws.withUnsafeBytes { w in PoolKernel.backward(g, gradOutput: dy, workspace: w.baseAddress, gradInput: &dx) }
    #expect(maxRelativeError(dx, Reference.poolBackward(g, input: x, gradOutput: dy)) < 1e-5)
}

@Test("sgemm equals the reference", arguments: [(1, 1, 1), (3, 5, 7), (17, 1, 33), (64, 100, 9)])
func gemmMatchesReference(_ mnk: (Int, Int, Int)) {
    let (m, n, k) = mnk
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = randomArray(m * k, seed: 18), b = randomArray(k * n, seed: 19)
        var c = [Float](repeating: 0, count: m * n)
        Gemm.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, b: b, c: &c)
        #expect(maxRelativeError(c, Reference.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, b: b)) < 1e-5)
    }
}

/// Batch norm and activations on the blocked layout a convolution writes give the same values
/// as on plain data.
@Test func blockedLayoutsMatchPlain() {
    let g = ConvGeometry(n: 3, c: 5, h: 9, w: 9, k: 24, r: 3, s: 3, stride: 2, padding: 1)
    let layout = Conv.forwardLayout(g)
    let x = randomArray(g.inputShape.reduce(1, *), seed: 20), w = randomArray(g.weightShape.reduce(1, *), seed: 21)
    var raw = [Float](repeating: 0, count: layout.physicalCount(g.outputShape))
    Conv.forward(g, input: x, weight: w, bias: nil, output: &raw)
    var y = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
    Reorder.run(shape: g.outputShape, from: layout, raw, to: .plain, &y)
    let bg = BatchNormGeometry(n: g.n, c: g.k, h: g.p, w: g.q)
    let scale = randomArray(g.k, seed: 22), shift = randomArray(g.k, seed: 23)
    var outBlocked = raw, mean = [Float](repeating: 0, count: g.k), variance = mean
    BatchNormKernel.forwardTraining(
        bg, layout: layout, input: raw, scale: scale, shift: shift, output: &outBlocked,
        mean: &mean, variance: &variance)
    var act = outBlocked
    ActivationKernel.forward(.relu(slope: 0.2), shape: g.outputShape, layout: layout, input: outBlocked, output: &act)
    var got = y
    Reorder.run(shape: g.outputShape, from: layout, act, to: .plain, &got)
    let stats = Reference.batchNormStatistics(bg, input: y)
    let expected = Reference.batchNormForward(
        bg, input: y, scale: scale, shift: shift, mean: stats.mean, variance: stats.variance
    )
    .map { Reference.activation(.relu(slope: 0.2), $0) }
    #expect(!layout.isPlain, "expected oneDNN to pick a blocked layout here")
    #expect(maxRelativeError(got, expected) < 1e-4)
}

/// Pooling on the blocked layout a convolution writes (24 channels: one block padded) equals the
/// reference on plain data, forward and backward: the paper CNN's max pools and the ResNet's
/// global average pool run there.
@Test(
    "pooling in a blocked layout equals the reference",
    arguments: [
        PoolGeometry(kind: .max, n: 3, c: 24, h: 5, w: 5, kernel: 2, stride: 2),
        PoolGeometry(kind: .average, n: 3, c: 24, h: 5, w: 5, kernel: 5, stride: 5),
        PoolGeometry(kind: .max, n: 3, c: 24, h: 5, w: 5, kernel: 3, stride: 2, padding: 1),
    ])
func blockedPoolingMatchesReference(_ g: PoolGeometry) {
    let layout = Conv.forwardLayout(ConvGeometry(n: g.n, c: 5, h: 9, w: 9, k: g.c, r: 3, s: 3, stride: 2, padding: 1))
    #expect(!layout.isPlain, "expected oneDNN to pick a blocked layout here")
    let outLayout = PoolKernel.outputLayout(g, layout: layout)
    let x = randomArray(g.inputShape.reduce(1, *), seed: 24)
    var xBlocked = [Float](repeating: 0, count: layout.physicalCount(g.inputShape))
    Reorder.run(shape: g.inputShape, from: .plain, x, to: layout, &xBlocked)
    var ws = [UInt8](repeating: 0, count: max(PoolKernel.workspaceBytes(g, layout: layout), 1))
    let y = plain(g.outputShape, outLayout) { out in
        ws.withUnsafeMutableBytes {
            PoolKernel.forward(g, layout: layout, input: xBlocked, output: out, workspace: $0.baseAddress)
        }
    }
    #expect(maxRelativeError(y, Reference.poolForward(g, input: x)) < 1e-6, "\(g)")
    let dy = randomArray(y.count, seed: 25)
    var dyBlocked = [Float](repeating: 0, count: outLayout.physicalCount(g.outputShape))
    Reorder.run(shape: g.outputShape, from: .plain, dy, to: outLayout, &dyBlocked)
    let dx = plain(g.inputShape, layout) { out in
        ws.withUnsafeBytes {
            PoolKernel.backward(g, layout: layout, gradOutput: dyBlocked, workspace: $0.baseAddress, gradInput: out)
        }
    }
    #expect(maxRelativeError(dx, Reference.poolBackward(g, input: x, gradOutput: dy)) < 1e-5, "\(g)")
}

@Test("SIMD Adam equals the scalar reference", arguments: [false, true])
func adamVectorMatchesReference(decoupled: Bool) {
    // 65,541 and 200,003: split over the kernels' threads, with a tail in the last range.
    for count in [1, 7, 8, 9, 1000, VectorKernels.parallelMinimum + 5, 200_003] {
        let c = AdamCoefficients(
            learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1,
            decoupled: decoupled, step: 3)
        var w1 = randomArray(count, seed: 30), m1 = randomArray(count, seed: 31).map { $0 * 0.1 }
        var v1 = randomArray(count, seed: 32).map { $0 * $0 }
        let g = randomArray(count, seed: 33)
        var (w2, m2, v2) = (w1, m1, v1)
        VectorKernels.adam(c, count: count, weights: &w1, gradients: g, firstMoment: &m1, secondMoment: &v1)
        Reference.adam(c, range: 0..<count, weights: &w2, gradients: g, firstMoment: &m2, secondMoment: &v2)
        #expect(maxRelativeError(w1, w2) < 1e-6 && maxRelativeError(m1, m2) < 1e-6 && maxRelativeError(v1, v2) < 1e-6)
    }
}
