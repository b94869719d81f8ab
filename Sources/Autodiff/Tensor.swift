import Foundation
import Kernels
import SeededRandom

/// A reference-counted, 64-byte aligned buffer of Float32 values in a physical `layout`:
/// plain row-major, or a blocked layout a oneDNN primitive wrote (activations between
/// convolutions stay blocked, so the next primitive needs no reorder).
///
/// NOTE: storage is shared between copies of a `Tensor` value and by backward closures that
/// saved it; only optimizers write into (plain) storage in place, after `backward`.
public final class TensorStorage: @unchecked Sendable {
    /// The buffer in `layout`; for blocked layouts it includes channel padding.
    public let raw: UnsafeMutablePointer<Float>
    public let layout: Layout
    /// Logical element count.
    public let count: Int
    let shape: [Int]
    private var plainView: UnsafeMutablePointer<Float>?
    private let lock = NSLock()

    /// Plain storage for `count` values.
    public init(count: Int) {
        self.count = count
        shape = [count]
        layout = .plain
        raw = HostMemory.allocateFloats(count)
    }

    /// Storage for a tensor of `shape` in `layout`.
    public init(shape: [Int], layout: Layout) {
        self.shape = shape
        self.layout = layout
        count = shape.reduce(1, *)
        raw = HostMemory.allocateFloats(layout.physicalCount(shape))
    }

    /// The values in plain row-major order (converted once, on first use, for blocked storage).
    public var pointer: UnsafeMutablePointer<Float> {
        if layout.isPlain { return raw }
        lock.lock(); defer { lock.unlock() }
        if let plainView { return plainView }
        let p = HostMemory.allocateFloats(count)
        Reorder.run(shape: shape, from: layout, raw, to: .plain, p)
        plainView = p
        return p
    }

    deinit {
        HostMemory.deallocate(raw)
        if let plainView { HostMemory.deallocate(plainView) }
    }
}

/// Errors of tensor operations: every message names the operation and the shapes involved.
public enum TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    case shapeMismatch(op: String, lhs: [Int], rhs: [Int])
    case invalidShape(op: String, shape: [Int], reason: String)
    case invalidArgument(op: String, reason: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs): return "\(op): shapes \(lhs) and \(rhs) do not match"
        case let .invalidShape(op, shape, reason): return "\(op): shape \(shape) is not valid: \(reason)"
        case let .invalidArgument(op, reason): return "\(op): \(reason)"
        }
    }
}

/// A dense Float32 tensor. Public layout is row-major; images are NCHW
/// (N batch, C channels, H height, W width).
///
/// A tensor that depends on a parameter (or on a tensor made with `requiringGrad()`) carries a
/// node of the autodiff graph; `backward(_:)` walks that graph. Graphs are built per call and
/// never shared, so many threads may run inference or training on separate graphs at once.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let storage: TensorStorage
    var node: Node?

    /// Number of elements.
    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var requiresGrad: Bool { node != nil }

    init(shape: [Int], storage: TensorStorage, node: Node? = nil) {
        precondition(shape.reduce(1, *) == storage.count, "storage does not match shape \(shape)")
        self.shape = shape; self.storage = storage; self.node = node
    }

    /// A tensor of uninitialised values (for kernels that write every element).
    public init(uninitializedShape shape: [Int], layout: Layout = .plain) {
        self.init(
            shape: shape,
            storage: layout.isPlain
                ? TensorStorage(count: shape.reduce(1, *))
                : TensorStorage(shape: shape, layout: layout))
    }

    /// The physical layout of the storage.
    public var layout: Layout { storage.layout }

    /// The raw buffer in `layout` (for layout-aware kernels).
    var raw: UnsafeMutablePointer<Float> { storage.raw }

    /// The raw buffer of this tensor's values converted to `target` (no copy if already there).
    func raw(in target: Layout) -> (UnsafeMutablePointer<Float>, Tensor) {
        if layout == target { return (raw, self) }
        if target.isPlain { return (storage.pointer, self) }
        let t = Tensor(uninitializedShape: shape, layout: target)
        Reorder.run(shape: shape, from: layout, raw, to: target, t.raw)
        return (t.raw, t)
    }

    /// The same values in plain storage (shares storage when already plain).
    public func plain() -> Tensor {
        if layout.isPlain { return self }
        let t = Tensor(uninitializedShape: shape)
        t.raw.update(from: storage.pointer, count: count)
        return Tensor(shape: shape, storage: t.storage, node: node)
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    /// A tensor holding `scalars` (row-major) with `shape`.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == scalars.count else {
            throw TensorError.invalidShape(
                op: "Tensor(shape:scalars:)", shape: shape,
                reason: "needs \(shape.reduce(1, *)) values, got \(scalars.count)")
        }
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A scalar (shape []).
    public init(_ value: Float) { self.init(repeating: value, shape: []) }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// Samples of N(mean, std^2) from `generator`.
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, std: Float = 1,
        generator: inout SeededGenerator
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.storage.pointer[i] = mean + std * generator.normal() }
        return t
    }

    /// Samples of U(low, high) from `generator`.
    public static func randomUniform(
        _ shape: [Int], low: Float = 0, high: Float = 1,
        generator: inout SeededGenerator
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.storage.pointer[i] = low + (high - low) * generator.uniform() }
        return t
    }

    /// The values, row-major.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs one element, shape is \(shape)")
        return storage.pointer[0]
    }

    /// A copy with its own storage, detached from the graph.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.storage.pointer.update(from: storage.pointer, count: count)
        return t
    }

    /// The same values, cut from the autodiff graph (no gradient flows back through it).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// A leaf that records gradients: after `backward`, read them with `grad`.
    public func requiringGrad() -> Tensor { Tensor(shape: shape, storage: storage, node: Node(leaf: ())) }

    /// The gradient accumulated into this leaf by `backward` (leaves only).
    public var grad: Tensor? { node?.grad }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(preview)\(count > 8 ? ", ..." : "")])"
    }

    @inline(__always) var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}
