import Autodiff
import Datasets

/// Tensor conveniences over `Datasets.ImageGrid` (which works on plain Floats).
extension ImageGrid {
    /// Lays out `images` (N, C, S, S) in [-1, 1] as `columns` per row (see `compose(_:count:...)`).
    public static func compose(_ images: Tensor, columns: Int, scale: Int = 1)
        -> (pixels: [UInt8], width: Int, height: Int, channels: Int)
    {
        compose(
            images.scalars, count: images.shape[0], channels: images.shape[1], height: images.shape[2],
            width: images.shape[3], columns: columns, scale: scale)
    }

    /// Composes and writes a grid PNG atomically.
    public static func write(_ images: Tensor, columns: Int, to path: String) throws {
        try write(
            images.scalars, count: images.shape[0], channels: images.shape[1], size: images.shape[2], columns: columns,
            to: path)
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
