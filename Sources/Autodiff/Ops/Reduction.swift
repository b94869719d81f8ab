import Foundation

// Sums, means and the softmax family (along the last axis).

extension Tensor {
    /// Sum of all elements (shape []).
    public func sum() -> Tensor {
        var s: Double = 0
        for i in 0..<count { s += Double(pointer[i]) }
        let shape = self.shape
        return Tensor.result(Tensor(Float(s)), inputs: [self]) { g, _ in [Tensor(repeating: g.item, shape: shape)] }
    }

    /// Mean of all elements (shape []).
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum over `axes`, keeping them as size 1 when `keepDims`.
    public func sum(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        for a in axes where a < 0 || a >= rank {
            throw TensorError.invalidShape(op: "sum", shape: shape, reason: "axis \(a) out of range")
        }
        var kept = shape
        for a in axes { kept[a] = 1 }
        let out = sumToShape(kept)
        let full = shape
        let reduced = Tensor.result(out, inputs: [self]) { g, _ in
            [try! Tensor.broadcastBinary("", Tensor.zeros(full), g, +)]
        }
        return keepDims ? reduced : try reduced.reshaped(kept.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let n = axes.map { shape[$0] }.reduce(1, *)
        return try sum(axes: axes, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// log(softmax(x)) along the last axis, computed stably (x - max - log sum exp).
    public func logSoftmax() throws -> Tensor {
        guard rank >= 1, let cols = shape.last, cols > 0 else {
            throw TensorError.invalidShape(op: "logSoftmax", shape: shape, reason: "needs a non-empty last axis")
        }
        let rows = count / cols
        let out = Tensor(uninitializedShape: shape)
        for r in 0..<rows {
            let x = pointer + r * cols, y = out.pointer + r * cols
            var m = -Float.infinity
            for j in 0..<cols { m = Swift.max(m, x[j]) }
            var s: Float = 0
            for j in 0..<cols { s += Foundation.exp(x[j] - m) }
            let lse = m + Foundation.log(s)
            for j in 0..<cols { y[j] = x[j] - lse }
        }
        return Tensor.result(out, inputs: [self]) { g, _ in
            // dx = g - softmax * sum(g)
            let dx = Tensor(uninitializedShape: g.shape)
            for r in 0..<rows {
                let gr = g.pointer + r * cols, y = out.pointer + r * cols, d = dx.pointer + r * cols
                var s: Float = 0
                for j in 0..<cols { s += gr[j] }
                for j in 0..<cols { d[j] = gr[j] - Foundation.exp(y[j]) * s }
            }
            return [dx]
        }
    }

    /// softmax along the last axis.
    public func softmax() throws -> Tensor { try logSoftmax().exp() }
}
