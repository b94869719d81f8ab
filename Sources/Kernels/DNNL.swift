import CDNNL
import Foundation

// The oneDNN plumbing every kernel shares: one CPU engine and stream, a lock that serialises
// execution (oneDNN's OpenMP pool already uses every core, and primitives here own scratch
// buffers), memory objects bound to caller pointers, reorders between the public plain layouts
// (NCHW activations, OIHW/IOHW weights) and whatever blocked layout oneDNN picked, and a cache of
// primitives keyed by shape. No C type leaves this module.

/// A failure inside a kernel: a oneDNN call that returned an error, with the call named.
public struct KernelError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let status: Int
    public var description: String { "oneDNN call \(call) failed with status \(status)" }
}

@inline(__always)
func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String) {
    // NOTE: a failing oneDNN call here means a bug in how we built a descriptor (all shapes are
    // validated above the kernels), so it is a programmer error, not a user error.
    if status != dnnl_success { fatalError(KernelError(call: call(), status: Int(status.rawValue)).description) }
}

/// Argument numbers of oneDNN's execution API (DNNL_ARG_* macros, dnnl_types.h).
enum Arg {
    static let src: Int32 = 1, dst: Int32 = 17, weights: Int32 = 33, bias: Int32 = 41
    static let mean: Int32 = 49, variance: Int32 = 50, scale: Int32 = 51, shift: Int32 = 52
    static let workspace: Int32 = 64, scratchpad: Int32 = 80
    static let diffSrc: Int32 = 129, diffDst: Int32 = 145, diffWeights: Int32 = 161, diffBias: Int32 = 169
    static let diffScale: Int32 = 255, diffShift: Int32 = 256
}

/// The process-wide engine, stream and execution lock.
final class DNNLContext: @unchecked Sendable {
    static let shared = DNNLContext()
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    let lock = NSRecursiveLock()
    /// Every primitive is created with these: a user-managed scratchpad (`scratchpad(bytes:)`).
    ///
    /// NOTE: oneDNN's default "library" scratchpad is a thread-local buffer sized when a
    /// primitive is created, on the creating thread. Our primitives are created on one thread and
    /// executed on whichever thread the Swift runtime or the server gives the caller, so a
    /// primitive ran with another thread's, smaller buffer and wrote past it: Winograd
    /// convolutions (scratchpads of megabytes for their tile transforms) crashed the full test
    /// suite in the Swift runtime's metadata cache, a heap overwritten far from the kernel.
    let attributes: dnnl_primitive_attr_t
    private var scratchpadBuffer = AlignedBuffer(bytes: 1 << 16)

    private init() {
        var e: dnnl_engine_t?
        check(dnnl_engine_create(&e, dnnl_cpu, 0), "dnnl_engine_create")
        var s: dnnl_stream_t?
        check(dnnl_stream_create(&s, e, UInt32(dnnl_stream_default_flags.rawValue)), "dnnl_stream_create")
        var a: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&a), "dnnl_primitive_attr_create")
        check(dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        engine = e!
        stream = s!
        attributes = a!
    }

    /// The one scratchpad every execution shares (executions hold `lock`, so one at a time),
    /// grown to the largest any primitive has asked for. Call with `lock` held.
    func scratchpad(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > scratchpadBuffer.bytes { scratchpadBuffer = AlignedBuffer(bytes: bytes) }
        return scratchpadBuffer.pointer
    }

    /// Runs `body` while holding the execution lock.
    @inline(__always) func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }
}

/// OpenMP's thread count as oneDNN reads it when a primitive is created (libgomp, loaded with
/// oneDNN; its two functions are looked up at run time so that nothing links libgomp directly).
///
/// NOTE: oneDNN 2.6's batch normalisation fixes its thread count when the primitive is created
/// and synchronises its threads with a spinning barrier. Measured on 2 cores (DNNL_VERBOSE, one
/// ResNet epoch at 28 px, batch 64): alone, one thread costs what two do (0.50 vs 0.46 ms a
/// call); beside another process, two threads took 24.7 ms a call (the barrier spins while the
/// other thread is descheduled) and batch norm became 60% of the step. So batch-norm primitives
/// are created with one thread (`BatchNormPrimitives`). They are executed where OpenMP has two;
/// `bench/bnorm_scratchpad.c` checks that they then write nothing past the scratchpad they booked.
enum OpenMP {
    private typealias GetMax = @convention(c) () -> Int32
    private typealias SetNum = @convention(c) (Int32) -> Void
    nonisolated(unsafe) private static let functions: (GetMax, SetNum)? = {
        guard let process = dlopen(nil, RTLD_NOW), let get = dlsym(process, "omp_get_max_threads"),
            let set = dlsym(process, "omp_set_num_threads")
        else { return nil }
        return (unsafeBitCast(get, to: GetMax.self), unsafeBitCast(set, to: SetNum.self))
    }()

    /// The calling thread's OpenMP thread count (nil without libgomp).
    static var maxThreads: Int? { functions.map { Int($0.0()) } }

    /// Runs `body` with the calling thread's OpenMP thread count set to `n`, then restores it.
    static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        guard let (get, set) = functions else { return try body() }
        let saved = get()
        set(Int32(n))
        defer { set(saved) }
        return try body()
    }
}

/// The threads the kernels run with: OpenMP's count for the calling thread (`OMP_NUM_THREADS`,
/// else every core), what benchmarks report beside their timings.
public enum KernelThreads {
    public static var count: Int { OpenMP.maxThreads ?? ProcessInfo.processInfo.activeProcessorCount }
}

/// A plain memory descriptor for `dims` in `tag` layout (f32 unless `type` says otherwise).
func plainDesc(_ dims: [Int], _ tag: dnnl_format_tag_t, _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    let d = dims.map { Int64($0) }
    check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag), "dnnl_memory_desc_init_by_tag")
    return md
}

/// The natural dense tag for a rank (a, ab, abc, abcd = NCHW, abcde).
func denseTag(rank: Int) -> dnnl_format_tag_t {
    switch rank {
    case 1: return dnnl_a
    case 2: return dnnl_ab
    case 3: return dnnl_abc
    case 4: return dnnl_abcd
    default: return dnnl_abcde
    }
}

/// Calls `body` with a pointer to `desc`, or with nil when `present` is false (optional bias).
func optionalDesc<R>(_ desc: dnnl_memory_desc_t, _ present: Bool, _ body: (UnsafePointer<dnnl_memory_desc_t>?) -> R) -> R {
    var d = desc
    return present ? withUnsafePointer(to: &d) { body($0) } : body(nil)
}

func anyDesc(_ dims: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
    plainDesc(dims, dnnl_format_tag_any, type)
}

func descEqual(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

func descBytes(_ md: dnnl_memory_desc_t) -> Int {
    var md = md
    return Int(dnnl_memory_desc_get_size(&md))
}

/// 64-byte aligned float buffer owned by Swift.
final class AlignedBuffer {
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
    init(bytes: Int) {
        self.bytes = max(bytes, 64)
        var p: UnsafeMutableRawPointer?
        posix_memalign(&p, 64, self.bytes)
        pointer = p!
    }
    deinit { free(pointer) }
}

/// A oneDNN memory object whose data handle is re-pointed at each call.
final class BoundMemory {
    let memory: dnnl_memory_t
    let desc: dnnl_memory_desc_t
    init(_ desc: dnnl_memory_desc_t, handle: UnsafeMutableRawPointer? = nil) {
        var m: dnnl_memory_t?
        var d = desc
        check(dnnl_memory_create(&m, &d, DNNLContext.shared.engine, handle), "dnnl_memory_create")
        memory = m!
        self.desc = desc
    }
    func bind(_ p: UnsafeRawPointer) {
        check(dnnl_memory_set_data_handle(memory, UnsafeMutableRawPointer(mutating: p)), "dnnl_memory_set_data_handle")
    }
    deinit { dnnl_memory_destroy(memory) }
}

/// A primitive and its descriptor, destroyed together.
final class Primitive {
    let pd: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    /// What it computes ("conv fwd", "bnorm bwd", "reorder"), as `KernelUse` reports it.
    let name: String
    /// The implementation oneDNN dispatched to, e.g. "jit:avx2" or "ref:any".
    let implementation: String

    /// Creates the primitive desc from an op descriptor (pointer to a dnnl_*_desc_t).
    convenience init(opDesc: UnsafeRawPointer, hint: Primitive? = nil, name: String) {
        var pd: dnnl_primitive_desc_t?
        let ctx = DNNLContext.shared
        check(dnnl_primitive_desc_create(&pd, opDesc, ctx.attributes, ctx.engine, hint?.pd), "primitive_desc_create(\(name))")
        self.init(pd: pd!, name: name)
    }

    /// nil where oneDNN has no implementation of the descriptor on this CPU (Winograd
    /// convolutions exist for AVX-512 only); programmer errors still stop in `check`.
    convenience init?(ifImplemented opDesc: UnsafeRawPointer, hint: Primitive? = nil, name: String) {
        var pd: dnnl_primitive_desc_t?
        let ctx = DNNLContext.shared
        let status = dnnl_primitive_desc_create(&pd, opDesc, ctx.attributes, ctx.engine, hint?.pd)
        guard status != dnnl_unimplemented else { return nil }
        check(status, "primitive_desc_create(\(name))")
        self.init(pd: pd!, name: name)
    }

    private init(pd: dnnl_primitive_desc_t, name: String) {
        self.pd = pd
        var p: dnnl_primitive_t?
        check(dnnl_primitive_create(&p, pd), "primitive_create(\(name))")
        primitive = p!
        self.name = name
        implementation = Self.implementation(pd)
        scratchpad = Self.scratchpad(pd)
    }

    /// The scratchpad memory this primitive asks for (nil when it needs none); its handle is
    /// pointed at the shared buffer at each execution.
    private let scratchpad: (memory: dnnl_memory_t, bytes: Int)?

    private static func scratchpad(_ pd: dnnl_primitive_desc_t) -> (memory: dnnl_memory_t, bytes: Int)? {
        guard let md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { return nil }
        let bytes = descBytes(md.pointee)
        guard bytes > 0 else { return nil }
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, md, DNNLContext.shared.engine, nil), "dnnl_memory_create(scratchpad)")
        return (m!, bytes)
    }

    convenience init(reorderFrom src: dnnl_memory_desc_t, to dst: dnnl_memory_desc_t) {
        var pd: dnnl_primitive_desc_t?
        var s = src, d = dst
        let e = DNNLContext.shared.engine
        check(
            dnnl_reorder_primitive_desc_create(&pd, &s, e, &d, e, DNNLContext.shared.attributes),
            "reorder_primitive_desc_create")
        self.init(pd: pd!, name: "reorder")
    }

    private static func implementation(_ pd: dnnl_primitive_desc_t) -> String {
        var s: UnsafePointer<CChar>?
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s), "query impl_info_str")
        return s.map { String(cString: $0) } ?? "?"
    }

    /// The memory descriptor oneDNN chose for a query such as `dnnl_query_src_md`.
    func desc(_ what: dnnl_query_t) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(pd, what, 0).pointee
    }

    func execute(_ args: [(Int32, dnnl_memory_t)]) {
        KernelImplementations.recorder?.add(KernelUse(primitive: name, implementation: implementation))
        let ctx = DNNLContext.shared
        ctx.locked {
            var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
            if let scratchpad {
                check(
                    dnnl_memory_set_data_handle(scratchpad.memory, ctx.scratchpad(bytes: scratchpad.bytes)), "scratchpad handle")
                a.append(dnnl_exec_arg_t(arg: Arg.scratchpad, memory: scratchpad.memory))
            }
            check(dnnl_primitive_execute(primitive, ctx.stream, Int32(a.count), &a), "primitive_execute")
            check(dnnl_stream_wait(ctx.stream), "stream_wait")
        }
    }

    deinit {
        if let scratchpad { dnnl_memory_destroy(scratchpad.memory) }
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
    }
}

/// One primitive as executed: what it computes and the implementation oneDNN chose for it.
public struct KernelUse: Hashable, Sendable, CustomStringConvertible {
    /// "conv fwd", "conv bwd data", "bnorm bwd", "eltwise fwd", "pool bwd", "reorder", ...
    public let primitive: String
    /// oneDNN's implementation name, e.g. "jit:avx512_core" or "ref:any".
    public let implementation: String
    /// Whether oneDNN fell back to a naive reference loop (`ref:...`).
    public var isReference: Bool { implementation.hasPrefix("ref") }
    public var description: String { "\(primitive): \(implementation)" }
}

/// Which oneDNN implementations the kernels run: tests record a training step or an inference
/// pass and check that no hot path fell back to a `ref:` implementation.
public enum KernelImplementations {
    final class Recorder: @unchecked Sendable {
        private var seen: [KernelUse] = []
        private var counts: [KernelUse: Int] = [:]
        private let lock = NSLock()
        func add(_ use: KernelUse) {
            lock.lock(); defer { lock.unlock() }
            counts[use, default: 0] += 1
            if counts[use] == 1 { seen.append(use) }
        }
        var used: [KernelUse] {
            lock.lock(); defer { lock.unlock() }
            return seen
        }
        var executions: [KernelUse: Int] {
            lock.lock(); defer { lock.unlock() }
            return counts
        }
    }

    /// The recording of the current task, if any (task-local: concurrent tests record apart).
    @TaskLocal static var recorder: Recorder?

    /// Runs `body` and returns, with its result, every primitive it executed (each once, in
    /// first-execution order): primitives cached by earlier calls are recorded too.
    public static func recording<R>(_ body: () throws -> R) rethrows -> (result: R, used: [KernelUse]) {
        let r = Recorder()
        let result = try $recorder.withValue(r) { try body() }
        return (result, r.used)
    }

    /// Runs `body` and returns, with its result, how many times it executed each primitive.
    public static func counting<R>(_ body: () throws -> R) rethrows -> (result: R, executions: [KernelUse: Int]) {
        let r = Recorder()
        let result = try $recorder.withValue(r) { try body() }
        return (result, r.executions)
    }
}

/// One argument of a primitive as seen from Swift: the caller's plain buffer, and (when oneDNN
/// chose another layout) an internal buffer plus the reorders between the two.
final class LayoutPort {
    let user: BoundMemory
    let inner: BoundMemory?
    private let innerBuffer: AlignedBuffer?
    private let toInner: Primitive?
    private let toUser: Primitive?

    init(plain: dnnl_memory_desc_t, chosen: dnnl_memory_desc_t, input: Bool) {
        user = BoundMemory(plain)
        if descEqual(plain, chosen) {
            inner = nil; innerBuffer = nil; toInner = nil; toUser = nil
        } else {
            let buf = AlignedBuffer(bytes: descBytes(chosen))
            innerBuffer = buf
            inner = BoundMemory(chosen, handle: buf.pointer)
            toInner = input ? Primitive(reorderFrom: plain, to: chosen) : nil
            toUser = input ? nil : Primitive(reorderFrom: chosen, to: plain)
        }
    }

    /// Whether a reorder runs on each call.
    var reorders: Bool { inner != nil }

    /// Binds an input pointer; reorders into the chosen layout if needed; returns the memory to pass.
    func input(_ p: UnsafeRawPointer) -> dnnl_memory_t {
        user.bind(p)
        guard let inner, let toInner else { return user.memory }
        toInner.execute([(Arg.src, user.memory), (Arg.dst, inner.memory)])
        return inner.memory
    }

    /// Binds an output pointer; returns the memory the primitive should write.
    func output(_ p: UnsafeMutableRawPointer) -> dnnl_memory_t {
        user.bind(p)
        return inner?.memory ?? user.memory
    }

    /// After the primitive ran: copies the chosen-layout result into the caller's buffer.
    func finish() {
        guard let inner, let toUser else { return }
        toUser.execute([(Arg.src, inner.memory), (Arg.dst, user.memory)])
    }
}

/// Shape-keyed cache of primitive bundles (created once per shape, ~0.3 ms; a hit ~µs).
final class PrimitiveCache<Key: Hashable, Value>: @unchecked Sendable {
    private var entries: [Key: Value] = [:]
    private let lock = NSLock()
    func get(_ key: Key, make: () -> Value) -> Value {
        lock.lock(); defer { lock.unlock() }
        if let v = entries[key] { return v }
        let v = make()
        entries[key] = v
        return v
    }
}

/// Host memory for tensors: 64-byte aligned (AVX-512 friendly, what oneDNN prefers).
public enum HostMemory {
    /// NOTE: glibc serves blocks over 128 KiB with fresh mmap'd pages that fault in on every use;
    /// a training step allocates hundreds of MB of activations, so keep freed blocks in the heap.
    private static let configured: Void = {
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, Int32(trainingTrimThreshold))
    }()

    /// The trim threshold set for training: freed blocks stay in the heap for the next step.
    public static let trainingTrimThreshold = 1 << 30

    /// glibc gives an arena's free top back to the system, on the next free() in that arena, once
    /// it exceeds `bytes` (`trainingTrimThreshold` unless set).
    ///
    /// NOTE: `malloc_trim` releases free pages inside every arena but shrinks only the main
    /// arena's top; a thread arena's top shrinks on free() alone, above this threshold. With 1 GiB
    /// a server kept what its event-loop threads' arenas freed after a storm of connections
    /// (some 40 MB after 15,000 trickling clients) for good: it lowers it while idle.
    public static func setTrimThreshold(_ bytes: Int) {
        _ = configured
        _ = mallopt(M_TRIM_THRESHOLD, Int32(clamping: bytes))
    }

    public static func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        _ = configured
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(count, 1) * MemoryLayout<Float>.stride) == 0, let raw else {
            fatalError("out of memory allocating \(count) floats")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public static func deallocate(_ p: UnsafeMutablePointer<Float>) { free(p) }
}

/// Counts the floating-point work the kernels ran, so benchmarks report measured GFLOP, not
/// estimates. One multiply-add = 2 FLOP. Only convolutions and GEMMs are counted.
public enum KernelCounters {
    nonisolated(unsafe) private static var flops: Double = 0
    private static let lock = NSLock()

    static func add(macs: Int) {
        lock.lock(); flops += 2 * Double(macs); lock.unlock()
    }

    /// FLOP run since the process started.
    public static var totalFLOP: Double {
        lock.lock(); defer { lock.unlock() }
        return flops
    }
}
