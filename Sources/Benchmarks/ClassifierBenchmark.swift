import Autodiff
import Classification
import Dispatch
import Foundation
import Kernels
import NN
import SeededRandom

/// Result of timing classifier training steps and inference batches.
public struct ClassifierBenchmarkResult: Codable, Sendable {
    public var framework = "medsynth"
    /// `resnet28x3`, `paper-cnn64x1`, ...: architecture, side, channels (the peers' names).
    public var model: String
    public var batchSize: Int
    public var classes: Int
    /// OpenMP threads the kernels ran with (`OMP_NUM_THREADS`, else every core).
    public var threads: Int
    /// One training step: forward, cross-entropy, backward, Adam update (what `ClassifierTrainer` does per batch).
    public var stepMillisecondsMedian: Double
    public var stepMilliseconds: [Double]
    /// One inference batch: evaluation-mode forward and softmax, no graph.
    public var inferenceMillisecondsMedian: Double
    public var inferenceMilliseconds: [Double]
    /// Training images per second at the median step.
    public var imagesPerSecond: Double
    public var inferenceImagesPerSecond: Double
    /// FLOP the kernels ran per training step (convolutions and GEMMs, counted), in GFLOP.
    public var gflopPerStep: Double
    public var gflops: Double
    /// The number format the convolutions multiplied in: "f32" or "bf16" (`ConvPrecision`).
    public var precision = ConvPrecision.processDefault.rawValue

    enum CodingKeys: String, CodingKey {
        case framework, model, classes, threads, gflops, precision
        case batchSize = "batch_size"
        case stepMillisecondsMedian = "step_ms_median"
        case stepMilliseconds = "step_ms_all"
        case inferenceMillisecondsMedian = "infer_ms_median"
        case inferenceMilliseconds = "infer_ms_all"
        case imagesPerSecond = "images_per_s"
        case inferenceImagesPerSecond = "infer_images_per_s"
        case gflopPerStep = "gflop_per_step"
    }

    /// Step and inference times, throughput and FLOP rate.
    public var summary: String {
        String(
            format: "%@ batch %d, %d classes, %d threads, %@ convolutions: training step %.2f ms (median of %d), %.0f images/s, "
                + "%.3f GFLOP/step, %.1f GFLOP/s; inference batch %.2f ms (median of %d), %.0f images/s",
            model, batchSize, classes, threads, precision, stepMillisecondsMedian, stepMilliseconds.count, imagesPerSecond,
            gflopPerStep, gflops, inferenceMillisecondsMedian, inferenceMilliseconds.count, inferenceImagesPerSecond)
    }

    /// The result as one JSON line with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

extension Benchmark {
    /// Times `steps` classifier training steps (zero the gradients, forward (N, C, S, S) -> (N, K),
    /// cross-entropy, backward, Adam 1e-3: `ClassifierTrainer`'s loop body) and `steps` inference
    /// batches (evaluation mode, softmax, no graph) on seeded random images and labels; medians
    /// after `warmup` untimed ones of each.
    public static func classifier(
        config: ClassifierConfig, batchSize: Int, steps: Int = 20, warmup: Int = 3, seed: UInt64 = 0
    ) throws -> ClassifierBenchmarkResult {
        var g = SeededGenerator(seed: seed)
        let model = Classifier(config, generator: &g)
        let optimizer = Adam(model.parameters, learningRate: 1e-3)
        let (c, s, k) = (config.channels, config.imageSize, config.classes)
        let x = Tensor.randomUniform([batchSize, c, s, s], generator: &g)  // (N, C, S, S) in [0, 1)
        let labels = (0..<batchSize).map { _ in Int(g.next() % UInt64(k)) }

        func trainingStep() throws {
            model.zeroGrad()
            let logits = try model(x)  // (N, K)
            let loss = try Loss.crossEntropy(logits, labels: labels)
            loss.backward()
            optimizer.step()
        }
        func inferenceBatch() throws {
            _ = try noGrad { try model(x).softmax() }  // (N, K)
        }
        func timed(_ body: () throws -> Void) rethrows -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        }

        model.train(true)
        for _ in 0..<warmup { try trainingStep() }
        let flopBefore = KernelCounters.totalFLOP
        var stepTimes: [Double] = []
        for _ in 0..<steps { stepTimes.append(try timed(trainingStep)) }
        let flopPerStep = (KernelCounters.totalFLOP - flopBefore) / Double(steps)

        model.train(false)
        for _ in 0..<warmup { try inferenceBatch() }
        var inferenceTimes: [Double] = []
        for _ in 0..<steps { inferenceTimes.append(try timed(inferenceBatch)) }

        let step = median(stepTimes), inference = median(inferenceTimes)
        return ClassifierBenchmarkResult(
            model: "\(config.arch.rawValue)\(s)x\(c)", batchSize: batchSize, classes: k, threads: KernelThreads.count,
            stepMillisecondsMedian: step, stepMilliseconds: stepTimes,
            inferenceMillisecondsMedian: inference, inferenceMilliseconds: inferenceTimes,
            imagesPerSecond: Double(batchSize) / (step / 1000),
            inferenceImagesPerSecond: Double(batchSize) / (inference / 1000),
            gflopPerStep: flopPerStep / 1e9, gflops: flopPerStep / 1e9 / (step / 1000))
    }

    /// The middle value (upper middle for an even count).
    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
