import Kernels

/// A node of the autodiff graph: the inputs an op read and the closure that maps the gradient of
/// its output to gradients of those inputs (nil where an input needs none).
final class Node: @unchecked Sendable {
    let parents: [Node?]
    let pullback: ((Tensor) -> [Tensor?])?
    /// Accumulated gradient; kept on leaves after `backward`, dropped from inner nodes.
    var grad: Tensor?

    /// A leaf: a parameter or a tensor made with `requiringGrad()`.
    init(leaf: Void) { parents = []; pullback = nil }

    init(parents: [Node?], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.parents = parents; self.pullback = pullback
    }

    var isLeaf: Bool { pullback == nil }
}

/// Whether ops record the graph. Off inside `noGrad`; task-local, so concurrent requests each
/// have their own setting.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording an autodiff graph (inference, sampling, metrics).
public func noGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

extension Tensor {
    /// Builds an op's result; records a node when grad mode is on and an input requires grad.
    /// `pullback(gradOutput, needs)` returns one gradient per input; `needs[i]` says whether
    /// input i wants one, so expensive gradients (e.g. a convolution's input) can be skipped.
    static func result(
        _ output: Tensor, inputs: [Tensor],
        pullback: @escaping (_ grad: Tensor, _ needs: [Bool]) -> [Tensor?]
    ) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.node != nil }) else { return output }
        let parents = inputs.map(\.node)
        let needs = parents.map { $0 != nil }
        let node = Node(parents: parents) { g in pullback(g, needs) }
        return Tensor(shape: output.shape, storage: output.storage, node: node)
    }

    /// Reverse-mode differentiation: accumulates d self / d leaf into every leaf's `grad`.
    /// `self` is usually a scalar loss (seed 1); otherwise pass `seed` of the same shape.
    public func backward(seed: Tensor? = nil) {
        guard let root = node else { return }
        // Pullbacks compute with plain ops; they must not record a graph of their own.
        noGrad { Tensor.propagate(from: root, seed: seed ?? Tensor(repeating: 1, shape: shape)) }
    }

    private static func propagate(from root: Node, seed: Tensor) {
        // Topological order by iterative depth-first search.
        var order: [Node] = [], visited = Set<ObjectIdentifier>()
        var stack: [(Node, Bool)] = [(root, false)]
        while let (n, expanded) = stack.popLast() {
            if expanded { order.append(n); continue }
            guard visited.insert(ObjectIdentifier(n)).inserted else { continue }
            stack.append((n, true))
            for p in n.parents { if let p, !visited.contains(ObjectIdentifier(p)) { stack.append((p, false)) } }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        for n in order.reversed() {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(n)) else { continue }
            guard let pullback = n.pullback else {
                n.grad = n.grad.map { accumulate($0, g.plain()) } ?? g.plain().detached()
                continue
            }
            for (p, pg) in Swift.zip(n.parents, pullback(g)) {
                guard let p, let pg else { continue }
                let key = ObjectIdentifier(p)
                grads[key] = grads[key].map { accumulate($0, pg) } ?? pg
            }
        }
    }
}

/// a + b into fresh storage (gradients are never written in place: a pullback may return a
/// tensor that aliases an input's storage).
///
/// A residual block's input feeds a convolution and the shortcut, so both of its gradients come
/// back in the convolutions' blocked layout: they are added in that layout (channel padding is
/// zero in both), with no reorder to plain and back. Plain only when both are plain.
func accumulate(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "gradient shapes \(a.shape) and \(b.shape) differ")
    let layout = a.layout.isPlain ? b.layout : a.layout
    let out = Tensor(uninitializedShape: a.shape, layout: layout)
    let (pa, keepA) = a.raw(in: layout), (pb, keepB) = b.raw(in: layout)
    VectorKernels.add(pa, pb, output: out.raw, count: layout.physicalCount(a.shape))
    withExtendedLifetime((keepA, keepB)) {}
    return out
}
