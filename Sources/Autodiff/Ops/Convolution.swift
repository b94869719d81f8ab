import Kernels

// Convolution, transposed convolution and pooling on NCHW tensors (oneDNN kernels).
// Legend: N batch, C input channels, H x W input, K output channels, R x S kernel, P x Q output.

extension Tensor {
    static func convGeometry(
        _ op: String, _ x: Tensor, _ w: Tensor, bias: Tensor?, stride: Int, padding: Int,
        outputPadding: Int, transposed: Bool
    ) throws -> ConvGeometry {
        guard x.rank == 4 else { throw TensorError.invalidShape(op: op, shape: x.shape, reason: "input must be (N, C, H, W)") }
        guard w.rank == 4 else { throw TensorError.invalidShape(op: op, shape: w.shape, reason: "weight must be 4-D") }
        let inChannels = w.shape[transposed ? 0 : 1], k = w.shape[transposed ? 1 : 0]
        guard x.shape[1] == inChannels else { throw TensorError.shapeMismatch(op: op, lhs: x.shape, rhs: w.shape) }
        if let bias, bias.shape != [k] { throw TensorError.shapeMismatch(op: "\(op) bias", lhs: [k], rhs: bias.shape) }
        let g = ConvGeometry(
            n: x.shape[0], c: inChannels, h: x.shape[2], w: x.shape[3], k: k, r: w.shape[2], s: w.shape[3],
            stride: stride, padding: padding, outputPadding: outputPadding, transposed: transposed,
            hasBias: bias != nil)
        guard g.isValid else {
            throw TensorError.invalidArgument(
                op: op,
                reason: "input \(x.shape) with weight \(w.shape), stride \(stride), "
                    + "padding \(padding) gives no valid output")
        }
        return g
    }

    /// Input in any layout; output (and the input's gradient) in the layouts oneDNN chose.
    /// An input a pass converts (a reorder, and rounding to bf16 in bf16) is converted once: the
    /// weight gradient reuses the forward's converted input and the backward-data pass's
    /// converted incoming gradient.
    static func convolution(_ g: ConvGeometry, _ x: Tensor, _ w: Tensor, _ bias: Tensor?) -> Tensor {
        let out = Tensor(uninitializedShape: g.outputShape, layout: Conv.forwardLayout(g))
        let weightsLearn = GradMode.isEnabled && (w.requiresGrad || bias?.requiresGrad == true)
        let convertedX = Conv.forward(
            g, input: x.raw, inputLayout: x.layout, weight: w.pointer, bias: bias?.pointer, output: out.raw,
            keepInput: weightsLearn)
        let inputs = bias.map { [x, w, $0] } ?? [x, w]
        return result(out, inputs: inputs) { dy, needs in
            var dx: Tensor?, dw: Tensor?, db: Tensor?, convertedDy: ConvertedInput?
            let weightGradients = needs[1] || (bias != nil && needs[2])
            if needs[0] {
                dx = Tensor(uninitializedShape: g.inputShape, layout: Conv.backwardDataLayout(g))
                convertedDy = Conv.backwardData(
                    g, gradOutput: dy.raw, gradOutputLayout: dy.layout, weight: w.pointer, gradInput: dx!.raw,
                    keepGradOutput: weightGradients)
            }
            if weightGradients {
                dw = Tensor(uninitializedShape: g.weightShape)
                db = bias != nil ? Tensor(uninitializedShape: [g.k]) : nil
                Conv.backwardWeights(
                    g, input: x.raw, inputLayout: x.layout, convertedInput: convertedX, gradOutput: dy.raw,
                    gradOutputLayout: dy.layout, convertedGradOutput: convertedDy, gradWeight: dw!.raw, gradBias: db?.raw)
            }
            return bias != nil ? [dx, dw, db] : [dx, dw]
        }
    }

    /// 2-D convolution: (N, C, H, W) with weight (K, C, R, S) -> (N, K, P, Q), as torch's conv2d.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        let g = try Tensor.convGeometry(
            "conv2d", self, weight, bias: bias, stride: stride, padding: padding,
            outputPadding: 0, transposed: false)
        return Tensor.convolution(g, self, weight, bias)
    }

    /// Transposed 2-D convolution: (N, C, H, W) with weight (C, K, R, S) -> (N, K, P, Q),
    /// P = (H - 1) stride - 2 padding + R + outputPadding, as torch's conv_transpose2d.
    public func convTranspose2d(
        weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
        outputPadding: Int = 0
    ) throws -> Tensor {
        let g = try Tensor.convGeometry(
            "convTranspose2d", self, weight, bias: bias, stride: stride, padding: padding,
            outputPadding: outputPadding, transposed: true)
        return Tensor.convolution(g, self, weight, bias)
    }

    func pool(_ kind: PoolGeometry.Kind, kernel: Int, stride: Int?, padding: Int) throws -> Tensor {
        let op = kind == .max ? "maxPool2d" : "avgPool2d"
        guard rank == 4 else { throw TensorError.invalidShape(op: op, shape: shape, reason: "input must be (N, C, H, W)") }
        let g = PoolGeometry(
            kind: kind, n: shape[0], c: shape[1], h: shape[2], w: shape[3], kernel: kernel,
            stride: stride ?? kernel, padding: padding)
        guard kernel > 0, g.stride > 0, padding >= 0, padding * 2 <= kernel, g.p > 0, g.q > 0 else {
            throw TensorError.invalidArgument(
                op: op,
                reason: "kernel \(kernel) stride \(g.stride) padding \(padding) "
                    + "does not fit input \(shape)")
        }
        // In the input's layout (blocked after a convolution): no reorder to plain and back.
        let l = layout, outLayout = PoolKernel.outputLayout(g, layout: l)
        let out = Tensor(uninitializedShape: g.outputShape, layout: outLayout)
        let wsBytes = PoolKernel.workspaceBytes(g, layout: l)
        let workspace = wsBytes > 0 ? TensorStorage(count: (wsBytes + 3) / 4) : nil
        PoolKernel.forward(
            g, layout: l, input: raw, output: out.raw, workspace: workspace.map { UnsafeMutableRawPointer($0.raw) })
        return Tensor.result(out, inputs: [self]) { dy, _ in
            let dx = Tensor(uninitializedShape: g.inputShape, layout: l)
            let (dyRaw, keep) = dy.raw(in: outLayout)
            PoolKernel.backward(
                g, layout: l, gradOutput: dyRaw, workspace: workspace.map { UnsafeRawPointer($0.raw) },
                gradInput: dx.raw)
            withExtendedLifetime(keep) {}
            return [dx]
        }
    }

    /// Max pooling over square windows (stride defaults to the kernel size).
    public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Tensor {
        try pool(.max, kernel: kernel, stride: stride, padding: padding)
    }

    /// Average pooling over square windows (padding excluded from the average).
    public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Tensor {
        try pool(.average, kernel: kernel, stride: stride, padding: padding)
    }

    /// Nearest-neighbour upsampling by an integer factor S: (N, C, H, W) -> (N, C, H S, W S), as
    /// torch.nn.Upsample(scale_factor=S, mode="nearest"); the gradient sums each S x S block.
    public func upsampleNearest(factor s: Int = 2) throws -> Tensor {
        guard rank == 4 else {
            throw TensorError.invalidShape(op: "upsampleNearest", shape: shape, reason: "input must be (N, C, H, W)")
        }
        guard (1...64).contains(s) else {
            throw TensorError.invalidArgument(op: "upsampleNearest", reason: "factor \(s) not in 1...64")
        }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        // A convolution's nChw{B}c output is upsampled in place of its layout (B channels a pixel).
        let lanes = layout.channelBlock(shape) ?? 1
        let (inLayout, outShape) = (lanes > 1 ? layout : .plain, [n, c, h * s, w * s])
        let outLayout = lanes > 1 ? Layout.channelBlocked(lanes, shape: outShape) : .plain
        let (xRaw, keepX) = raw(in: inLayout)
        let out = Tensor(uninitializedShape: outShape, layout: outLayout)
        UpsampleKernel.forward(n: n, c: c, h: h, w: w, factor: s, lanes: lanes, input: xRaw, output: out.raw)
        withExtendedLifetime(keepX) {}
        return Tensor.result(out, inputs: [self]) { dy, _ in
            let dx = Tensor(uninitializedShape: [n, c, h, w], layout: inLayout)
            let (dyRaw, keep) = dy.raw(in: outLayout)
            UpsampleKernel.backward(
                n: n, c: c, h: h, w: w, factor: s, lanes: lanes, gradOutput: dyRaw, gradInput: dx.raw)
            withExtendedLifetime(keep) {}
            return [dx]
        }
    }

    /// Mean over H and W: (N, C, H, W) -> (N, C).
    public func globalAvgPool2d() throws -> Tensor {
        guard rank == 4 else {
            throw TensorError.invalidShape(op: "globalAvgPool2d", shape: shape, reason: "input must be (N, C, H, W)")
        }
        // A square image is one H x H average-pooling window (oneDNN, in the input's layout).
        guard shape[2] == shape[3] else { return try mean(axes: [2, 3]) }
        return try avgPool2d(kernel: shape[2]).reshaped([shape[0], shape[1]])  // (N, C, 1, 1) -> (N, C)
    }
}
