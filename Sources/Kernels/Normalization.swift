import CDNNL

// Batch normalisation on oneDNN over plain NCHW data.
// Legend: N batch, C channels, H x W spatial; statistics are per channel over N, H, W.
// `variance` is the biased (population) variance, as oneDNN and the normalisation itself use;
// the running-variance update with the unbiased estimate is the caller's (PyTorch convention).
// With `fusedReLU` the primitives compute max(0, y) in the same pass (oneDNN's fuse_norm_relu):
// training writes a workspace (the ReLU's mask, `workspaceBytes`) that the backward reads, and
// the backward takes the gradient of the ReLU's output. The separate eltwise passes (one forward
// read and write, one backward) are gone.

/// Geometry of a batch-norm call.
public struct BatchNormGeometry: Hashable, Sendable {
    public var n: Int, c: Int, h: Int, w: Int
    public var epsilon: Float
    public init(n: Int, c: Int, h: Int, w: Int, epsilon: Float = 1e-5) {
        self.n = n; self.c = c; self.h = h; self.w = w; self.epsilon = epsilon
    }
    public var shape: [Int] { [n, c, h, w] }
}

struct BatchNormKey: Hashable { let g: BatchNormGeometry; let layout: Layout; let fusedReLU: Bool }

final class BatchNormPrimitives {
    let training: Primitive, inference: Primitive, backward: Primitive
    let dst: BoundMemory, diffSrc: BoundMemory, diffDst: BoundMemory
    let scale: BoundMemory, shift: BoundMemory, mean: BoundMemory, variance: BoundMemory
    let diffScale: BoundMemory, diffShift: BoundMemory
    let data: BoundMemory
    /// The ReLU mask training writes and the backward reads (nil without `fusedReLU`).
    let workspace: BoundMemory?
    let workspaceBytes: Int

    init(_ key: BatchNormKey) {
        let g = key.g
        var md = LayoutTable.shared.desc(key.layout, shape: g.shape)
        let flags = UInt32(
            dnnl_use_scale.rawValue | dnnl_use_shift.rawValue | (key.fusedReLU ? dnnl_fuse_norm_relu.rawValue : 0))
        var fwd = dnnl_batch_normalization_desc_t()
        check(
            dnnl_batch_normalization_forward_desc_init(&fwd, dnnl_forward_training, &md, g.epsilon, flags),
            "batch_normalization_forward_desc_init")
        training = Primitive(opDesc: &fwd, name: "bnorm fwd training")
        var inf = dnnl_batch_normalization_desc_t()
        check(
            dnnl_batch_normalization_forward_desc_init(
                &inf, dnnl_forward_inference, &md, g.epsilon,
                flags | UInt32(dnnl_use_global_stats.rawValue)),
            "batch_normalization_forward_desc_init(inference)")
        inference = Primitive(opDesc: &inf, name: "bnorm fwd inference")
        var bwd = dnnl_batch_normalization_desc_t()
        check(
            dnnl_batch_normalization_backward_desc_init(&bwd, dnnl_backward, &md, &md, g.epsilon, flags),
            "batch_normalization_backward_desc_init")
        backward = Primitive(opDesc: &bwd, hint: training, name: "bnorm bwd")
        data = BoundMemory(md)
        dst = BoundMemory(md); diffSrc = BoundMemory(md); diffDst = BoundMemory(md)
        let cd = plainDesc([g.c], dnnl_a)
        scale = BoundMemory(cd); shift = BoundMemory(cd); mean = BoundMemory(cd); variance = BoundMemory(cd)
        diffScale = BoundMemory(cd); diffShift = BoundMemory(cd)
        if key.fusedReLU, let w = dnnl_primitive_desc_query_md(training.pd, dnnl_query_workspace_md, 0),
            descBytes(w.pointee) > 0
        {
            workspace = BoundMemory(w.pointee); workspaceBytes = descBytes(w.pointee)
        } else {
            workspace = nil; workspaceBytes = 0
        }
    }
}

/// Batch-norm kernels (oneDNN). Data (input, output and their gradients) share one layout, plain
/// or the blocked one a convolution wrote; per-channel vectors are plain.
public enum BatchNormKernel {
    private static let cache = PrimitiveCache<BatchNormKey, BatchNormPrimitives>()
    private static func primitives(_ g: BatchNormGeometry, _ layout: Layout, _ fusedReLU: Bool) -> BatchNormPrimitives {
        // One thread: see `OpenMP` for the measurement.
        let key = BatchNormKey(g: g, layout: layout, fusedReLU: fusedReLU)
        return cache.get(key) { OpenMP.withThreads(1) { BatchNormPrimitives(key) } }
    }

    /// Bytes of the workspace a fused-ReLU training forward writes and its backward reads.
    public static func workspaceBytes(_ g: BatchNormGeometry, layout: Layout = .plain) -> Int {
        DNNLContext.shared.locked { primitives(g, layout, true).workspaceBytes }
    }

    /// y = scale * (x - mean) / sqrt(var + eps) + shift with batch statistics; writes mean and biased variance (C).
    /// With `reluWorkspace` (`workspaceBytes(g, layout:)` bytes): y = max(0, y), and the mask
    /// written there for `backward`.
    public static func forwardTraining(
        _ g: BatchNormGeometry, layout: Layout = .plain, input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>,
        reluWorkspace: UnsafeMutableRawPointer? = nil
    ) {
        forward(g, layout, training: true, input, scale, shift, mean, variance, output, reluWorkspace: reluWorkspace)
    }

    /// y = scale * (x - mean) / sqrt(var + eps) + shift with given (running) statistics.
    public static func forwardInference(
        _ g: BatchNormGeometry, layout: Layout = .plain, input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, mean: UnsafePointer<Float>,
        variance: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, fusedReLU: Bool = false
    ) {
        forward(
            g, layout, training: false, input, scale, shift, UnsafeMutablePointer(mutating: mean),
            UnsafeMutablePointer(mutating: variance), output, fusedReLU: fusedReLU)
    }

    /// Both forwards bind the same arguments; training writes mean and variance, inference reads them.
    private static func forward(
        _ g: BatchNormGeometry, _ layout: Layout, training: Bool, _ input: UnsafePointer<Float>,
        _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ mean: UnsafeMutablePointer<Float>,
        _ variance: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>,
        fusedReLU: Bool = false, reluWorkspace: UnsafeMutableRawPointer? = nil
    ) {
        DNNLContext.shared.locked {
            let p = primitives(g, layout, fusedReLU || reluWorkspace != nil)
            p.data.bind(input); p.dst.bind(output); p.scale.bind(scale); p.shift.bind(shift)
            p.mean.bind(mean); p.variance.bind(variance)
            var args = [
                (Arg.src, p.data.memory), (Arg.dst, p.dst.memory), (Arg.scale, p.scale.memory),
                (Arg.shift, p.shift.memory), (Arg.mean, p.mean.memory), (Arg.variance, p.variance.memory),
            ]
            if training, let workspace = p.workspace {
                guard let reluWorkspace else { preconditionFailure("a fused-ReLU batch norm needs its workspace") }
                workspace.bind(reluWorkspace)
                args.append((Arg.workspace, workspace.memory))
            }
            (training ? p.training : p.inference).execute(args)
        }
    }

    /// Gradients of the training-mode forward with respect to input, scale and shift. With
    /// `reluWorkspace` (what a fused forward wrote), `gradOutput` is the gradient of max(0, y).
    public static func backward(
        _ g: BatchNormGeometry, layout: Layout = .plain, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, mean: UnsafePointer<Float>,
        variance: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>,
        gradScale: UnsafeMutablePointer<Float>, gradShift: UnsafeMutablePointer<Float>,
        reluWorkspace: UnsafeRawPointer? = nil
    ) {
        DNNLContext.shared.locked {
            let p = primitives(g, layout, reluWorkspace != nil)
            p.data.bind(input); p.diffDst.bind(gradOutput); p.diffSrc.bind(gradInput)
            p.scale.bind(scale); p.shift.bind(shift); p.mean.bind(mean); p.variance.bind(variance)
            p.diffScale.bind(gradScale); p.diffShift.bind(gradShift)
            // NOTE: oneDNN 2.6 wants DNNL_ARG_SHIFT bound in backward too when use_shift is set.
            var args = [
                (Arg.src, p.data.memory), (Arg.diffDst, p.diffDst.memory), (Arg.scale, p.scale.memory),
                (Arg.shift, p.shift.memory), (Arg.mean, p.mean.memory),
                (Arg.variance, p.variance.memory), (Arg.diffSrc, p.diffSrc.memory),
                (Arg.diffScale, p.diffScale.memory), (Arg.diffShift, p.diffShift.memory),
            ]
            if let workspace = p.workspace, let reluWorkspace {
                workspace.bind(reluWorkspace)
                args.append((Arg.workspace, workspace.memory))
            }
            p.backward.execute(args)
        }
    }

    /// Implementation names (training forward, backward).
    public static func implementations(
        _ g: BatchNormGeometry, layout: Layout = .plain, fusedReLU: Bool = false
    ) -> (forward: String, backward: String) {
        DNNLContext.shared.locked {
            let p = primitives(g, layout, fusedReLU)
            return (p.training.implementation, p.backward.implementation)
        }
    }
}
