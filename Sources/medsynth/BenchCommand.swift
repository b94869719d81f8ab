import ArgumentParser
import Benchmarks
import CommandOptions
import Privacy
import Workflows

/// `medsynth bench ...`: benchmarks (not tests).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (not tests).",
        subcommands: [DCGANBench.self, ClassifierBench.self, DiffusionBench.self, PeakBench.self, LoopsBench.self])

    struct DCGANBench: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            commandName: "dcgan", abstract: "Time full DCGAN training steps (G and D forward, backward, Adam).")
        @OptionGroup var options: DCGANBenchOptions

        func run() throws { print(try options.run()) }
    }

    struct ClassifierBench: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            commandName: "classifier",
            abstract: "Time classifier training steps (forward, cross-entropy, backward, Adam) and inference batches.")
        @OptionGroup var options: ClassifierBenchOptions

        func run() throws { print(try options.run()) }
    }

    struct DiffusionBench: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            commandName: "diffusion",
            abstract:
                "Time diffusion training steps and DDIM sampling (25 and 50 steps, guidance 2; a distilled student's steps, guidance 1)."
        )
        @OptionGroup var options: DiffusionBenchOptions

        func run() throws { print(try options.run()) }
    }

    struct LoopsBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loops", abstract: "Time the pure-Swift loops (Adam update, BCE loss) beside the oneDNN kernels.")
        func run() { print(Benchmark.swiftLoops().summary) }
    }

    struct PeakBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "peak",
            abstract: "Measure this machine's FP32 peak: the widest FMA the CPU has, on every core "
                + "(what \"% of peak\" divides by).")
        @Flag(help: "Print one JSON line.") var json = false

        func run() throws {
            let report = PeakReport.measure()
            print(json ? try report.json() : report.summary)
        }
    }
}

/// `medsynth privacy ...`: the accountant as a calculator, and the cost of DP-SGD.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy", abstract: "Differential-privacy accounting and cost.", subcommands: [Epsilon.self, Bench.self])

    struct Epsilon: ParsableCommand, OptionsCommand {
        static let configuration = CommandConfiguration(
            abstract: "Epsilon of DP-SGD (Poisson sampling, RDP accountant), or the noise multiplier for a target epsilon.")
        @OptionGroup var options: EpsilonOptions

        func run() throws { print(try options.summary()) }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a DP-SGD step (microbatches of one) against an ordinary step of a small CNN on 28 px.")
        @Option(help: Ranges.batchSize.help("Images per step.")) var batchSize = 64
        @Option(help: Ranges.benchSteps.help("Timed steps.")) var steps = 5

        func validate() throws {
            try Ranges.batchSize.check(batchSize, "--batch-size"); try Ranges.benchSteps.check(steps, "--steps")
        }

        func run() throws { print(try PrivacyBenchmark.run(batchSize: batchSize, steps: steps).summary) }
    }
}
