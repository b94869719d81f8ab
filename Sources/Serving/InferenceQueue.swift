import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking work (JSON and image decoding, the model, loading weights) on threads of its
/// own, first in, first out, so that the cooperative thread pool, which answers health checks
/// and metrics, never waits behind it.
///
/// The queue itself is unbounded: `ServingState` admits at most `maxConcurrentInferences`
/// requests, and only admitted requests enqueue work here, so no more jobs ever wait.
///
/// On Linux the threads are marked as batch work (`SCHED_BATCH`: same CPU share, but a waking
/// thread, e.g. the event loop with a health check, preempts them at once); oneDNN's OpenMP
/// threads, which they start, inherit it.
final class InferenceQueue: Sendable {
    private let core: Core

    /// Starts `threads` worker threads; they end when the queue is released.
    init(threads: Int) {
        precondition(threads >= 1, "an inference queue needs a thread")
        core = Core()
        for _ in 0..<threads {
            Thread.detachNewThread { [core] in
                pthread_setspecific(workerKey, UnsafeRawPointer(bitPattern: 1))
                markAsBatchWork()
                core.work()
            }
        }
    }

    deinit { core.stop() }

    /// Runs `body` on a worker thread; the caller's task is suspended, not blocked, meanwhile.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            core.enqueue { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs `body` on a worker thread and returns at once (background work: loading a model).
    func submit(_ body: @escaping @Sendable () -> Void) { core.enqueue(body) }

    /// Runs `body` once on every worker thread, before the next job each takes (or at once when
    /// idle), and returns at once; a newer call replaces one not yet run everywhere.
    func submitToEveryWorker(_ body: @escaping @Sendable () -> Void) { core.enqueueForEveryWorker(body) }

    /// Whether the calling thread is a worker of some inference queue.
    static var onWorkerThread: Bool { pthread_getspecific(workerKey) != nil }

    /// Jobs waiting for a thread (not those running).
    var waiting: Int { core.waiting }

    /// The state the worker threads share; separate from `InferenceQueue` so that the threads
    /// do not keep the queue alive.
    private final class Core: @unchecked Sendable {
        // NOTE: @unchecked: `jobs`, `head` and `stopped` are guarded by `condition`.
        private let condition = NSCondition()
        private var jobs: [@Sendable () -> Void] = []
        private var head = 0
        private var stopped = false
        /// The job for every worker, and how many have been submitted.
        private var everyWorkerJob: (@Sendable () -> Void)?
        private var everyWorkerGeneration = 0

        func enqueue(_ job: @escaping @Sendable () -> Void) {
            condition.withLock {
                jobs.append(job)
                condition.signal()
            }
        }

        func enqueueForEveryWorker(_ job: @escaping @Sendable () -> Void) {
            condition.withLock {
                everyWorkerJob = job
                everyWorkerGeneration += 1
                condition.broadcast()
            }
        }

        var waiting: Int { condition.withLock { jobs.count - head } }

        func stop() {
            condition.withLock {
                stopped = true
                condition.broadcast()
            }
        }

        /// A worker's loop: take the oldest job, run it outside the lock; end once stopped and drained.
        func work() {
            var seenGeneration = 0
            while let job = next(seenGeneration: &seenGeneration) { job() }
        }

        private func next(seenGeneration: inout Int) -> (@Sendable () -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            while head == jobs.count && seenGeneration == everyWorkerGeneration {
                if stopped { return nil }
                condition.wait()
            }
            if seenGeneration != everyWorkerGeneration, let job = everyWorkerJob {
                seenGeneration = everyWorkerGeneration
                return job
            }
            let job = jobs[head]
            head += 1
            // Compact now and then instead of `removeFirst` (O(n) per job).
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }
}

/// Set (to 1) on worker threads only.
private let workerKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "no pthread key left")
    return key
}()

/// Puts the calling thread in `SCHED_BATCH` (Linux; per thread). A failure leaves it as it was.
private func markAsBatchWork() {
    #if canImport(Glibc)
        let batch: Int32 = 3  // SCHED_BATCH in <sched.h> (Linux); Swift's Glibc module leaves it out
        var parameters = sched_param(sched_priority: 0)
        _ = sched_setscheduler(0, batch, &parameters)
    #endif
}
