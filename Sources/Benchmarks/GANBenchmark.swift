import Autodiff
import Dispatch
import Foundation
import GAN
import Kernels
import NN
import SeededRandom

/// Result of timing DCGAN training steps.
public struct DCGANBenchmarkResult: Codable, Sendable {
    public var framework = "medsynth"
    public var model: String
    public var batchSize: Int
    public var threads: Int
    public var stepMillisecondsMedian: Double
    public var stepMilliseconds: [Double]
    public var imagesPerSecond: Double
    /// FLOP the kernels actually ran per step (counted, not estimated), in GFLOP.
    public var gflopPerStep: Double
    public var gflops: Double
    /// The number format the convolutions multiplied in: "f32" or "bf16" (`ConvPrecision`).
    public var precision = ConvPrecision.processDefault.rawValue

    enum CodingKeys: String, CodingKey {
        case framework, model, threads, precision
        case batchSize = "batch_size"
        case stepMillisecondsMedian = "step_ms_median"
        case stepMilliseconds = "step_ms_all"
        case imagesPerSecond = "images_per_s"
        case gflopPerStep = "gflop_per_step"
        case gflops
    }
}

public enum Benchmark {
    /// Times full DCGAN training steps (G forward, D forward x3, both backward passes, both Adam
    /// updates) on random data; median over `steps` after `warmup` steps.
    public static func dcgan(
        imageSize: Int, channels: Int, batchSize: Int, steps: Int = 10, warmup: Int = 3,
        seed: UInt64 = 0
    ) throws -> DCGANBenchmarkResult {
        let config = try DCGANConfig(imageSize: imageSize, channels: channels)
        var options = GANTrainingOptions()
        options.batchSize = batchSize
        // The plain DCGAN step, as the peers run it: no DiffAugment, no EMA.
        options.diffAugment = nil
        options.emaDecay = nil
        let gan = GANModel(config: config, options: options, seed: seed)
        var g = SeededGenerator(seed: seed + 1)
        let real = Tensor.randomUniform([batchSize, channels, imageSize, imageSize], low: -1, high: 1, generator: &g)
        for _ in 0..<warmup { try gan.step(real: real) }
        var times: [Double] = []
        let flopBefore = KernelCounters.totalFLOP
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try gan.step(real: real)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let flopPerStep = (KernelCounters.totalFLOP - flopBefore) / Double(max(steps, 1))
        let median = times.sorted()[times.count / 2]
        // Names match the peer scripts' (bench/peers): dcgan64 is 64x64x3, dcgan28 is 28x28x1.
        let standard = (imageSize == 64 && channels == 3) || (imageSize == 28 && channels == 1)
        return DCGANBenchmarkResult(
            model: standard ? "dcgan\(imageSize)" : "dcgan\(imageSize)x\(channels)", batchSize: batchSize,
            threads: ProcessInfo.processInfo.activeProcessorCount,
            stepMillisecondsMedian: median, stepMilliseconds: times,
            imagesPerSecond: Double(batchSize) / (median / 1000),
            gflopPerStep: flopPerStep / 1e9, gflops: flopPerStep / 1e9 / (median / 1000))
    }

    /// Times the pure-Swift loops that sit beside the oneDNN kernels: an Adam update over
    /// `parameters` floats and a BCE-on-logits loss with its backward over `elements` values.
    /// Built with and without AVX2+FMA (MEDSYNTH_NATIVE=1), this shows what the flags buy.
    public static func swiftLoops(parameters: Int = 6_400_000, elements: Int = 1_000_000, repeats: Int = 20)
        -> SwiftLoopsResult
    {
        var g = SeededGenerator(seed: 1)
        let p = Parameter(Tensor.randomNormal([parameters], generator: &g))
        p.grad = Tensor.randomNormal([parameters], generator: &g)
        let adam = Adam([("p", p)], learningRate: 1e-3)
        let logits = Tensor.randomNormal([elements], generator: &g).requiringGrad()
        func median(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return times.sorted()[times.count / 2]
        }
        let adamMs = median { adam.step() }
        let lossMs = median { try! Loss.binaryCrossEntropyWithLogits(logits, target: 1).backward() }
        return SwiftLoopsResult(adamMilliseconds: adamMs, lossMilliseconds: lossMs)
    }

    /// The machine's peak in GFLOP/s, what every "% of peak" divides by: the widest FMA loop the
    /// CPU runs (AVX-512 where present) on every core (`FMAPeak`), or the bf16 dot-product loop
    /// when this process's convolutions run in bf16 (`ConvPrecision.processDefault`).
    public static func peakGFLOPS() -> Double {
        if ConvPrecision.processDefault == .bf16, let bf16 = FMAPeak.bf16() { return bf16 }
        return FMAPeak.widest().gflops
    }
}
