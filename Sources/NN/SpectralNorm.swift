import Autodiff
import SeededRandom

/// Spectral normalisation (Miyato et al. 2018, https://arxiv.org/abs/1802.05957): a weight W,
/// seen as a matrix (out, in * kh * kw), is divided by an estimate of its largest singular
/// value sigma(W), so the layer is (about) 1-Lipschitz.
///
/// The estimate comes from power iteration with a persistent left singular vector `u` (out),
/// saved in checkpoints as the buffer `weight_u`, as PyTorch's `torch.nn.utils.spectral_norm`
/// does (PyTorch also saves `weight_v`; here v is recomputed from u, so `u` alone is the state).
/// One iteration per training-mode forward:
///   v = normalize(W^T u),  u = normalize(W v),  sigma = u^T W v,
/// and in evaluation mode the stored u is used as is (v = normalize(W^T u)).
///
/// NOTE: u and v are constants for autodiff, as in the paper and in PyTorch; sigma = u^T W v is
/// built from tensor ops so that its gradient u v^T reaches W. With u fixed and
/// v = normalize(W^T u), sigma = ||W^T u|| and d sigma / dW = u v^T exactly, so the gradient
/// of the evaluation-mode weight is the true one (checked by finite differences).
public final class SpectralNorm {
    /// The left singular vector estimate (out), the buffer `weight_u`.
    public let u: Parameter
    /// Added to norms before dividing (PyTorch's eps).
    public let epsilon: Float

    /// A random unit `u` for a weight with `outputs` rows.
    public init(outputs: Int, epsilon: Float = 1e-12, generator: inout SeededGenerator) {
        var start = (0..<outputs).map { _ in generator.normal() }
        SpectralNorm.normalize(&start, epsilon: epsilon)
        u = Parameter(try! Tensor(shape: [outputs], scalars: start), requiresGrad: false)
        self.epsilon = epsilon
    }

    /// W / sigma(W) for `weight` (out, ...). `update` runs one power-iteration step first and
    /// stores the new u (training mode); otherwise the stored u is used unchanged.
    public func callAsFunction(_ weight: Tensor, update: Bool) throws -> Tensor {
        let rows = weight.shape[0], columns = weight.count / rows
        guard rows == u.count else {
            throw TensorError.shapeMismatch(op: "spectral norm (weight rows vs u)", lhs: weight.shape, rhs: u.shape)
        }
        let w = weight.scalars  // (out, in*kh*kw), row-major
        var uu = Array(UnsafeBufferPointer(start: u.pointer, count: rows))
        // v = normalize(W^T u)  (in*kh*kw)
        var v = [Float](repeating: 0, count: columns)
        for r in 0..<rows { let s = uu[r]; for c in 0..<columns { v[c] += w[r * columns + c] * s } }
        SpectralNorm.normalize(&v, epsilon: epsilon)
        if update {
            // u = normalize(W v)  (out)
            for r in 0..<rows {
                var s: Float = 0
                for c in 0..<columns { s += w[r * columns + c] * v[c] }
                uu[r] = s
            }
            SpectralNorm.normalize(&uu, epsilon: epsilon)
            u.pointer.update(from: uu, count: rows)
        }
        // sigma = u^T W v: (1, out) x (out, cols) -> (1, cols), times v, summed -> ()
        let uRow = try Tensor(shape: [1, rows], scalars: uu), vRow = try Tensor(shape: [1, columns], scalars: v)
        let sigma = try (Tensor.matmul(uRow, weight.reshaped([rows, columns])) * vRow).sum()
        return try weight / sigma
    }

    /// x / max(||x||, eps), as torch.nn.functional.normalize.
    static func normalize(_ x: inout [Float], epsilon: Float) {
        let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        let scale = 1 / max(norm, epsilon)
        for i in x.indices { x[i] *= scale }
    }
}
