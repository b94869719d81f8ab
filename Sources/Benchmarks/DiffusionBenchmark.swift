import Autodiff
import Diffusion
import Dispatch
import Foundation
import Kernels
import SeededRandom

/// Training and sampling speed of a diffusion model on random data.
public struct DiffusionBenchmarkResult: Codable, Sendable {
    public var config: UNetConfig
    public var parameters: Int
    public var batchSize: Int
    /// Median milliseconds of a training step (forward, backward, clipping, Adam, EMA), and all of them.
    public var stepMillisecondsMedian: Double
    public var stepMilliseconds: [Double]
    /// FLOP the kernels ran per training step (counted), in GFLOP.
    public var gflopPerStep: Double
    /// Images per second of DDIM sampling at each step count (with guidance when conditional), and
    /// at a distilled student's cost, "N distilled": N steps, guidance 1 (one U-Net row per image).
    public var samplingImagesPerSecond: [String: Double]
}

public enum DiffusionBenchmark {
    /// Times `steps` training steps after `warmup`, then samples `sampleCount` images at each of
    /// `samplingSteps` DDIM step counts (guidance scale 2 for a conditional model: two U-Net rows per
    /// image) and, when given, at `distilledSteps` steps with guidance 1 (what `gan distill`'s student costs).
    public static func run(
        config: UNetConfig, batchSize: Int, steps: Int = 10, warmup: Int = 2, samplingSteps: [Int] = [25, 50],
        distilledSteps: Int? = nil, sampleCount: Int = 64, seed: UInt64 = 0
    ) throws -> DiffusionBenchmarkResult {
        var options = DiffusionOptions()
        options.batchSize = batchSize
        let model = try DiffusionModel(config: config, options: options, seed: seed)
        var g = SeededGenerator(seed: seed + 1)
        let x0 = Tensor.randomUniform(
            [batchSize, config.channels, config.imageSize, config.imageSize], low: -1, high: 1, generator: &g)
        let labels = config.classes.map { k in (0..<batchSize).map { $0 % k } }
        for _ in 0..<warmup { try model.step(x0: x0, labels: labels) }
        var times: [Double] = []
        let flopBefore = KernelCounters.totalFLOP
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try model.step(x0: x0, labels: labels)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let flopPerStep = (KernelCounters.totalFLOP - flopBefore) / Double(max(steps, 1))
        var sampling: [String: Double] = [:]
        let runs = samplingSteps.map { ("\($0)", $0, Float(2)) } + (distilledSteps.map { [("\($0) distilled", $0, 1)] } ?? [])
        for (key, n, w) in runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.sample(
                count: sampleCount, labels: config.classes.map { _ in [Int](repeating: 0, count: sampleCount) },
                steps: n, guidanceScale: w, generator: &g)
            sampling[key] = Double(sampleCount) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return DiffusionBenchmarkResult(
            config: config, parameters: model.unet.parameterCount, batchSize: batchSize,
            stepMillisecondsMedian: times.sorted()[times.count / 2], stepMilliseconds: times,
            gflopPerStep: flopPerStep / 1e9, samplingImagesPerSecond: sampling)
    }
}
