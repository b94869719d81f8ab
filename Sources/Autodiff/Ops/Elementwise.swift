import Foundation
import Kernels

// Broadcasting binary ops (numpy rules), unary math and activations.
// Each op: forward into fresh storage, pullback beside it.

/// How two shapes broadcast: output shape and each input's strides (0 along broadcast axes).
struct Broadcast {
    let shape: [Int]
    let aStrides: [Int], bStrides: [Int]

    init?(_ a: [Int], _ b: [Int]) {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var out = [Int](), sa = [Int](repeating: 0, count: rank), sb = sa
        for i in 0..<rank {
            guard pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1 else { return nil }
            out.append(max(pa[i], pb[i]))
        }
        var ra = 1, rb = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            sa[i] = pa[i] == 1 ? 0 : ra; ra *= pa[i]
            sb[i] = pb[i] == 1 ? 0 : rb; rb *= pb[i]
        }
        shape = out; aStrides = sa; bStrides = sb
    }

    /// Calls `row(outOffset, aOffset, bOffset)` for each run along the last axis.
    func forEachRow(_ row: (Int, Int, Int) -> Void) {
        let rank = shape.count
        guard rank > 0 else { row(0, 0, 0); return }
        let inner = shape[rank - 1]
        let rows = shape.dropLast().reduce(1, *)
        guard inner > 0 else { return }
        var index = [Int](repeating: 0, count: rank - 1)
        var ao = 0, bo = 0
        for r in 0..<rows {
            row(r * inner, ao, bo)
            var d = rank - 2
            while d >= 0 {
                index[d] += 1; ao += aStrides[d]; bo += bStrides[d]
                if index[d] < shape[d] { break }
                ao -= aStrides[d] * shape[d]; bo -= bStrides[d] * shape[d]; index[d] = 0
                d -= 1
            }
        }
    }
}

extension Tensor {
    /// Applies `f` elementwise with broadcasting.
    static func broadcastBinary(_ op: String, _ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitializedShape: a.shape)
            let pa = a.pointer, pb = b.pointer, po = out.pointer
            for i in 0..<a.count { po[i] = f(pa[i], pb[i]) }
            return out
        }
        guard let plan = Broadcast(a.shape, b.shape) else { throw TensorError.shapeMismatch(op: op, lhs: a.shape, rhs: b.shape) }
        let out = Tensor(uninitializedShape: plan.shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        let inner = plan.shape.last ?? 1
        let sa = plan.aStrides.last ?? 0, sb = plan.bStrides.last ?? 0
        plan.forEachRow { o, ao, bo in
            for j in 0..<inner { po[o + j] = f(pa[ao + j * sa], pb[bo + j * sb]) }
        }
        return out
    }

    /// Sums a broadcast gradient back down to `shape` (the input's shape).
    func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let plan = Broadcast(shape, target)!
        let out = Tensor.zeros(target)
        let pg = pointer, po = out.pointer
        let inner = plan.shape.last ?? 1, sb = plan.bStrides.last ?? 0
        plan.forEachRow { o, _, bo in
            for j in 0..<inner { po[bo + j * sb] += pg[o + j] }
        }
        return out
    }

    /// Applies `f` elementwise into fresh storage.
    func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let p = pointer, po = out.pointer
        for i in 0..<count { po[i] = f(p[i]) }
        return out
    }

    static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: a.shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        for i in 0..<a.count { po[i] = f(pa[i], pb[i]) }
        return out
    }

    // MARK: Binary arithmetic

    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        // Residual connections add two activations in the same blocked layout: add the raw
        // buffers (padding is zero in both) and stay in that layout, no reorder either way.
        if a.shape == b.shape, a.layout == b.layout, !a.layout.isPlain {
            let out = Tensor(uninitializedShape: a.shape, layout: a.layout)
            let n = a.layout.physicalCount(a.shape)
            let pa = a.raw, pb = b.raw, po = out.raw
            for i in 0..<n { po[i] = pa[i] + pb[i] }
            return result(out, inputs: [a, b]) { g, _ in [g, g] }
        }
        // The same shape in two layouts (a residual whose shortcut is plain): add in the blocked
        // one, reordering the other operand, not both to plain.
        if a.shape == b.shape, a.layout != b.layout {
            let target = a.layout.isPlain ? b.layout : a.layout
            let (pa, ka) = a.raw(in: target), (pb, kb) = b.raw(in: target)
            let out = Tensor(uninitializedShape: a.shape, layout: target)
            let po = out.raw
            for i in 0..<target.physicalCount(a.shape) { po[i] = pa[i] + pb[i] }
            withExtendedLifetime((ka, kb)) {}
            return result(out, inputs: [a, b]) { g, _ in [g, g] }
        }
        // A per-(image, channel) term (N, C, 1, 1) over a blocked activation (the U-Net's
        // embeddings): stays in the activation's layout.
        if a.rank == 4, b.shape == [a.shape[0], a.shape[1], 1, 1], !a.layout.isPlain, a.layout.channelBlock(a.shape) != nil {
            let l = a.layout
            let out = Tensor(uninitializedShape: a.shape, layout: l)
            ChannelBiasKernel.forward(shape: a.shape, layout: l, input: a.raw, bias: b.pointer, output: out.raw)
            return result(out, inputs: [a, b]) { g, _ in
                let (gRaw, keep) = g.raw(in: l)
                let db = Tensor(uninitializedShape: b.shape)
                ChannelBiasKernel.backward(shape: a.shape, layout: l, gradOutput: gRaw, gradBias: db.raw)
                withExtendedLifetime(keep) {}
                return [g, db]
            }
        }
        let out = try broadcastBinary("add", a, b, +)
        return result(out, inputs: [a, b]) { g, _ in [g.sumToShape(a.shape), g.sumToShape(b.shape)] }
    }

    /// max(x + shortcut, 0), equal to `(x + shortcut).relu()`: the end of a residual block in one
    /// pass over memory, forward and backward (the ReLU's mask is read from the output, and both
    /// inputs get the same gradient). Runs in the inputs' layout when they share one.
    public static func residualReLU(_ x: Tensor, _ shortcut: Tensor) throws -> Tensor {
        guard x.shape == shortcut.shape, x.layout == shortcut.layout else { return try (x + shortcut).relu() }
        let l = x.layout, n = l.physicalCount(x.shape)
        let out = Tensor(uninitializedShape: x.shape, layout: l)
        VectorKernels.addReLU(x.raw, shortcut.raw, output: out.raw, count: n)
        return result(out, inputs: [x, shortcut]) { g, _ in
            let (gRaw, keep) = g.raw(in: l)
            let dx = Tensor(uninitializedShape: x.shape, layout: l)
            VectorKernels.reluBackward(output: out.raw, gradOutput: gRaw, gradInput: dx.raw, count: n)
            withExtendedLifetime(keep) {}
            return [dx, dx]
        }
    }

    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try broadcastBinary("subtract", a, b, -)
        return result(out, inputs: [a, b]) { g, _ in [g.sumToShape(a.shape), g.map { -$0 }.sumToShape(b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try broadcastBinary("multiply", a, b, *)
        return result(out, inputs: [a, b]) { g, needs in
            [
                needs[0] ? try! broadcastBinary("", g, b, *).sumToShape(a.shape) : nil,
                needs[1] ? try! broadcastBinary("", g, a, *).sumToShape(b.shape) : nil,
            ]
        }
    }

    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try broadcastBinary("divide", a, b, /)
        return result(out, inputs: [a, b]) { g, needs in
            // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b
            [
                needs[0] ? try! broadcastBinary("", g, b, /).sumToShape(a.shape) : nil,
                needs[1] ? try! broadcastBinary("", Tensor.zip(g, out) { -$0 * $1 }, b, /).sumToShape(b.shape) : nil,
            ]
        }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        result(a.map { $0 + s }, inputs: [a]) { g, _ in [g] }
    }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func * (a: Tensor, s: Float) -> Tensor {
        result(a.map { $0 * s }, inputs: [a]) { g, _ in [g.map { $0 * s }] }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    // MARK: Unary math

    public func exp() -> Tensor {
        let out = map { Foundation.exp($0) }
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.zip(g, out, *)] }
    }

    /// Natural logarithm. NOTE: log(0) = -inf; losses use log-sum-exp forms instead.
    public func log() -> Tensor {
        let out = map { Foundation.log($0) }
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.zip(g, self, /)] }
    }

    public func sqrt() -> Tensor {
        let out = map { $0.squareRoot() }
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.zip(g, out) { $0 * 0.5 / $1 }] }
    }

    public func squared() -> Tensor {
        Tensor.result(map { $0 * $0 }, inputs: [self]) { g, _ in [Tensor.zip(g, self) { 2 * $0 * $1 }] }
    }

    public func abs() -> Tensor {
        Tensor.result(map { Swift.abs($0) }, inputs: [self]) { g, _ in
            [Tensor.zip(g, self) { $1 > 0 ? $0 : ($1 < 0 ? -$0 : 0) }]
        }
    }

    /// Clamps values to [low, high]; the gradient passes where the value was inside.
    public func clamped(_ low: Float, _ high: Float) -> Tensor {
        Tensor.result(map { Swift.min(Swift.max($0, low), high) }, inputs: [self]) { g, _ in
            [Tensor.zip(g, self) { $1 >= low && $1 <= high ? $0 : 0 }]
        }
    }

    // MARK: Activations (oneDNN eltwise)

    /// Runs in the input's layout; the gradient comes back in that layout too.
    func activation(_ a: Activation) -> Tensor {
        let l = layout
        let out = Tensor(uninitializedShape: shape, layout: l)
        ActivationKernel.forward(a, shape: shape, layout: l, input: raw, output: out.raw)
        let saved = ActivationKernel.backwardUsesOutput(a) ? out : self
        return Tensor.result(out, inputs: [self]) { g, _ in
            let dx = Tensor(uninitializedShape: g.shape, layout: l)
            let (dy, keep) = g.raw(in: l)
            ActivationKernel.backward(a, shape: g.shape, layout: l, saved: saved.raw, gradOutput: dy, gradInput: dx.raw)
            withExtendedLifetime(keep) {}
            return [dx]
        }
    }

    /// max(x, 0). NOTE: the gradient at exactly 0 is 0, as in PyTorch.
    public func relu() -> Tensor { activation(.relu(slope: 0)) }
    /// x >= 0 ? x : slope * x (DCGAN's discriminator uses slope 0.2).
    public func leakyRelu(_ slope: Float = 0.01) -> Tensor { activation(.relu(slope: slope)) }
    public func tanh() -> Tensor { activation(.tanh) }
    public func sigmoid() -> Tensor { activation(.sigmoid) }
    /// x sigmoid(x) (torch.nn.SiLU), on oneDNN's swish with alpha 1.
    public func silu() -> Tensor { activation(.silu) }
}

extension Tensor {
    /// softplus(x) = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) so it never overflows;
    /// its derivative is sigmoid(x), exact at every x (a relu + abs composition would get 0 at x = 0).
    public func softplus() -> Tensor {
        let out = map { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) }
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.zip(g, self) { $0 / (1 + Foundation.exp(-$1)) }] }
    }
}
