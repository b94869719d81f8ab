import ArgumentParser
import Foundation
import Diffusion
import GAN
import Kernels

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks (not tests).",
                                                    subcommands: [DCGANBench.self, DiffusionBench.self, PeakBench.self, LoopsBench.self])

    struct DCGANBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dcgan",
                                                        abstract: "Time full DCGAN training steps (G and D forward, backward, Adam).")
        @Option(help: "Image size: 28, 32, 64 or 128.") var imageSize = 64
        @Option(help: "Channels: 1 or 3.") var channels = 3
        @Option(help: Ranges.ganBatchSize.help("Images per step.")) var batchSize = 64
        @Option(help: Ranges.benchSteps.help("Timed steps.")) var steps = 10
        @Option(help: Ranges.warmup.help("Untimed steps first.")) var warmup = 3
        @Option(help: Ranges.gflops.help("FP32 peak in GFLOP/s to compare against (default: measured).")) var peak: Double?
        @Flag(help: "Print one JSON line.") var json = false

        func validate() throws {
            try checkGANImageSize(imageSize); try checkChannels(channels); try Ranges.ganBatchSize.check(batchSize, "--batch-size")
            try Ranges.benchSteps.check(steps, "--steps"); try Ranges.warmup.check(warmup, "--warmup"); try Ranges.gflops.check(peak, "--peak")
        }

        func run() throws {
            let r = try Benchmark.dcgan(imageSize: imageSize, channels: channels, batchSize: batchSize, steps: steps, warmup: warmup)
            let peak = self.peak ?? Benchmark.peakGFLOPS()
            if json {
                var obj = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as! [String: Any]
                obj["peak_gflops"] = peak
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "%@ batch %d: %.1f ms/step (median of %d), %.1f images/s, %.2f GFLOP/step, %.1f GFLOP/s = %.0f%% of %.0f GFLOP/s peak",
                             r.model, r.batchSize, r.stepMillisecondsMedian, steps, r.imagesPerSecond, r.gflopPerStep, r.gflops,
                             100 * r.gflops / peak, peak))
            }
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
            let config = try UNetConfig(imageSize: imageSize, channels: channels, baseWidth: width, attention: attention, classes: 2)
            let r = try DiffusionBenchmark.run(config: config, batchSize: batchSize, steps: steps, warmup: warmup, sampleCount: samples)
            if json {
                print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
            } else {
                print(String(format: "diffusion %dx%dx%d width %d%@ (%d parameters), batch %d: %.1f ms/step (median of %d), %.2f GFLOP/step; "
                             + "sampling %.2f images/s at 25 DDIM steps, %.2f at 50", channels, imageSize, imageSize, width,
                             attention ? " + attention" : "", r.parameters, batchSize, r.stepMillisecondsMedian, steps, r.gflopPerStep,
                             r.samplingImagesPerSecond["25"] ?? 0, r.samplingImagesPerSecond["50"] ?? 0))
            }
        }
    }

    struct LoopsBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loops", abstract: "Time the pure-Swift loops (Adam update, BCE loss) beside the oneDNN kernels.")
        func run() {
            let r = Benchmark.swiftLoops()
            print(String(format: "Adam update of 6.4M parameters: %.2f ms; BCE-on-logits loss + backward over 1M values: %.2f ms (medians of 20)",
                         r.adamMilliseconds, r.lossMilliseconds))
        }
    }

    struct PeakBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "peak",
            abstract: "Measure this machine's FP32 peak: the widest FMA the CPU has, on every core "
                + "(what \"% of peak\" divides by).")
        @Flag(help: "Print one JSON line.") var json = false

        func run() throws {
            let peak = FMAPeak.widest()
            // The narrower loops beside it, to show what the width buys.
            let narrower = VectorISA.allCases.filter { $0 < peak.isa && $0 != .generic }.compactMap { FMAPeak.measure($0) }
            if json {
                struct Report: Encodable { var isa: String; var gflops: Double; var threads: Int; var narrower: [String: Double] }
                let report = Report(isa: peak.isa.description, gflops: peak.gflops, threads: peak.threads,
                                    narrower: Dictionary(uniqueKeysWithValues: narrower.map { ($0.isa.description, $0.gflops) }))
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print("peak: \(peak)")
                for m in narrower.reversed() { print("      \(m)") }
            }
        }
    }
}
