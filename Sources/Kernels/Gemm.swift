import CDNNL

/// Matrix multiply through oneDNN's `dnnl_sgemm` (row-major, OpenMP threads).
/// C (M x N) = alpha * op(A) * op(B) + beta * C, op(A) is M x K, op(B) is K x N.
public enum Gemm {
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float = 0,
        c: UnsafeMutablePointer<Float>
    ) {
        guard m > 0, n > 0 else { return }
        let lda = transA ? m : k, ldb = transB ? k : n
        DNNLContext.shared.locked {
            check(
                dnnl_sgemm(
                    transA ? 84 : 78, transB ? 84 : 78, Int64(m), Int64(n), Int64(k), alpha, a, Int64(max(lda, 1)),
                    b, Int64(max(ldb, 1)), beta, c, Int64(n)), "dnnl_sgemm")
            KernelCounters.add(macs: m * n * k)
        }
    }
}
