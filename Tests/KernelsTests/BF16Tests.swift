import Foundation
import Testing

@testable import Kernels

// bf16 convolutions: inputs rounded to bfloat16, f32 accumulation, f32 outputs. The reference
// run on the same rounded inputs must agree to f32 rounding (the kernels and the reference sum
// in different orders); the reference on the unrounded inputs must not (else nothing was rounded
// and the option would be a no-op).

/// `x` rounded to the nearest bfloat16 (ties to even), as oneDNN's f32 -> bf16 reorder does.
func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return Float(bitPattern: (bits &+ rounding) & 0xFFFF_0000)
}

/// The f32 cases of `convCases` (Winograd ones included: bf16 always runs direct), in bf16.
let bf16ConvCases: [ConvGeometry] = convCases.map {
    var g = $0
    g.precision = .bf16
    return g
}

@Test func bf16RoundingMatchesTheFormat() {
    #expect(bf16Rounded(1) == 1)
    #expect(bf16Rounded(1 + 1.0 / 256) == 1)  // a tie, to even (down)
    #expect(bf16Rounded(1 + 3.0 / 256) == 1 + 4.0 / 256)  // a tie, to even (up)
    #expect(bf16Rounded(1 + 1.0 / 128) == 1 + 1.0 / 128)  // representable: 7 fraction bits
    #expect(bf16Rounded(-3.14159) == -3.140625)
}

@Test("bf16 conv and deconv forward equal the reference on rounded inputs", arguments: bf16ConvCases)
func bf16ConvForward(_ g: ConvGeometry) {
    #expect(g.usesBF16 && !g.usesWinograd)
    let x = randomArray(g.inputShape.reduce(1, *), seed: 11)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 12)
    let b = randomArray(g.k, seed: 13)
    let y = plain(g.outputShape, Conv.forwardLayout(g)) {
        Conv.forward(g, input: x, weight: w, bias: g.hasBias ? b : nil, output: $0)
    }
    let rounded = Reference.convForward(
        g, input: x.map(bf16Rounded), weight: w.map(bf16Rounded), bias: g.hasBias ? b : nil)
    #expect(maxRelativeError(y, rounded) < 1e-5, "\(g)")
    let unrounded = Reference.convForward(g, input: x, weight: w, bias: g.hasBias ? b : nil)
    #expect(maxRelativeError(y, unrounded) > 1e-4, "\(g): inputs were not rounded to bf16")
    #expect(maxRelativeError(y, unrounded) < 2e-2, "\(g)")
}

@Test("bf16 conv and deconv backward equal the reference on rounded inputs", arguments: bf16ConvCases)
func bf16ConvBackward(_ g: ConvGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 14)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 15)
    let dy = randomArray(g.outputShape.reduce(1, *), seed: 16)
    let xr = x.map(bf16Rounded), wr = w.map(bf16Rounded), dyr = dy.map(bf16Rounded)
    let dx = plain(g.inputShape, Conv.backwardDataLayout(g)) { Conv.backwardData(g, gradOutput: dy, weight: w, gradInput: $0) }
    #expect(maxRelativeError(dx, Reference.convBackwardData(g, gradOutput: dyr, weight: wr)) < 1e-5, "\(g)")
    #expect(maxRelativeError(dx, Reference.convBackwardData(g, gradOutput: dy, weight: w)) > 1e-4, "\(g)")
    var dw = [Float](repeating: .nan, count: w.count), db = [Float](repeating: .nan, count: g.k)
    Conv.backwardWeights(g, input: x, gradOutput: dy, gradWeight: &dw, gradBias: &db)
    let ref = Reference.convBackwardWeights(g, input: xr, gradOutput: dyr)
    #expect(maxRelativeError(dw, ref.weight) < 1e-5, "\(g)")
    #expect(maxRelativeError(dw, Reference.convBackwardWeights(g, input: x, gradOutput: dy).weight) > 1e-4, "\(g)")
    if g.hasBias { #expect(maxRelativeError(db, ref.bias) < 1e-5, "\(g)") }
}

/// On a CPU with AVX512_BF16 the bf16 primitives are oneDNN's native bf16 kernels on the DCGAN
/// and ResNet shapes (a `ref:` or emulated fallback would lose the speed without failing any
/// numeric test), GEMM where a projection or a pass writing an image on plain NCHW runs; `auto`
/// resolves to f32 unless the environment asks for bf16.
@Test func bf16RunsNativeKernelsWhereTheCPUHasThem() {
    let shapes = [
        ConvGeometry(n: 64, c: 100, h: 1, w: 1, k: 512, r: 4, s: 4, transposed: true),
        ConvGeometry(n: 64, c: 64, h: 32, w: 32, k: 3, r: 4, s: 4, stride: 2, padding: 1, transposed: true),
        ConvGeometry(n: 64, c: 3, h: 64, w: 64, k: 64, r: 4, s: 4, stride: 2, padding: 1),
        ConvGeometry(n: 64, c: 512, h: 4, w: 4, k: 1, r: 4, s: 4),
        ConvGeometry(n: 64, c: 64, h: 28, w: 28, k: 64, r: 3, s: 3, padding: 1),
        ConvGeometry(n: 64, c: 3, h: 28, w: 28, k: 64, r: 3, s: 3, padding: 1),
    ]
    for var g in shapes {
        g.precision = .bf16
        let impl = Conv.implementations(g)
        // Projections and passes writing an image on plain NCHW run oneDNN's GEMM, whose bf16
        // kernels are native on such a CPU too but not named so.
        let onGEMM = [g.isProjection || g.forwardOnPlain, g.isProjection || g.backwardDataOnPlain, g.isProjection]
        for (name, gemm) in zip([impl.forward, impl.backwardData, impl.backwardWeights], onGEMM) {
            #expect(!name.hasPrefix("ref"), "\(g) uses \(name)")
            if gemm {
                #expect(name.contains("gemm"), "\(g) uses \(name)")
            } else if CPUFeatures.hasAVX512BF16 {
                #expect(name.contains("avx512_core_bf16"), "\(g) uses \(name)")
            }
        }
    }
    let environment = ProcessInfo.processInfo.environment["MEDSYNTH_CONV_PRECISION"]?.lowercased()
    #expect(ConvPrecision.autoTakesBF16 == (environment == "bf16" && CPUFeatures.hasAVX512BF16))
    #expect(!ConvGeometry(n: 1, c: 1, h: 4, w: 4, k: 1, r: 3, s: 3, precision: .f32).usesBF16)
}

/// The weight gradient binds the inputs that the forward and backward-data passes converted
/// (`keepInput`, `keepGradOutput`) instead of converting them again: two reorders fewer, the same
/// bits. In bf16 every input is converted (rounded); in f32 a plain input to a blocked layout.
@Test(
    "the weight gradient reuses the converted input and incoming gradient",
    arguments: [
        ConvGeometry(n: 2, c: 16, h: 9, w: 9, k: 32, r: 3, s: 3, padding: 1, algorithm: .direct, precision: .f32),
        ConvGeometry(n: 2, c: 16, h: 9, w: 9, k: 32, r: 4, s: 4, stride: 2, padding: 1, precision: .bf16),
        ConvGeometry(n: 2, c: 32, h: 5, w: 5, k: 16, r: 4, s: 4, stride: 2, padding: 1, transposed: true, precision: .bf16),
    ])
func weightGradientReusesConvertedInputs(_ g: ConvGeometry) {
    let x = randomArray(g.inputShape.reduce(1, *), seed: 17)
    let w = randomArray(g.weightShape.reduce(1, *), seed: 18)
    let dy = randomArray(g.outputShape.reduce(1, *), seed: 19)
    var again = [Float](repeating: .nan, count: w.count), reused = again
    let converting = KernelImplementations.counting {
        Conv.backwardWeights(g, input: x, gradOutput: dy, gradWeight: &again, gradBias: nil)
    }
    var y = [Float](repeating: 0, count: Conv.forwardLayout(g).physicalCount(g.outputShape))
    var dx = [Float](repeating: 0, count: Conv.backwardDataLayout(g).physicalCount(g.inputShape))
    let keptX = Conv.forward(g, input: x, weight: w, bias: nil, output: &y, keepInput: true)
    let keptDy = Conv.backwardData(g, gradOutput: dy, weight: w, gradInput: &dx, keepGradOutput: true)
    #expect(keptX != nil && keptDy != nil, "\(g): the plain f32 inputs needed no conversion")
    let reusing = KernelImplementations.counting {
        Conv.backwardWeights(
            g, input: x, convertedInput: keptX, gradOutput: dy, convertedGradOutput: keptDy, gradWeight: &reused,
            gradBias: nil)
    }
    #expect(reorders(reusing.executions) == reorders(converting.executions) - 2, "\(g)")
    #expect(reused == again, "\(g)")
    // Not asked to keep: nothing returned.
    #expect(Conv.forward(g, input: x, weight: w, bias: nil, output: &y) == nil)
}
