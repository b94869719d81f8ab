import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Serving

/// The trim timer's decisions, tick by tick: after an inference, the first idle tick; without
/// one, a backoff that doubles while trims release little and resets after a large release (the
/// connections of a load closing after its last inference); never while an inference runs.
@Test func heapTrimsFollowInferencesThenBackOff() {
    var policy = HeapTrimPolicy()
    // Busy ticks never trim, even with inferences served.
    let whileBusy = policy.shouldTrim(inferenceServedSinceTrim: true, busy: true)
    #expect(!whileBusy)
    let afterInference = policy.shouldTrim(inferenceServedSinceTrim: true, busy: false)
    #expect(afterInference)
    policy.trimmed(released: 100 << 20)
    #expect(policy.backoffTicks == 1)

    /// The ticks at which an idle server (no inference) trims, each trim releasing `released`.
    func idleTrimTicks(_ ticks: Int, released: Int) -> [Int] {
        (1...ticks).filter { tick in
            guard policy.shouldTrim(inferenceServedSinceTrim: false, busy: false) else { return false }
            policy.trimmed(released: released)
            return true
        }
    }
    // Little released: after 1, 2, 4, ... ticks, at most every 32.
    #expect(idleTrimTicks(200, released: 0) == [1, 3, 7, 15, 31, 63, 95, 127, 159, 191])
    #expect(policy.backoffTicks == HeapTrimPolicy.maxBackoffTicks)
    // Connections closing free 50 MB: the next backoff trim (32 ticks after the one at 191)
    // releases it, and the trims come every tick again while they release much.
    #expect(idleTrimTicks(32, released: 50 << 20) == Array(23...32))
    #expect(policy.backoffTicks == 1)
    // An inference calls for a trim at the next idle tick whatever the backoff.
    _ = idleTrimTicks(10, released: 0)
    #expect(policy.backoffTicks > 1)
    let afterAnotherInference = policy.shouldTrim(inferenceServedSinceTrim: true, busy: false)
    #expect(afterAnotherInference)
}

/// `submitToEveryWorker` (how an idle server has each inference thread hand its arena's top
/// back): the job runs once on each worker thread, idle or busy, and ordinary jobs still run.
@Test func aJobForEveryWorkerRunsOnceOnEachThread() async throws {
    let queue = InferenceQueue(threads: 3)
    let threads = Mutex<[UInt]>([])
    let waiter = DispatchSemaphore(value: 0)
    queue.submit { waiter.wait() }  // one worker busy while the job is submitted
    queue.submitToEveryWorker { threads.withLock { $0.append(UInt(pthread_self())) } }
    for _ in 0..<200 where threads.withLock({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(5)) }
    waiter.signal()
    for _ in 0..<200 where threads.withLock({ $0.count }) < 3 { try await Task.sleep(for: .milliseconds(5)) }
    let ran = threads.withLock { $0 }
    #expect(ran.count == 3 && Set(ran).count == 3, "\(ran)")
    #expect(try await queue.run { 6 * 7 } == 42)
    try await Task.sleep(for: .milliseconds(50))
    #expect(threads.withLock { $0.count } == 3, "ran again")
}
