// Nearest-neighbour upsampling by an integer factor over plain NCHW data (torch.nn.Upsample with
// mode "nearest" and an integer scale_factor), in Swift.
// Legend: N batch, C channels, H x W input, S factor, (H S) x (W S) output:
// out[n, c, y, x] = in[n, c, y / S, x / S]; the backward sums each S x S block of the gradient.
//
// NOTE: oneDNN 2.6 has a resampling primitive, but this op only copies memory; a row is widened
// once and copied S times, which needs no library call. Reference.upsampleNearest* is the plain
// index-by-index version the tests compare with.

/// Nearest-neighbour upsampling kernels. `lanes` 1: plain NCHW; `lanes` B: oneDNN's nChw{B}c
/// (C a multiple of B), where each pixel is a vector of B channels of one block and the blocks
/// are the planes: the same loops with B floats per pixel.
public enum UpsampleKernel {
    /// Writes the (N, C, H S, W S) output in the input's layout.
    public static func forward(
        n: Int, c: Int, h: Int, w: Int, factor s: Int, lanes: Int = 1, input x: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>
    ) {
        precondition(lanes >= 1 && c % lanes == 0, "UpsampleKernel: \(c) channels in vectors of \(lanes)")
        let ow = w * s * lanes, iw = w * lanes
        for plane in 0..<(n * c / lanes) {
            for row in 0..<h {
                let src = x + (plane * h + row) * iw
                let dst = y + (plane * h * s + row * s) * ow
                for i in 0..<w {  // widen one row
                    for k in 0..<s { (dst + (i * s + k) * lanes).update(from: src + i * lanes, count: lanes) }
                }
                for k in 1..<s { (dst + k * ow).update(from: dst, count: ow) }  // repeat it S - 1 times
            }
        }
    }

    /// Writes the (N, C, H, W) gradient of the input: the sum of each S x S block of `gradOutput`.
    public static func backward(
        n: Int, c: Int, h: Int, w: Int, factor s: Int, lanes: Int = 1, gradOutput dy: UnsafePointer<Float>,
        gradInput dx: UnsafeMutablePointer<Float>
    ) {
        precondition(lanes >= 1 && c % lanes == 0, "UpsampleKernel: \(c) channels in vectors of \(lanes)")
        let ow = w * s * lanes, iw = w * lanes
        var rowSum = [Float](repeating: 0, count: ow)
        rowSum.withUnsafeMutableBufferPointer { acc in
            let a = acc.baseAddress!
            for plane in 0..<(n * c / lanes) {
                for row in 0..<h {
                    let src = dy + (plane * h * s + row * s) * ow
                    a.update(from: src, count: ow)
                    for k in 1..<s { let r = src + k * ow; for i in 0..<ow { a[i] += r[i] } }  // S rows
                    let dst = dx + (plane * h + row) * iw
                    for i in 0..<w {
                        for l in 0..<lanes {
                            var t: Float = 0
                            for k in 0..<s { t += a[(i * s + k) * lanes + l] }  // S columns
                            dst[i * lanes + l] = t
                        }
                    }
                }
            }
        }
    }
}
