import Foundation
import SeededRandom
import Testing

@testable import Autodiff
@testable import NN

@Test func binaryCrossEntropyOnLogitsIsStableAndExact() throws {
    let x = try Tensor(shape: [4], scalars: [0, 2, -3, 100]).requiringGrad()
    let t = try Tensor(shape: [4], scalars: [1, 0, 1, 0])
    let loss = try Loss.binaryCrossEntropyWithLogits(x, targets: t)
    func bce(_ x: Double, _ t: Double) -> Double { -(t * log(1 / (1 + exp(-x))) + (1 - t) * log(1 - 1 / (1 + exp(-x)))) }
    let expected = (bce(0, 1) + bce(2, 0) + bce(-3, 1) + 100) / 4  // log(1 - sigmoid(100)) ~ -100
    #expect(abs(Double(loss.item) - expected) < 1e-4)
    loss.backward()
    // d/dx = (sigmoid(x) - t) / n, exact at x = 0 too.
    let g = x.grad!.scalars
    #expect(abs(g[0] - (0.5 - 1) / 4) < 1e-6)
    #expect(abs(g[3] - 0.25) < 1e-6)
}

@Test func crossEntropyWithWeightsAndSmoothingMatchesDefinition() throws {
    let logits: [Float] = [1, 2, 0.5, -1, 0, 3]
    let labels = [1, 2], w: [Float] = [1, 2, 0.5], eps: Float = 0.1
    let loss = try Loss.crossEntropy(
        Tensor(shape: [2, 3], scalars: logits), labels: labels, classWeights: w, labelSmoothing: eps)
    var num = 0.0, den = 0.0
    for i in 0..<2 {
        let row = logits[(i * 3)..<(i * 3 + 3)].map(Double.init)
        let lse = log(row.map(exp).reduce(0, +))
        let logp = row.map { $0 - lse }
        num += Double(1 - eps) * Double(w[labels[i]]) * -logp[labels[i]]
        for c in 0..<3 { num += Double(eps) / 3 * Double(w[c]) * -logp[c] }
        den += Double(w[labels[i]])
    }
    #expect(abs(Double(loss.item) - num / den) < 1e-5)
    // Plain cross-entropy of uniform logits is log(C).
    let uniform = try Loss.crossEntropy(Tensor.zeros([5, 4]), labels: [0, 1, 2, 3, 0])
    #expect(abs(uniform.item - log(4)) < 1e-6)
    #expect(throws: TensorError.self) { try Loss.crossEntropy(Tensor.zeros([2, 3]), labels: [0, 3]) }
}

@Test func hingeLosses() throws {
    let real = try Tensor(shape: [2], scalars: [2, 0.5]), fake = try Tensor(shape: [2], scalars: [-2, 0])
    #expect(abs(Loss.hingeDiscriminator(real: real, fake: fake).item - (0.25 + 0.5)) < 1e-6)
    #expect(Loss.hingeGenerator(fake: fake).item == 1)
}

@Test func batchNormRunningStatisticsFollowPyTorchMomentum() throws {
    let bn = BatchNorm2d(1, momentum: 0.1)
    let x = try Tensor(shape: [4, 1, 1, 1], scalars: [1, 2, 3, 4])
    _ = try bn(x)
    // mean 2.5; unbiased variance 5/3; running = 0.9 * init + 0.1 * batch
    #expect(abs(bn.runningMean.value.item - 0.25) < 1e-6)
    #expect(abs(bn.runningVar.value.item - (0.9 + 0.1 * 5.0 / 3.0)) < 1e-6)
    bn.train(false)
    let y = try bn(x)
    #expect(abs(y.scalars[0] - (1 - 0.25) / (bn.runningVar.value.item + 1e-5).squareRoot()) < 1e-5)
}

@Test func dcganInitialiserDrawsPaperDistributions() throws {
    var g = SeededGenerator(seed: 1)
    let net = Sequential([Conv2d(8, 64, kernelSize: 4, bias: false, generator: &g), BatchNorm2d(64)])
    Initializer.dcgan(net, generator: &g)
    let w = net.parameters[0].1.value.scalars
    let mean = w.reduce(0, +) / Float(w.count)
    let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
    #expect(abs(mean) < 0.002 && abs(std - 0.02) < 0.002)
    let scale = net.parameters[1].1.value.scalars
    #expect(abs(scale.reduce(0, +) / 64 - 1) < 0.01)
    #expect(net.parameters.map(\.0) == ["0.weight", "1.weight", "1.bias"])
    #expect(net.buffers.map(\.0) == ["1.running_mean", "1.running_var", "1.num_batches_tracked"])
}
