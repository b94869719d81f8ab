import Testing

@testable import Kernels

/// Batch-norm primitives are created with one OpenMP thread (`OpenMP` in DNNL.swift); that only
/// works if libgomp's functions are found at run time and the count is restored afterwards.
@Suite struct OpenMPTests {
    @Test func threadCountIsSetInsideAndRestoredAfter() throws {
        let before = try #require(OpenMP.maxThreads, "libgomp's omp_get_max_threads was not found")
        let inside = OpenMP.withThreads(1) { OpenMP.maxThreads }
        #expect(inside == 1)
        #expect(OpenMP.withThreads(3) { OpenMP.maxThreads } == 3)
        #expect(OpenMP.maxThreads == before)
    }
}
