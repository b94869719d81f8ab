import CDNNL

// A transposed convolution of a 1x1 input, without padding or bias (a DCGAN generator's first
// layer: z (N, C, 1, 1) -> (N, K, R, S)), is a matrix product. With M = K R S:
//
//   out (N, M)  = z (N, C) . W (C, M)        W: the IOHW weight (C, K, R, S) read as (C, M)
//   dz  (N, C)  = dOut (N, M) . W^T
//   dW  (C, M)  = z^T . dOut (N, M)
//
// oneDNN's inner product computes exactly these, with W as its (M, C) weights in the `ba` format
// (C outermost), which is the IOHW memory as it lies. Every operand is plain, so nothing is
// transposed: the deconvolution primitive picks channels-last layouts for this shape and
// reordered the weights in and their gradient out at every step (0.58 + 0.83 ms of a 28 px
// bf16 DCGAN step, for a 256 x 100 x 7 x 7 weight; DNNL_VERBOSE=1). In bf16 the inputs are
// converted to bf16 (same layout) as for every convolution; outputs stay f32.
//
// The product itself is plain (N, K, R, S); the output is handed on in the layout a convolution
// writing that shape picks (nChw16c on AVX-512), so that the batch norm after it runs its blocked
// kernel: on plain NCHW oneDNN 2.6 runs `ncsp_bnorm`, 6.4 ms forward and 8.1 ms backward
// against 0.3 and 0.4 on 64 x 256 x 7 x 7 (DNNL_VERBOSE=1).

extension ConvGeometry {
    /// Whether this geometry runs as a matrix product (`Projection`): transposed, a 1x1 input,
    /// no padding, no output padding, no bias (a per-channel bias does not fit the product's
    /// per-column one). The output is (N, K, R, S) whatever the stride.
    public var isProjection: Bool {
        transposed && h == 1 && w == 1 && padding == 0 && outputPadding == 0 && !hasBias
    }
}

/// The three inner-product primitives of one projection geometry, each created on first use.
final class ProjectionPrimitives {
    let g: ConvGeometry
    /// Columns of the product: M = K R S.
    let m: Int
    let src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, dst: dnnl_memory_desc_t
    let plainSrc: dnnl_memory_desc_t, plainWeights: dnnl_memory_desc_t, plainDst: dnnl_memory_desc_t

    init(_ g: ConvGeometry) {
        precondition(g.isProjection, "not a projection: \(g)")
        self.g = g
        m = g.k * g.r * g.s
        let type = g.usesBF16 ? dnnl_bf16 : dnnl_f32
        // (N, C) and (N, M) row-major; weights (M, C) with C outermost (`ba`): IOHW as stored.
        plainSrc = plainDesc([g.n, g.c], dnnl_ab)
        plainWeights = plainDesc([m, g.c], dnnl_ba)
        plainDst = plainDesc([g.n, m], dnnl_ab)
        src = plainDesc([g.n, g.c], dnnl_ab, type)
        weights = plainDesc([m, g.c], dnnl_ba, type)
        dst = plainDesc([g.n, m], dnnl_ab, type)
    }

    /// The layout the output is handed on in: what a 1x1 convolution writing (N, K, R, S) picks.
    lazy var outputLayout: Layout = Conv.forwardLayout(
        ConvGeometry(n: g.n, c: g.k, h: g.r, w: g.s, k: g.k, r: 1, s: 1, algorithm: .direct, precision: .f32))

    /// Where the plain product goes before its reorder into `outputLayout` (nil when that is plain).
    lazy var product: AlignedBuffer? = outputLayout.isPlain ? nil : AlignedBuffer(bytes: g.n * m * 4)

    // dst (N, M) f32 = src (N, C) . weights^T
    lazy var forward: (prim: Primitive, src: InputPort, weights: InputPort, dst: BoundMemory) = {
        var s = src, w = weights, d = plainDst
        var desc = dnnl_inner_product_desc_t()
        check(
            dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_training, &s, &w, nil, &d),
            "inner_product_forward_desc_init \(g)")
        let prim = Primitive(opDesc: &desc, name: "projection fwd")
        return (prim, port(src, plainSrc, [g.n, g.c]), port(weights, plainWeights, [m, g.c]), BoundMemory(plainDst))
    }()

    // diff_src (N, C) f32 = diff_dst (N, M) . weights
    lazy var backwardData: (prim: Primitive, diffDst: InputPort, weights: InputPort, diffSrc: BoundMemory) = {
        var s = plainSrc, w = weights, d = dst
        var desc = dnnl_inner_product_desc_t()
        check(dnnl_inner_product_backward_data_desc_init(&desc, &s, &w, &d), "inner_product_backward_data_desc_init \(g)")
        let prim = Primitive(opDesc: &desc, hint: forward.prim, name: "projection bwd data")
        return (prim, port(dst, plainDst, [g.n, m]), port(weights, plainWeights, [m, g.c]), BoundMemory(plainSrc))
    }()

    // diff_weights (M, C) f32, `ba` = the IOHW gradient = diff_dst^T . src
    lazy var backwardWeights: (prim: Primitive, src: InputPort, diffDst: InputPort, diffWeights: BoundMemory) = {
        var s = src, w = plainWeights, d = dst
        var desc = dnnl_inner_product_desc_t()
        check(
            dnnl_inner_product_backward_weights_desc_init(&desc, &s, &w, nil, &d),
            "inner_product_backward_weights_desc_init \(g)")
        let prim = Primitive(opDesc: &desc, hint: forward.prim, name: "projection bwd weights")
        return (prim, port(src, plainSrc, [g.n, g.c]), port(dst, plainDst, [g.n, m]), BoundMemory(plainWeights))
    }()

    /// An input arriving as f32 in `plain` (the same layout as `chosen`); in bf16 the port converts.
    private func port(_ chosen: dnnl_memory_desc_t, _ plain: dnnl_memory_desc_t, _ shape: [Int]) -> InputPort {
        InputPort(chosen: chosen, plain: plain, shape: shape)
    }
}

/// Projection kernels, reached through `Conv` for geometries where `isProjection` holds:
/// same arguments; the output in `outputLayout(g)`, the input's gradient plain.
enum Projection {
    private static let cache = PrimitiveCache<ConvGeometry, ProjectionPrimitives>()
    static func primitives(_ g: ConvGeometry) -> ProjectionPrimitives { cache.get(g) { ProjectionPrimitives(g) } }

    /// `p` as a plain tensor of `shape`: itself when `layout` is plain, else a plain copy
    /// (kept alive by the returned buffer). The products read every operand plain.
    private static func plain(_ p: UnsafeRawPointer, _ layout: Layout, _ shape: [Int]) -> (UnsafeRawPointer, AlignedBuffer?) {
        guard !layout.isPlain else { return (p, nil) }
        let buffer = AlignedBuffer(bytes: shape.reduce(4, *))
        Reorder.run(shape: shape, from: layout, p, to: .plain, buffer.pointer)
        return (UnsafeRawPointer(buffer.pointer), buffer)
    }

    static func outputLayout(_ g: ConvGeometry) -> Layout { primitives(g).outputLayout }

    static func forward(
        _ g: ConvGeometry, input: UnsafeRawPointer, inputLayout: Layout, weight: UnsafePointer<Float>,
        output: UnsafeMutableRawPointer
    ) {
        let p = primitives(g), f = p.forward
        let (x, keep) = plain(input, inputLayout, g.inputShape)
        f.dst.bind(p.product?.pointer ?? output)
        f.prim.execute([
            (Arg.src, f.src.bind(x, layout: .plain)), (Arg.weights, f.weights.bind(weight, layout: .plain)),
            (Arg.dst, f.dst.memory),
        ])
        if let product = p.product {
            Reorder.run(shape: g.outputShape, from: .plain, product.pointer, to: p.outputLayout, output)
        }
        withExtendedLifetime(keep) {}
    }

    static func backwardData(
        _ g: ConvGeometry, gradOutput: UnsafeRawPointer, gradOutputLayout: Layout, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutableRawPointer
    ) {
        let b = primitives(g).backwardData
        let (dy, keep) = plain(gradOutput, gradOutputLayout, g.outputShape)
        b.diffSrc.bind(gradInput)
        b.prim.execute([
            (Arg.diffDst, b.diffDst.bind(dy, layout: .plain)), (Arg.weights, b.weights.bind(weight, layout: .plain)),
            (Arg.diffSrc, b.diffSrc.memory),
        ])
        withExtendedLifetime(keep) {}
    }

    static func backwardWeights(
        _ g: ConvGeometry, input: UnsafeRawPointer, inputLayout: Layout, gradOutput: UnsafeRawPointer,
        gradOutputLayout: Layout, gradWeight: UnsafeMutableRawPointer
    ) {
        let b = primitives(g).backwardWeights
        let (x, keepX) = plain(input, inputLayout, g.inputShape)
        let (dy, keepDy) = plain(gradOutput, gradOutputLayout, g.outputShape)
        b.diffWeights.bind(gradWeight)
        b.prim.execute([
            (Arg.src, b.src.bind(x, layout: .plain)), (Arg.diffDst, b.diffDst.bind(dy, layout: .plain)),
            (Arg.diffWeights, b.diffWeights.memory),
        ])
        withExtendedLifetime((keepX, keepDy)) {}
    }

    static func implementations(_ g: ConvGeometry) -> (forward: String, backwardData: String, backwardWeights: String) {
        let p = primitives(g)
        return (p.forward.prim.implementation, p.backwardData.prim.implementation, p.backwardWeights.prim.implementation)
    }
}
