import Testing

@testable import Kernels

// Two kinds of convolution pass leave oneDNN's blocked convolution kernels for its GEMM:
// projections (a transposed convolution of a 1x1 input, `Projection`) and the passes writing an
// image of at most 4 channels through the backward-data kernel (`forwardOnPlain`,
// `backwardDataOnPlain`). Their numbers meet the reference in `convCases`; these tests pin what
// they run and that inputs arriving in the blocked layouts a network hands them still give the
// reference's answer.

func reorders(_ executions: [KernelUse: Int]) -> Int {
    executions.filter { $0.key.primitive == "reorder" }.values.reduce(0, +)
}

/// A DCGAN generator's first layer, 28 px and 64 px, f32 and bf16.
let projectionCases: [ConvGeometry] = [
    ConvGeometry(n: 8, c: 100, h: 1, w: 1, k: 256, r: 7, s: 7, transposed: true, precision: .f32),
    ConvGeometry(n: 8, c: 100, h: 1, w: 1, k: 512, r: 4, s: 4, transposed: true, precision: .bf16),
    ConvGeometry(n: 3, c: 7, h: 1, w: 1, k: 5, r: 3, s: 3, stride: 2, transposed: true, precision: .f32),
]

/// The projection is an inner product on the weight as stored (IOHW): in f32 neither the weight
/// nor its gradient is reordered (the deconvolution primitive transposed both at every step); the
/// only reorder hands the product on in the layout a convolution writes, nChw16c for 16k
/// channels on AVX-512, where the batch norm after it runs its blocked kernel.
@Test("a projection is a matrix product on the stored weight", arguments: projectionCases)
func projectionIsAMatrixProduct(_ g: ConvGeometry) {
    #expect(g.isProjection)
    let impl = Conv.implementations(g)
    for name in [impl.forward, impl.backwardData, impl.backwardWeights] { #expect(name.contains("gemm"), "\(g): \(name)") }
    let x = randomArray(g.inputShape.reduce(1, *), seed: 31), w = randomArray(g.weightShape.reduce(1, *), seed: 32)
    let dy = randomArray(g.outputShape.reduce(1, *), seed: 33)
    let layout = Conv.forwardLayout(g)
    var y = [Float](repeating: 0, count: layout.physicalCount(g.outputShape))
    let forward = KernelImplementations.counting { Conv.forward(g, input: x, weight: w, bias: nil, output: &y) }
    var dw = [Float](repeating: .nan, count: w.count)
    let weights = KernelImplementations.counting {
        Conv.backwardWeights(g, input: x, gradOutput: dy, gradWeight: &dw, gradBias: nil)
    }
    // bf16 converts each input (same layout); f32 converts nothing.
    let conversions = g.usesBF16 ? 2 : 0
    #expect(reorders(forward.executions) == conversions + (layout.isPlain ? 0 : 1), "\(g)")
    #expect(reorders(weights.executions) == conversions, "\(g)")
    let convolutionWrites = Conv.forwardLayout(ConvGeometry(n: 1, c: 16, h: 4, w: 4, k: 16, r: 1, s: 1))
    if g.k % 16 == 0 && convolutionWrites.channelBlock([1, 16, 4, 4]) == 16 {
        #expect(layout.channelBlock(g.outputShape) == 16, "\(g): \(layout)")
    }
    func round(_ v: Float) -> Float { g.usesBF16 ? bf16Rounded(v) : v }
    var got = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
    Reorder.run(shape: g.outputShape, from: layout, y, to: .plain, &got)
    let expected = Reference.convForward(g, input: x.map(round), weight: w.map(round), bias: nil)
    #expect(maxRelativeError(got, expected) < 1e-5, "\(g)")
    let expectedDW = Reference.convBackwardWeights(g, input: x.map(round), gradOutput: dy.map(round)).weight
    #expect(maxRelativeError(dw, expectedDW) < 1e-5, "\(g)")
}

/// The passes writing an image: a DCGAN generator's last layer (forward) and discriminator's
/// first (backward-data), grey and colour, f32 and bf16. They run on plain NCHW (oneDNN's GEMM),
/// write plain, and take the gradient or input that the layer beside them left in its blocked
/// layout; a forward convolution to an image (the U-Net's last layer) stays blocked.
@Test(
    "passes writing an image run on plain NCHW",
    arguments: [ConvPrecision.f32, .bf16])
func imagePassesRunOnPlainLayouts(_ precision: ConvPrecision) {
    let generatorLast = [
        ConvGeometry(n: 4, c: 32, h: 7, w: 7, k: 1, r: 4, s: 4, stride: 2, padding: 1, transposed: true, precision: precision),
        ConvGeometry(n: 4, c: 32, h: 8, w: 8, k: 3, r: 4, s: 4, stride: 2, padding: 1, transposed: true, precision: precision),
    ]
    let discriminatorFirst = [
        ConvGeometry(n: 4, c: 1, h: 14, w: 14, k: 32, r: 4, s: 4, stride: 2, padding: 1, precision: precision),
        ConvGeometry(n: 4, c: 3, h: 16, w: 16, k: 32, r: 4, s: 4, stride: 2, padding: 1, precision: precision),
    ]
    func round(_ v: Float) -> Float { precision == .bf16 ? bf16Rounded(v) : v }
    for g in generatorLast {
        #expect(g.forwardOnPlain && Conv.forwardLayout(g).isPlain, "\(g)")
        #expect(Conv.implementations(g).forward.contains("gemm"), "\(g): \(Conv.implementations(g).forward)")
        // The input arrives as a convolution left it (blocked, as the batch norm before passes it on).
        let upstream = ConvGeometry(n: g.n, c: 16, h: g.h, w: g.w, k: g.c, r: 1, s: 1, precision: .f32)
        let inLayout = Conv.forwardLayout(upstream)
        #expect(!inLayout.isPlain)
        let x = randomArray(g.inputShape.reduce(1, *), seed: 34), w = randomArray(g.weightShape.reduce(1, *), seed: 35)
        var xBlocked = [Float](repeating: 0, count: inLayout.physicalCount(g.inputShape))
        Reorder.run(shape: g.inputShape, from: .plain, x, to: inLayout, &xBlocked)
        let y = plain(g.outputShape, Conv.forwardLayout(g)) {
            Conv.forward(g, input: xBlocked, inputLayout: inLayout, weight: w, bias: nil, output: $0)
        }
        let expected = Reference.convForward(g, input: x.map(round), weight: w.map(round), bias: nil)
        #expect(maxRelativeError(y, expected) < 1e-5, "\(g)")
    }
    for g in discriminatorFirst {
        #expect(g.backwardDataOnPlain && Conv.backwardDataLayout(g).isPlain, "\(g)")
        #expect(Conv.implementations(g).backwardData.contains("gemm"), "\(g): \(Conv.implementations(g).backwardData)")
        // The gradient arrives in the layout this layer's forward wrote (blocked).
        let outLayout = Conv.forwardLayout(g)
        #expect(!outLayout.isPlain)
        let dy = randomArray(g.outputShape.reduce(1, *), seed: 36), w = randomArray(g.weightShape.reduce(1, *), seed: 37)
        var dyBlocked = [Float](repeating: 0, count: outLayout.physicalCount(g.outputShape))
        Reorder.run(shape: g.outputShape, from: .plain, dy, to: outLayout, &dyBlocked)
        let dx = plain(g.inputShape, Conv.backwardDataLayout(g)) {
            Conv.backwardData(g, gradOutput: dyBlocked, gradOutputLayout: outLayout, weight: w, gradInput: $0)
        }
        let expected = Reference.convBackwardData(g, gradOutput: dy.map(round), weight: w.map(round))
        #expect(maxRelativeError(dx, expected) < 1e-5, "\(g)")
    }
    let unetLast = ConvGeometry(n: 4, c: 32, h: 16, w: 16, k: 3, r: 3, s: 3, padding: 1, precision: precision)
    #expect(!unetLast.forwardOnPlain && !Conv.forwardLayout(unetLast).isPlain)
    #expect(!Conv.implementations(unetLast).forward.contains("gemm"))
}
