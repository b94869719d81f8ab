import Foundation

// Naive kernels for the diffusion U-Net's ops: group norm, nearest upsampling, attention and the
// timestep embedding. Index by index, in Double where sums are long; same layouts as the fast ones.

extension Reference {
    // MARK: Group norm (statistics per (n, g); biased variance)

    /// y, mean (N G) and rstd (N G) of torch.nn.GroupNorm.
    public static func groupNormForward(_ g: GroupNormGeometry, input: [Float], scale: [Float], shift: [Float])
        -> (output: [Float], mean: [Float], rstd: [Float])
    {
        let cpg = g.c / g.groups, hw = g.h * g.w, m = Double(cpg * hw)
        var out = input, mean = [Float](repeating: 0, count: g.n * g.groups), rstd = mean
        for n in 0..<g.n {
            for gi in 0..<g.groups {
                let channels = (gi * cpg)..<((gi + 1) * cpg)
                var s = 0.0
                for c in channels { for j in 0..<hw { s += Double(input[(n * g.c + c) * hw + j]) } }
                let mu = s / m
                var v = 0.0
                for c in channels { for j in 0..<hw { let d = Double(input[(n * g.c + c) * hw + j]) - mu; v += d * d } }
                let r = 1 / (v / m + Double(g.epsilon)).squareRoot()
                mean[n * g.groups + gi] = Float(mu); rstd[n * g.groups + gi] = Float(r)
                for c in channels {
                    for j in 0..<hw {
                        let i = (n * g.c + c) * hw + j
                        out[i] = Float(Double(scale[c]) * (Double(input[i]) - mu) * r + Double(shift[c]))
                    }
                }
            }
        }
        return (out, mean, rstd)
    }

    /// dx = rstd (scale dy - mean_group(scale dy) - xhat mean_group(scale dy xhat)); dscale, dshift per channel.
    public static func groupNormBackward(_ g: GroupNormGeometry, input: [Float], gradOutput dy: [Float], scale: [Float])
        -> (input: [Float], scale: [Float], shift: [Float])
    {
        let (_, mean, rstd) = groupNormForward(g, input: input, scale: scale, shift: [Float](repeating: 0, count: g.c))
        let cpg = g.c / g.groups, hw = g.h * g.w, m = Double(cpg * hw)
        var dx = input, dscale = [Double](repeating: 0, count: g.c), dshift = dscale
        for n in 0..<g.n {
            for gi in 0..<g.groups {
                let mu = Double(mean[n * g.groups + gi]), r = Double(rstd[n * g.groups + gi])
                let channels = (gi * cpg)..<((gi + 1) * cpg)
                var meanG = 0.0, meanGX = 0.0  // means of scale dy and scale dy xhat over the group
                for c in channels {
                    for j in 0..<hw {
                        let i = (n * g.c + c) * hw + j, xhat = (Double(input[i]) - mu) * r
                        meanG += Double(scale[c]) * Double(dy[i]) / m
                        meanGX += Double(scale[c]) * Double(dy[i]) * xhat / m
                        dscale[c] += Double(dy[i]) * xhat; dshift[c] += Double(dy[i])
                    }
                }
                for c in channels {
                    for j in 0..<hw {
                        let i = (n * g.c + c) * hw + j, xhat = (Double(input[i]) - mu) * r
                        dx[i] = Float(r * (Double(scale[c]) * Double(dy[i]) - meanG - xhat * meanGX))
                    }
                }
            }
        }
        return (dx, dscale.map { Float($0) }, dshift.map { Float($0) })
    }

    // MARK: Nearest upsampling

    public static func upsampleNearestForward(n: Int, c: Int, h: Int, w: Int, factor s: Int, input: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: n * c * h * s * w * s)
        for p in 0..<(n * c) {
            for y in 0..<(h * s) {
                for x in 0..<(w * s) {
                    out[(p * h * s + y) * w * s + x] = input[(p * h + y / s) * w + x / s]
                }
            }
        }
        return out
    }

    public static func upsampleNearestBackward(n: Int, c: Int, h: Int, w: Int, factor s: Int, gradOutput: [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: n * c * h * w)
        for p in 0..<(n * c) {
            for y in 0..<(h * s) {
                for x in 0..<(w * s) {
                    dx[(p * h + y / s) * w + x / s] += gradOutput[(p * h * s + y) * w * s + x]
                }
            }
        }
        return dx
    }

    // MARK: Attention

    /// out (B, L, D) = softmax(q k^T / sqrt D) v.
    public static func attentionForward(b: Int, l: Int, d: Int, q: [Float], k: [Float], v: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: b * l * d)
        for i in 0..<b {
            for r in 0..<l {
                var s = [Double](repeating: 0, count: l)
                for j in 0..<l {
                    for e in 0..<d { s[j] += Double(q[(i * l + r) * d + e]) * Double(k[(i * l + j) * d + e]) }
                    s[j] /= Double(d).squareRoot()
                }
                let m = s.max()!, z = s.reduce(0) { $0 + Foundation.exp($1 - m) }
                for j in 0..<l {
                    let pj = Foundation.exp(s[j] - m) / z
                    for e in 0..<d { out[(i * l + r) * d + e] += Float(pj * Double(v[(i * l + j) * d + e])) }
                }
            }
        }
        return out
    }

    /// Gradients of `attentionForward` with respect to q, k and v.
    public static func attentionBackward(b: Int, l: Int, d: Int, q: [Float], k: [Float], v: [Float], gradOut: [Float])
        -> (q: [Float], k: [Float], v: [Float])
    {
        var dq = [Float](repeating: 0, count: q.count), dk = dq, dv = dq
        let scale = 1 / Double(d).squareRoot()
        for i in 0..<b {
            for r in 0..<l {
                var s = [Double](repeating: 0, count: l)
                for j in 0..<l {
                    for e in 0..<d { s[j] += Double(q[(i * l + r) * d + e]) * Double(k[(i * l + j) * d + e]) * scale }
                }
                let m = s.max()!, z = s.reduce(0) { $0 + Foundation.exp($1 - m) }
                let p = s.map { Foundation.exp($0 - m) / z }
                // dP[j] = <dOut_r, v_j>; dS[j] = P[j] (dP[j] - sum_t P[t] dP[t]).
                var dp = [Double](repeating: 0, count: l)
                for j in 0..<l {
                    for e in 0..<d { dp[j] += Double(gradOut[(i * l + r) * d + e]) * Double(v[(i * l + j) * d + e]) }
                }
                let dot = zip(p, dp).reduce(0) { $0 + $1.0 * $1.1 }
                for j in 0..<l {
                    let ds = p[j] * (dp[j] - dot) * scale
                    for e in 0..<d {
                        dv[(i * l + j) * d + e] += Float(p[j] * Double(gradOut[(i * l + r) * d + e]))
                        dq[(i * l + r) * d + e] += Float(ds * Double(k[(i * l + j) * d + e]))
                        dk[(i * l + j) * d + e] += Float(ds * Double(q[(i * l + r) * d + e]))
                    }
                }
            }
        }
        return (dq, dk, dv)
    }

    // MARK: Timestep embedding

    /// out[n, j] = sin(t_n f_j), out[n, D/2 + j] = cos(t_n f_j), f_j = 10000^(-j / (D/2)).
    public static func timestepEmbedding(_ t: [Float], dimension: Int) -> [Float] {
        let half = dimension / 2
        var out = [Float](repeating: 0, count: t.count * dimension)
        for (n, tn) in t.enumerated() {
            for j in 0..<half {
                let f = Foundation.pow(10000.0, -Double(j) / Double(half))
                out[n * dimension + j] = Float(Foundation.sin(Double(tn) * f))
                out[n * dimension + half + j] = Float(Foundation.cos(Double(tn) * f))
            }
        }
        return out
    }
}

extension Reference {
    // MARK: Concatenation

    /// Row-major arrays of `shapes` (equal but for `axis`) joined along `axis`, element by element.
    public static func concat(_ parts: [[Float]], shapes: [[Int]], axis: Int) -> [Float] {
        var shape = shapes[0]
        shape[axis] = shapes.map { $0[axis] }.reduce(0, +)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        var offset = 0
        for (part, s) in zip(parts, shapes) {
            for i in 0..<part.count {
                var rest = i, index = [Int](repeating: 0, count: s.count)  // i -> multi-index in s
                for d in stride(from: s.count - 1, through: 0, by: -1) { index[d] = rest % s[d]; rest /= s[d] }
                index[axis] += offset
                var o = 0  // multi-index -> position in shape
                for d in 0..<shape.count { o = o * shape[d] + index[d] }
                out[o] = part[i]
            }
            offset += s[axis]
        }
        return out
    }
}

extension Reference {
    // MARK: Per-(image, channel) bias (plain NCHW)

    /// y[n, c, h, w] = x[n, c, h, w] + bias[n, c].
    public static func channelBiasForward(shape: [Int], input: [Float], bias: [Float]) -> [Float] {
        let hw = shape[2] * shape[3]
        return input.indices.map { input[$0] + bias[$0 / hw] }
    }

    /// d bias[n, c] = sum over h, w of dy[n, c, h, w].
    public static func channelBiasBackward(shape: [Int], gradOutput dy: [Float]) -> [Float] {
        let hw = shape[2] * shape[3]
        return (0..<(shape[0] * shape[1])).map { nc in Float((0..<hw).reduce(0.0) { $0 + Double(dy[nc * hw + $1]) }) }
    }
}
