// Group normalisation (Wu and He 2018; torch.nn.GroupNorm) over plain NCHW data or a
// convolution's channel-blocked layout, in Swift.
// Legend: N batch, C channels, G groups, H x W spatial, M = (C / G) H W values per group.
// Group g of image n holds channels g C/G ..< (g+1) C/G; in NCHW those M values are contiguous,
// so each (n, g) is one run of memory; in nChw16c they are lanes of H W vectors. Statistics per
// (n, g): mean and biased variance, as torch.
//
// NOTE: reading the blocked layout saves a reorder to NCHW before every group norm and one back
// before every convolution after it (the U-Net has one of each per norm): reorders were 21% of
// oneDNN's time in a diffusion training step when the kernel read NCHW only.
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
/// Data is plain NCHW or a convolution's nChw{8,16}c (`Layout.channelBlock`); output and input
/// gradient are written in the layout given. Images are split over the kernels' threads.
public enum GroupNormKernel {
    typealias V = SIMD8<Float>

    /// Whether the kernels read `layout` for a tensor of `g.shape` (plain or nChw{8,16}c).
    public static func reads(_ layout: Layout, _ g: GroupNormGeometry) -> Bool { layout.channelBlock(g.shape) != nil }

    /// y = scale[c] (x - mean[n, g]) rstd[n, g] + shift[c]; writes mean and rstd for the backward.
    public static func forward(
        _ g: GroupNormGeometry, layout: Layout = .plain, input x: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        let block = layout.channelBlock(g.shape)
        precondition(block != nil, "GroupNormKernel: layout \(layout) not readable for \(g)")
        KernelParallel.forEach(g.n) { _, images in
            switch block {
            case 16: forwardBlocked(SIMD16<Float>.self, g, images, x, scale, shift, y, mean, rstd)
            case 8: forwardBlocked(SIMD8<Float>.self, g, images, x, scale, shift, y, mean, rstd)
            default: forwardPlain(g, images, x, scale, shift, y, mean, rstd)
            }
        }
    }

    /// Gradients of `forward`: with xhat = (x - mean) rstd over a group of M values,
    /// dx = rstd (scale dy - mean(scale dy) - xhat mean(scale dy xhat)),
    /// dscale[c] = sum over (n, h, w) of dy xhat, dshift[c] = sum of dy. `x`, `dy` and `dx` in `layout`.
    public static func backward(
        _ g: GroupNormGeometry, layout: Layout = .plain, input x: UnsafePointer<Float>, gradOutput dy: UnsafePointer<Float>,
        scale: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        gradInput dx: UnsafeMutablePointer<Float>, gradScale: UnsafeMutablePointer<Float>,
        gradShift: UnsafeMutablePointer<Float>
    ) {
        let block = layout.channelBlock(g.shape)
        precondition(block != nil, "GroupNormKernel: layout \(layout) not readable for \(g)")
        // Per-thread partial sums of dscale and dshift (threads take disjoint images), added at the end.
        let threads = KernelParallel.threads(g.n)
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: 2 * g.c * threads)
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: 2 * g.c * threads)
        KernelParallel.forEach(g.n) { t, images in
            let ds = partial + 2 * g.c * t, dh = ds + g.c
            switch block {
            case 16: backwardBlocked(SIMD16<Float>.self, g, images, x, dy, scale, mean, rstd, dx, ds, dh)
            case 8: backwardBlocked(SIMD8<Float>.self, g, images, x, dy, scale, mean, rstd, dx, ds, dh)
            default: backwardPlain(g, images, x, dy, scale, mean, rstd, dx, ds, dh)
            }
        }
        for c in 0..<g.c {
            var a: Float = 0, b: Float = 0
            for t in 0..<threads { a += partial[2 * g.c * t + c]; b += partial[2 * g.c * t + g.c + c] }
            gradScale[c] = a; gradShift[c] = b
        }
    }

    // MARK: Plain NCHW: each (n, g) is one contiguous run of M values

    static func forwardPlain(
        _ g: GroupNormGeometry, _ images: Range<Int>, _ x: UnsafePointer<Float>, _ scale: UnsafePointer<Float>,
        _ shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>,
        _ rstd: UnsafeMutablePointer<Float>
    ) {
        let m = g.groupSize, hw = g.h * g.w, cpg = g.channelsPerGroup
        for ng in (images.lowerBound * g.groups)..<(images.upperBound * g.groups) {
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

    static func backwardPlain(
        _ g: GroupNormGeometry, _ images: Range<Int>, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        _ scale: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>,
        _ dx: UnsafeMutablePointer<Float>, _ gradScale: UnsafeMutablePointer<Float>, _ gradShift: UnsafeMutablePointer<Float>
    ) {
        let m = g.groupSize, hw = g.h * g.w, cpg = g.channelsPerGroup
        for ng in (images.lowerBound * g.groups)..<(images.upperBound * g.groups) {
            let base = ng * m, mu = mean[ng], r = rstd[ng], c0 = (ng % g.groups) * cpg
            // Per channel: sum dy and sum dy x (xhat sums follow from them).
            var a: Float = 0, b: Float = 0  // sum scale dy, sum scale dy xhat
            for j in 0..<cpg {
                let (s, sx) = sumAndDot(dy + base + j * hw, x + base + j * hw, hw)
                let dyXhat = r * (sx - mu * s)
                gradScale[c0 + j] += dyXhat; gradShift[c0 + j] += s
                a += scale[c0 + j] * s; b += scale[c0 + j] * dyXhat
            }
            // dx = k1[c] dy + k2 (x - mean) + k3: the group terms folded into two constants
            // (x - mean, not k2 x + const, for the reason noted in `forwardPlain`).
            let k2 = -r * r * b / Float(m), k3 = -r * a / Float(m)
            for j in 0..<cpg {
                let k1 = r * scale[c0 + j], off = base + j * hw
                combine(dy + off, x + off, hw, mu, k1, k2, k3, dx + off)
            }
        }
    }

    // MARK: nChw{B}c: image n, channel block b is H W vectors of B channels, one per pixel
    //
    // Per-channel sums are B-lane vector sums over the H W pixels of a block; a group's sums add
    // its channels' lanes (groups may be narrower or wider than a block). The same two passes and
    // the same (x - mean) forms as the plain loops, with per-lane constants.

    static func forwardBlocked<W: SIMD>(
        _: W.Type, _ g: GroupNormGeometry, _ images: Range<Int>, _ x: UnsafePointer<Float>,
        _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        _ mean: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>
    ) where W.Scalar == Float {
        let b = W.scalarCount, hw = g.h * g.w, blocks = g.c / b, cpg = g.channelsPerGroup, m = Float(g.groupSize)
        let perChannel = UnsafeMutablePointer<Float>.allocate(capacity: 3 * g.c)
        defer { perChannel.deallocate() }
        let channelMean = perChannel + g.c, channelScale = perChannel + 2 * g.c
        for n in images {
            let image = x + n * g.c * hw
            // Pass 1: channel sums -> group means.
            for cb in 0..<blocks {
                let s = laneSums(W.self, image + cb * hw * b, hw)
                for l in 0..<b { perChannel[cb * b + l] = s[l] }
            }
            for gi in 0..<g.groups {
                var s: Float = 0
                for j in 0..<cpg { s += perChannel[gi * cpg + j] }
                let mu = s / m
                mean[n * g.groups + gi] = mu
                for j in 0..<cpg { channelMean[gi * cpg + j] = mu }
            }
            // Pass 2: squared deviations from the group mean -> rstd; per-channel a = scale rstd.
            for cb in 0..<blocks {
                let vm = loadVector(W.self, channelMean + cb * b)
                let s = laneSquaredDeviations(W.self, image + cb * hw * b, hw, vm)
                for l in 0..<b { perChannel[cb * b + l] = s[l] }
            }
            for gi in 0..<g.groups {
                var s: Float = 0
                for j in 0..<cpg { s += perChannel[gi * cpg + j] }
                let r = 1 / (s / m + g.epsilon).squareRoot()
                rstd[n * g.groups + gi] = r
                for j in 0..<cpg { channelScale[gi * cpg + j] = scale[gi * cpg + j] * r }
            }
            // Pass 3: y = (x - mean) a + shift.
            for cb in 0..<blocks {
                let off = n * g.c * hw + cb * hw * b
                let vm = loadVector(W.self, channelMean + cb * b), va = loadVector(W.self, channelScale + cb * b)
                let vb = loadVector(W.self, shift + cb * b)
                for i in 0..<hw {
                    let d = loadVector(W.self, x + off + i * b) - vm
                    storeVector(vb.addingProduct(va, d), y + off + i * b)
                }
            }
        }
    }

    static func backwardBlocked<W: SIMD>(
        _: W.Type, _ g: GroupNormGeometry, _ images: Range<Int>, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        _ scale: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>,
        _ dx: UnsafeMutablePointer<Float>, _ gradScale: UnsafeMutablePointer<Float>, _ gradShift: UnsafeMutablePointer<Float>
    ) where W.Scalar == Float {
        let b = W.scalarCount, hw = g.h * g.w, blocks = g.c / b, cpg = g.channelsPerGroup, m = Float(g.groupSize)
        // Per channel: sum dy, sum dy x, then the constants k1 (channel), k2, k3 and the mean (group).
        let work = UnsafeMutablePointer<Float>.allocate(capacity: 6 * g.c)
        defer { work.deallocate() }
        let sumDy = work, sumDyX = work + g.c, k1 = work + 2 * g.c, k2 = work + 3 * g.c, k3 = work + 4 * g.c
        let channelMean = work + 5 * g.c
        for n in images {
            let start = n * g.c * hw
            for cb in 0..<blocks {
                let (s, sx) = laneSumAndDot(W.self, dy + start + cb * hw * b, x + start + cb * hw * b, hw)
                for l in 0..<b { sumDy[cb * b + l] = s[l]; sumDyX[cb * b + l] = sx[l] }
            }
            for gi in 0..<g.groups {
                let mu = mean[n * g.groups + gi], r = rstd[n * g.groups + gi]
                var a: Float = 0, bb: Float = 0  // sum scale dy, sum scale dy xhat
                for j in 0..<cpg {
                    let c = gi * cpg + j
                    let dyXhat = r * (sumDyX[c] - mu * sumDy[c])
                    gradScale[c] += dyXhat; gradShift[c] += sumDy[c]
                    a += scale[c] * sumDy[c]; bb += scale[c] * dyXhat
                }
                for j in 0..<cpg {
                    let c = gi * cpg + j
                    k1[c] = r * scale[c]; k2[c] = -r * r * bb / m; k3[c] = -r * a / m; channelMean[c] = mu
                }
            }
            for cb in 0..<blocks {
                let off = start + cb * hw * b, p = cb * b
                let v1 = loadVector(W.self, k1 + p), v2 = loadVector(W.self, k2 + p), v3 = loadVector(W.self, k3 + p)
                let vm = loadVector(W.self, channelMean + p)
                for i in 0..<hw {
                    let r = v3.addingProduct(v1, loadVector(W.self, dy + off + i * b))
                        .addingProduct(v2, loadVector(W.self, x + off + i * b) - vm)
                    storeVector(r, dx + off + i * b)
                }
            }
        }
    }

    @inline(__always) static func loadVector<W: SIMD>(_: W.Type, _ p: UnsafePointer<Float>) -> W where W.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: W.self)
    }
    @inline(__always) static func loadVector<W: SIMD>(_: W.Type, _ p: UnsafeMutablePointer<Float>) -> W
    where W.Scalar == Float { UnsafeRawPointer(p).loadUnaligned(as: W.self) }
    @inline(__always) static func storeVector<W: SIMD>(_ v: W, _ p: UnsafeMutablePointer<Float>) where W.Scalar == Float {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: W.self)
    }

    /// Lane-wise sum of `count` vectors of `W.scalarCount` floats.
    @inline(__always) static func laneSums<W: SIMD>(_: W.Type, _ p: UnsafePointer<Float>, _ count: Int) -> W
    where W.Scalar == Float {
        var acc = W(repeating: 0)
        for i in 0..<count { acc += loadVector(W.self, p + i * W.scalarCount) }
        return acc
    }

    @inline(__always) static func laneSquaredDeviations<W: SIMD>(_: W.Type, _ p: UnsafePointer<Float>, _ count: Int, _ m: W)
        -> W where W.Scalar == Float
    {
        var acc = W(repeating: 0)
        for i in 0..<count {
            let d = loadVector(W.self, p + i * W.scalarCount) - m
            acc.addProduct(d, d)
        }
        return acc
    }

    @inline(__always) static func laneSumAndDot<W: SIMD>(
        _: W.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int
    ) -> (W, W) where W.Scalar == Float {
        var s = W(repeating: 0), d = W(repeating: 0)
        for i in 0..<count {
            let va = loadVector(W.self, a + i * W.scalarCount)
            s += va
            d.addProduct(va, loadVector(W.self, b + i * W.scalarCount))
        }
        return (s, d)
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
