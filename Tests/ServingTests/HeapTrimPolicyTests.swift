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
