/// Sample grids: a batch of images laid out in rows, written as one PNG. Shared by every
/// generator's training (GAN, diffusion) and the reports; `GAN` adds tensor conveniences.
public enum ImageGrid {
    /// Lays out `count` images (NCHW Floats in [-1, 1], each `channels` x `height` x `width`) as
    /// `columns` per row with a 2-pixel gap, each enlarged `scale` times (nearest neighbour);
    /// returns HWC bytes and the size.
    public static func compose(
        _ pixels: [Float], count n: Int, channels c: Int, height h: Int, width w: Int, columns: Int,
        scale: Int = 1
    ) -> (pixels: [UInt8], width: Int, height: Int, channels: Int) {
        precondition(pixels.count == n * c * h * w, "\(pixels.count) values for \(n) images of \(c)x\(h)x\(w)")
        let rows = (n + columns - 1) / columns, gap = 2
        let cellH = h * scale, cellW = w * scale
        let width = columns * cellW + (columns + 1) * gap, height = rows * cellH + (rows + 1) * gap
        var out = [UInt8](repeating: 40, count: width * height * c)
        for i in 0..<n {
            let oy = gap + (i / columns) * (cellH + gap), ox = gap + (i % columns) * (cellW + gap)
            for y in 0..<cellH {
                for x in 0..<cellW {
                    for ch in 0..<c {
                        let v = pixels[((i * c + ch) * h + y / scale) * w + x / scale]
                        out[((oy + y) * width + ox + x) * c + ch] = UInt8(max(0, min(255, ((v + 1) * 127.5).rounded())))
                    }
                }
            }
        }
        return (out, width, height, c)
    }

    /// Composes square images and writes the grid PNG atomically (enlarged 2x below 64 pixels).
    public static func write(_ pixels: [Float], count: Int, channels: Int, size: Int, columns: Int, to path: String) throws {
        let g = compose(
            pixels, count: count, channels: channels, height: size, width: size, columns: columns,
            scale: size < 64 ? 2 : 1)
        try writePNG(to: path, pixels: g.pixels, width: g.width, height: g.height, channels: g.channels)
    }
}
