import Autodiff
import NN
import SeededRandom

/// Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
/// GAN Training", policy color,translation,cutout): the same random transforms are applied to real
/// and fake images every time D sees them, so D cannot memorise 100 images and G still gets
/// gradients through the transforms. Matches the reference DiffAugment_pytorch.py.
public struct DiffAugment: Codable, Equatable, Sendable {
    public var color = true
    public var translation = true
    public var cutout = true
    /// Shift up to this fraction of the image size (0.125 in the paper).
    public var translationRatio: Float = 0.125
    /// Cut out a square of this fraction of the image size (0.5 in the paper).
    public var cutoutRatio: Float = 0.5

    public init(color: Bool = true, translation: Bool = true, cutout: Bool = true) {
        self.color = color; self.translation = translation; self.cutout = cutout
    }

    /// Augments a batch (N, C, H, W) with randomness from `generator`. Under data-parallel
    /// training `x` holds the rows `shard` of a global batch: the transforms of the whole batch are
    /// drawn, as one process draws them, and this shard's applied.
    public func callAsFunction(_ x: Tensor, generator g: inout SeededGenerator, shard: BatchShard? = nil) throws -> Tensor {
        var x = x
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let shard = shard ?? .whole(x.shape[0])
        let n = shard.total, rows = shard.rows.count
        guard x.shape[0] == rows else {
            throw TensorError.invalidShape(op: "DiffAugment", shape: x.shape, reason: "not the \(rows) rows of its shard")
        }
        if color {
            // brightness: x + U(-0.5, 0.5) per image
            x = try x + shard.take(Tensor.randomUniform([n, 1, 1, 1], low: -0.5, high: 0.5, generator: &g))
            // saturation: (x - mean_c) * U(0, 2) + mean_c (no-op on grayscale)
            if c > 1 {
                let m = try x.mean(axes: [1], keepDims: true)
                x = try (x - m) * shard.take(Tensor.randomUniform([n, 1, 1, 1], low: 0, high: 2, generator: &g)) + m
            }
            // contrast: (x - mean_chw) * U(0.5, 1.5) + mean_chw
            let m = try x.mean(axes: [1, 2, 3], keepDims: true)
            x = try (x - m) * shard.take(Tensor.randomUniform([n, 1, 1, 1], low: 0.5, high: 1.5, generator: &g)) + m
        }
        if translation {
            let sy = Int(Float(h) * translationRatio + 0.5), sx = Int(Float(w) * translationRatio + 0.5)
            let dy = (0..<n).map { _ in g.int(below: 2 * sy + 1) - sy }
            let dx = (0..<n).map { _ in g.int(below: 2 * sx + 1) - sx }
            x = try x.translated(dy: shard.take(dy), dx: shard.take(dx))
        }
        if cutout {
            let ch = Int(Float(h) * cutoutRatio + 0.5), cw = Int(Float(w) * cutoutRatio + 0.5)
            var mask = [Float](repeating: 1, count: rows * h * w)
            for i in 0..<n {
                // centre anywhere such that the square may hang over the edge, as the reference does
                let cy = g.int(below: h + (1 - ch % 2)), cx = g.int(below: w + (1 - cw % 2))
                guard shard.rows.contains(i) else { continue }
                let r = i - shard.rows.lowerBound
                for y in max(0, cy - ch / 2)..<min(h, cy - ch / 2 + ch) {
                    for xx in max(0, cx - cw / 2)..<min(w, cx - cw / 2 + cw) { mask[(r * h + y) * w + xx] = 0 }
                }
            }
            x = try x * Tensor(shape: [rows, 1, h, w], scalars: mask)
        }
        return x
    }
}
