import ArgumentParser
import Foundation
import Privacy

/// `medsynth privacy ...`: the accountant as a calculator, and the cost of DP-SGD.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "privacy", abstract: "Differential-privacy accounting and cost.",
                                                    subcommands: [Epsilon.self, Bench.self])

    struct Epsilon: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Epsilon of DP-SGD (Poisson sampling, RDP accountant), or the noise multiplier for a target epsilon.")
        @Option(help: "Training set size.") var n: Int
        @Option(help: "Expected batch size.") var batchSize: Int
        @Option var epochs: Double
        @Option var delta = 1e-5
        @Option(help: "Noise multiplier (omit with --target-epsilon).") var noiseMultiplier: Double?
        @Option(help: "Solve for the noise multiplier that reaches this epsilon.") var targetEpsilon: Double?
        @Flag(help: "Classic conversion eps = rdp - log(delta)/(alpha-1) instead of Balle et al. 2020's.") var classic = false

        func validate() throws {
            if (noiseMultiplier == nil) == (targetEpsilon == nil) { throw ValidationError("give --noise-multiplier or --target-epsilon") }
            if n < 1 || batchSize < 1 || batchSize > n { throw ValidationError("need 1 <= --batch-size <= --n") }
        }

        func run() throws {
            let q = Double(batchSize) / Double(n), steps = Int((epochs / q).rounded(.up))
            let conversion: RDPAccountant.Conversion = classic ? .classic : .improved
            if let target = targetEpsilon {
                let sigma = try RDPAccountant.noiseMultiplier(targetEpsilon: target, delta: delta, samplingRate: q, steps: steps,
                                                              conversion: conversion)
                print(String(format: "noise multiplier %.4f reaches epsilon <= %g at delta %g over %d steps (q = %.4g)",
                             sigma, target, delta, steps, q))
            } else {
                var acc = RDPAccountant()
                try acc.step(noiseMultiplier: noiseMultiplier!, samplingRate: q, steps: steps)
                let (eps, order) = try acc.epsilon(delta: delta, conversion: conversion)
                print(String(format: "epsilon %.4f at delta %g over %d steps (q = %.4g, best order %g, %@ conversion)",
                             eps, delta, steps, q, order, conversion.rawValue))
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a DP-SGD step (microbatches of one) against an ordinary step of a small CNN on 28 px.")
        @Option var batchSize = 64
        @Option var steps = 5

        func run() throws {
            let r = try PrivacyBenchmark.run(batchSize: batchSize, steps: steps)
            print(String(format: "batch %d, %d steps each: ordinary step %.1f ms min / %.1f ms median, DP-SGD step %.1f ms min / "
                         + "%.1f ms median: %.1fx slower (minima)", r.batchSize, steps, r.ordinary.minimum, r.ordinary.median,
                         r.privateStep.minimum, r.privateStep.median, r.slowdown))
        }
    }
}
