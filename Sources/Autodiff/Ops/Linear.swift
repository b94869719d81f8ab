import Kernels

extension Tensor {
    /// Matrix product op(a) (M, K) x op(b) (K, N) -> (M, N) through oneDNN's sgemm.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        guard a.rank == 2, b.rank == 2 else {
            throw TensorError.shapeMismatch(op: "matmul (needs matrices)", lhs: a.shape, rhs: b.shape)
        }
        let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (k2, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == k2 else { throw TensorError.shapeMismatch(op: "matmul", lhs: a.shape, rhs: b.shape) }
        let out = Tensor(uninitializedShape: [m, n])
        Gemm.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: a.pointer, b: b.pointer, c: out.pointer)
        return result(out, inputs: [a, b]) { g, needs in
            var ga: Tensor?, gb: Tensor?
            if needs[0] {  // dA = g B^T (or B g^T when A was transposed)
                let t = Tensor(uninitializedShape: a.shape)
                if transposeA {
                    Gemm.sgemm(transA: transposeB, transB: true, m: k, n: m, k: n, a: b.pointer, b: g.pointer, c: t.pointer)
                } else {
                    Gemm.sgemm(transA: false, transB: !transposeB, m: m, n: k, k: n, a: g.pointer, b: b.pointer, c: t.pointer)
                }
                ga = t
            }
            if needs[1] {  // dB = A^T g (or g^T A when B was transposed)
                let t = Tensor(uninitializedShape: b.shape)
                if transposeB {
                    Gemm.sgemm(transA: true, transB: transposeA, m: n, n: k, k: m, a: g.pointer, b: a.pointer, c: t.pointer)
                } else {
                    Gemm.sgemm(transA: !transposeA, transB: false, m: k, n: n, k: m, a: a.pointer, b: g.pointer, c: t.pointer)
                }
                gb = t
            }
            return [ga, gb]
        }
    }
}
