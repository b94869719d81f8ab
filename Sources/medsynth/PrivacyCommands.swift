import ArgumentParser
import Benchmarks
import Foundation
import Privacy
import Workflows

/// `medsynth privacy ...`: the accountant as a calculator, and the cost of DP-SGD.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy", abstract: "Differential-privacy accounting and cost.",
        subcommands: [Epsilon.self, Bench.self])

    struct Epsilon: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Epsilon of DP-SGD (Poisson sampling, RDP accountant), or the noise multiplier for a target epsilon.")
        @Option(help: Ranges.datasetSize.help("Training set size.")) var n: Int
        @Option(help: "Expected batch size, 1...n.") var batchSize: Int
        @Option(help: Ranges.privacyEpochs.help("Passes over the data (epochs x n / batch size steps, at most 1e12)."))
        var epochs: Double
        @Option(help: Ranges.delta.help("DP delta.")) var delta = 1e-5
        @Option(help: Ranges.noiseMultiplier.help("Noise multiplier (omit with --target-epsilon).")) var noiseMultiplier: Double?
        @Option(help: Ranges.epsilon.help("Solve for the noise multiplier that reaches this epsilon.")) var targetEpsilon: Double?
        @Flag(help: "Classic conversion eps = rdp - log(delta)/(alpha-1) instead of Balle et al. 2020's.") var classic = false

        func validate() throws {
            if (noiseMultiplier == nil) == (targetEpsilon == nil) {
                throw ValidationError("give --noise-multiplier or --target-epsilon")
            }
            try Ranges.datasetSize.check(n, "--n")
            if batchSize < 1 || batchSize > n {
                throw ValidationError("--batch-size \(batchSize) is out of range: it must be in 1...\(n) (--n)")
            }
            try Ranges.privacyEpochs.check(epochs, "--epochs"); try Ranges.delta.check(delta, "--delta")
            try Ranges.noiseMultiplier.check(noiseMultiplier, "--noise-multiplier");
            try Ranges.epsilon.check(targetEpsilon, "--target-epsilon")
            let planned = epochs / (Double(batchSize) / Double(n))
            if !Ranges.privacySteps.contains(planned) {
                throw ValidationError(
                    "--epochs \(epochs) x --n \(n) / --batch-size \(batchSize) = \(planned) steps, above the 1e12 the accountant takes"
                )
            }
        }

        /// DP-SGD steps of the plan: epochs / sampling rate (at most 1e12 after `validate()`).
        var steps: Int { Int((epochs / (Double(batchSize) / Double(n))).rounded(.up)) }

        func run() throws {
            print(
                try RDPAccountant.summary(
                    noiseMultiplier: noiseMultiplier, targetEpsilon: targetEpsilon, delta: delta,
                    samplingRate: Double(batchSize) / Double(n), steps: steps, conversion: classic ? .classic : .improved))
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a DP-SGD step (microbatches of one) against an ordinary step of a small CNN on 28 px.")
        @Option(help: Ranges.batchSize.help("Images per step.")) var batchSize = 64
        @Option(help: Ranges.benchSteps.help("Timed steps.")) var steps = 5

        func validate() throws {
            try Ranges.batchSize.check(batchSize, "--batch-size"); try Ranges.benchSteps.check(steps, "--steps")
        }

        func run() throws {
            print(try PrivacyBenchmark.run(batchSize: batchSize, steps: steps).summary)
        }
    }
}
