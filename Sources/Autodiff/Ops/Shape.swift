// Views and rearrangements: reshape, flatten, concat, slice, transpose of a matrix.

import Kernels

extension Tensor {
    /// The same values with another shape (one dimension may be -1). Shares storage.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(op: "reshape", lhs: shape, rhs: newShape)
            }
            s[i] = count / known
        }
        guard s.allSatisfy({ $0 >= 0 }), s.reduce(1, *) == count else {
            throw TensorError.shapeMismatch(op: "reshape", lhs: shape, rhs: newShape)
        }
        let out = Tensor(shape: s, storage: plain().storage)
        let original = shape
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor(shape: original, storage: g.plain().storage)] }
    }

    /// (N, ...) -> (N, rest).
    public func flattened() throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidShape(op: "flatten", shape: shape, reason: "needs rank >= 1") }
        return try reshaped([shape[0], -1])
    }

    /// Concatenates along `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidArgument(op: "concat", reason: "no tensors") }
        guard axis >= 0, axis < first.rank else {
            throw TensorError.invalidShape(op: "concat", shape: first.shape, reason: "axis \(axis) out of range")
        }
        for t in tensors.dropFirst() {
            var a = t.shape, b = first.shape
            guard a.count == b.count else { throw TensorError.shapeMismatch(op: "concat", lhs: first.shape, rhs: t.shape) }
            a[axis] = 0; b[axis] = 0
            guard a == b else { throw TensorError.shapeMismatch(op: "concat", lhs: first.shape, rhs: t.shape) }
        }
        let outer = first.shape[..<axis].reduce(1, *), inner = first.shape[(axis + 1)...].reduce(1, *)
        var shape = first.shape
        shape[axis] = tensors.map { $0.shape[axis] }.reduce(0, +)
        if axis == 1, let blocked = concatBlocked(tensors, shape: shape) { return blocked }
        let out = Tensor(uninitializedShape: shape)
        let outRow = shape[axis] * inner
        var offset = 0
        for t in tensors {
            let row = t.shape[axis] * inner
            for o in 0..<outer { (out.pointer + o * outRow + offset).update(from: t.pointer + o * row, count: row) }
            offset += row
        }
        let sizes = tensors.map { $0.shape[axis] }
        return result(out, inputs: tensors) { g, needs in
            var start = 0
            return sizes.enumerated().map { i, size in
                defer { start += size }
                return needs[i] ? g.sliceRaw(axis: axis, start: start, length: size) : nil
            }
        }
    }

    /// Channels of (N, C_i, H, W) tensors joined in oneDNN's nChw{B}c, when one of them is a
    /// convolution's output in that layout and every C_i is a multiple of B (nil otherwise): an
    /// image's channel blocks are then one run of C_i H W floats per input, in order, so the
    /// plain row copies work on the blocked buffers, forward and backward (the U-Net's skip
    /// concatenations stay blocked for the group norm and convolutions after them).
    private static func concatBlocked(_ tensors: [Tensor], shape: [Int]) -> Tensor? {
        guard shape.count == 4,
            let block = tensors.lazy.compactMap({ $0.layout.isPlain ? nil : $0.layout.channelBlock($0.shape) }).first,
            block > 1, tensors.allSatisfy({ $0.shape[1] % block == 0 })
        else { return nil }
        let n = shape[0], hw = shape[2] * shape[3]
        let layouts = tensors.map { Layout.channelBlocked(block, shape: $0.shape) }
        let outLayout = Layout.channelBlocked(block, shape: shape)
        let out = Tensor(uninitializedShape: shape, layout: outLayout)
        let outRow = shape[1] * hw
        var offset = 0
        for (t, l) in Swift.zip(tensors, layouts) {
            let row = t.shape[1] * hw
            let (src, keep) = t.raw(in: l)
            for i in 0..<n { (out.raw + i * outRow + offset).update(from: src + i * row, count: row) }
            withExtendedLifetime(keep) {}
            offset += row
        }
        let sizes = tensors.map { $0.shape[1] }
        return result(out, inputs: tensors) { g, needs in
            let (gRaw, keep) = g.raw(in: outLayout)
            defer { withExtendedLifetime(keep) {} }
            var start = 0
            return Swift.zip(sizes, layouts).enumerated().map { i, sizeAndLayout in
                let (size, l) = sizeAndLayout
                defer { start += size }
                guard needs[i] else { return nil }
                let piece = Tensor(uninitializedShape: [shape[0], size, shape[2], shape[3]], layout: l)
                for j in 0..<n { (piece.raw + j * size * hw).update(from: gRaw + j * outRow + start * hw, count: size * hw) }
                return piece
            }
        }
    }

    func sliceRaw(axis: Int, start: Int, length: Int) -> Tensor {
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        var s = shape
        s[axis] = length
        let out = Tensor(uninitializedShape: s)
        for o in 0..<outer {
            (out.pointer + o * length * inner).update(from: pointer + (o * shape[axis] + start) * inner, count: length * inner)
        }
        return out
    }

    /// Elements start..<start+length along `axis`.
    public func slice(axis: Int, start: Int, length: Int) throws -> Tensor {
        guard axis >= 0, axis < rank, start >= 0, length >= 0, start + length <= shape[axis] else {
            throw TensorError.invalidShape(
                op: "slice", shape: shape,
                reason: "cannot take \(start)..<\(start + length) along axis \(axis)")
        }
        let out = sliceRaw(axis: axis, start: start, length: length)
        let full = shape
        return Tensor.result(out, inputs: [self]) { g, _ in
            let dx = Tensor.zeros(full)
            let outer = full[..<axis].reduce(1, *), inner = full[(axis + 1)...].reduce(1, *)
            for o in 0..<outer {
                (dx.pointer + (o * full[axis] + start) * inner).update(
                    from: g.pointer + o * length * inner, count: length * inner)
            }
            return [dx]
        }
    }

    /// Rows of a matrix picked by index (an embedding lookup): (V, D)[indices] -> (B, D).
    public func gatherRows(_ indices: [Int]) throws -> Tensor {
        guard rank == 2 else { throw TensorError.invalidShape(op: "gatherRows", shape: shape, reason: "needs a matrix") }
        let (v, d) = (shape[0], shape[1])
        if let bad = indices.first(where: { $0 < 0 || $0 >= v }) {
            throw TensorError.invalidArgument(op: "gatherRows", reason: "index \(bad) outside 0..<\(v)")
        }
        let out = Tensor(uninitializedShape: [indices.count, d])
        for (i, r) in indices.enumerated() { (out.pointer + i * d).update(from: pointer + r * d, count: d) }
        return Tensor.result(out, inputs: [self]) { g, _ in
            let dw = Tensor.zeros([v, d])
            for (i, r) in indices.enumerated() { for j in 0..<d { dw.pointer[r * d + j] += g.pointer[i * d + j] } }
            return [dw]
        }
    }

    /// Matrix transpose (2-D).
    public func transposed() throws -> Tensor {
        guard rank == 2 else { throw TensorError.invalidShape(op: "transpose", shape: shape, reason: "needs a matrix") }
        let t = transposeRaw()
        return Tensor.result(t, inputs: [self]) { g, _ in [g.transposeRaw()] }
    }

    func transposeRaw() -> Tensor {
        let (r, c) = (shape[0], shape[1])
        let out = Tensor(uninitializedShape: [c, r])
        for i in 0..<r { for j in 0..<c { out.pointer[j * r + i] = pointer[i * c + j] } }
        return out
    }
}

extension Tensor {
    /// Shifts each image of (N, C, H, W) by whole pixels, (dy[n], dx[n]), filling with zeros:
    /// out[n, c, y, x] = in[n, c, y - dy[n], x - dx[n]]. The gradient shifts back.
    public func translated(dy: [Int], dx: [Int]) throws -> Tensor {
        guard rank == 4, dy.count == shape[0], dx.count == shape[0] else {
            throw TensorError.invalidShape(op: "translated", shape: shape, reason: "needs (N, C, H, W) and N shifts")
        }
        let out = Tensor.shift(self, dy: dy, dx: dx)
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.shift(g, dy: dy.map { -$0 }, dx: dx.map { -$0 })] }
    }

    static func shift(_ x: Tensor, dy: [Int], dx: [Int]) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor.zeros(x.shape)
        let src = x.pointer, dst = out.pointer
        for i in 0..<n {
            let (sy, sx) = (dy[i], dx[i])
            for ch in 0..<c {
                let base = (i * c + ch) * h * w
                for y in max(0, sy)..<min(h, h + sy) {
                    let from = base + (y - sy) * w, to = base + y * w
                    for xx in max(0, sx)..<min(w, w + sx) { dst[to + xx] = src[from + xx - sx] }
                }
            }
        }
        return out
    }
}
