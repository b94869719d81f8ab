import Autodiff
import Foundation
import NN
import SeededRandom

/// Differentially private SGD (Abadi et al. 2016) for any optimizer: per-example gradients by
/// running each example of a Poisson-sampled batch through the model alone (microbatches of one),
/// each example's whole gradient clipped to `maxGradNorm`, the clipped gradients summed, Gaussian
/// noise N(0, (noiseMultiplier * maxGradNorm)^2) added to every coordinate, and the sum divided by
/// the expected batch size (Opacus's convention for Poisson sampling). `step` leaves the result in
/// the parameters' `.grad`; the caller's optimizer then takes its normal step.
///
/// The accountant composes one subsampled Gaussian mechanism per step at rate
/// q = expectedBatchSize / datasetSize. Randomness (sampling and noise) is derived from the seed
/// and the step number, so a resumed run (`resume(atStep:)`) continues the same streams.
public final class DPSGD {
    public let parameters: [(String, Parameter)]
    public let noiseMultiplier: Double
    public let maxGradNorm: Float
    public let expectedBatchSize: Int
    public let datasetSize: Int
    public let seed: UInt64
    /// Privacy spent so far.
    public private(set) var accountant = RDPAccountant()
    /// Number of private steps taken.
    public private(set) var stepCount = 0

    /// Poisson sampling rate q = expectedBatchSize / datasetSize.
    public var samplingRate: Double { Double(expectedBatchSize) / Double(datasetSize) }

    /// DP-SGD over `parameters` (only those with `requiresGrad` get gradients).
    public init(
        parameters: [(String, Parameter)], noiseMultiplier: Double, maxGradNorm: Float, expectedBatchSize: Int,
        datasetSize: Int, seed: UInt64
    ) throws {
        guard noiseMultiplier >= 0, maxGradNorm > 0, expectedBatchSize > 0, datasetSize >= expectedBatchSize else {
            throw PrivacyError.invalidArgument(
                "DP-SGD: noise multiplier \(noiseMultiplier) must be >= 0, max grad norm \(maxGradNorm) > 0, expected batch "
                    + "size \(expectedBatchSize) between 1 and the dataset size \(datasetSize)")
        }
        self.parameters = parameters; self.noiseMultiplier = noiseMultiplier; self.maxGradNorm = maxGradNorm
        self.expectedBatchSize = expectedBatchSize; self.datasetSize = datasetSize; self.seed = seed
    }

    /// DP-SGD over every parameter of `module`; refuses a module with batch norm.
    public convenience init(
        module: any Module, noiseMultiplier: Double, maxGradNorm: Float, expectedBatchSize: Int,
        datasetSize: Int, seed: UInt64
    ) throws {
        try DPSGD.requireNoBatchNorm(module)
        try self.init(
            parameters: module.parameters, noiseMultiplier: noiseMultiplier, maxGradNorm: maxGradNorm,
            expectedBatchSize: expectedBatchSize, datasetSize: datasetSize, seed: seed)
    }

    /// Throws if `module` or any descendant is a `BatchNorm2d`.
    /// NOTE: batch norm mixes the examples of a batch, so one example's influence is no longer
    /// confined to its own clipped gradient; the per-example sensitivity bound fails.
    public static func requireNoBatchNorm(_ module: any Module, path: String = "") throws {
        if module is BatchNorm2d {
            throw PrivacyError.batchNormNotAllowed(
                "\(path.isEmpty ? "the model" : path) is a BatchNorm2d: batch norm mixes examples, so DP-SGD's per-example "
                    + "clipping does not bound their influence. Remove batch norm (or use group norm) for private training.")
        }
        for (name, child) in module.children { try requireNoBatchNorm(child, path: path.isEmpty ? name : "\(path).\(name)") }
    }

    /// A Poisson sample for the next step: each index of 0..<datasetSize independently with
    /// probability q (the batch size varies around `expectedBatchSize`).
    public func sampleBatch() -> [Int] {
        var g = SeededGenerator(seed: seed).fork(2 * UInt64(stepCount))
        let q = samplingRate
        return (0..<datasetSize).filter { _ in Double(g.next() >> 11) * 0x1p-53 < q }
    }

    /// One private gradient: for each of `examples`, `lossForExample(i)` (a scalar built from
    /// that example alone) is differentiated, its gradient over all parameters clipped to
    /// `maxGradNorm`; the sum of clipped gradients plus noise, over `expectedBatchSize`, is added to
    /// whatever `.grad` held before (e.g. a gradient on non-private data, which is not charged).
    public func step(examples: [Int], lossForExample: (Int) throws -> Tensor) throws {
        let trainable = parameters.map(\.1).filter(\.requiresGrad)
        let carried = trainable.map(\.grad)
        var sums = trainable.map { [Float](repeating: 0, count: $0.count) }
        for i in examples {
            for p in trainable { p.zeroGrad() }
            let loss = try lossForExample(i)
            guard loss.count == 1 else {
                throw PrivacyError.invalidArgument("DP-SGD: the loss of example \(i) has shape \(loss.shape), not a scalar")
            }
            loss.backward()
            let grads = trainable.map { $0.grad?.storage.pointer }
            var squared = 0.0
            for (p, g) in zip(trainable, grads) {
                guard let g else { continue }
                for j in 0..<p.count { squared += Double(g[j]) * Double(g[j]) }
            }
            // NOTE: the 1e-6 keeps a zero gradient finite; Opacus clips with C / (norm + 1e-6) too.
            let scale = Float(min(1, Double(maxGradNorm) / (squared.squareRoot() + 1e-6)))
            for (k, g) in grads.enumerated() {
                guard let g else { continue }
                sums[k].withUnsafeMutableBufferPointer { s in for j in 0..<s.count { s[j] += scale * g[j] } }
            }
        }
        var noise = SeededGenerator(seed: seed).fork(2 * UInt64(stepCount) + 1)
        let std = Float(noiseMultiplier) * maxGradNorm, inverseBatch = 1 / Float(expectedBatchSize)
        for (k, p) in trainable.enumerated() {
            var values = sums[k]
            let before = carried[k]?.storage.pointer
            for j in 0..<values.count {
                values[j] = (values[j] + std * noise.normal()) * inverseBatch + (before?[j] ?? 0)
            }
            p.grad = try Tensor(shape: p.shape, scalars: values)
        }
        try accountant.step(noiseMultiplier: noiseMultiplier, samplingRate: samplingRate)
        stepCount += 1
    }

    /// Epsilon spent so far at `delta` (improved conversion of Balle et al. 2020).
    public func epsilon(delta: Double) throws -> Double { try accountant.epsilon(delta: delta).epsilon }

    /// Sets the position after `steps` private steps (resume from a checkpoint).
    public func resume(atStep steps: Int) throws {
        accountant = RDPAccountant(orders: accountant.orders)
        try accountant.step(noiseMultiplier: noiseMultiplier, samplingRate: samplingRate, steps: steps)
        stepCount = steps
    }
}
