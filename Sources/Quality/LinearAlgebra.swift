import Foundation

/// Symmetric eigen-decomposition by the cyclic Jacobi method (Golub and Van Loan, Matrix
/// Computations, 4th ed., Algorithm 8.5.3): plane rotations zero each off-diagonal element in
/// turn until the off-diagonal mass is negligible. Quadratically convergent; O(n^3) per sweep.
public enum SymmetricEigen {
    /// Eigenvalues (ascending) and eigenvectors (columns of the row-major n x n matrix `vectors`,
    /// column k belonging to `values[k]`) of the symmetric row-major n x n matrix `a`.
    public static func decompose(_ a: [Double], n: Int, maxSweeps: Int = 100) throws
        -> (values: [Double], vectors: [Double])
    {
        guard n >= 1, a.count == n * n else {
            throw QualityError.invalidInput("eigen: \(a.count) values for a \(n) x \(n) matrix")
        }
        var m = a, v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let scale = max(a.reduce(0) { $0 + $1 * $1 }, .leastNormalMagnitude)
        for _ in 0..<maxSweeps {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += m[p * n + q] * m[p * n + q] } }
            // NOTE: stop on a relative threshold; an absolute one never triggers for large entries.
            if off <= 1e-30 * scale { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = m[p * n + q]
                    if abs(apq) < 1e-300 { continue }
                    // Rotation angle that zeroes m[p][q]: t = tan(theta), the smaller root, for stability.
                    let theta = (m[q * n + q] - m[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    // m <- J^T m J, applied to rows and columns p and q.
                    for k in 0..<n {
                        let mkp = m[k * n + p], mkq = m[k * n + q]
                        m[k * n + p] = c * mkp - s * mkq
                        m[k * n + q] = s * mkp + c * mkq
                    }
                    for k in 0..<n {
                        let mpk = m[p * n + k], mqk = m[q * n + k]
                        m[p * n + k] = c * mpk - s * mqk
                        m[q * n + k] = s * mpk + c * mqk
                    }
                    // v <- v J accumulates the eigenvectors.
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0 * n + $0] < m[$1 * n + $1] }
        let values = order.map { m[$0 * n + $0] }
        var vectors = [Double](repeating: 0, count: n * n)
        for (newCol, oldCol) in order.enumerated() { for r in 0..<n { vectors[r * n + newCol] = v[r * n + oldCol] } }
        return (values, vectors)
    }

    /// The principal square root of a symmetric positive semi-definite matrix: V diag(sqrt(l)) V^T.
    /// NOTE: covariance estimates have tiny negative eigenvalues from rounding; they are clamped to 0.
    public static func squareRoot(_ a: [Double], n: Int) throws -> [Double] {
        let (l, v) = try decompose(a, n: n)
        let r = l.map { max($0, 0).squareRoot() }
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var s = 0.0
                for k in 0..<n { s += v[i * n + k] * r[k] * v[j * n + k] }
                out[i * n + j] = s; out[j * n + i] = s
            }
        }
        return out
    }
}

/// Row-major n x n matrix product.
func matmul(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for k in 0..<n {
            let aik = a[i * n + k]
            if aik == 0 { continue }
            for j in 0..<n { c[i * n + j] += aik * b[k * n + j] }
        }
    }
    return c
}
