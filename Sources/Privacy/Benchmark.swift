import Autodiff
import Foundation
import NN
import SeededRandom

/// The cost of privacy: one DP-SGD step (per-example gradients by microbatches of one, clipping,
/// noise) against one ordinary minibatch step, on the same small CNN and batch.
public enum PrivacyBenchmark {
    /// Median step times in milliseconds.
    public struct Result: Codable, Sendable {
        public var batchSize: Int
        public var ordinaryMilliseconds: Double
        public var privateMilliseconds: Double
        public var slowdown: Double { privateMilliseconds / ordinaryMilliseconds }
    }

    /// A batch-norm-free CNN for 28 x 28 gray images:
    /// (N, 1, 28, 28) -> (N, 16, 14, 14) -> (N, 32, 7, 7) -> (N, 64) -> (N, 2).
    public static func smallCNN(generator g: inout SeededGenerator) -> Sequential {
        Sequential([
            Conv2d(1, 16, kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2),   // (N, 16, 14, 14)
            Conv2d(16, 32, kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2),  // (N, 32, 7, 7)
            Flatten(), Linear(32 * 7 * 7, 64, generator: &g), ReLU(), Linear(64, 2, generator: &g),  // (N, 2)
        ])
    }

    /// Times `steps` ordinary and `steps` private SGD steps (after `warmup` of each) on random data.
    public static func run(batchSize: Int = 64, steps: Int = 5, warmup: Int = 1) throws -> Result {
        var g = SeededGenerator(seed: 0)
        let net = smallCNN(generator: &g)
        let x = Tensor.randomNormal([batchSize, 1, 28, 28], generator: &g)
        let labels = (0..<batchSize).map { $0 % 2 }
        let sgd = SGD(net.parameters, learningRate: 0.01)
        let dp = try DPSGD(module: net, noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: batchSize,
                           datasetSize: 100 * batchSize, seed: 0)
        let examples = try (0..<batchSize).map { try x.slice(axis: 0, start: $0, length: 1) }
        func median(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<warmup { try body() }
            var times: [Double] = []
            for _ in 0..<steps {
                let t0 = Date()
                try body()
                times.append(Date().timeIntervalSince(t0) * 1000)
            }
            return times.sorted()[steps / 2]
        }
        let ordinary = try median {
            net.zeroGrad()
            try Loss.crossEntropy(net(x), labels: labels).backward()
            sgd.step()
        }
        let privateStep = try median {
            net.zeroGrad()
            try dp.step(examples: Array(0..<batchSize)) { i in try Loss.crossEntropy(net(examples[i]), labels: [labels[i]]) }
            sgd.step()
        }
        return Result(batchSize: batchSize, ordinaryMilliseconds: ordinary, privateMilliseconds: privateStep)
    }
}
