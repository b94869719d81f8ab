// Group normalisation (Wu and He 2018; torch.nn.GroupNorm) over plain NCHW data, in Swift.
// Legend: N batch, C channels, G groups, H x W spatial, M = (C / G) H W values per group.
// Group g of image n holds channels g C/G ..< (g+1) C/G; in NCHW those M values are contiguous,
// so each (n, g) is one run of memory. Statistics per (n, g): mean and biased variance, as torch.
//
// NOTE: oneDNN has group normalisation only from 3.x; Debian ships 2.6. These loops run on
// SIMD8<Float> (one ymm instruction each with AVX2, see Package.swift); Reference.groupNorm* is
// the plain version they are tested against.

/// Geometry of a group-norm call.
public struct GroupNormGeometry: Hashable, Sendable, CustomStringConvertible {
    public var n: Int, c: Int, groups: Int, h: Int, w: Int
    public var epsilon: Float
    public init(n: Int, c: Int, groups: Int, h: Int, w: Int, epsilon: Float = 1e-5) {
        self.n = n; self.c = c; self.groups = groups; self.h = h; self.w = w; self.epsilon = epsilon
    }
    public var shape: [Int] { [n, c, h, w] }
    public var channelsPerGroup: Int { c / groups }
    /// M: values per (image, group).
    public var groupSize: Int { channelsPerGroup * h * w }
    /// Groups divide the channels and every size is positive.
    public var isValid: Bool { n > 0 && c > 0 && groups > 0 && c % groups == 0 && h > 0 && w > 0 && epsilon > 0 }
    public var description: String { "GroupNorm(N \(n), C \(c), G \(groups), \(h)x\(w))" }
}

/// Group-norm kernels. `mean` and `rstd` (1 / sqrt(var + eps)) are (N, G); `scale`, `shift` (C).
public enum GroupNormKernel {
    typealias V = SIMD8<Float>

    /// y = scale[c] (x - mean[n, g]) rstd[n, g] + shift[c]; writes mean and rstd for the backward.
    public static func forward(
        _ g: GroupNormGeometry, input x: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        let m = g.groupSize, hw = g.h * g.w, cpg = g.channelsPerGroup
        for ng in 0..<(g.n * g.groups) {
            let base = ng * m
            // Two passes (mean, then squared deviations): no cancellation for large means.
            let mu = sum(x + base, m) / Float(m)
            let variance = sumSquaredDeviations(x + base, m, from: mu) / Float(m)
            let r = 1 / (variance + g.epsilon).squareRoot()
            mean[ng] = mu; rstd[ng] = r
            for j in 0..<cpg {
                let c = (ng % g.groups) * cpg + j
                // NOTE: y = (x - mean) a + shift, not a x + (shift - mean a): with a tiny variance a is
                // large and a x - a mean cancels catastrophically (a group of one value showed it).
                scaleShift(x + base + j * hw, hw, mu, scale[c] * r, shift[c], y + base + j * hw)
            }
        }
    }

    /// Gradients of `forward`: with xhat = (x - mean) rstd over a group of M values,
    /// dx = rstd (scale dy - mean(scale dy) - xhat mean(scale dy xhat)),
    /// dscale[c] = sum over (n, h, w) of dy xhat, dshift[c] = sum of dy.
    public static func backward(
        _ g: GroupNormGeometry, input x: UnsafePointer<Float>, gradOutput dy: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        gradInput dx: UnsafeMutablePointer<Float>, gradScale: UnsafeMutablePointer<Float>,
        gradShift: UnsafeMutablePointer<Float>
    ) {
        let m = g.groupSize, hw = g.h * g.w, cpg = g.channelsPerGroup
        gradScale.update(repeating: 0, count: g.c); gradShift.update(repeating: 0, count: g.c)
        var sumDy = [Float](repeating: 0, count: cpg), sumDyX = sumDy
        for ng in 0..<(g.n * g.groups) {
            let base = ng * m, mu = mean[ng], r = rstd[ng], c0 = (ng % g.groups) * cpg
            // Per channel: sum dy and sum dy x (xhat sums follow from them).
            var a: Float = 0, b: Float = 0  // sum scale dy, sum scale dy xhat
            for j in 0..<cpg {
                let (s, sx) = sumAndDot(dy + base + j * hw, x + base + j * hw, hw)
                sumDy[j] = s; sumDyX[j] = sx
                let dyXhat = r * (sx - mu * s)
                gradScale[c0 + j] += dyXhat; gradShift[c0 + j] += s
                a += scale[c0 + j] * s; b += scale[c0 + j] * dyXhat
            }
            // dx = k1[c] dy + k2 (x - mean) + k3: the group terms folded into two constants
            // (x - mean, not k2 x + const, for the reason noted in `forward`).
            let k2 = -r * r * b / Float(m), k3 = -r * a / Float(m)
            for j in 0..<cpg {
                let k1 = r * scale[c0 + j], off = base + j * hw
                combine(dy + off, x + off, hw, mu, k1, k2, k3, dx + off)
            }
        }
    }

    // MARK: SIMD loops (a scalar tail after the last full vector)

    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0), i = 0
        while i + 8 <= n { acc += UnsafeRawPointer(p + i).loadUnaligned(as: V.self); i += 8 }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    static func sumSquaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, from mu: Float) -> Float {
        var acc = V(repeating: 0), i = 0
        let m = V(repeating: mu)
        while i + 8 <= n { let d = UnsafeRawPointer(p + i).loadUnaligned(as: V.self) - m; acc.addProduct(d, d); i += 8 }
        var s = acc.sum()
        while i < n { let d = p[i] - mu; s += d * d; i += 1 }
        return s
    }

    /// (sum a, sum a b).
    static func sumAndDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var s = V(repeating: 0), d = V(repeating: 0), i = 0
        while i + 8 <= n {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: V.self)
            s += va; d.addProduct(va, UnsafeRawPointer(b + i).loadUnaligned(as: V.self)); i += 8
        }
        var ss = s.sum(), dd = d.sum()
        while i < n { ss += a[i]; dd += a[i] * b[i]; i += 1 }
        return (ss, dd)
    }

    /// y = (x - m) a + b.
    static func scaleShift(
        _ x: UnsafePointer<Float>, _ n: Int, _ m: Float, _ a: Float, _ b: Float, _ y: UnsafeMutablePointer<Float>
    ) {
        let vm = V(repeating: m), va = V(repeating: a), vb = V(repeating: b)
        var i = 0
        while i + 8 <= n {
            let d = UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - vm
            UnsafeMutableRawPointer(y + i).storeBytes(of: vb.addingProduct(va, d), as: V.self)
            i += 8
        }
        while i < n { y[i] = (x[i] - m) * a + b; i += 1 }
    }

    /// out = k1 dy + k2 (x - m) + k3.
    static func combine(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, _ m: Float, _ k1: Float, _ k2: Float,
        _ k3: Float, _ out: UnsafeMutablePointer<Float>
    ) {
        let vm = V(repeating: m), v1 = V(repeating: k1), v2 = V(repeating: k2), v3 = V(repeating: k3)
        var i = 0
        while i + 8 <= n {
            let r = v3.addingProduct(v1, UnsafeRawPointer(dy + i).loadUnaligned(as: V.self))
                .addingProduct(v2, UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - vm)
            UnsafeMutableRawPointer(out + i).storeBytes(of: r, as: V.self)
            i += 8
        }
        while i < n { out[i] = k1 * dy[i] + k2 * (x[i] - m) + k3; i += 1 }
    }
}
