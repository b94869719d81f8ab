import CDNNL
import Foundation

/// A physical memory layout: plain row-major (NCHW for images), or a blocked format that a
/// oneDNN primitive chose (e.g. nChw16c, channels in blocks of 16 innermost). Activations stay
/// in the layout the producing primitive wrote, so the next primitive reads them without a
/// reorder; anything outside the kernels asks for the plain layout.
/// Layouts are interned: equal layouts have equal ids, 0 is plain.
public struct Layout: Hashable, Sendable, CustomStringConvertible {
    public let id: Int
    public static let plain = Layout(id: 0)
    public var isPlain: Bool { id == 0 }
    public var description: String { isPlain ? "plain" : "blocked#\(id)" }
}

/// The interned descriptors behind `Layout` ids.
final class LayoutTable: @unchecked Sendable {
    static let shared = LayoutTable()
    private var descs: [dnnl_memory_desc_t] = [dnnl_memory_desc_t()]
    private let lock = NSLock()

    /// The layout of a descriptor a primitive chose (plain if it is the dense row-major one).
    func intern(_ md: dnnl_memory_desc_t) -> Layout {
        let dims = withUnsafeBytes(of: md.dims) { raw in
            (0..<Int(md.ndims)).map { Int(raw.load(fromByteOffset: $0 * 8, as: Int64.self)) }
        }
        if descEqual(md, plainDesc(dims, denseTag(rank: dims.count))) { return .plain }
        lock.lock(); defer { lock.unlock() }
        if let i = descs.indices.dropFirst().first(where: { descEqual(descs[$0], md) }) { return Layout(id: i) }
        descs.append(md)
        return Layout(id: descs.count - 1)
    }

    /// The descriptor of `layout` for `shape` (plain: dense row-major of that shape).
    func desc(_ layout: Layout, shape: [Int]) -> dnnl_memory_desc_t {
        if layout.isPlain { return plainDesc(shape, denseTag(rank: shape.count)) }
        lock.lock(); defer { lock.unlock() }
        return descs[layout.id]
    }

}

extension Layout {
    /// Floats needed to hold a tensor of `shape` in this layout (blocked layouts pad channels).
    public func physicalCount(_ shape: [Int]) -> Int {
        isPlain ? shape.reduce(1, *) : descBytes(LayoutTable.shared.desc(self, shape: shape)) / 4
    }
}

extension Layout {
    /// The channel block B when this layout of a 4-D `shape` (N, C, H, W) is plain (B = 1) or
    /// oneDNN's dense nChw{B}c blocking with B = 8 or 16 and C a multiple of B (no padded
    /// channels): element (n, c, h, w) at ((n C/B + c/B) H W + h W + w) B + c % B. Nil for any
    /// other layout; kernels written for these two read activations where a convolution left them.
    public func channelBlock(_ shape: [Int]) -> Int? {
        guard shape.count == 4 else { return nil }
        if isPlain { return 1 }
        let desc = LayoutTable.shared.desc(self, shape: shape)
        for (block, tag) in [(16, dnnl_aBcd16b), (8, dnnl_aBcd8b)] where shape[1] % block == 0 {
            if descEqual(desc, plainDesc(shape, tag)) { return block }
        }
        return nil
    }

    /// oneDNN's nChw{B}c layout (B = 8 or 16) for a 4-D `shape`, interned: what a convolution
    /// writes on AVX-512 (16) or AVX2 (8) CPUs; for tests and kernels that make such data.
    public static func channelBlocked(_ block: Int, shape: [Int]) -> Layout {
        precondition(shape.count == 4 && (block == 8 || block == 16), "channelBlocked(\(block), \(shape))")
        return LayoutTable.shared.intern(plainDesc(shape, block == 16 ? dnnl_aBcd16b : dnnl_aBcd8b))
    }
}

/// Work split over the kernels' threads (OpenMP's count for the caller, `KernelThreads.count`):
/// `count` items in contiguous ranges, one per thread, on GCD's pool; `body` gets the thread's
/// index (0 ..< `threads(count)`, for per-thread partial results) and its range. oneDNN's own threads are
/// idle meanwhile (executions hold the context's lock; OpenMP waits passively), so the two pools
/// never compete; one thread (or one item) runs inline.
enum KernelParallel {
    /// How many threads `forEach` uses for `count` items (at least 1).
    static func threads(_ count: Int) -> Int { max(1, min(KernelThreads.count, count)) }

    static func forEach(_ count: Int, _ body: (_ thread: Int, _ items: Range<Int>) -> Void) {
        let threads = threads(count)
        guard threads > 1 else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let run = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                run.value(t, (t * count / threads)..<((t + 1) * count / threads))
            }
        }
    }

    /// NOTE: @unchecked: each thread gets a disjoint range; what `body` shares is the caller's
    /// to make safe (the kernels write disjoint slices, or per-thread partial sums).
    private struct UnsafeSendable<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }
}

struct ReorderKey: Hashable { let from: Layout, to: Layout, shape: [Int] }

/// Conversions between layouts (oneDNN reorders, created once per pair and shape).
public enum Reorder {
    private static let cache = PrimitiveCache<ReorderKey, (Primitive, BoundMemory, BoundMemory)>()

    /// Copies a tensor of `shape` from layout `from` at `src` to layout `to` at `dst`.
    public static func run(shape: [Int], from: Layout, _ src: UnsafeRawPointer, to: Layout, _ dst: UnsafeMutableRawPointer) {
        if from == to {
            dst.copyMemory(from: src, byteCount: from.physicalCount(shape) * 4)
            return
        }
        DNNLContext.shared.locked {
            let (p, s, d) = cache.get(ReorderKey(from: from, to: to, shape: shape)) {
                let a = LayoutTable.shared.desc(from, shape: shape), b = LayoutTable.shared.desc(to, shape: shape)
                return (Primitive(reorderFrom: a, to: b), BoundMemory(a), BoundMemory(b))
            }
            s.bind(src); d.bind(dst)
            p.execute([(Arg.src, s.memory), (Arg.dst, d.memory)])
        }
    }
}

/// An input of a primitive that wants `chosen`: binds a caller buffer directly when it is
/// already in that layout, else reorders it into an internal buffer first.
final class InputPort {
    let chosen: dnnl_memory_desc_t
    let layout: Layout
    let shape: [Int]
    private let direct: BoundMemory
    private let converted: BoundMemory
    private let buffer: AlignedBuffer
    /// For inputs whose "plain" form is not dense row-major (IOHW deconvolution weights).
    private let customPlain: LayoutPort?

    init(chosen: dnnl_memory_desc_t, plain: dnnl_memory_desc_t? = nil, shape: [Int]) {
        self.chosen = chosen
        self.shape = shape
        layout = LayoutTable.shared.intern(chosen)
        buffer = AlignedBuffer(bytes: descBytes(chosen))
        direct = BoundMemory(chosen)
        converted = BoundMemory(chosen, handle: buffer.pointer)
        customPlain = plain.map { LayoutPort(plain: $0, chosen: chosen, input: true) }
    }

    func bind(_ p: UnsafeRawPointer, layout given: Layout) -> dnnl_memory_t {
        if given.isPlain, let customPlain { return customPlain.input(p) }
        if given == layout { direct.bind(p); return direct.memory }
        Reorder.run(shape: shape, from: given, p, to: layout, buffer.pointer)
        return converted.memory
    }

    /// `bind`, but a conversion goes into a buffer of its own, returned for a later pass that
    /// reads the same values (nil when nothing was converted).
    func bindKeeping(_ p: UnsafeRawPointer, layout given: Layout) -> (dnnl_memory_t, ConvertedInput?) {
        guard given != layout, customPlain == nil else { return (bind(p, layout: given), nil) }
        let kept = ConvertedInput(buffer: AlignedBuffer(bytes: descBytes(chosen)), layout: layout, shape: shape)
        Reorder.run(shape: shape, from: given, p, to: layout, kept.buffer.pointer)
        direct.bind(kept.buffer.pointer)
        return (direct.memory, kept)
    }

    /// Binds values another pass already converted, if they are in this port's layout; else
    /// binds `p` (in `given`) as `bind` does.
    func bind(_ p: UnsafeRawPointer, layout given: Layout, reusing kept: ConvertedInput?) -> dnnl_memory_t {
        guard let kept, kept.layout == layout, kept.shape == shape else { return bind(p, layout: given) }
        direct.bind(kept.buffer.pointer)
        return direct.memory
    }
}

/// A convolution pass's input as that pass converted it (into the layout and number format it
/// chose, e.g. f32 nChw16c rounded to bf16), kept so that the next pass reading the same values
/// skips the conversion: the forward's input for the weight gradient, the backward-data pass's
/// incoming gradient for the weight gradient.
public final class ConvertedInput: @unchecked Sendable {
    let buffer: AlignedBuffer
    let layout: Layout
    let shape: [Int]
    init(buffer: AlignedBuffer, layout: Layout, shape: [Int]) {
        self.buffer = buffer; self.layout = layout; self.shape = shape
    }
}
