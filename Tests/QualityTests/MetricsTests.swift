import Foundation
import SeededRandom
import Testing

@testable import Quality

/// n rows of N(mean, diag(std^2)) in d dimensions.
func gaussian(_ n: Int, _ d: Int, mean: Double = 0, std: Double = 1, seed: UInt64) throws -> FeatureMatrix {
    var g = SeededGenerator(seed: seed)
    return try FeatureMatrix(count: n, dimension: d, values: (0..<(n * d)).map { _ in mean + std * Double(g.normal()) })
}

@Test func jacobiEigenDecomposesAKnownMatrix() throws {
    // [[2, 1, 0], [1, 2, 1], [0, 1, 2]]: eigenvalues 2 - sqrt 2, 2, 2 + sqrt 2.
    let a: [Double] = [2, 1, 0, 1, 2, 1, 0, 1, 2]
    let (values, vectors) = try SymmetricEigen.decompose(a, n: 3)
    let expected = [2 - 2.0.squareRoot(), 2, 2 + 2.0.squareRoot()]
    for (v, e) in zip(values, expected) { #expect(abs(v - e) < 1e-12) }
    // A v = lambda v for each column, and V is orthonormal.
    for k in 0..<3 {
        for i in 0..<3 {
            let av = (0..<3).reduce(0.0) { $0 + a[i * 3 + $1] * vectors[$1 * 3 + k] }
            #expect(abs(av - values[k] * vectors[i * 3 + k]) < 1e-12)
        }
        for l in 0..<3 {
            let dot = (0..<3).reduce(0.0) { $0 + vectors[$1 * 3 + k] * vectors[$1 * 3 + l] }
            #expect(abs(dot - (k == l ? 1 : 0)) < 1e-12)
        }
    }
    // sqrt(A)^2 = A on a random SPD matrix (B B^T + I), 12 x 12.
    var g = SeededGenerator(seed: 2)
    let n = 12
    let b = (0..<(n * n)).map { _ in Double(g.normal()) }
    var spd = matmul(b, (0..<(n * n)).map { b[($0 % n) * n + $0 / n] }, n: n)
    for i in 0..<n { spd[i * n + i] += 1 }
    let r = try SymmetricEigen.squareRoot(spd, n: n)
    let back = matmul(r, r, n: n)
    for i in 0..<(n * n) { #expect(abs(back[i] - spd[i]) < 1e-9 * max(1, abs(spd[i]))) }
}

@Test func frechetDistanceMatchesTheGaussianClosedForm() throws {
    // Two diagonal Gaussians: FD = |mu1 - mu2|^2 + sum (s1 - s2)^2 for standard deviations s.
    // Estimated from 4000 samples in 4 dimensions; the closed form is 4 * 0.5^2 + 4 * (1 - 2)^2 = 5.
    let a = try gaussian(4000, 4, mean: 0, std: 1, seed: 1)
    let b = try gaussian(4000, 4, mean: 0.5, std: 2, seed: 2)
    let fd = try FrechetDistance.compute(real: a, fake: b)
    #expect(abs(fd.value - 5) < 0.25, "FD \(fd.value)")
    #expect(fd.warnings.isEmpty)
    // Exactly: identical sets give 0.
    #expect(try FrechetDistance.compute(real: a, fake: a).value < 1e-8)
    // Fewer samples than dimensions: warned.
    let small = try gaussian(10, 16, seed: 3)
    #expect(try FrechetDistance.compute(real: small, fake: small).warnings.count == 2)
}

@Test func sameDistributionGivesDensityAndCoverageNearOneAndKIDNearZero() throws {
    let a = try gaussian(500, 16, seed: 10), b = try gaussian(500, 16, seed: 11)
    let prdc = try PRDC.compute(real: a, fake: b)
    #expect(abs(prdc.density - 1) < 0.15, "density \(prdc.density)")
    #expect(prdc.coverage > 0.9, "coverage \(prdc.coverage)")
    // k-NN balls in 16 dimensions underestimate the support, so precision and recall sit below 1
    // even for equal distributions (Naeem et al. 2020, Section 3); density and coverage do not.
    #expect(prdc.precision > 0.75 && prdc.recall > 0.75, "\(prdc)")
    let kid = try KernelDistance.compute(real: a, fake: b, subsets: 20)
    #expect(abs(kid.mean) < 3 * kid.std + 0.01, "KID \(kid.mean) +- \(kid.std)")
    #expect(abs(try relativeDiversity(real: a, fake: b) - 1) < 0.05)
}

@Test func shiftedDistributionsScoreWorse() throws {
    let real = try gaussian(300, 16, seed: 20)
    let near = try gaussian(300, 16, mean: 0.1, seed: 21), far = try gaussian(300, 16, mean: 1, seed: 22)
    let kidNear = try KernelDistance.compute(real: real, fake: near), kidFar = try KernelDistance.compute(real: real, fake: far)
    #expect(kidFar.mean > kidNear.mean + 5 * kidFar.std)
    let fdNear = try FrechetDistance.compute(real: real, fake: near), fdFar = try FrechetDistance.compute(real: real, fake: far)
    #expect(fdFar.value > 5 * fdNear.value)
    let prdcFar = try PRDC.compute(real: real, fake: far)
    #expect(prdcFar.density < 0.5 && prdcFar.coverage < 0.5)
    // Mode collapse: fakes all near one point.
    let collapsed = try gaussian(300, 16, std: 0.05, seed: 23)
    #expect(try relativeDiversity(real: real, fake: collapsed) < 0.1)
    let prdcCollapsed = try PRDC.compute(real: real, fake: collapsed)
    #expect(prdcCollapsed.recall < 0.05 && prdcCollapsed.coverage < 0.5, "\(prdcCollapsed)")
}

@Test func mismatchedInputsAreRejected() throws {
    let a = try gaussian(20, 4, seed: 1), b = try gaussian(20, 5, seed: 2)
    #expect(throws: QualityError.self) { try KernelDistance.compute(real: a, fake: b) }
    #expect(throws: QualityError.self) { try PRDC.compute(real: a, fake: a, k: 20) }
}
