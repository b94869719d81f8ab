import Foundation

// Scaled dot-product attention (Vaswani et al. 2017; torch.nn.functional.scaled_dot_product_attention
// without mask or dropout) and the sinusoidal embedding of diffusion timesteps.
// Legend: B batch (images x heads), L tokens (H W pixels of a feature map), D channels per token.
// q, k, v, out are (B, L, D) row-major; the attention weights P are (B, L, L):
//   S = q k^T / sqrt(D), P = softmax(S) along the last axis, out = P v.
// The products run on oneDNN's sgemm (one call per batch entry); the softmax is ours.

/// Attention kernels; `Reference.attention*` are the plain loops they are tested against.
public enum AttentionKernel {
    /// Writes `out` (B, L, D) and the attention weights `p` (B, L, L) that the backward needs.
    public static func forward(
        b: Int, l: Int, d: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>
    ) {
        let scale = 1 / Float(d).squareRoot()
        for i in 0..<b {
            let qi = q + i * l * d, ki = k + i * l * d, vi = v + i * l * d, pi = p + i * l * l
            Gemm.sgemm(transA: false, transB: true, m: l, n: l, k: d, alpha: scale, a: qi, b: ki, c: pi)  // S = q k^T / sqrt D
            for r in 0..<l { softmaxRow(pi + r * l, l) }  // P = softmax(S)
            Gemm.sgemm(transA: false, transB: false, m: l, n: d, k: l, a: pi, b: vi, c: out + i * l * d)  // out = P v
        }
    }

    /// Gradients of `forward` from dOut (B, L, D) and the saved weights P:
    /// dv = P^T dOut; dP = dOut v^T; dS = P (dP - rowsum(dP P)); dq = dS k / sqrt D; dk = dS^T q / sqrt D.
    public static func backward(
        b: Int, l: Int, d: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        p: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, gradQ: UnsafeMutablePointer<Float>,
        gradK: UnsafeMutablePointer<Float>, gradV: UnsafeMutablePointer<Float>
    ) {
        let scale = 1 / Float(d).squareRoot()
        var dpBuffer = [Float](repeating: 0, count: l * l)
        dpBuffer.withUnsafeMutableBufferPointer { buffer in
            let dp = buffer.baseAddress!
            for i in 0..<b {
                let off = i * l * d, pi = p + i * l * l, go = gradOut + off
                Gemm.sgemm(transA: true, transB: false, m: l, n: d, k: l, a: pi, b: go, c: gradV + off)  // dv = P^T dOut
                Gemm.sgemm(transA: false, transB: true, m: l, n: l, k: d, a: go, b: v + off, c: dp)  // dP = dOut v^T
                for r in 0..<l {  // dS (in place)
                    let pr = pi + r * l, dr = dp + r * l
                    var dot: Float = 0
                    for j in 0..<l { dot += pr[j] * dr[j] }
                    for j in 0..<l { dr[j] = pr[j] * (dr[j] - dot) }
                }
                Gemm.sgemm(transA: false, transB: false, m: l, n: d, k: l, alpha: scale, a: dp, b: k + off, c: gradQ + off)
                Gemm.sgemm(transA: true, transB: false, m: l, n: d, k: l, alpha: scale, a: dp, b: q + off, c: gradK + off)
            }
        }
    }

    /// Softmax of one row in place, shifted by its maximum so no exp overflows.
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for j in 0..<n { m = max(m, row[j]) }
        var s: Float = 0
        for j in 0..<n { row[j] = Foundation.exp(row[j] - m); s += row[j] }
        let inv = 1 / s
        for j in 0..<n { row[j] *= inv }
    }
}

/// Sinusoidal embedding of (diffusion) timesteps, as in the DDPM and Transformer code:
/// for t (N) and an even dimension D, with f_j = exp(-ln(10000) j / (D/2)), j < D/2,
/// out[n, j] = sin(t_n f_j) and out[n, D/2 + j] = cos(t_n f_j). Output (N, D).
public enum TimestepEmbeddingKernel {
    /// The D/2 frequencies f_j.
    public static func frequencies(dimension: Int) -> [Float] {
        let half = dimension / 2
        return (0..<half).map { Foundation.exp(-Foundation.log(Float(10000)) * Float($0) / Float(half)) }
    }

    /// Writes (N, D).
    public static func forward(
        timesteps t: UnsafePointer<Float>, count n: Int, dimension: Int, output: UnsafeMutablePointer<Float>
    ) {
        let f = frequencies(dimension: dimension), half = dimension / 2
        for i in 0..<n {
            let row = output + i * dimension
            for j in 0..<half {
                let a = t[i] * f[j]
                row[j] = Foundation.sin(a); row[half + j] = Foundation.cos(a)
            }
        }
    }

    /// d/dt of the sum of gradOutput * out: sum_j f_j (g[n, j] cos(t f_j) - g[n, D/2 + j] sin(t f_j)).
    public static func backward(
        timesteps t: UnsafePointer<Float>, count n: Int, dimension: Int, gradOutput g: UnsafePointer<Float>,
        gradTimesteps dt: UnsafeMutablePointer<Float>
    ) {
        let f = frequencies(dimension: dimension), half = dimension / 2
        for i in 0..<n {
            let row = g + i * dimension
            var s: Float = 0
            for j in 0..<half {
                let a = t[i] * f[j]
                s += f[j] * (row[j] * Foundation.cos(a) - row[half + j] * Foundation.sin(a))
            }
            dt[i] = s
        }
    }
}
