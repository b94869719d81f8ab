import CDNNL

// Pointwise activations on oneDNN's eltwise primitive, over a flat buffer of `count` floats
// (layout does not matter for a pointwise op).

/// The activation functions with oneDNN kernels.
public enum Activation: Hashable, Sendable {
    /// max(x, 0) when slope is 0, else LeakyReLU: x >= 0 ? x : slope * x.
    case relu(slope: Float)
    case tanh
    case sigmoid
    /// SiLU (swish with beta 1): x sigmoid(x) (Hendrycks and Gimpel 2016; Ramachandran et al. 2017).
    case silu
}

struct EltwiseKey: Hashable { let activation: Activation; let layout: Layout; let shape: [Int] }

final class EltwisePrimitives {
    let forward: Primitive, backward: Primitive
    let src: BoundMemory, dst: BoundMemory, diffSrc: BoundMemory, diffDst: BoundMemory
    /// Whether the backward pass reads the forward output (tanh, sigmoid) instead of the input.
    let backwardUsesOutput: Bool

    init(_ key: EltwiseKey) {
        // Plain data is treated as one flat vector; blocked data keeps its descriptor so the
        // channel padding stays zero.
        var md =
            key.layout.isPlain
            ? plainDesc([key.shape.reduce(1, *)], dnnl_a) : LayoutTable.shared.desc(key.layout, shape: key.shape)
        let alg: dnnl_alg_kind_t, alpha: Float
        switch key.activation {
        case .relu(let slope): alg = dnnl_eltwise_relu; alpha = slope; backwardUsesOutput = false
        case .tanh: alg = dnnl_eltwise_tanh_use_dst_for_bwd; alpha = 0; backwardUsesOutput = true
        case .sigmoid: alg = dnnl_eltwise_logistic_use_dst_for_bwd; alpha = 0; backwardUsesOutput = true
        // oneDNN's swish is x sigmoid(alpha x); alpha 1 is SiLU. Its backward reads the input.
        case .silu: alg = dnnl_eltwise_swish; alpha = 1; backwardUsesOutput = false
        }
        var f = dnnl_eltwise_desc_t()
        check(dnnl_eltwise_forward_desc_init(&f, dnnl_forward_training, alg, &md, alpha, 0), "eltwise_forward_desc_init")
        forward = Primitive(opDesc: &f, name: "eltwise fwd")
        var b = dnnl_eltwise_desc_t()
        check(dnnl_eltwise_backward_desc_init(&b, alg, &md, &md, alpha, 0), "eltwise_backward_desc_init")
        backward = Primitive(opDesc: &b, hint: forward, name: "eltwise bwd")
        src = BoundMemory(md); dst = BoundMemory(md); diffSrc = BoundMemory(md); diffDst = BoundMemory(md)
    }
}

/// Activation kernels (oneDNN eltwise); output and gradients in the input's layout.
public enum ActivationKernel {
    private static let cache = PrimitiveCache<EltwiseKey, EltwisePrimitives>()
    private static func primitives(_ a: Activation, _ shape: [Int], _ layout: Layout) -> EltwisePrimitives {
        let key = EltwiseKey(activation: a, layout: layout, shape: layout.isPlain ? [shape.reduce(1, *)] : shape)
        return cache.get(key) { EltwisePrimitives(key) }
    }

    /// Whether `backward` wants the forward output (true) or the forward input (false) as `saved`.
    public static func backwardUsesOutput(_ a: Activation) -> Bool {
        switch a {
        case .relu, .silu: return false
        case .tanh, .sigmoid: return true
        }
    }

    /// output = f(input) for a tensor of `shape` stored in `layout`.
    public static func forward(
        _ a: Activation, shape: [Int], layout: Layout = .plain, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        DNNLContext.shared.locked {
            let p = primitives(a, shape, layout)
            p.src.bind(input); p.dst.bind(output)
            p.forward.execute([(Arg.src, p.src.memory), (Arg.dst, p.dst.memory)])
        }
    }

    /// gradInput = f'(.) * gradOutput; `saved` is the forward output for tanh and sigmoid, the input for ReLU and SiLU.
    /// All three buffers in `layout`.
    public static func backward(
        _ a: Activation, shape: [Int], layout: Layout = .plain, saved: UnsafePointer<Float>,
        gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
    ) {
        DNNLContext.shared.locked {
            let p = primitives(a, shape, layout)
            p.diffDst.bind(gradOutput); p.diffSrc.bind(gradInput)
            let savedMemory = p.backwardUsesOutput ? p.dst : p.src
            savedMemory.bind(saved)
            p.backward.execute([
                (p.backwardUsesOutput ? Arg.dst : Arg.src, savedMemory.memory),
                (Arg.diffDst, p.diffDst.memory), (Arg.diffSrc, p.diffSrc.memory),
            ])
        }
    }
}
