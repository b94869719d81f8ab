import Kernels

// Scaled dot-product attention, the batched transpose it needs to turn feature maps into tokens,
// and the sinusoidal timestep embedding. Legend: B batch, L tokens, D channels per token.

extension Tensor {
    /// softmax(q k^T / sqrt D) v for q, k, v of shape (B, L, D) -> (B, L, D), as
    /// torch.nn.functional.scaled_dot_product_attention without mask or dropout.
    /// Memory: the (B, L, L) attention weights are kept for the backward, so use it where L is
    /// small (the lowest resolution of a U-Net: 7 x 7 = 49 tokens at 28 px).
    public static func scaledDotProductAttention(query q: Tensor, key k: Tensor, value v: Tensor) throws -> Tensor {
        guard q.rank == 3 else {
            throw TensorError.invalidShape(op: "scaledDotProductAttention", shape: q.shape, reason: "query must be (B, L, D)")
        }
        guard k.shape == q.shape else {
            throw TensorError.shapeMismatch(op: "scaledDotProductAttention key", lhs: q.shape, rhs: k.shape)
        }
        guard v.shape == q.shape else {
            throw TensorError.shapeMismatch(op: "scaledDotProductAttention value", lhs: q.shape, rhs: v.shape)
        }
        let (b, l, d) = (q.shape[0], q.shape[1], q.shape[2])
        guard d > 0 else {
            throw TensorError.invalidShape(op: "scaledDotProductAttention", shape: q.shape, reason: "D must be positive")
        }
        let out = Tensor(uninitializedShape: q.shape), p = Tensor(uninitializedShape: [b, l, l])
        AttentionKernel.forward(b: b, l: l, d: d, q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, p: p.pointer)
        return result(out, inputs: [q, k, v]) { g, _ in
            let dq = Tensor(uninitializedShape: q.shape), dk = Tensor(uninitializedShape: q.shape),
                dv = Tensor(uninitializedShape: q.shape)
            AttentionKernel.backward(
                b: b, l: l, d: d, q: q.pointer, k: k.pointer, v: v.pointer, p: p.pointer, gradOut: g.pointer,
                gradQ: dq.pointer, gradK: dk.pointer, gradV: dv.pointer)
            return [dq, dk, dv]
        }
    }

    /// (B, R, C) -> (B, C, R): each matrix of a batch transposed (torch's x.transpose(1, 2)).
    public func batchTransposed() throws -> Tensor {
        guard rank == 3 else { throw TensorError.invalidShape(op: "batchTransposed", shape: shape, reason: "needs (B, R, C)") }
        let out = batchTransposeRaw()
        return Tensor.result(out, inputs: [self]) { g, _ in [g.batchTransposeRaw()] }
    }

    func batchTransposeRaw() -> Tensor {
        let (b, r, c) = (shape[0], shape[1], shape[2])
        let out = Tensor(uninitializedShape: [b, c, r])
        let src = pointer, dst = out.pointer
        for i in 0..<b {
            let s = src + i * r * c, d = dst + i * r * c
            for y in 0..<r { for x in 0..<c { d[x * r + y] = s[y * c + x] } }
        }
        return out
    }

    /// Sinusoidal embedding of timesteps (N) -> (N, D), D even: sin(t f_j) then cos(t f_j),
    /// f_j = 10000^(-j / (D/2)) (DDPM's `get_timestep_embedding`; see `TimestepEmbeddingKernel`).
    /// Differentiable in t, though the U-Net feeds it integer steps that need no gradient.
    public func timestepEmbedding(dimension: Int) throws -> Tensor {
        guard rank == 1 else {
            throw TensorError.invalidShape(op: "timestepEmbedding", shape: shape, reason: "timesteps must be (N)")
        }
        guard dimension >= 2, dimension % 2 == 0 else {
            throw TensorError.invalidArgument(
                op: "timestepEmbedding", reason: "dimension \(dimension) must be even and at least 2")
        }
        let n = shape[0], t = self
        let out = Tensor(uninitializedShape: [n, dimension])
        TimestepEmbeddingKernel.forward(timesteps: t.pointer, count: n, dimension: dimension, output: out.pointer)
        return Tensor.result(out, inputs: [t]) { g, _ in
            let dt = Tensor(uninitializedShape: [n])
            TimestepEmbeddingKernel.backward(
                timesteps: t.pointer, count: n, dimension: dimension, gradOutput: g.pointer,
                gradTimesteps: dt.pointer)
            return [dt]
        }
    }
}
