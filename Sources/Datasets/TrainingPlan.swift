/// How long and how often a generator trains: epochs (or a step budget), the seed of the batch
/// order, and how often to write a checkpoint and a sample grid. The GAN and diffusion trainers
/// share it (`GANTrainingPlan`, `DiffusionTrainingPlan`), so one command line option sets both.
/// It lives beside `epochBatches`, whose order `seed` fixes: no tensor in it.
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
