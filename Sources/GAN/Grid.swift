import Autodiff
import Datasets

/// Sample grids: a batch of images laid out in rows, written as one PNG.
public enum ImageGrid {
    /// Lays out `images` (N, C, S, S) in [-1, 1] as `columns` per row with a 2-pixel gap,
    /// each image enlarged `scale` times (nearest neighbour); returns HWC bytes and the size.
    public static func compose(_ images: Tensor, columns: Int, scale: Int = 1)
        -> (pixels: [UInt8], width: Int, height: Int, channels: Int) {
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let rows = (n + columns - 1) / columns, gap = 2
        let cellH = h * scale, cellW = w * scale
        let width = columns * cellW + (columns + 1) * gap, height = rows * cellH + (rows + 1) * gap
        var out = [UInt8](repeating: 40, count: width * height * c)
        let p = images.scalars
        for i in 0..<n {
            let oy = gap + (i / columns) * (cellH + gap), ox = gap + (i % columns) * (cellW + gap)
            for y in 0..<cellH {
                for x in 0..<cellW {
                    for ch in 0..<c {
                        let v = p[((i * c + ch) * h + y / scale) * w + x / scale]
                        out[((oy + y) * width + ox + x) * c + ch] = byte(fromSymmetric: v)
                    }
                }
            }
        }
        return (out, width, height, c)
    }

    /// Composes and writes a grid PNG atomically.
    public static func write(_ images: Tensor, columns: Int, to path: String) throws {
        let scale = images.shape[2] < 64 ? 2 : 1
        let g = compose(images, columns: columns, scale: scale)
        try writePNG(to: path, pixels: g.pixels, width: g.width, height: g.height, channels: g.channels)
    }

    /// Mean pairwise Euclidean distance between images of a batch (a diversity measure).
    public static func meanPairwiseDistance(_ images: Tensor) -> Float {
        let n = images.shape[0], d = images.count / max(n, 1)
        let p = images.scalars
        guard n > 1 else { return 0 }
        var total: Double = 0
        for i in 0..<n {
            for j in (i + 1)..<n {
                var s: Float = 0
                for k in 0..<d { let t = p[i * d + k] - p[j * d + k]; s += t * t }
                total += Double(s.squareRoot())
            }
        }
        return Float(total / Double(n * (n - 1) / 2))
    }
}
