/// A trainable tensor (or a saved buffer such as a running mean): its storage is updated in
/// place by optimizers, and its gradient accumulates across `backward` calls until `zeroGrad`.
public final class Parameter: @unchecked Sendable {
    private var leaf = Node(leaf: ())
    private var storage: TensorStorage
    public let shape: [Int]
    /// When false, `tensor` is a constant: no gradient is computed for it (e.g. D while G trains).
    public var requiresGrad: Bool

    public init(_ value: Tensor, requiresGrad: Bool = true) {
        storage = value.copy().storage
        shape = value.shape
        self.requiresGrad = requiresGrad
    }

    /// The value as a graph leaf (a constant when `requiresGrad` is false).
    public var tensor: Tensor { Tensor(shape: shape, storage: storage, node: requiresGrad ? leaf : nil) }

    /// The value without a graph node.
    public var value: Tensor { Tensor(shape: shape, storage: storage) }

    /// The gradient accumulated so far, or nil.
    public var grad: Tensor? {
        get { leaf.grad }
        set {
            precondition(newValue == nil || newValue!.shape == shape, "gradient shape \(newValue!.shape) for parameter \(shape)")
            leaf.grad = newValue
        }
    }

    public func zeroGrad() { leaf.grad = nil }

    /// Direct access for optimizers: the parameter's values, updated in place.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var count: Int { storage.count }

    /// Replaces the value (same shape), e.g. when loading a checkpoint.
    public func assign(_ t: Tensor) throws {
        guard t.shape == shape else { throw TensorError.shapeMismatch(op: "assign", lhs: shape, rhs: t.shape) }
        storage.pointer.update(from: t.storage.pointer, count: count)
    }
}
