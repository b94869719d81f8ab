import Autodiff

/// How long and how often a generator trains: epochs (or a step budget), the seed of the batch
/// order, and how often to write a checkpoint and a sample grid. The GAN and diffusion trainers
/// share it (`GANTrainingPlan`, `DiffusionTrainingPlan`), so one command line option sets both.
public struct TrainingPlan: Codable, Equatable, Sendable {
    public var epochs = 100
    /// Stop after this many steps in all (nil: run all epochs); used by tests and smoke runs.
    public var maxSteps: Int? = nil
    public var seed: UInt64 = 0
    /// Write a checkpoint every this many steps, and at the end.
    public var checkpointEvery = 200
    /// Write a fixed-noise sample grid every this many epochs, and at the end.
    public var gridEvery = 10
    public init() {}

    /// What makes the plan unrunnable: a count below 1 (it would divide by zero or never stop);
    /// nil when nothing does. Each trainer throws it as its own error.
    public var problem: String? {
        let counts = [
            ("epochs", epochs), ("max steps", maxSteps ?? 1), ("checkpoint interval", checkpointEvery),
            ("grid interval", gridEvery),
        ]
        return counts.first { $0.1 < 1 }.map { "\($0.0) \($0.1) is below 1" }
    }

    /// Steps in all with `stepsPerEpoch` steps per epoch: epochs x steps per epoch (saturating
    /// rather than overflowing), capped by `maxSteps`.
    public func totalSteps(stepsPerEpoch: Int) -> Int {
        let (all, overflow) = epochs.multipliedReportingOverflow(by: stepsPerEpoch)
        return min(maxSteps ?? Int.max, overflow ? Int.max : all)
    }
}

/// Real training images for a generator: (N, C, S, S) in [-1, 1], with class labels when
/// conditional (`GANTrainingData`, `DiffusionTrainingData`).
public struct GeneratorTrainingData: Sendable {
    public var pixels: [Float]
    public var count: Int, channels: Int, size: Int
    public var labels: [Int]?
    public var classNames: [String]

    public init(pixels: [Float], count: Int, channels: Int, size: Int, labels: [Int]?, classNames: [String]) {
        self.pixels = pixels; self.count = count; self.channels = channels; self.size = size
        self.labels = labels; self.classNames = classNames
    }

    /// The images at `indices` as one (n, C, S, S) batch, with their labels.
    public func batch(_ indices: [Int]) -> (Tensor, [Int]?) {
        let d = channels * size * size
        var b = [Float]()
        b.reserveCapacity(indices.count * d)
        for i in indices { b.append(contentsOf: pixels[(i * d)..<((i + 1) * d)]) }
        // swift-format-ignore: NeverUseForceTry
        // The shape holds exactly the scalars gathered.
        return (try! Tensor(shape: [indices.count, channels, size, size], scalars: b), labels.map { l in indices.map { l[$0] } })
    }
}
