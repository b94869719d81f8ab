import Foundation

/// Where a generator trainer stands: epochs done, steps into the current epoch, steps in all.
/// Checkpoints store it; resume sets it.
public struct TrainingPosition: Equatable, Sendable {
    public var epoch: Int, stepInEpoch: Int, globalStep: Int
    public init(epoch: Int = 0, stepInEpoch: Int = 0, globalStep: Int = 0) {
        self.epoch = epoch; self.stepInEpoch = stepInEpoch; self.globalStep = globalStep
    }
}

/// What a generator trainer reports while it runs (the command line draws it; libraries never
/// print). `Step` is what one step returns: the GAN's losses and scores, the diffusion loss.
public enum GeneratorEvent<Step: Sendable>: Sendable {
    case step(
        epoch: Int, step: Int, stepsPerEpoch: Int, globalStep: Int, totalSteps: Int, result: Step,
        imagesPerSecond: Double, etaSeconds: Double)
    case grid(path: String, epoch: Int)
    case checkpoint(path: String, globalStep: Int)
    case alarm(String)
    case resumed(epoch: Int, step: Int, globalStep: Int)
}

/// The loop the GAN and diffusion trainers share: epochs of shuffled full batches (the order
/// fixed by `plan.seed`, see `epochBatches`) from wherever `position` stands, one line per step in
/// the step log, a checkpoint every `plan.checkpointEvery` steps, a grid every `plan.gridEvery`
/// epochs, and at the end a final grid and checkpoint. What a step, a grid and a checkpoint are
/// is the trainer's; so is the step log's line. No tensor here.
public final class TrainingLoop {
    public let plan: TrainingPlan
    /// Training images, and images per step (at most `count`).
    public let count: Int, batchSize: Int
    /// The per-step log (JSON Lines; see `StepLog`).
    public let stepLog: URL
    public var position = TrainingPosition()
    /// False on every data-parallel rank but 0: it trains in step but writes no log, grid or
    /// checkpoint (rank 0 alone writes).
    public let writesOutputs: Bool

    public init(plan: TrainingPlan, count: Int, batchSize: Int, stepLog: URL, writesOutputs: Bool = true) {
        self.plan = plan; self.count = count; self.batchSize = batchSize; self.stepLog = stepLog
        self.writesOutputs = writesOutputs
    }

    /// Runs until `totalSteps` from `position`. `step` trains on a batch's image indices;
    /// `logLine` is its step-log object (the position already counts the step); `afterStep`
    /// looks at it after it is reported (alarms); `checkpoint` saves the full state to
    /// `checkpointPath` and `grid` writes a sample grid (`final` at the end), reporting it.
    public func run<Step: Sendable>(
        totalSteps: Int, checkpointPath: String,
        step: ([Int]) throws -> Step,
        logLine: (Step, TrainingPosition) -> String,
        afterStep: (Step) -> Void = { _ in },
        checkpoint: () throws -> Void,
        grid: (_ final: Bool) throws -> Void,
        _ observe: (GeneratorEvent<Step>) -> Void
    ) throws {
        let log = writesOutputs ? try StepLog(url: stepLog, keepingStepsUpTo: position.globalStep) : nil
        var recent: [Double] = []
        while position.globalStep < totalSteps {
            // Drop the last partial batch so every step sees a full batch (batch norm, speed).
            let batches = epochBatches(
                count: count, batchSize: batchSize, epoch: position.epoch, seed: plan.seed, dropLast: true)
            while position.stepInEpoch < batches.count && position.globalStep < totalSteps {
                let t0 = Date()
                let result = try step(batches[position.stepInEpoch])
                position.stepInEpoch += 1; position.globalStep += 1
                recent.append(Date().timeIntervalSince(t0)); if recent.count > 20 { recent.removeFirst() }
                let perStep = recent.reduce(0, +) / Double(recent.count)
                try log?.append(logLine(result, position))
                observe(
                    .step(
                        epoch: position.epoch, step: position.stepInEpoch, stepsPerEpoch: batches.count,
                        globalStep: position.globalStep, totalSteps: totalSteps, result: result,
                        imagesPerSecond: Double(batchSize) / perStep,
                        etaSeconds: perStep * Double(totalSteps - position.globalStep)))
                afterStep(result)
                if writesOutputs && position.globalStep % plan.checkpointEvery == 0 {
                    try checkpoint(); observe(.checkpoint(path: checkpointPath, globalStep: position.globalStep))
                }
            }
            if position.stepInEpoch >= batches.count {
                position.epoch += 1; position.stepInEpoch = 0
                if writesOutputs && position.epoch % plan.gridEvery == 0 { try grid(false) }
            }
        }
        guard writesOutputs else { return }
        try grid(true)
        try checkpoint()
        observe(.checkpoint(path: checkpointPath, globalStep: position.globalStep))
    }
}
