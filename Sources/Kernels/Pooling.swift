import CDNNL

// Max and average pooling on oneDNN over NCHW data, plain or in a convolution's blocked layout.
// Legend: N batch, C channels, H x W input, R x R window, P x Q output.

/// Geometry of a square pooling window.
public struct PoolGeometry: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case max, average }
    public var kind: Kind
    public var n: Int, c: Int, h: Int, w: Int
    public var kernel: Int, stride: Int, padding: Int
    public init(kind: Kind, n: Int, c: Int, h: Int, w: Int, kernel: Int, stride: Int, padding: Int = 0) {
        self.kind = kind; self.n = n; self.c = c; self.h = h; self.w = w
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public var p: Int { (h + 2 * padding - kernel) / stride + 1 }
    public var q: Int { (w + 2 * padding - kernel) / stride + 1 }
    public var inputShape: [Int] { [n, c, h, w] }
    public var outputShape: [Int] { [n, c, p, q] }
}

struct PoolKey: Hashable { let g: PoolGeometry; let layout: Layout }

final class PoolPrimitives {
    let forward: Primitive, backward: Primitive
    let src: BoundMemory, dst: BoundMemory, diffSrc: BoundMemory, diffDst: BoundMemory
    let workspace: BoundMemory?, workspaceBytes: Int
    /// The output's layout: plain for plain input, else the blocked one oneDNN chose (the input's).
    let dstLayout: Layout

    init(_ key: PoolKey) {
        let g = key.g
        var s = LayoutTable.shared.desc(key.layout, shape: g.inputShape)
        var d = key.layout.isPlain ? plainDesc(g.outputShape, dnnl_nchw) : anyDesc(g.outputShape)
        let alg = g.kind == .max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding
        let k: [Int64] = [Int64(g.kernel), Int64(g.kernel)], st: [Int64] = [Int64(g.stride), Int64(g.stride)]
        let dil: [Int64] = [0, 0], pl: [Int64] = [Int64(g.padding), Int64(g.padding)]
        let pr: [Int64] = [
            Int64((g.p - 1) * g.stride + g.kernel - g.h - g.padding),
            Int64((g.q - 1) * g.stride + g.kernel - g.w - g.padding),
        ]
        var f = dnnl_pooling_v2_desc_t()
        check(
            dnnl_pooling_v2_forward_desc_init(&f, dnnl_forward_training, alg, &s, &d, st, k, dil, pl, pr),
            "pooling_v2_forward_desc_init")
        forward = Primitive(opDesc: &f, name: "pool fwd")
        d = forward.desc(dnnl_query_dst_md)
        dstLayout = LayoutTable.shared.intern(d)
        var b = dnnl_pooling_v2_desc_t()
        check(dnnl_pooling_v2_backward_desc_init(&b, alg, &s, &d, st, k, dil, pl, pr), "pooling_v2_backward_desc_init")
        backward = Primitive(opDesc: &b, hint: forward, name: "pool bwd")
        src = BoundMemory(s); dst = BoundMemory(d); diffSrc = BoundMemory(s); diffDst = BoundMemory(d)
        let ws = forward.desc(dnnl_query_workspace_md)
        workspaceBytes = descBytes(ws)
        workspace = workspaceBytes > 0 ? BoundMemory(ws) : nil
    }
}

/// Pooling kernels (oneDNN). Max pooling's backward needs the workspace its forward wrote.
/// Input and its gradient in `layout` (plain, or the blocked one a convolution wrote); output and
/// its gradient in `outputLayout(g, layout:)`.
public enum PoolKernel {
    private static let cache = PrimitiveCache<PoolKey, PoolPrimitives>()
    private static func primitives(_ g: PoolGeometry, _ layout: Layout) -> PoolPrimitives {
        cache.get(PoolKey(g: g, layout: layout)) { PoolPrimitives(PoolKey(g: g, layout: layout)) }
    }

    /// Layout of `forward`'s output for an input in `layout`.
    public static func outputLayout(_ g: PoolGeometry, layout: Layout = .plain) -> Layout {
        DNNLContext.shared.locked { primitives(g, layout).dstLayout }
    }

    /// Bytes of workspace the forward writes (0 for average pooling).
    public static func workspaceBytes(_ g: PoolGeometry, layout: Layout = .plain) -> Int {
        DNNLContext.shared.locked { primitives(g, layout).workspaceBytes }
    }

    public static func forward(
        _ g: PoolGeometry, layout: Layout = .plain, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        workspace: UnsafeMutableRawPointer?
    ) {
        DNNLContext.shared.locked {
            let p = primitives(g, layout)
            p.src.bind(input); p.dst.bind(output)
            var args = [(Arg.src, p.src.memory), (Arg.dst, p.dst.memory)]
            if let ws = p.workspace, let workspace { ws.bind(workspace); args.append((Arg.workspace, ws.memory)) }
            p.forward.execute(args)
        }
    }

    public static func backward(
        _ g: PoolGeometry, layout: Layout = .plain, gradOutput: UnsafePointer<Float>, workspace: UnsafeRawPointer?,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        DNNLContext.shared.locked {
            let p = primitives(g, layout)
            p.diffDst.bind(gradOutput); p.diffSrc.bind(gradInput)
            var args = [(Arg.diffDst, p.diffDst.memory), (Arg.diffSrc, p.diffSrc.memory)]
            if let ws = p.workspace, let workspace { ws.bind(workspace); args.append((Arg.workspace, ws.memory)) }
            p.backward.execute(args)
        }
    }
}
