import Foundation

extension RDPAccountant {
    /// What `medsynth privacy epsilon` prints: the epsilon that `steps` DP-SGD steps at sampling
    /// rate `q` spend with `noiseMultiplier` at `delta`, or, given `targetEpsilon` instead, the
    /// noise multiplier that spends no more than it.
    public static func summary(
        noiseMultiplier: Double?, targetEpsilon: Double?, delta: Double, samplingRate q: Double, steps: Int,
        conversion: Conversion = .improved
    ) throws -> String {
        if let target = targetEpsilon {
            let sigma = try RDPAccountant.noiseMultiplier(
                targetEpsilon: target, delta: delta, samplingRate: q, steps: steps, conversion: conversion)
            return String(
                format: "noise multiplier %.4f reaches epsilon <= %g at delta %g over %d steps (q = %.4g)",
                sigma, target, delta, steps, q)
        }
        var accountant = RDPAccountant()
        try accountant.step(noiseMultiplier: noiseMultiplier ?? 0, samplingRate: q, steps: steps)
        let (epsilon, order) = try accountant.epsilon(delta: delta, conversion: conversion)
        return String(
            format: "epsilon %.4f at delta %g over %d steps (q = %.4g, best order %g, %@ conversion)",
            epsilon, delta, steps, q, order, conversion.rawValue)
    }
}
