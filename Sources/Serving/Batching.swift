import Foundation

/// Dynamic batching: the images of requests waiting for the same deployment run through the
/// model together, as one batch of at most `maxImages`, and each request gets its own rows back.
///
/// A request decoded on an inference thread when nothing else is queued runs at once, on that
/// thread (one client alone sees no added latency); when other jobs wait for the threads (more
/// requests being decoded), its batch goes behind them once, so that they join it. While a
/// deployment's batch runs, new requests for it wait; the thread that ran it takes the next
/// batch, after waiting up to `maxDelay` for more when the last one held several requests
/// (`gather`). So a deployment runs one batch at a time (the kernels use every core for one
/// batch, and serialise their executions anyway).
///
/// A batch never mixes deployments or image sizes: its key is the deployment (a reload makes a
/// new one) and the values per image. A request of `maxImages` images or more runs alone, whole,
/// at once on its own thread, beside the batches. A failure of the model fails every request of the batch (the requests' own errors are
/// found while decoding, before they join one).
final class InferenceBatcher: @unchecked Sendable {
    // NOTE: @unchecked: `pending` and `active` are guarded by `lock`; the rest is immutable.
    struct Key: Hashable {
        var deployment: ObjectIdentifier
        var valuesPerImage: Int
    }

    /// One request's checked images and where its rows go.
    struct Item {
        let deployment: Deployment
        let pixels: [Float]  // (count, C, H, W)
        let count: Int
        /// Runs the model on a batch's images, all of this item's deployment (`ServingState.runModel`).
        let run: @Sendable ([Float], Int) throws -> [[Float]]
        let finish: @Sendable (Result<[[Float]], any Error>) -> Void
    }

    /// Most images in one batch (1: every request on its own).
    let maxImages: Int
    /// Longest a deployment's next batch waits for more requests after a batch of several.
    let maxDelay: Duration
    private let queue: InferenceQueue
    /// Counts each batch's images.
    private let metrics: ServerMetrics
    private let lock = NSLock()
    /// Requests waiting for a batch, oldest first, by key.
    private var pending: [Key: [Item]] = [:]
    /// Keys with a batch running, or a thread told to run one.
    private var active: Set<Key> = []

    init(maxImages: Int, maxDelay: Duration = .zero, queue: InferenceQueue, metrics: ServerMetrics) {
        precondition(maxImages >= 1, "a batch holds at least one image")
        self.maxImages = maxImages
        self.maxDelay = maxDelay
        self.queue = queue
        self.metrics = metrics
    }

    /// Images waiting for a batch (not those running).
    var waitingImages: Int { lock.withLock { pending.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } } }

    /// Queues `item` for a batch; call on an inference thread. If no batch of its key is running,
    /// this thread runs batches (or goes behind the jobs waiting once) until none waits.
    func submit(_ item: Item) {
        // NOTE: a request as large as a whole batch gains nothing from joining one, and while it
        // ran as a batch the deployment's small requests waited for all of it: in the hostile
        // load test (256-image requests beside small ones) they got 45 answers/s instead of 73.
        // Run alone on this thread, its layers interleave with the batches' layers.
        if item.count >= maxImages, maxImages > 1 {
            execute([item])
            return
        }
        let key = Key(deployment: item.deployment.identity, valuesPerImage: item.pixels.count / max(item.count, 1))
        let leads = lock.withLock {
            pending[key, default: []].append(item)
            return active.insert(key).inserted
        }
        if leads { drain(key, deferred: false) }
    }

    private enum Step {
        case done, later, run([Item])
    }

    /// Runs `key`'s batches until none waits. Before each batch, unless this run was deferred
    /// already, it goes behind the jobs waiting for the threads (requests being decoded), once.
    private func drain(_ key: Key, deferred: Bool) {
        var mayDefer = !deferred
        while true {
            switch next(key, mayDefer: mayDefer) {
            case .done: return
            case .later:
                queue.submit { [self] in drain(key, deferred: true) }
                return
            case .run(let batch):
                let images = execute(batch)
                if batch.count > 1 { gather(key, upTo: min(maxImages, 2 * images)) }
                mayDefer = true
            }
        }
    }

    /// The oldest requests of `key` up to `maxImages` (the first one whatever its size), or why not.
    private func next(_ key: Key, mayDefer: Bool) -> Step {
        lock.withLock {
            guard var items = pending[key], !items.isEmpty else {
                active.remove(key)
                return .done
            }
            if mayDefer, maxImages > 1, queue.waiting > 0 { return .later }
            var taken = 0, images = 0
            while taken < items.count, taken == 0 || images + items[taken].count <= maxImages {
                images += items[taken].count
                taken += 1
            }
            let batch = Array(items[..<taken])
            items.removeFirst(taken)
            pending[key] = items.isEmpty ? nil : items
            return .run(batch)
        }
    }

    /// After a batch of several requests (several clients at once), waits up to `maxDelay` for
    /// `images` images to wait: the clients just answered send their next requests while the
    /// ones that arrived meanwhile wait, and one batch of both costs less than two. A lone
    /// client's batches hold one request, so it never waits.
    ///
    /// NOTE: measured at concurrency 8 (bench/serve/RESULTS.md): without it, the clients split
    /// into two groups of 4 that took turns, and a batch of 4 costs 2.1 ms against 2.7 ms for 8.
    private func gather(_ key: Key, upTo images: Int) {
        guard maxDelay > .zero else { return }
        let deadline = ContinuousClock.now + maxDelay
        while ContinuousClock.now < deadline,
            lock.withLock({ pending[key, default: []].reduce(0) { $0 + $1.count } }) < images
        {
            Thread.sleep(forTimeInterval: 50e-6)
        }
    }

    /// One model run for the batch; each request gets its rows (or the error). Returns its images.
    @discardableResult
    private func execute(_ batch: [Item]) -> Int {
        let images = batch.reduce(0) { $0 + $1.count }
        var pixels = batch[0].pixels
        if batch.count > 1 {
            pixels.reserveCapacity(images * batch[0].pixels.count / batch[0].count)
            for item in batch.dropFirst() { pixels += item.pixels }
        }
        metrics.recordBatch(images: images)
        let rows = Result { try batch[0].run(pixels, images) }
        var start = 0
        for item in batch {
            item.finish(rows.map { Array($0[start..<start + item.count]) })
            start += item.count
        }
        return images
    }
}
