import Foundation
import SeededRandom

/// Errors of quality metrics and audits, naming the input and the problem.
public enum QualityError: Error, CustomStringConvertible, Equatable {
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return s
        }
    }
}

/// Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
/// estimate of MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
/// random subsets of both sets (as torch-fidelity and clean-fid compute it).
public struct KernelDistance: Codable, Equatable, Sendable {
    public var mean: Double
    public var std: Double
    public var subsets: Int
    public var subsetSize: Int

    /// KID between `real` and `fake` over `subsets` subsets of `subsetSize` (default
    /// min(n_real, n_fake, 100)) rows each, drawn without replacement with `seed`.
    public static func compute(
        real: FeatureMatrix, fake: FeatureMatrix, subsets: Int = 50, subsetSize: Int? = nil,
        seed: UInt64 = 0
    ) throws -> KernelDistance {
        try requireSameDimension(real, fake, "KID")
        let m = subsetSize ?? min(real.count, fake.count, 100)
        guard m >= 2, m <= real.count, m <= fake.count, subsets >= 1 else {
            throw QualityError.invalidInput(
                "KID: subset size \(m) must be >= 2 and at most the set sizes "
                    + "(\(real.count) real, \(fake.count) fake); subsets \(subsets) >= 1")
        }
        let d = Double(real.dimension)
        func k(_ a: ArraySlice<Double>, _ b: ArraySlice<Double>) -> Double {
            var dot = 0.0
            for (x, y) in zip(a, b) { dot += x * y }
            let base = dot / d + 1
            return base * base * base
        }
        var g = SeededGenerator(seed: seed)
        var estimates: [Double] = []
        for _ in 0..<subsets {
            let x = sample(real.count, m, &g).map { real.row($0) }, y = sample(fake.count, m, &g).map { fake.row($0) }
            var kxx = 0.0, kyy = 0.0, kxy = 0.0
            for i in 0..<m {
                for j in 0..<m {
                    kxy += k(x[i], y[j])
                    if i != j { kxx += k(x[i], x[j]); kyy += k(y[i], y[j]) }  // unbiased: no diagonal
                }
            }
            let mm = Double(m)
            estimates.append((kxx + kyy) / (mm * (mm - 1)) - 2 * kxy / (mm * mm))
        }
        let mean = estimates.reduce(0, +) / Double(subsets)
        let variance = estimates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(subsets - 1, 1))
        return KernelDistance(mean: mean, std: variance.squareRoot(), subsets: subsets, subsetSize: m)
    }

    /// m distinct indices of 0..<n (partial Fisher-Yates).
    static func sample(_ n: Int, _ m: Int, _ g: inout SeededGenerator) -> [Int] {
        var idx = Array(0..<n)
        for i in 0..<m { idx.swapAt(i, i + g.int(below: n - i)) }
        return Array(idx.prefix(m))
    }
}

/// Frechet distance between Gaussians fitted to two feature sets (the FID formula of Heusel et
/// al. 2017 on any features): |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
public struct FrechetDistance: Codable, Equatable, Sendable {
    public var value: Double
    /// Problems with the estimate (e.g. fewer samples than feature dimensions).
    public var warnings: [String]

    public static func compute(real: FeatureMatrix, fake: FeatureMatrix) throws -> FrechetDistance {
        try requireSameDimension(real, fake, "FD")
        guard real.count >= 2, fake.count >= 2 else {
            throw QualityError.invalidInput("FD needs at least 2 rows per set, got \(real.count) real and \(fake.count) fake")
        }
        let d = real.dimension
        var warnings: [String] = []
        for (name, set) in [("real", real), ("fake", fake)] where set.count < d {
            // NOTE: with n < d the covariance has rank < d; the trace term is then biased and FD
            // is not comparable across sample sizes. KID has no such bias.
            warnings.append(
                "FD: \(set.count) \(name) samples for \(d) feature dimensions: the covariance is singular, "
                    + "FD is biased; prefer KID for small classes")
        }
        let (m1, s1) = meanAndCovariance(real), (m2, s2) = meanAndCovariance(fake)
        var meanTerm = 0.0
        for i in 0..<d { meanTerm += (m1[i] - m2[i]) * (m1[i] - m2[i]) }
        // (S1^1/2 S2 S1^1/2) is symmetric PSD and has the same eigenvalues as S1 S2, so its
        // square root's trace is the tr sqrt(S1 S2) of the FID formula without a non-symmetric sqrtm.
        let r1 = try SymmetricEigen.squareRoot(s1, n: d)
        var inner = matmul(matmul(r1, s2, n: d), r1, n: d)
        for i in 0..<d {
            for j in (i + 1)..<d { let a = (inner[i * d + j] + inner[j * d + i]) / 2; inner[i * d + j] = a; inner[j * d + i] = a }
        }
        let traceSqrt = try SymmetricEigen.decompose(inner, n: d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
        var trace = 0.0
        for i in 0..<d { trace += s1[i * d + i] + s2[i * d + i] }
        return FrechetDistance(value: max(0, meanTerm + trace - 2 * traceSqrt), warnings: warnings)
    }

    /// Mean (D) and unbiased covariance (D x D, divisor n - 1).
    static func meanAndCovariance(_ x: FeatureMatrix) -> ([Double], [Double]) {
        let (n, d) = (x.count, x.dimension)
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for (j, v) in x.row(i).enumerated() { mean[j] += v } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            let c = x.row(i).enumerated().map { $0.element - mean[$0.offset] }
            for a in 0..<d where c[a] != 0 { for b in a..<d { cov[a * d + b] += c[a] * c[b] } }
        }
        for a in 0..<d { for b in a..<d { cov[a * d + b] /= Double(n - 1); cov[b * d + a] = cov[a * d + b] } }
        return (mean, cov)
    }
}

/// Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and
/// Diversity Metrics for Generative Models"), with k-nearest-neighbour balls, as the authors'
/// `prdc` package computes them: a ball's radius is the distance to the k-th nearest other point
/// of the same set, and "inside" is strict (<).
public struct PRDC: Codable, Equatable, Sendable {
    public var precision: Double, recall: Double, density: Double, coverage: Double
    public var k: Int

    public static func compute(real: FeatureMatrix, fake: FeatureMatrix, k: Int = 5) throws -> PRDC {
        try requireSameDimension(real, fake, "PRDC")
        guard k >= 1, real.count > k, fake.count > k else {
            throw QualityError.invalidInput(
                "PRDC with k = \(k) needs more than k rows per set, got \(real.count) real and \(fake.count) fake")
        }
        let rr = distances(real, real), ff = distances(fake, fake), rf = distances(real, fake)  // rf: (n_real, n_fake)
        // k-th nearest other point: the (k+1)-th smallest distance, the point itself being the first.
        let realRadius = kthSmallestPerRow(rr, rows: real.count, cols: real.count, k: k + 1)
        let fakeRadius = kthSmallestPerRow(ff, rows: fake.count, cols: fake.count, k: k + 1)
        let (nr, nf) = (real.count, fake.count)
        var precision = 0, density = 0, recall = 0, coverage = 0
        for j in 0..<nf {
            var inside = 0
            for i in 0..<nr where rf[i * nf + j] < realRadius[i] { inside += 1 }
            if inside > 0 { precision += 1 }
            density += inside
        }
        for i in 0..<nr {
            if (0..<nf).contains(where: { rf[i * nf + $0] < fakeRadius[$0] }) { recall += 1 }
            // coverage: the nearest fake lies inside real i's ball
            if let nearest = (0..<nf).map({ rf[i * nf + $0] }).min(), nearest < realRadius[i] { coverage += 1 }
        }
        return PRDC(
            precision: Double(precision) / Double(nf), recall: Double(recall) / Double(nr),
            density: Double(density) / Double(k * nf), coverage: Double(coverage) / Double(nr), k: k)
    }
}

/// Mean pairwise Euclidean distance among fakes divided by the same among reals: near 1 when the
/// generator is as varied as the data, near 0 under mode collapse.
public func relativeDiversity(real: FeatureMatrix, fake: FeatureMatrix) throws -> Double {
    try requireSameDimension(real, fake, "diversity")
    func meanPairwise(_ x: FeatureMatrix) -> Double {
        let d = distances(x, x), n = x.count
        var s = 0.0
        for i in 0..<n { for j in (i + 1)..<n { s += d[i * n + j] } }
        return s / Double(max(n * (n - 1) / 2, 1))
    }
    let r = meanPairwise(real)
    guard r > 0 else { throw QualityError.invalidInput("diversity: the real images are all identical") }
    return meanPairwise(fake) / r
}

/// Euclidean distances (a.count x b.count, row-major).
/// NOTE: computed as sqrt(sum (x - y)^2) directly, not |x|^2 + |y|^2 - 2 x.y, which cancels
/// catastrophically for near-duplicates, exactly the pairs the memorization audit looks for.
public func distances(_ a: FeatureMatrix, _ b: FeatureMatrix) -> [Double] {
    var out = [Double](repeating: 0, count: a.count * b.count)
    a.values.withUnsafeBufferPointer { pa in
        b.values.withUnsafeBufferPointer { pb in
            let d = a.dimension
            for i in 0..<a.count {
                for j in 0..<b.count {
                    var s = 0.0
                    for t in 0..<d { let x = pa[i * d + t] - pb[j * d + t]; s += x * x }
                    out[i * b.count + j] = s.squareRoot()
                }
            }
        }
    }
    return out
}

/// The k-th smallest value (1-based) of each row.
func kthSmallestPerRow(_ m: [Double], rows: Int, cols: Int, k: Int) -> [Double] {
    (0..<rows).map { r in Array(m[(r * cols)..<((r + 1) * cols)]).sorted()[k - 1] }
}

func requireSameDimension(_ a: FeatureMatrix, _ b: FeatureMatrix, _ op: String) throws {
    guard a.dimension == b.dimension else {
        throw QualityError.invalidInput("\(op): real features have \(a.dimension) dimensions, fake ones \(b.dimension)")
    }
}
