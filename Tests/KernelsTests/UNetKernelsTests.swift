import SeededRandom
import Testing

@testable import Kernels

// The diffusion U-Net's Swift kernels against the plain loops in Reference/UNetReference.swift,
// on awkward shapes: batch 1, one channel, 1 x 1 maps, odd sizes, groups of one channel, vector tails.

@Test(
    "group norm forward and backward equal the reference",
    arguments: [
        GroupNormGeometry(n: 1, c: 1, groups: 1, h: 1, w: 1),
        GroupNormGeometry(n: 1, c: 3, groups: 3, h: 5, w: 7),
        GroupNormGeometry(n: 2, c: 32, groups: 8, h: 7, w: 7),
        GroupNormGeometry(n: 3, c: 6, groups: 2, h: 1, w: 13),
        GroupNormGeometry(n: 2, c: 96, groups: 8, h: 14, w: 14),
    ])
func groupNormMatchesReference(_ g: GroupNormGeometry) {
    // Offset and scaled inputs: a two-pass variance matters when the mean is far from 0.
    let x = randomArray(g.shape.reduce(1, *), seed: 40).map { $0 * 3 + 5 }
    let scale = randomArray(g.c, seed: 41), shift = randomArray(g.c, seed: 42)
    var y = [Float](repeating: .nan, count: x.count)
    var mean = [Float](repeating: .nan, count: g.n * g.groups), rstd = mean
    GroupNormKernel.forward(g, input: x, scale: scale, shift: shift, output: &y, mean: &mean, rstd: &rstd)
    let ref = Reference.groupNormForward(g, input: x, scale: scale, shift: shift)
    #expect(maxRelativeError(y, ref.output) < 1e-4, "\(g)")
    #expect(maxRelativeError(mean, ref.mean) < 1e-5, "\(g)")
    #expect(maxRelativeError(rstd, ref.rstd) < 1e-4, "\(g)")
    let dy = randomArray(x.count, seed: 43)
    var dx = [Float](repeating: .nan, count: x.count), dscale = [Float](repeating: .nan, count: g.c), dshift = dscale
    GroupNormKernel.backward(
        g, input: x, gradOutput: dy, scale: scale, mean: mean, rstd: rstd, gradInput: &dx,
        gradScale: &dscale, gradShift: &dshift)
    let back = Reference.groupNormBackward(g, input: x, gradOutput: dy, scale: scale)
    // A group of one value normalises to 0 whatever x is: its dx is 0 up to rounding, so skip it.
    if g.groupSize > 1 { #expect(maxRelativeError(dx, back.input) < 1e-3, "\(g)") }
    #expect(maxRelativeError(dscale, back.scale) < 1e-4, "\(g)")
    #expect(maxRelativeError(dshift, back.shift) < 1e-4, "\(g)")
}

@Test(
    "nearest upsampling forward and backward equal the reference",
    arguments: [(1, 1, 1, 1, 2), (1, 3, 5, 7, 2), (2, 4, 7, 7, 2), (3, 2, 3, 2, 3), (1, 2, 4, 3, 1)])
func upsampleMatchesReference(_ s: (Int, Int, Int, Int, Int)) {
    let (n, c, h, w, f) = s
    let x = randomArray(n * c * h * w, seed: 44)
    var y = [Float](repeating: .nan, count: x.count * f * f)
    UpsampleKernel.forward(n: n, c: c, h: h, w: w, factor: f, input: x, output: &y)
    #expect(y == Reference.upsampleNearestForward(n: n, c: c, h: h, w: w, factor: f, input: x), "\(s)")
    let dy = randomArray(y.count, seed: 45)
    var dx = [Float](repeating: .nan, count: x.count)
    UpsampleKernel.backward(n: n, c: c, h: h, w: w, factor: f, gradOutput: dy, gradInput: &dx)
    #expect(
        maxRelativeError(dx, Reference.upsampleNearestBackward(n: n, c: c, h: h, w: w, factor: f, gradOutput: dy)) < 1e-6, "\(s)")
}

@Test("attention forward and backward equal the reference", arguments: [(1, 1, 1), (2, 7, 3), (1, 5, 1), (3, 49, 16)])
func attentionMatchesReference(_ s: (Int, Int, Int)) {
    let (b, l, d) = s
    let q = randomArray(b * l * d, seed: 46), k = randomArray(b * l * d, seed: 47), v = randomArray(b * l * d, seed: 48)
    var out = [Float](repeating: .nan, count: q.count), p = [Float](repeating: .nan, count: b * l * l)
    AttentionKernel.forward(b: b, l: l, d: d, q: q, k: k, v: v, out: &out, p: &p)
    #expect(maxRelativeError(out, Reference.attentionForward(b: b, l: l, d: d, q: q, k: k, v: v)) < 1e-5, "\(s)")
    let g = randomArray(q.count, seed: 49)
    var dq = [Float](repeating: .nan, count: q.count), dk = dq, dv = dq
    AttentionKernel.backward(b: b, l: l, d: d, q: q, k: k, v: v, p: p, gradOut: g, gradQ: &dq, gradK: &dk, gradV: &dv)
    let ref = Reference.attentionBackward(b: b, l: l, d: d, q: q, k: k, v: v, gradOut: g)
    #expect(maxRelativeError(dq, ref.q) < 1e-4, "\(s) dq")
    #expect(maxRelativeError(dk, ref.k) < 1e-4, "\(s) dk")
    #expect(maxRelativeError(dv, ref.v) < 1e-4, "\(s) dv")
}

@Test("timestep embedding equals the reference", arguments: [2, 6, 32, 128])
func timestepEmbeddingMatchesReference(_ dimension: Int) {
    let t: [Float] = [0, 1, 17, 500, 999]
    var out = [Float](repeating: .nan, count: t.count * dimension)
    TimestepEmbeddingKernel.forward(timesteps: t, count: t.count, dimension: dimension, output: &out)
    // Float arguments up to 999 radians: sin and cos agree with the Double reference to ~1e-4.
    #expect(maxRelativeError(out, Reference.timestepEmbedding(t, dimension: dimension)) < 5e-4)
    // Rows start sin(0) = 0 ... cos(0) = 1 at t = 0.
    #expect(out[0] == 0 && out[dimension / 2] == 1)
}

/// The group norm on a convolution's channel-blocked layout (nChw16c and nChw8c) equals the plain
/// reference: groups narrower than a block (4 channels), as wide (16), wider (32, two blocks), one
/// channel each; batch 3 so images split unevenly over two threads.
@Test(
    "group norm on blocked layouts equals the reference",
    arguments: [
        GroupNormGeometry(n: 3, c: 32, groups: 8, h: 7, w: 5),
        GroupNormGeometry(n: 2, c: 48, groups: 3, h: 4, w: 4),
        GroupNormGeometry(n: 3, c: 64, groups: 2, h: 3, w: 3),
        GroupNormGeometry(n: 1, c: 16, groups: 16, h: 2, w: 3),
        GroupNormGeometry(n: 2, c: 96, groups: 8, h: 14, w: 14),
    ], [16, 8])
func groupNormOnBlockedLayouts(_ g: GroupNormGeometry, _ block: Int) {
    let layout = Layout.channelBlocked(block, shape: g.shape)
    #expect(layout.channelBlock(g.shape) == block && GroupNormKernel.reads(layout, g))
    let x = randomArray(g.shape.reduce(1, *), seed: 50).map { $0 * 3 + 5 }
    let scale = randomArray(g.c, seed: 51), shift = randomArray(g.c, seed: 52), dy = randomArray(x.count, seed: 53)
    func blocked(_ a: [Float]) -> [Float] {
        var out = [Float](repeating: .nan, count: layout.physicalCount(g.shape))
        Reorder.run(shape: g.shape, from: .plain, a, to: layout, &out)
        return out
    }
    let (xb, dyb) = (blocked(x), blocked(dy))
    var mean = [Float](repeating: .nan, count: g.n * g.groups), rstd = mean
    let y = plain(g.shape, layout) {
        GroupNormKernel.forward(g, layout: layout, input: xb, scale: scale, shift: shift, output: $0, mean: &mean, rstd: &rstd)
    }
    let ref = Reference.groupNormForward(g, input: x, scale: scale, shift: shift)
    #expect(maxRelativeError(y, ref.output) < 1e-4, "\(g) nChw\(block)c")
    #expect(maxRelativeError(mean, ref.mean) < 1e-5 && maxRelativeError(rstd, ref.rstd) < 1e-4, "\(g) nChw\(block)c")
    var dscale = [Float](repeating: .nan, count: g.c), dshift = dscale
    let dx = plain(g.shape, layout) {
        GroupNormKernel.backward(
            g, layout: layout, input: xb, gradOutput: dyb, scale: scale, mean: mean, rstd: rstd, gradInput: $0,
            gradScale: &dscale, gradShift: &dshift)
    }
    let back = Reference.groupNormBackward(g, input: x, gradOutput: dy, scale: scale)
    if g.groupSize > 1 { #expect(maxRelativeError(dx, back.input) < 1e-3, "\(g) nChw\(block)c") }
    #expect(maxRelativeError(dscale, back.scale) < 1e-4 && maxRelativeError(dshift, back.shift) < 1e-4, "\(g) nChw\(block)c")
}

/// y = x + bias[n, c] and its bias gradient, plain and on both blocked layouts, equal the reference.
@Test("per-channel bias equals the reference", arguments: [1, 8, 16])
func channelBiasMatchesReference(_ block: Int) {
    let shape = [3, 32, 5, 7]
    let layout = block == 1 ? Layout.plain : Layout.channelBlocked(block, shape: shape)
    let x = randomArray(shape.reduce(1, *), seed: 54), bias = randomArray(3 * 32, seed: 55)
    let dy = randomArray(x.count, seed: 56)
    var xb = [Float](repeating: .nan, count: layout.physicalCount(shape)), dyb = xb
    Reorder.run(shape: shape, from: .plain, x, to: layout, &xb)
    Reorder.run(shape: shape, from: .plain, dy, to: layout, &dyb)
    let y = plain(shape, layout) { ChannelBiasKernel.forward(shape: shape, layout: layout, input: xb, bias: bias, output: $0) }
    #expect(maxRelativeError(y, Reference.channelBiasForward(shape: shape, input: x, bias: bias)) < 1e-6)
    var db = [Float](repeating: .nan, count: bias.count)
    ChannelBiasKernel.backward(shape: shape, layout: layout, gradOutput: dyb, gradBias: &db)
    #expect(maxRelativeError(db, Reference.channelBiasBackward(shape: shape, gradOutput: dy)) < 1e-5)
}

/// Upsampling a convolution's nChw16c / nChw8c data (B channels a pixel) equals the plain reference.
@Test("nearest upsampling on blocked layouts equals the reference", arguments: [8, 16], [2, 3])
func upsampleOnBlockedLayouts(_ block: Int, _ factor: Int) {
    let (n, c, h, w) = (2, 32, 3, 5)
    let inShape = [n, c, h, w], outShape = [n, c, h * factor, w * factor]
    let (inLayout, outLayout) = (Layout.channelBlocked(block, shape: inShape), Layout.channelBlocked(block, shape: outShape))
    let x = randomArray(n * c * h * w, seed: 57), dy = randomArray(outShape.reduce(1, *), seed: 58)
    var xb = [Float](repeating: .nan, count: x.count), dyb = [Float](repeating: .nan, count: dy.count)
    Reorder.run(shape: inShape, from: .plain, x, to: inLayout, &xb)
    Reorder.run(shape: outShape, from: .plain, dy, to: outLayout, &dyb)
    let y = plain(outShape, outLayout) {
        UpsampleKernel.forward(n: n, c: c, h: h, w: w, factor: factor, lanes: block, input: xb, output: $0)
    }
    #expect(y == Reference.upsampleNearestForward(n: n, c: c, h: h, w: w, factor: factor, input: x))
    let dx = plain(inShape, inLayout) {
        UpsampleKernel.backward(n: n, c: c, h: h, w: w, factor: factor, lanes: block, gradOutput: dyb, gradInput: $0)
    }
    let ref = Reference.upsampleNearestBackward(n: n, c: c, h: h, w: w, factor: factor, gradOutput: dy)
    #expect(maxRelativeError(dx, ref) < 1e-6)
}
