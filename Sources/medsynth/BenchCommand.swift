import ArgumentParser
import Benchmarks
import Classification
import Diffusion
import Workflows

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (not tests).",
        subcommands: [DCGANBench.self, ClassifierBench.self, DiffusionBench.self, PeakBench.self, LoopsBench.self])

    struct DCGANBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dcgan",
            abstract: "Time full DCGAN training steps (G and D forward, backward, Adam).")
        @Option(help: "Image size: 28, 32, 64 or 128.") var imageSize = 64
        @Option(help: "Channels: 1 or 3.") var channels = 3
        @Option(help: Ranges.ganBatchSize.help("Images per step.")) var batchSize = 64
        @Option(help: Ranges.benchSteps.help("Timed steps.")) var steps = 10
        @Option(help: Ranges.warmup.help("Untimed steps first.")) var warmup = 3
        @Option(help: Ranges.gflops.help("FP32 peak in GFLOP/s to compare against (default: measured).")) var peak: Double?
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            try checkGANImageSize(imageSize); try checkChannels(channels);
            try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.benchSteps.check(steps, "--steps"); try Ranges.warmup.check(warmup, "--warmup");
            try Ranges.gflops.check(peak, "--peak")
        }

        func run() throws {
            let r = try Benchmark.dcgan(
                imageSize: imageSize, channels: channels, batchSize: batchSize, steps: steps, warmup: warmup)
            let peak = self.peak ?? Benchmark.peakGFLOPS()
            print(json ? try r.json(peak: peak) : r.summary(peak: peak))
        }
    }

    struct ClassifierBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "classifier",
            abstract: "Time classifier training steps (forward, cross-entropy, backward, Adam) and inference batches.")
        @Option(help: "Architecture: resnet or paper-cnn.") var arch: Architecture = .resnet
        @Option(help: Ranges.classifierImageSize.help("Image size (side of the square input).")) var imageSize = 28
        @Option(help: "Channels: 1 or 3.") var channels = 3
        @Option(help: Ranges.classes.help("Classes (7: DermaMNIST).")) var classes = 7
        @Option(help: Ranges.ganBatchSize.help("Images per step.")) var batchSize = 64
        @Option(help: Ranges.benchSteps.help("Timed steps (and as many timed inference batches).")) var steps = 20
        @Option(help: Ranges.warmup.help("Untimed steps first.")) var warmup = 3
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            try Ranges.classifierImageSize.check(imageSize, "--image-size"); try checkChannels(channels)
            try Ranges.classes.check(classes, "--classes"); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.benchSteps.check(steps, "--steps"); try Ranges.warmup.check(warmup, "--warmup")
        }

        func run() throws {
            let config = try ClassifierConfig(arch: arch, imageSize: imageSize, channels: channels, classes: classes)
            let r = try Benchmark.classifier(config: config, batchSize: batchSize, steps: steps, warmup: warmup)
            print(json ? try r.json() : r.summary)
        }
    }

    struct DiffusionBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diffusion", abstract: "Time diffusion training steps and DDIM sampling (25 and 50 steps, guidance 2).")
        @Option(help: "Image size: 28, 32 or 64.") var imageSize = 28
        @Option(help: "Channels: 1 or 3.") var channels = 1
        @Option(help: Ranges.diffusionWidth.help("U-Net base width, a multiple of 8.")) var width = 32
        @Flag(help: "Self-attention at the lowest resolution.") var attention = false
        @Option(help: Ranges.diffusionBatchSize.help("Images per training step.")) var batchSize = 32
        @Option(help: Ranges.benchSteps.help("Timed steps.")) var steps = 10
        @Option(help: Ranges.warmup.help("Untimed steps first.")) var warmup = 2
        @Option(help: Ranges.sampleCount.help("Images sampled per timing.")) var samples = 64
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            guard [28, 32, 64].contains(imageSize) else { throw ValidationError("--image-size \(imageSize): use 28, 32 or 64") }
            try checkChannels(channels); try Ranges.diffusionWidth.check(width, "--width")
            if width % 8 != 0 { throw ValidationError("--width \(width) is not a multiple of 8") }
            try Ranges.diffusionBatchSize.check(batchSize, "--batch-size"); try Ranges.benchSteps.check(steps, "--steps")
            try Ranges.warmup.check(warmup, "--warmup"); try Ranges.sampleCount.check(samples, "--samples")
        }

        func run() throws {
            let config = try UNetConfig(
                imageSize: imageSize, channels: channels, baseWidth: width, attention: attention, classes: 2)
            let r = try DiffusionBenchmark.run(
                config: config, batchSize: batchSize, steps: steps, warmup: warmup, sampleCount: samples)
            print(json ? try r.json() : r.summary)
        }
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
