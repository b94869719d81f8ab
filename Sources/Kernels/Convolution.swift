import CDNNL
import Foundation

// Convolution and transposed convolution on oneDNN, NCHW in and out.
//
// Legend: N batch, C input channels, H x W input, K output channels, R x S kernel,
// P x Q output. Weights use PyTorch's layouts: Conv2d (K, C, R, S) = OIHW,
// ConvTranspose2d (C, K, R, S) = IOHW (oneDNN names the deconvolution's output channels O).
//
// Winograd: a 3x3 stride-1 convolution whose channel counts are multiples of 16 runs as
// oneDNN's Winograd F(4x4, 3x3) (`jit_wino_4x3`, AVX-512 only), which multiplies about 2.25x
// less than the direct algorithm: forward, backward-data and backward-weights of the ResNet's
// stride-1 convolutions ran 1.3 to 1.8x faster than direct on 2 Zen 4 cores (bench/README.md).
// Its results differ from the direct algorithm's in the last bits (relative 1e-6), as any
// reordering of a sum does. `ConvAlgorithm` chooses; a CPU without it falls back to direct.
//
// NOTE: every descriptor asks for `format_tag_any` and we reorder from/to the plain layouts.
// Forcing plain NCHW sends deconvolution and backward-weights to `ref:` implementations,
// hundreds of times slower; backward-weights wants its own weight layout, distinct from the
// forward one. oneDNN 2.6 does not check layouts at execution, so a wrong binding gives wrong
// numbers silently: the adjoint tests in KernelsTests guard this.

/// How a convolution is computed.
public enum ConvAlgorithm: String, Hashable, Sendable, CaseIterable {
    /// Winograd where `ConvGeometry.winogradApplies` and the process allows it
    /// (`MEDSYNTH_CONV_ALGORITHM=direct` in the environment turns it off), else direct.
    case auto
    /// Always the direct algorithm (what the reference loops compute, in a different order).
    case direct
    /// Winograd where it applies, whatever the environment says; direct elsewhere.
    case winograd

    /// Whether `auto` may take Winograd in this process: `MEDSYNTH_CONV_ALGORITHM` unset, `auto`
    /// or `winograd`; `direct` turns it off (for side-by-side benchmarks and bit-for-bit
    /// comparisons with results computed before Winograd). Any other value is named on stderr
    /// once and read as `auto`.
    public static let autoTakesWinograd: Bool = {
        guard let value = ProcessInfo.processInfo.environment["MEDSYNTH_CONV_ALGORITHM"] else { return true }
        switch value.lowercased() {
        case "direct": return false
        case "auto", "winograd", "": return true
        default:
            FileHandle.standardError.write(
                Data("medsynth: MEDSYNTH_CONV_ALGORITHM=\(value) is not auto, winograd or direct; using auto\n".utf8))
            return true
        }
    }()
}

/// The number format a convolution multiplies in. Tensors stay f32 everywhere; with `bf16` the
/// convolution's inputs (source, weights, incoming gradient) are rounded to bfloat16 on their way
/// in (a reorder that converts), products are accumulated in f32 and every output (destination,
/// gradients of input, weights and bias) is f32. On CPUs with AVX512_BF16 (Cooper Lake, Sapphire
/// Rapids, Zen 4 and 5) oneDNN's `avx512_core_bf16` kernels issue twice the multiply-adds per
/// instruction of f32 FMA; elsewhere oneDNN emulates bf16, slower than f32, so `auto` keeps f32.
public enum ConvPrecision: String, Hashable, Sendable, CaseIterable {
    /// f32, unless `MEDSYNTH_CONV_PRECISION=bf16` is set in the environment and the CPU has
    /// AVX512_BF16.
    case auto
    /// Always f32.
    case f32
    /// bfloat16 inputs, f32 accumulation and outputs, whatever the CPU (emulated where it lacks
    /// AVX512_BF16; used by tests to compare against the reference).
    case bf16

    /// What `auto` resolves to in this process (`f32` or `bf16`): what benchmarks report.
    public static var processDefault: ConvPrecision { autoTakesBF16 ? .bf16 : .f32 }

    /// Whether `auto` takes bf16 in this process: `MEDSYNTH_CONV_PRECISION=bf16` and a CPU with
    /// AVX512_BF16. Any value other than f32, bf16 or auto is named on stderr once and read as f32.
    public static let autoTakesBF16: Bool = {
        guard let value = ProcessInfo.processInfo.environment["MEDSYNTH_CONV_PRECISION"] else { return false }
        switch value.lowercased() {
        case "bf16": return CPUFeatures.hasAVX512BF16
        case "f32", "auto", "": return false
        default:
            FileHandle.standardError.write(
                Data("medsynth: MEDSYNTH_CONV_PRECISION=\(value) is not auto, f32 or bf16; using f32\n".utf8))
            return false
        }
    }()
}

/// Geometry of a 2-D convolution or transposed convolution.
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var n: Int, c: Int, h: Int, w: Int
    public var k: Int, r: Int, s: Int
    public var stride: Int, padding: Int, outputPadding: Int
    public var transposed: Bool
    public var hasBias: Bool
    /// The algorithm asked for; `usesWinograd` says what it resolves to.
    public var algorithm: ConvAlgorithm
    /// The number format asked for; `usesBF16` says what it resolves to.
    public var precision: ConvPrecision

    public init(
        n: Int, c: Int, h: Int, w: Int, k: Int, r: Int, s: Int, stride: Int = 1, padding: Int = 0,
        outputPadding: Int = 0, transposed: Bool = false, hasBias: Bool = false, algorithm: ConvAlgorithm = .auto,
        precision: ConvPrecision = .auto
    ) {
        self.n = n; self.c = c; self.h = h; self.w = w; self.k = k; self.r = r; self.s = s
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding
        self.transposed = transposed; self.hasBias = hasBias; self.algorithm = algorithm
        self.precision = precision
    }

    /// Whether the primitives multiply in bfloat16.
    public var usesBF16: Bool {
        switch precision {
        case .f32: false
        case .bf16: true
        case .auto: ConvPrecision.autoTakesBF16
        }
    }

    /// Whether oneDNN's Winograd F(4x4, 3x3) can compute this convolution: not transposed, 3x3,
    /// stride 1, padding at most 1, input and output channels multiples of 16 (its blocking).
    public var winogradApplies: Bool {
        !transposed && r == 3 && s == 3 && stride == 1 && padding <= 1 && c % 16 == 0 && k % 16 == 0
    }

    /// Whether the primitives are asked for Winograd (they still fall back to direct on a CPU
    /// without its AVX-512 kernels; `Conv.implementations` tells).
    /// bf16 convolutions are always direct (oneDNN has no bf16 Winograd).
    public var usesWinograd: Bool {
        if usesBF16 { return false }
        switch algorithm {
        case .direct: return false
        case .winograd: return winogradApplies
        case .auto: return winogradApplies && ConvAlgorithm.autoTakesWinograd
        }
    }

    /// Output height P.
    public var p: Int {
        transposed ? (h - 1) * stride - 2 * padding + r + outputPadding : (h + 2 * padding - r) / stride + 1
    }
    /// Output width Q.
    public var q: Int {
        transposed ? (w - 1) * stride - 2 * padding + s + outputPadding : (w + 2 * padding - s) / stride + 1
    }
    public var inputShape: [Int] { [n, c, h, w] }
    public var outputShape: [Int] { [n, k, p, q] }
    /// PyTorch weight shape: (K, C, R, S) for Conv2d, (C, K, R, S) for ConvTranspose2d.
    public var weightShape: [Int] { transposed ? [c, k, r, s] : [k, c, r, s] }
    /// Multiply-accumulates of one forward pass.
    public var macs: Int { transposed ? n * c * h * w * k * r * s : n * k * p * q * c * r * s }
    /// Whether the geometry is realisable (positive output, padding within kernel).
    public var isValid: Bool {
        n > 0 && c > 0 && h > 0 && w > 0 && k > 0 && r > 0 && s > 0 && stride > 0 && padding >= 0
            && outputPadding >= 0 && outputPadding < max(stride, 1) && p > 0 && q > 0
    }
    public var description: String {
        "\(transposed ? "deconv" : "conv") N\(n) C\(c) \(h)x\(w) -> K\(k) \(p)x\(q) k\(r)x\(s) s\(stride) p\(padding)"
            + (outputPadding > 0 ? " op\(outputPadding)" : "") + (algorithm == .auto ? "" : " \(algorithm)")
            + (precision == .auto ? "" : " \(precision)")
    }

    /// Whether the forward pass runs on plain NCHW (see `imageChannels`).
    var forwardOnPlain: Bool { transposed && k <= Self.imageChannels }
    /// Whether the backward-data pass runs on plain NCHW (see `imageChannels`).
    var backwardDataOnPlain: Bool { !transposed && c <= Self.imageChannels }
    /// The passes oneDNN computes with its backward-data kernels (a convolution's backward-data,
    /// a transposed convolution's forward) whose output has at most `imageChannels` channels (an
    /// image: grey, RGB or RGBA) run on plain NCHW, where oneDNN takes its GEMM implementation:
    /// the blocked kernels compute a whole block of 16 output channels, 15 of them padding for a
    /// grey image. Measured with
    /// `bench/small_channels.c` (2 Zen 5 cores, batch 64, bf16, ms): a DCGAN generator's last
    /// layer 1.00 -> 0.20 at 28 px and 2.68 -> 1.44 at 64 px; the discriminator's first layer's
    /// backward-data 0.51 -> 0.15 and 2.71 -> 1.43; in f32 1.87 -> 0.27, 5.29 -> 2.23, 0.97 ->
    /// 0.17, 5.29 -> 2.18. A forward convolution to few channels (the U-Net's last layer) stays
    /// blocked: there GEMM is 2 to 7 times slower (im2col of a 3x3 stride-1 window).
    static let imageChannels = 4

    fileprivate var oneDNNWeightDims: [Int] { [k, c, r, s] }
    fileprivate var plainWeightTag: dnnl_format_tag_t { transposed ? dnnl_iohw : dnnl_oihw }
    fileprivate var padRight: [Int64] {
        let pr = transposed ? padding - outputPadding : (p - 1) * stride + r - h - padding
        let prw = transposed ? padding - outputPadding : (q - 1) * stride + s - w - padding
        return [Int64(pr), Int64(prw)]
    }
}

/// The three primitives of one geometry, each created on first use.
final class ConvPrimitives {
    let g: ConvGeometry
    let strides: [Int64], padL: [Int64], padR: [Int64]
    let plainSrc: dnnl_memory_desc_t, plainDst: dnnl_memory_desc_t, plainWeights: dnnl_memory_desc_t
    let biasDesc: dnnl_memory_desc_t
    /// The type the inputs of every primitive are multiplied in (f32 or bf16); outputs are f32.
    let multiplied: dnnl_data_type_t

    init(_ g: ConvGeometry) {
        self.g = g
        strides = [Int64(g.stride), Int64(g.stride)]
        padL = [Int64(g.padding), Int64(g.padding)]
        padR = g.padRight
        plainSrc = plainDesc(g.inputShape, dnnl_nchw)
        plainDst = plainDesc(g.outputShape, dnnl_nchw)
        plainWeights = plainDesc(g.oneDNNWeightDims, g.plainWeightTag)
        biasDesc = plainDesc([g.k], dnnl_a)
        multiplied = g.usesBF16 ? dnnl_bf16 : dnnl_f32
    }

    /// A convolution primitive with Winograd where the geometry asks for it and this CPU has it,
    /// else direct. `initDesc` fills the op descriptor for an algorithm.
    private func convolution(
        _ name: String, hint: Primitive?, _ initDesc: (inout dnnl_convolution_desc_t, dnnl_alg_kind_t) -> dnnl_status_t
    ) -> Primitive {
        if g.usesWinograd {
            var desc = dnnl_convolution_desc_t()
            check(initDesc(&desc, dnnl_convolution_winograd), "\(name) desc_init (winograd) \(g)")
            if let p = Primitive(ifImplemented: &desc, hint: hint, name: name) { return p }
        }
        var desc = dnnl_convolution_desc_t()
        check(initDesc(&desc, dnnl_convolution_direct), "\(name) desc_init \(g)")
        return Primitive(opDesc: &desc, hint: hint, name: name)
    }

    // Forward: dst = conv(src, weights) + bias; dst stays in the layout oneDNN chose.
    lazy var forward:
        (
            prim: Primitive, src: InputPort, weights: InputPort, dst: BoundMemory, dstLayout: Layout,
            bias: BoundMemory
        ) = {
            var s = anyDesc(g.inputShape, multiplied), w = anyDesc(g.oneDNNWeightDims, multiplied)
            var d = anyDesc(g.outputShape)
            if g.forwardOnPlain {
                s = plainDesc(g.inputShape, dnnl_nchw, multiplied); d = plainDst
            }
            let b = biasDesc
            let prim: Primitive
            if g.transposed {
                var desc = dnnl_deconvolution_desc_t()
                check(
                    optionalDesc(b, g.hasBias) {
                        dnnl_deconvolution_forward_desc_init(
                            &desc, dnnl_forward_training, dnnl_deconvolution_direct,
                            &s, &w, $0, &d, strides, padL, padR)
                    },
                    "deconvolution_forward_desc_init \(g)")
                prim = Primitive(opDesc: &desc, name: "deconv fwd")
            } else {
                prim = convolution("conv fwd", hint: nil) { desc, alg in
                    optionalDesc(b, g.hasBias) {
                        dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, alg, &s, &w, $0, &d, strides, padL, padR)
                    }
                }
            }
            let dst = prim.desc(dnnl_query_dst_md)
            return (
                prim, InputPort(chosen: prim.desc(dnnl_query_src_md), shape: g.inputShape),
                weightPort(prim.desc(dnnl_query_weights_md)), BoundMemory(dst), LayoutTable.shared.intern(dst),
                BoundMemory(biasDesc)
            )
        }()

    // Backward data: diff_src = conv_transpose(diff_dst, weights), in the layout oneDNN chose.
    lazy var backwardData:
        (
            prim: Primitive, diffDst: InputPort, weights: InputPort, diffSrc: BoundMemory,
            diffSrcLayout: Layout
        ) = {
            var s = anyDesc(g.inputShape), w = anyDesc(g.oneDNNWeightDims, multiplied)
            var d = anyDesc(g.outputShape, multiplied)
            if g.backwardDataOnPlain {
                s = plainSrc; d = plainDesc(g.outputShape, dnnl_nchw, multiplied)
            }
            let prim: Primitive
            if g.transposed {
                var desc = dnnl_deconvolution_desc_t()
                check(
                    dnnl_deconvolution_backward_data_desc_init(&desc, dnnl_deconvolution_direct, &s, &w, &d, strides, padL, padR),
                    "deconvolution_backward_data_desc_init \(g)")
                prim = Primitive(opDesc: &desc, hint: forward.prim, name: "deconv bwd data")
            } else {
                prim = convolution("conv bwd data", hint: forward.prim) { desc, alg in
                    dnnl_convolution_backward_data_desc_init(&desc, alg, &s, &w, &d, strides, padL, padR)
                }
            }
            let diffSrc = prim.desc(dnnl_query_diff_src_md)
            return (
                prim, InputPort(chosen: prim.desc(dnnl_query_diff_dst_md), shape: g.outputShape),
                weightPort(prim.desc(dnnl_query_weights_md)), BoundMemory(diffSrc), LayoutTable.shared.intern(diffSrc)
            )
        }()

    // Backward weights: diff_weights = corr(src, diff_dst), reordered to the plain torch layout;
    // diff_bias = sum over N, P, Q of diff_dst.
    lazy var backwardWeights:
        (
            prim: Primitive, src: InputPort, diffDst: InputPort, diffWeights: LayoutPort,
            diffBias: BoundMemory
        ) = {
            var s = anyDesc(g.inputShape, multiplied), w = anyDesc(g.oneDNNWeightDims)
            var d = anyDesc(g.outputShape, multiplied)
            let b = biasDesc
            let prim: Primitive
            if g.transposed {
                var desc = dnnl_deconvolution_desc_t()
                check(
                    optionalDesc(b, g.hasBias) {
                        dnnl_deconvolution_backward_weights_desc_init(
                            &desc, dnnl_deconvolution_direct, &s, &w, $0, &d,
                            strides, padL, padR)
                    },
                    "deconvolution_backward_weights_desc_init \(g)")
                prim = Primitive(opDesc: &desc, hint: forward.prim, name: "deconv bwd weights")
            } else {
                prim = convolution("conv bwd weights", hint: forward.prim) { desc, alg in
                    optionalDesc(b, g.hasBias) {
                        dnnl_convolution_backward_weights_desc_init(&desc, alg, &s, &w, $0, &d, strides, padL, padR)
                    }
                }
            }
            return (
                prim, InputPort(chosen: prim.desc(dnnl_query_src_md), shape: g.inputShape),
                InputPort(chosen: prim.desc(dnnl_query_diff_dst_md), shape: g.outputShape),
                LayoutPort(plain: plainWeights, chosen: prim.desc(dnnl_query_diff_weights_md), input: false),
                BoundMemory(biasDesc)
            )
        }()

    /// Weights arrive in the plain torch layout (OIHW or IOHW), which is not the interned dense one
    /// for deconvolutions, so they get a port of their own: plain -> chosen.
    private func weightPort(_ chosen: dnnl_memory_desc_t) -> InputPort {
        InputPort(chosen: chosen, plain: plainWeights, shape: g.oneDNNWeightDims)
    }
}

/// Convolution and transposed convolution kernels (oneDNN). Inputs may come in any layout;
/// outputs are written in the layout oneDNN chose (`forwardLayout`, `backwardDataLayout`), except
/// weight gradients, which are always plain. Projections (`ConvGeometry.isProjection`) run as
/// matrix products (Projection.swift).
public enum Conv {
    private static let cache = PrimitiveCache<ConvGeometry, ConvPrimitives>()
    private static func primitives(_ g: ConvGeometry) -> ConvPrimitives {
        precondition(g.isValid, "invalid convolution geometry \(g)")
        return cache.get(g) { ConvPrimitives(g) }
    }

    /// Layout of `forward`'s output.
    public static func forwardLayout(_ g: ConvGeometry) -> Layout {
        DNNLContext.shared.locked { g.isProjection ? Projection.outputLayout(g) : primitives(g).forward.dstLayout }
    }
    /// Layout of `backwardData`'s output.
    public static func backwardDataLayout(_ g: ConvGeometry) -> Layout {
        if g.isProjection { return .plain }
        return DNNLContext.shared.locked { primitives(g).backwardData.diffSrcLayout }
    }

    /// output (N, K, P, Q) = conv(input (N, C, H, W), weight) + bias (K); output in `forwardLayout(g)`.
    /// With `keepInput`, returns the input as converted for this pass (nil if it needed no
    /// conversion), for `backwardWeights` to reuse.
    @discardableResult
    public static func forward(
        _ g: ConvGeometry, input: UnsafePointer<Float>, inputLayout: Layout = .plain,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
        keepInput: Bool = false
    ) -> ConvertedInput? {
        DNNLContext.shared.locked {
            KernelCounters.add(macs: g.macs)
            if g.isProjection {
                Projection.forward(g, input: input, inputLayout: inputLayout, weight: weight, output: output)
                return nil
            }
            let f = primitives(g).forward
            f.dst.bind(output)
            let (src, kept) =
                keepInput ? f.src.bindKeeping(input, layout: inputLayout) : (f.src.bind(input, layout: inputLayout), nil)
            var args = [(Arg.src, src), (Arg.weights, f.weights.bind(weight, layout: .plain)), (Arg.dst, f.dst.memory)]
            if g.hasBias, let bias { f.bias.bind(bias); args.append((Arg.bias, f.bias.memory)) }
            f.prim.execute(args)
            return kept
        }
    }

    /// gradInput (N, C, H, W) = d loss / d input, given gradOutput (N, K, P, Q); in `backwardDataLayout(g)`.
    /// With `keepGradOutput`, returns gradOutput as converted for this pass (nil if it needed no
    /// conversion), for `backwardWeights` to reuse.
    @discardableResult
    public static func backwardData(
        _ g: ConvGeometry, gradOutput: UnsafePointer<Float>, gradOutputLayout: Layout = .plain,
        weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, keepGradOutput: Bool = false
    ) -> ConvertedInput? {
        DNNLContext.shared.locked {
            KernelCounters.add(macs: g.macs)
            if g.isProjection {
                Projection.backwardData(
                    g, gradOutput: gradOutput, gradOutputLayout: gradOutputLayout, weight: weight, gradInput: gradInput)
                return nil
            }
            let b = primitives(g).backwardData
            b.diffSrc.bind(gradInput)
            let (diffDst, kept) =
                keepGradOutput
                ? b.diffDst.bindKeeping(gradOutput, layout: gradOutputLayout)
                : (b.diffDst.bind(gradOutput, layout: gradOutputLayout), nil)
            b.prim.execute([
                (Arg.diffDst, diffDst), (Arg.weights, b.weights.bind(weight, layout: .plain)),
                (Arg.diffSrc, b.diffSrc.memory),
            ])
            return kept
        }
    }

    /// gradWeight (plain torch layout) and gradBias (K) from input and gradOutput.
    /// `convertedInput` and `convertedGradOutput` (from `forward` and `backwardData` on the same
    /// values) are bound instead of converting again where this pass wants the same layout.
    public static func backwardWeights(
        _ g: ConvGeometry, input: UnsafePointer<Float>, inputLayout: Layout = .plain,
        convertedInput: ConvertedInput? = nil, gradOutput: UnsafePointer<Float>, gradOutputLayout: Layout = .plain,
        convertedGradOutput: ConvertedInput? = nil, gradWeight: UnsafeMutablePointer<Float>,
        gradBias: UnsafeMutablePointer<Float>?
    ) {
        DNNLContext.shared.locked {
            KernelCounters.add(macs: g.macs)
            if g.isProjection {
                Projection.backwardWeights(
                    g, input: input, inputLayout: inputLayout, gradOutput: gradOutput, gradOutputLayout: gradOutputLayout,
                    gradWeight: gradWeight)
                return
            }
            let b = primitives(g).backwardWeights
            var args = [
                (Arg.src, b.src.bind(input, layout: inputLayout, reusing: convertedInput)),
                (Arg.diffDst, b.diffDst.bind(gradOutput, layout: gradOutputLayout, reusing: convertedGradOutput)),
                (Arg.diffWeights, b.diffWeights.output(gradWeight)),
            ]
            if g.hasBias, let gradBias { b.diffBias.bind(gradBias); args.append((Arg.diffBias, b.diffBias.memory)) }
            b.prim.execute(args)
            b.diffWeights.finish()
        }
    }

    /// The oneDNN implementations chosen for forward, backward-data and backward-weights.
    public static func implementations(_ g: ConvGeometry) -> (forward: String, backwardData: String, backwardWeights: String) {
        DNNLContext.shared.locked {
            if g.isProjection { return Projection.implementations(g) }
            let p = primitives(g)
            return (
                p.forward.prim.implementation, p.backwardData.prim.implementation,
                p.backwardWeights.prim.implementation
            )
        }
    }
}
