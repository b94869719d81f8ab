import Foundation
import TestSupport
import Testing

@testable import Serving

/// A model the batcher never calls (its items bring their own `run`): a deployment's identity.
private struct Unused: InferenceModel {
    var name: String { "unused" }
    var version: Int { 1 }
    var classNames: [String] { ["a", "b"] }
    var inputShape: (channels: Int, height: Int, width: Int) { (1, 1, 1) }
    func predict(_ pixels: [Float], count: Int) throws -> [[Float]] { [] }
}

/// The batcher's runs: image counts in order, the first two held at gates of their own.
private final class GatedRuns: @unchecked Sendable {
    // NOTE: @unchecked: `counts` is guarded by `lock`.
    private let lock = NSLock()
    private var counts: [Int] = []
    let gates = [Gate(), Gate()]
    let finished = DispatchSemaphore(value: 0)

    func item(_ deployment: Deployment) -> InferenceBatcher.Item {
        InferenceBatcher.Item(
            deployment: deployment, pixels: [0], count: 1,
            run: { [self] _, count in
                let index = lock.withLock {
                    counts.append(count)
                    return counts.count - 1
                }
                if index < gates.count { gates[index].pass() }
                return Array(repeating: [0.5, 0.5], count: count)
            },
            finish: { [self] _ in finished.signal() })
    }
    var all: [Int] { lock.withLock { counts } }
}

/// After a batch of several requests, the deployment's next batch waits up to `maxDelay` for
/// more (`InferenceBatcher.gather`), until twice the last batch's images wait: behind a batch of
/// two, a request that waits alone is joined by three sent a second later when the delay is 10 s
/// (one batch of four), and runs alone without a delay. A lone request (a batch of one) never
/// waits: its submit returns at once even with the 10 s delay. The late requests come from a
/// thread of their own (in a loaded test run the cooperative pool can be late by seconds).
@Test(arguments: [0, 10_000])
func theNextBatchGathersAfterABatchOfSeveral(delayMilliseconds: Int) async throws {
    let batcher = InferenceBatcher(
        maxImages: 8, maxDelay: .milliseconds(delayMilliseconds), queue: InferenceQueue(threads: 1),
        metrics: ServerMetrics())
    let deployment = Deployment(model: Unused(), monitor: nil)
    let runs = GatedRuns()
    // X runs alone and waits at gate 0; A and B queue behind it.
    Thread.detachNewThread { batcher.submit(runs.item(deployment)) }
    #expect(try await eventually(600) { runs.gates[0].arrived == 1 })
    for _ in 0..<2 { batcher.submit(runs.item(deployment)) }
    // X done: A and B run as one batch, held at gate 1; C queues behind them.
    runs.gates[0].open()
    #expect(try await eventually(600) { runs.gates[1].arrived == 1 })
    batcher.submit(runs.item(deployment))
    // A and B done: with a delay the thread gathers; D, E and F come a second later.
    runs.gates[1].open()
    Thread.detachNewThread {
        Thread.sleep(forTimeInterval: 1)
        for _ in 0..<3 { batcher.submit(runs.item(deployment)) }
    }
    for _ in 0..<7 { await onOwnThread { runs.finished.wait() } }
    let counts = runs.all
    #expect(counts.reduce(0, +) == 7 && Array(counts.prefix(2)) == [1, 2], "\(counts)")
    if delayMilliseconds > 0 {
        #expect(counts == [1, 2, 4], "C did not wait for D, E and F")
    } else {
        #expect(counts.count > 2 && counts[2] == 1, "C waited: \(counts)")
    }

    // A lone request: a batch of one, after which nothing waits.
    let lone = InferenceBatcher(
        maxImages: 8, maxDelay: .milliseconds(delayMilliseconds), queue: InferenceQueue(threads: 1),
        metrics: ServerMetrics())
    let aloneRuns = GatedRuns()
    aloneRuns.gates.forEach { $0.open() }
    let start = ContinuousClock.now
    lone.submit(aloneRuns.item(deployment))
    #expect(ContinuousClock.now - start < .milliseconds(500), "a lone request waited after its batch")
    #expect(aloneRuns.all == [1])
}
