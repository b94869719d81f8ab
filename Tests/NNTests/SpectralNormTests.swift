import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import NN

/// Largest singular value of a (rows, columns) matrix by power iteration in Double on W^T W,
/// independent of the Float code under test.
func largestSingularValue(_ w: [Float], rows: Int, columns: Int) -> Double {
    let a = w.map(Double.init)
    var v = (0..<columns).map { Double($0 % 7) - 2.5 }
    var sigma = 0.0
    for _ in 0..<2000 {
        var av = [Double](repeating: 0, count: rows)
        for r in 0..<rows { for c in 0..<columns { av[r] += a[r * columns + c] * v[c] } }
        var atav = [Double](repeating: 0, count: columns)
        for r in 0..<rows { for c in 0..<columns { atav[c] += a[r * columns + c] * av[r] } }
        let norm = atav.reduce(0) { $0 + $1 * $1 }.squareRoot()
        v = atav.map { $0 / norm }
        sigma = norm.squareRoot()
    }
    return sigma
}

@Test(
    "after enough training-mode forwards the normalised weight's largest singular value is 1",
    arguments: ["conv", "linear"])
func spectralNormConverges(_ kind: String) throws {
    var g = SeededGenerator(seed: 11)
    let conv = Conv2d(3, 6, kernelSize: 3, spectralNorm: true, generator: &g)
    let linear = Linear(10, 5, spectralNorm: true, generator: &g)
    let weight: () throws -> Tensor = kind == "conv" ? conv.effectiveWeight : linear.effectiveWeight
    let rows = kind == "conv" ? 6 : 5, columns = kind == "conv" ? 27 : 10
    for p in [conv.weight, linear.weight] { for i in 0..<p.count { p.pointer[i] *= 3 } }  // sigma well above 1
    let raw = kind == "conv" ? conv.weight.value.scalars : linear.weight.value.scalars
    let before = largestSingularValue(raw, rows: rows, columns: columns)
    #expect(abs(before - 1) > 0.05, "the test needs a weight whose norm is not already 1 (\(before))")
    var w = try weight()
    for _ in 0..<200 { w = try weight() }
    let after = largestSingularValue(w.scalars, rows: rows, columns: columns)
    #expect(abs(after - 1) < 1e-3, "largest singular value \(after)")
    // Evaluation mode leaves u alone.
    let u = (kind == "conv" ? conv.spectralNorm! : linear.spectralNorm!).u
    let saved = u.value.scalars
    conv.train(false); linear.train(false)
    _ = try weight()
    #expect(u.value.scalars == saved)
}

/// Central differences of L = sum(W_sn * R) with u fixed (evaluation mode) against backward.
@Test func spectralNormGradientMatchesFiniteDifferences() throws {
    var g = SeededGenerator(seed: 12)
    let conv = Conv2d(2, 3, kernelSize: 2, bias: false, spectralNorm: true, generator: &g)
    for _ in 0..<3 { _ = try conv.effectiveWeight() }  // a u that is not random, not converged
    conv.train(false)
    let r = Tensor.randomNormal(conv.weight.shape, generator: &g)
    func loss() throws -> Double {
        let w = try noGrad { try conv.effectiveWeight() }
        return zip(w.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    conv.zeroGrad()
    try conv.effectiveWeight().backward(seed: r)
    let analytic = try #require(conv.weight.grad).scalars
    let eps: Float = 1e-2
    var worst: Float = 0
    for j in 0..<conv.weight.count {
        let keep = conv.weight.pointer[j]
        conv.weight.pointer[j] = keep + eps; let plus = try loss()
        conv.weight.pointer[j] = keep - eps; let minus = try loss()
        conv.weight.pointer[j] = keep
        worst = max(worst, abs(analytic[j] - Float((plus - minus) / Double(2 * eps))))
    }
    let scale = max(analytic.map(abs).max() ?? 1, 1e-3)
    #expect(worst / scale < 2e-2, "max error \(worst) (scale \(scale))")
}

@Test func spectralNormBufferIsSavedAndLoaded() throws {
    var g = SeededGenerator(seed: 13)
    let a = Sequential([
        Conv2d(1, 4, kernelSize: 3, spectralNorm: true, generator: &g), Flatten(),
        Linear(4, 2, spectralNorm: true, generator: &g),
    ])
    #expect(a.buffers.map(\.0) == ["0.weight_u", "2.weight_u"])
    _ = try a(Tensor.randomNormal([2, 1, 3, 3], generator: &g))  // moves u
    let url = tempURL("sn.safetensors")
    try Checkpoint.save(modules: ["model": a], to: url)
    var h = SeededGenerator(seed: 14)
    let b = Sequential([
        Conv2d(1, 4, kernelSize: 3, spectralNorm: true, generator: &h), Flatten(),
        Linear(4, 2, spectralNorm: true, generator: &h),
    ])
    #expect(b.buffers[0].1.value.scalars != a.buffers[0].1.value.scalars)
    try Checkpoint.load(from: url, modules: ["model": b])
    for ((_, p), (_, q)) in zip(a.stateTensors, b.stateTensors) { #expect(p.value.scalars == q.value.scalars) }
    // Same state, same output in evaluation mode.
    a.train(false); b.train(false)
    let x = Tensor.randomNormal([2, 1, 3, 3], generator: &g)
    #expect(try a(x).scalars == b(x).scalars)
    // A layer without spectral norm refuses the extra buffer.
    let plain = Sequential([Conv2d(1, 4, kernelSize: 3, generator: &h), Flatten(), Linear(4, 2, generator: &h)])
    #expect(throws: CheckpointError.self) { try plain.loadStateDict(a.stateDict()) }
}
