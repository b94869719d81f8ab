import Kernels
import SeededRandom

extension Tensor {
    /// Batch normalisation in training mode over (N, C, H, W) or (N, C): normalises with the
    /// batch's statistics and returns them (mean, biased variance) for the running averages.
    /// `thenReLU`: the output is max(0, y), in the same pass (equal to `.relu()` after it).
    public func batchNormTraining(scale: Tensor, shift: Tensor, epsilon: Float = 1e-5, thenReLU: Bool = false) throws
        -> (output: Tensor, mean: Tensor, variance: Tensor)
    {
        let g = try batchNormGeometry(scale: scale, shift: shift, epsilon: epsilon)
        // Data stays in the input's layout (blocked after a convolution); statistics are plain (C).
        let x = rank == 4 ? self : try reshaped([shape[0], shape[1], 1, 1])
        let l = x.layout
        let out = Tensor(uninitializedShape: x.shape, layout: l)
        let mean = Tensor(uninitializedShape: [g.c]), variance = Tensor(uninitializedShape: [g.c])
        // The ReLU's mask (bytes, held as floats), written by the forward, read by the backward.
        let mask = thenReLU ? Tensor(uninitializedShape: [(BatchNormKernel.workspaceBytes(g, layout: l) + 3) / 4]) : nil
        BatchNormKernel.forwardTraining(
            g, layout: l, input: x.raw, scale: scale.pointer, shift: shift.pointer, output: out.raw,
            mean: mean.raw, variance: variance.raw, reluWorkspace: mask.map { UnsafeMutableRawPointer($0.raw) })
        var y = Tensor.result(out, inputs: [x, scale, shift]) { dy, _ in
            let dx = Tensor(uninitializedShape: x.shape, layout: l)
            let dscale = Tensor(uninitializedShape: [g.c]), dshift = Tensor(uninitializedShape: [g.c])
            let (dyRaw, keep) = dy.raw(in: l)
            BatchNormKernel.backward(
                g, layout: l, input: x.raw, gradOutput: dyRaw, scale: scale.pointer, shift: shift.pointer,
                mean: mean.raw, variance: variance.raw, gradInput: dx.raw,
                gradScale: dscale.raw, gradShift: dshift.raw, reluWorkspace: mask.map { UnsafeRawPointer($0.raw) })
            withExtendedLifetime(keep) {}
            return [dx, dscale, dshift]
        }
        if rank == 2 { y = try y.reshaped(shape) }
        return (y, mean, variance)
    }

    /// Batch normalisation with fixed statistics (evaluation mode); `thenReLU` as in training.
    public func batchNormInference(
        scale: Tensor, shift: Tensor, mean: Tensor, variance: Tensor,
        epsilon: Float = 1e-5, thenReLU: Bool = false
    ) throws -> Tensor {
        let g = try batchNormGeometry(scale: scale, shift: shift, epsilon: epsilon)
        let out = Tensor(uninitializedShape: shape, layout: layout)
        BatchNormKernel.forwardInference(
            g, layout: layout, input: raw, scale: scale.pointer, shift: shift.pointer,
            mean: mean.pointer, variance: variance.pointer, output: out.raw, fusedReLU: thenReLU)
        // d out / d x = scale / sqrt(var + eps) per channel; d/d scale = xhat; d/d shift = 1
        // (times the ReLU's 1[out > 0] when fused).
        let x = self
        return Tensor.result(out, inputs: [self, scale, shift]) { dy, needs in
            let hw = g.h * g.w
            let dx = Tensor(uninitializedShape: x.shape)
            let dscale = Tensor.zeros([g.c]), dshift = Tensor.zeros([g.c])
            for c in 0..<g.c {
                let inv = 1 / (variance.pointer[c] + epsilon).squareRoot()
                for n in 0..<g.n {
                    for j in 0..<hw {
                        let i = (n * g.c + c) * hw + j
                        let d = thenReLU && !(out.pointer[i] > 0) ? 0 : dy.pointer[i]
                        dx.pointer[i] = d * scale.pointer[c] * inv
                        dscale.pointer[c] += d * (x.pointer[i] - mean.pointer[c]) * inv
                        dshift.pointer[c] += d
                    }
                }
            }
            return [needs[0] ? dx : nil, dscale, dshift]
        }
    }

    func batchNormGeometry(scale: Tensor, shift: Tensor, epsilon: Float) throws -> BatchNormGeometry {
        guard rank == 4 || rank == 2 else {
            throw TensorError.invalidShape(op: "batchNorm", shape: shape, reason: "input must be (N, C, H, W) or (N, C)")
        }
        let c = shape[1]
        guard scale.shape == [c], shift.shape == [c] else {
            throw TensorError.shapeMismatch(op: "batchNorm scale/shift", lhs: shape, rhs: scale.shape)
        }
        return BatchNormGeometry(n: shape[0], c: c, h: rank == 4 ? shape[2] : 1, w: rank == 4 ? shape[3] : 1, epsilon: epsilon)
    }

    /// Group normalisation of (N, C, H, W) as torch.nn.functional.group_norm: each image's channels
    /// fall in `groups` consecutive groups, each normalised by its own mean and biased variance,
    /// then y = scale[c] xhat + shift[c]. Independent of the batch, so it behaves the same in
    /// training and sampling, with any batch size.
    /// Runs in the input's layout when the kernel reads it (plain, or a convolution's nChw8c /
    /// nChw16c), so the U-Net's convolution -> group norm -> SiLU -> convolution chain stays
    /// blocked; any other layout is reordered to plain once here.
    public func groupNorm(groups: Int, scale: Tensor, shift: Tensor, epsilon: Float = 1e-5) throws -> Tensor {
        guard rank == 4 else {
            throw TensorError.invalidShape(op: "groupNorm", shape: shape, reason: "input must be (N, C, H, W)")
        }
        let g = GroupNormGeometry(n: shape[0], c: shape[1], groups: groups, h: shape[2], w: shape[3], epsilon: epsilon)
        guard g.isValid else {
            throw TensorError.invalidArgument(
                op: "groupNorm",
                reason: "\(groups) groups do not divide the \(shape[1]) channels "
                    + "of \(shape) (or a size or epsilon \(epsilon) is not positive)")
        }
        guard scale.shape == [g.c], shift.shape == [g.c] else {
            throw TensorError.shapeMismatch(op: "groupNorm scale/shift", lhs: shape, rhs: scale.shape)
        }
        let l = GroupNormKernel.reads(layout, g) ? layout : .plain
        // `x` owns the buffer `xRaw` points into (this tensor, or its values reordered).
        let (xRaw, x) = raw(in: l)
        let out = Tensor(uninitializedShape: shape, layout: l)
        let mean = Tensor(uninitializedShape: [g.n * groups]), rstd = Tensor(uninitializedShape: [g.n * groups])
        GroupNormKernel.forward(
            g, layout: l, input: xRaw, scale: scale.pointer, shift: shift.pointer, output: out.raw,
            mean: mean.pointer, rstd: rstd.pointer)
        return Tensor.result(out, inputs: [self, scale, shift]) { dy, _ in
            let dx = Tensor(uninitializedShape: x.shape, layout: l)
            let dscale = Tensor(uninitializedShape: [g.c]), dshift = Tensor(uninitializedShape: [g.c])
            let (dyRaw, keep) = dy.raw(in: l)
            GroupNormKernel.backward(
                g, layout: l, input: xRaw, gradOutput: dyRaw, scale: scale.pointer, mean: mean.pointer,
                rstd: rstd.pointer, gradInput: dx.raw, gradScale: dscale.pointer, gradShift: dshift.pointer)
            withExtendedLifetime((x, keep)) {}
            return [dx, dscale, dshift]
        }
    }

    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
    public func dropout(probability p: Float, generator: inout SeededGenerator) throws -> Tensor {
        guard p >= 0, p < 1 else { throw TensorError.invalidArgument(op: "dropout", reason: "probability \(p) not in [0, 1)") }
        if p == 0 { return self }
        let mask = Tensor(uninitializedShape: shape)
        let keep = 1 / (1 - p)
        for i in 0..<count { mask.pointer[i] = generator.uniform() < p ? 0 : keep }
        let out = Tensor.zip(self, mask, *)
        return Tensor.result(out, inputs: [self]) { g, _ in [Tensor.zip(g, mask, *)] }
    }
}
