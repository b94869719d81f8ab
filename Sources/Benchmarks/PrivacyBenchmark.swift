import Autodiff
import Foundation
import NN
import Privacy
import SeededRandom

/// The cost of privacy: one DP-SGD step (per-example gradients by microbatches of one, clipping,
/// noise) against one ordinary minibatch step, on the same small CNN and batch.
public enum PrivacyBenchmark {
    /// Step times in milliseconds: medians, and minima (the better estimate on a shared, loaded machine).
    public struct Result: Sendable {
        public var batchSize: Int
        /// Timed steps of each kind.
        public var steps: Int
        public var ordinary: (median: Double, minimum: Double)
        public var privateStep: (median: Double, minimum: Double)
        /// Private over ordinary, from the minima.
        public var slowdown: Double { privateStep.minimum / ordinary.minimum }
    }

    /// A batch-norm-free CNN for 28 x 28 gray images:
    /// (N, 1, 28, 28) -> (N, 16, 14, 14) -> (N, 32, 7, 7) -> (N, 64) -> (N, 2).
    public static func smallCNN(generator g: inout SeededGenerator) -> Sequential {
        Sequential([
            Conv2d(1, 16, kernelSize: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(2),  // (N, 16, 14, 14)
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
        let dp = try DPSGD(
            module: net, noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: batchSize,
            datasetSize: 100 * batchSize, seed: 0)
        let examples = try (0..<batchSize).map { try x.slice(axis: 0, start: $0, length: 1) }
        func time(_ body: () throws -> Void) rethrows -> (median: Double, minimum: Double) {
            for _ in 0..<warmup { try body() }
            var times: [Double] = []
            for _ in 0..<steps {
                let t0 = Date()
                try body()
                times.append(Date().timeIntervalSince(t0) * 1000)
            }
            return (times.sorted()[steps / 2], times.min()!)
        }
        let ordinary = try time {
            net.zeroGrad()
            try Loss.crossEntropy(net(x), labels: labels).backward()
            sgd.step()
        }
        let privateStep = try time {
            net.zeroGrad()
            try dp.step(examples: Array(0..<batchSize)) { i in try Loss.crossEntropy(net(examples[i]), labels: [labels[i]]) }
            sgd.step()
        }
        return Result(batchSize: batchSize, steps: steps, ordinary: ordinary, privateStep: privateStep)
    }
}
