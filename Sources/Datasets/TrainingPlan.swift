import AtomicIO
import Foundation

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
    /// The split the training images came from. nil in checkpoints written before it was
    /// recorded: their split seed was `seed` (see `trainingSplit`).
    public var split: SplitChoice? = nil
    public init() {}

    /// The split the training images came from: `split`, or for older checkpoints the one
    /// `gan train` used then (seed `seed`, ratio 8:1:1).
    public var trainingSplit: SplitChoice { split ?? SplitChoice(seed: seed) }

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

/// The top-level fields in which two values of a configuration type differ, sorted by name: what
/// a `--resume` with other options would silently change, named for the refusal.
public func differingFields<T: Encodable>(_ a: T, _ b: T) -> [String] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    func fields(_ value: T) -> [String: Any] {
        (try? encoder.encode(value)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
    }
    func text(_ value: Any?) -> Data? {
        value.flatMap { try? JSONSerialization.data(withJSONObject: ["v": $0], options: .sortedKeys) }
    }
    let (fa, fb) = (fields(a), fields(b))
    return Set(fa.keys).union(fb.keys).filter { text(fa[$0]) != text(fb[$0]) }.sorted()
}

/// A generator's per-step log as JSON Lines, one object per step with a `"step"` key; on resume,
/// lines after the checkpoint's step are dropped so the log matches the state exactly. The GAN
/// and diffusion trainers share it, each writing its own fields.
public final class StepLog {
    let handle: FileHandle
    public init(url: URL, keepingStepsUpTo step: Int) throws {
        if FileManager.default.fileExists(atPath: url.path) {
            let kept = (try String(contentsOf: url, encoding: .utf8)).split(separator: "\n").filter { line in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let s = o["step"] as? Int
                else { return false }
                return s <= step
            }
            try writeFileAtomically(Array((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: url.path)
        } else {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }
    deinit { try? handle.close() }

    /// Appends one line (`json` is one JSON object, without the newline).
    public func append(_ json: String) throws { try handle.write(contentsOf: Data((json + "\n").utf8)) }
}
