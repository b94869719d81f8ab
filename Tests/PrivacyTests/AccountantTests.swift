import Foundation
import Testing

@testable import Privacy

/// TensorFlow Privacy's `compute_dp_sgd_privacy` orders.
let tfOrders: [Double] = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + (5..<64).map(Double.init) + [128, 256, 512]

/// tensorflow/privacy rdp_accountant_test.py: compute_rdp against fixed values.
@Test func rdpMatchesTensorFlowPrivacyValues() throws {
    #expect(RDPAccountant.rdpOfSampledGaussian(q: 0, sigma: 10, alpha: 20) == 0)
    #expect(abs(RDPAccountant.rdpOfSampledGaussian(q: 1, sigma: 10, alpha: 20) - 0.1) < 1e-12)
    #expect(abs(10 * RDPAccountant.rdpOfSampledGaussian(q: 0.1, sigma: 2, alpha: 5) - 0.07737) < 1e-5)
    let orders: [Double] = [1.5, 2.5, 5, 50, 100]
    let expected = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307]
    for (a, e) in zip(orders, expected) {
        let r = 50 * RDPAccountant.rdpOfSampledGaussian(q: 0.01, sigma: 2.5, alpha: a)
        #expect(abs(r - e) < 1e-5, "order \(a): \(r) vs \(e)")
    }
}

/// tensorflow/privacy compute_dp_sgd_privacy_test.py (dp_accounting, improved conversion).
@Test(arguments: [
    (60000, 150, 1.3, 15.0, 1e-5, 0.7242234026109595, 19.0),
    (100000, 100, 1.0, 30.0, 1e-7, 1.4154988495444842, 13.0),
])
func epsilonMatchesComputeDPSGDPrivacy(_ c: (Int, Int, Double, Double, Double, Double, Double)) throws {
    let (n, batch, noise, epochs, delta, expectedEps, expectedOrder) = c
    let steps = Int((epochs * Double(n) / Double(batch)).rounded(.up))
    var acc = RDPAccountant(orders: tfOrders)
    try acc.step(noiseMultiplier: noise, samplingRate: Double(batch) / Double(n), steps: steps)
    let (eps, order) = try acc.epsilon(delta: delta)
    #expect(abs(eps - expectedEps) < 1e-6, "epsilon \(eps) vs \(expectedEps)")
    #expect(order == expectedOrder)
}

/// TF Privacy's MNIST tutorial README table (tutorials/README.md; classic conversion, orders
/// 1.1 ... 10.9, 12 ... 63, values rounded to 2 decimals): N 60000, batch 256, delta 1e-5.
@Test(arguments: [(1.3, 15.0, 1.19), (1.1, 60.0, 3.01), (0.7, 45.0, 7.10)])
func epsilonMatchesTheMNISTTutorial(_ c: (Double, Double, Double)) throws {
    let (noise, epochs, expected) = c
    let steps = Int((epochs * 60000 / 256).rounded(.up))
    let eps = try RDPAccountant.epsilon(
        noiseMultiplier: noise, samplingRate: 256.0 / 60000, steps: steps, delta: 1e-5,
        conversion: .classic)
    #expect(abs(eps - expected) <= 0.005, "epsilon \(eps) vs \(expected)")
}

/// opacus/tests/accountants_test.py: noise 1.5, q 0.04, 2250 steps, delta 1e-5 -> 7.32911117143.
@Test func epsilonMatchesOpacus() throws {
    var acc = RDPAccountant()
    for _ in 0..<2250 { try acc.step(noiseMultiplier: 1.5, samplingRate: 0.04) }
    let eps = try acc.epsilon(delta: 1e-5).epsilon
    #expect(abs(eps - 7.32911117143) < 1e-6, "epsilon \(eps)")
}

/// opacus get_noise_multiplier: eps 8, delta 1e-5, q 0.04, 90 epochs -> 1.416; 2000 steps -> 1.3562.
@Test func noiseMultiplierMatchesOpacus() throws {
    let a = try RDPAccountant.noiseMultiplier(targetEpsilon: 8, delta: 1e-5, samplingRate: 0.04, steps: Int(90 / 0.04))
    #expect(abs(a - 1.416) < 5e-5, "\(a)")
    let b = try RDPAccountant.noiseMultiplier(targetEpsilon: 8, delta: 1e-5, samplingRate: 0.04, steps: 2000)
    #expect(abs(b - 1.3562) < 5e-5, "\(b)")
    let reached = try RDPAccountant.epsilon(noiseMultiplier: b, samplingRate: 0.04, steps: 2000, delta: 1e-5)
    #expect(reached <= 8 && reached > 7.99)
}

@Test func epsilonGrowsWithStepsAndShrinksWithNoise() throws {
    func eps(_ noise: Double, _ steps: Int) throws -> Double {
        try RDPAccountant.epsilon(noiseMultiplier: noise, samplingRate: 0.01, steps: steps, delta: 1e-5)
    }
    let bySteps = try [100, 1000, 10000].map { try eps(1.0, $0) }
    #expect(bySteps[0] < bySteps[1] && bySteps[1] < bySteps[2])
    let byNoise = try [0.8, 1.2, 2.0].map { try eps($0, 1000) }
    #expect(byNoise[0] > byNoise[1] && byNoise[1] > byNoise[2])
    #expect(try eps(0, 1).isInfinite)
}

/// Fractional orders agree with their integer neighbours' trend: RDP is nondecreasing in alpha.
@Test func rdpIsMonotoneInOrder() {
    let orders = RDPAccountant.defaultOrders
    let r = orders.map { RDPAccountant.rdpOfSampledGaussian(q: 0.02, sigma: 1.1, alpha: $0) }
    for k in 1..<r.count { #expect(r[k] >= r[k - 1] * (1 - 1e-9), "order \(orders[k])") }
}

@Test func badArgumentsAreRejected() {
    #expect(throws: PrivacyError.self) { try RDPAccountant().epsilon(delta: 0) }
    #expect(throws: PrivacyError.self) {
        try RDPAccountant.noiseMultiplier(targetEpsilon: 1e-4, delta: 1e-5, samplingRate: 1, steps: 100_000)
    }
}

/// What `medsynth privacy epsilon` prints, on Opacus's values above (epsilon 7.32911117143 for
/// noise 1.5, q 0.04, 2250 steps; noise 1.416 for epsilon 8 over 90 epochs).
@Test func summaryStatesTheEpsilonOrTheNoiseMultiplier() throws {
    let spent = try RDPAccountant.summary(
        noiseMultiplier: 1.5, targetEpsilon: nil, delta: 1e-5, samplingRate: 0.04, steps: 2250)
    #expect(spent.hasPrefix("epsilon 7.3291 at delta 1e-05 over 2250 steps (q = 0.04, best order "), "\(spent)")
    #expect(spent.hasSuffix(", improved conversion)"), "\(spent)")
    let solved = try RDPAccountant.summary(
        noiseMultiplier: nil, targetEpsilon: 8, delta: 1e-5, samplingRate: 0.04, steps: 2250)
    #expect(solved.hasPrefix("noise multiplier 1.41"), "\(solved)")
    #expect(solved.hasSuffix(" reaches epsilon <= 8 at delta 1e-05 over 2250 steps (q = 0.04)"), "\(solved)")
}
