import Autodiff
import Foundation
import NN
import SeededRandom
import Testing

@testable import Privacy

/// A linear model w (1, D) with loss_i = scale_i * (w . x_i): the per-example gradient is
/// scale_i * x_i, known exactly.
private func linearSetup(d: Int, examples: [[Float]], scales: [Float]) throws -> (Linear, (Int) throws -> Tensor) {
    var g = SeededGenerator(seed: 1)
    let model = Linear(d, 1, bias: false, generator: &g)
    let xs = try examples.map { try Tensor(shape: [1, d], scalars: $0) }
    return (model, { i in try model(xs[i]).sum() * scales[i] })
}

@Test func clippingBoundsEachExamplesContribution() throws {
    let d = 8
    var g = SeededGenerator(seed: 3)
    let examples = (0..<4).map { _ in (0..<d).map { _ in g.normal() } }
    // Example 0 has a gradient 10^4 times larger than the clip; the others are tiny.
    let (model, loss) = try linearSetup(d: d, examples: examples, scales: [1e4, 1e-3, 1e-3, 1e-3])
    let dp = try DPSGD(module: model, noiseMultiplier: 0, maxGradNorm: 0.5, expectedBatchSize: 4, datasetSize: 40, seed: 0)
    try dp.step(examples: [0], lossForExample: loss)
    let alone = model.weight.grad!.scalars
    let norm = alone.reduce(0) { $0 + $1 * $1 }.squareRoot()
    #expect(abs(norm - 0.5 / 4) < 1e-5, "the huge example moves the gradient by C / B exactly, got \(norm)")
    // Direction is kept: the clipped gradient is parallel to x_0.
    let x0 = examples[0], x0norm = x0.reduce(0) { $0 + $1 * $1 }.squareRoot()
    for j in 0..<d { #expect(abs(alone[j] - x0[j] / x0norm * 0.125) < 1e-5) }
    // Small examples pass unclipped: their sum / B.
    model.zeroGrad()
    try dp.step(examples: [1, 2, 3], lossForExample: loss)
    let small = model.weight.grad!.scalars
    for j in 0..<d {
        let expected = (examples[1][j] + examples[2][j] + examples[3][j]) * 1e-3 / 4
        #expect(abs(small[j] - expected) < 1e-6)
    }
    #expect(dp.stepCount == 2)
}

@Test func noiseHasStandardDeviationSigmaTimesClipOverBatch() throws {
    let d = 20_000
    var g = SeededGenerator(seed: 5)
    let model = Linear(d, 1, bias: false, generator: &g)
    let dp = try DPSGD(module: model, noiseMultiplier: 1.3, maxGradNorm: 2, expectedBatchSize: 8, datasetSize: 100, seed: 9)
    try dp.step(examples: [], lossForExample: { _ in Tensor(0) })
    let v = model.weight.grad!.scalars.map(Double.init)
    let mean = v.reduce(0, +) / Double(d)
    let std = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d - 1)).squareRoot()
    let expected = 1.3 * 2 / 8.0
    // std of the sample std is about expected / sqrt(2 d) = 0.5 %; allow 3 %.
    #expect(abs(std - expected) / expected < 0.03, "std \(std) vs \(expected)")
    #expect(abs(mean) < 4 * expected / Double(d).squareRoot(), "mean \(mean)")
}

@Test func gradientAlreadyPresentIsKeptUncharged() throws {
    let (model, loss) = try linearSetup(d: 2, examples: [[3, 4]], scales: [1])
    model.weight.grad = try Tensor(shape: [1, 2], scalars: [10, 20])
    let dp = try DPSGD(module: model, noiseMultiplier: 0, maxGradNorm: 1, expectedBatchSize: 1, datasetSize: 10, seed: 0)
    try dp.step(examples: [0], lossForExample: loss)
    // clip (3, 4) to norm 1 -> (0.6, 0.8), plus the carried (10, 20)
    let gr = model.weight.grad!.scalars
    #expect(abs(gr[0] - 10.6) < 1e-4 && abs(gr[1] - 20.8) < 1e-4)
}

@Test func batchNormIsRefused() throws {
    var g = SeededGenerator(seed: 0)
    let net = Sequential([Conv2d(1, 4, kernelSize: 3, generator: &g), BatchNorm2d(4), ReLU()])
    #expect(throws: PrivacyError.self) {
        try DPSGD(module: net, noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: 2, datasetSize: 10, seed: 0)
    }
}

@Test func poissonBatchesAverageTheExpectedSizeAndAccountantTracksSteps() throws {
    var g = SeededGenerator(seed: 0)
    let model = Linear(2, 1, generator: &g)
    let dp = try DPSGD(module: model, noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: 50, datasetSize: 1000, seed: 4)
    var total = 0
    for _ in 0..<200 {
        let batch = dp.sampleBatch()
        total += batch.count
        try dp.step(examples: [], lossForExample: { _ in Tensor(0) })
    }
    // mean of 200 Binomial(1000, 0.05) batches: 50 +- 0.5 (std); allow 2.
    #expect(abs(Double(total) / 200 - 50) < 2)
    let expected = try RDPAccountant.epsilon(noiseMultiplier: 1, samplingRate: 0.05, steps: 200, delta: 1e-5)
    #expect(abs(try dp.epsilon(delta: 1e-5) - expected) < 1e-9)
    let resumed = try DPSGD(module: model, noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: 50, datasetSize: 1000, seed: 4)
    try resumed.resume(atStep: 200)
    #expect(resumed.sampleBatch() == dp.sampleBatch())
    #expect(abs(try resumed.epsilon(delta: 1e-5) - expected) < 1e-9)
}
