import Foundation

/// Naive, obviously-correct kernels that the oneDNN ones are tested against. Slow on purpose:
/// plain loops, no blocking, no threads. Same buffers and layouts as the fast kernels.
public enum Reference {
    // MARK: Convolution

    /// Visits every (input element, weight element, output element) triple of a convolution.
    /// For a convolution the strided side is the output; for a transposed one, the input.
    /// `body(inputIndex, weightIndex, outputIndex)`.
    static func forEachTap(_ g: ConvGeometry, _ body: (Int, Int, Int) -> Void) {
        let (sh, sw) = g.transposed ? (g.h, g.w) : (g.p, g.q)  // strided side
        let (dh, dw) = g.transposed ? (g.p, g.q) : (g.h, g.w)  // dense side
        for n in 0..<g.n {
            for c in 0..<g.c {
                for k in 0..<g.k {
                    for a in 0..<sh {
                        for b in 0..<sw {
                            for r in 0..<g.r {
                                let y = a * g.stride - g.padding + r
                                guard y >= 0, y < dh else { continue }
                                for s in 0..<g.s {
                                    let x = b * g.stride - g.padding + s
                                    guard x >= 0, x < dw else { continue }
                                    let strided = (a * sw + b), dense = (y * dw + x)
                                    let weight =
                                        g.transposed
                                        ? ((c * g.k + k) * g.r + r) * g.s + s
                                        : ((k * g.c + c) * g.r + r) * g.s + s
                                    let inPos = g.transposed ? strided : dense
                                    let outPos = g.transposed ? dense : strided
                                    body((n * g.c + c) * g.h * g.w + inPos, weight, (n * g.k + k) * g.p * g.q + outPos)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public static func convForward(_ g: ConvGeometry, input: [Float], weight: [Float], bias: [Float]?) -> [Float] {
        var out = [Float](repeating: 0, count: g.n * g.k * g.p * g.q)
        forEachTap(g) { i, w, o in out[o] += input[i] * weight[w] }
        if let bias {
            for n in 0..<g.n { for k in 0..<g.k { for j in 0..<(g.p * g.q) { out[(n * g.k + k) * g.p * g.q + j] += bias[k] } } }
        }
        return out
    }

    public static func convBackwardData(_ g: ConvGeometry, gradOutput: [Float], weight: [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: g.n * g.c * g.h * g.w)
        forEachTap(g) { i, w, o in dx[i] += gradOutput[o] * weight[w] }
        return dx
    }

    public static func convBackwardWeights(_ g: ConvGeometry, input: [Float], gradOutput: [Float]) -> (
        weight: [Float], bias: [Float]
    ) {
        var dw = [Float](repeating: 0, count: g.weightShape.reduce(1, *))
        forEachTap(g) { i, w, o in dw[w] += gradOutput[o] * input[i] }
        var db = [Float](repeating: 0, count: g.k)
        for n in 0..<g.n { for k in 0..<g.k { for j in 0..<(g.p * g.q) { db[k] += gradOutput[(n * g.k + k) * g.p * g.q + j] } } }
        return (dw, db)
    }

    // MARK: Batch norm (per channel over N, H, W; biased variance)

    public static func batchNormStatistics(_ g: BatchNormGeometry, input: [Float]) -> (mean: [Float], variance: [Float]) {
        let m = Double(g.n * g.h * g.w), hw = g.h * g.w
        var mean = [Float](repeating: 0, count: g.c), variance = mean
        for c in 0..<g.c {
            var s = 0.0
            for n in 0..<g.n { for j in 0..<hw { s += Double(input[(n * g.c + c) * hw + j]) } }
            let mu = s / m
            var v = 0.0
            for n in 0..<g.n { for j in 0..<hw { let d = Double(input[(n * g.c + c) * hw + j]) - mu; v += d * d } }
            mean[c] = Float(mu); variance[c] = Float(v / m)
        }
        return (mean, variance)
    }

    public static func batchNormForward(
        _ g: BatchNormGeometry, input: [Float], scale: [Float], shift: [Float],
        mean: [Float], variance: [Float]
    ) -> [Float] {
        let hw = g.h * g.w
        var out = input
        for n in 0..<g.n {
            for c in 0..<g.c {
                let inv = 1 / (variance[c] + g.epsilon).squareRoot()
                for j in 0..<hw {
                    let i = (n * g.c + c) * hw + j
                    out[i] = scale[c] * (input[i] - mean[c]) * inv + shift[c]
                }
            }
        }
        return out
    }

    /// Training-mode backward: dx = scale/sigma * (dy - mean(dy) - xhat * mean(dy * xhat)).
    public static func batchNormBackward(
        _ g: BatchNormGeometry, input: [Float], gradOutput: [Float], scale: [Float],
        mean: [Float], variance: [Float]
    ) -> (input: [Float], scale: [Float], shift: [Float]) {
        let hw = g.h * g.w, m = Float(g.n * hw)
        var dx = input, dscale = [Float](repeating: 0, count: g.c), dshift = dscale
        for c in 0..<g.c {
            let inv = 1 / (variance[c] + g.epsilon).squareRoot()
            var sumDy: Float = 0, sumDyXhat: Float = 0
            for n in 0..<g.n {
                for j in 0..<hw {
                    let i = (n * g.c + c) * hw + j
                    sumDy += gradOutput[i]; sumDyXhat += gradOutput[i] * (input[i] - mean[c]) * inv
                }
            }
            dscale[c] = sumDyXhat; dshift[c] = sumDy
            for n in 0..<g.n {
                for j in 0..<hw {
                    let i = (n * g.c + c) * hw + j
                    let xhat = (input[i] - mean[c]) * inv
                    dx[i] = scale[c] * inv * (gradOutput[i] - sumDy / m - xhat * sumDyXhat / m)
                }
            }
        }
        return (dx, dscale, dshift)
    }

    // MARK: Activations

    public static func activation(_ a: Activation, _ x: Float) -> Float {
        switch a {
        case .relu(let slope): return x > 0 ? x : slope * x
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .silu: return x / (1 + Foundation.exp(-x))
        }
    }

    /// Derivative from the saved value (input for ReLU and SiLU, output for tanh and sigmoid).
    /// NOTE: ReLU's derivative at exactly 0 is taken as 0 (PyTorch: x > 0); LeakyReLU's as slope.
    public static func activationDerivative(_ a: Activation, saved: Float) -> Float {
        switch a {
        case .relu(let slope): return saved > 0 ? 1 : slope
        case .tanh: return 1 - saved * saved
        case .sigmoid: return saved * (1 - saved)
        case .silu:  // d/dx x s(x) = s(x) (1 + x (1 - s(x)))
            let s = 1 / (1 + Foundation.exp(-saved))
            return s * (1 + saved * (1 - s))
        }
    }

    // MARK: Pooling

    public static func poolForward(_ g: PoolGeometry, input: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: g.n * g.c * g.p * g.q)
        for nc in 0..<(g.n * g.c) {
            for p in 0..<g.p {
                for q in 0..<g.q {
                    var best = -Float.infinity, sum: Float = 0, count = 0
                    for r in 0..<g.kernel {
                        for s in 0..<g.kernel {
                            let y = p * g.stride - g.padding + r, x = q * g.stride - g.padding + s
                            guard y >= 0, y < g.h, x >= 0, x < g.w else { continue }
                            let v = input[nc * g.h * g.w + y * g.w + x]
                            best = max(best, v); sum += v; count += 1
                        }
                    }
                    out[nc * g.p * g.q + p * g.q + q] = g.kind == .max ? best : sum / Float(count)
                }
            }
        }
        return out
    }

    /// Backward of pooling; max routes the gradient to the first maximal element of each window.
    public static func poolBackward(_ g: PoolGeometry, input: [Float], gradOutput: [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: input.count)
        for nc in 0..<(g.n * g.c) {
            for p in 0..<g.p {
                for q in 0..<g.q {
                    var taps: [Int] = []
                    for r in 0..<g.kernel {
                        for s in 0..<g.kernel {
                            let y = p * g.stride - g.padding + r, x = q * g.stride - g.padding + s
                            if y >= 0, y < g.h, x >= 0, x < g.w { taps.append(nc * g.h * g.w + y * g.w + x) }
                        }
                    }
                    let dy = gradOutput[nc * g.p * g.q + p * g.q + q]
                    if g.kind == .max {
                        let best = taps.max { input[$0] < input[$1] }!
                        let first = taps.first { input[$0] == input[best] }!
                        dx[first] += dy
                    } else {
                        for t in taps { dx[t] += dy / Float(taps.count) }
                    }
                }
            }
        }
        return dx
    }

    // MARK: GEMM

    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: [Float], b: [Float]) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for l in 0..<k {
                    s += (transA ? a[l * m + i] : a[i * k + l]) * (transB ? b[j * k + l] : b[l * n + j])
                }
                c[i * n + j] = s
            }
        }
        return c
    }
}

extension Reference {
    /// out = max(a + b, 0) over `range` (the reference for `VectorKernels.addReLU`).
    public static func addReLU(
        range: Range<Int>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        for j in range { output[j] = max(a[j] + b[j], 0) }
    }

    /// gradInput = output > 0 ? gradOutput : 0 over `range` (the reference for `VectorKernels.reluBackward`).
    public static func reluBackward(
        range: Range<Int>, output: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        for j in range { gradInput[j] = output[j] > 0 ? gradOutput[j] : 0 }
    }
}

extension Reference {
    /// Scalar Adam/AdamW update over `range` (the reference for `VectorKernels.adam`).
    public static func adam(
        _ c: AdamCoefficients, range: Range<Int>, weights w: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
        secondMoment v: UnsafeMutablePointer<Float>
    ) {
        for j in range {
            if c.decoupled { w[j] -= c.learningRate * c.weightDecay * w[j] }
            let gj = c.decoupled ? g[j] : g[j] + c.weightDecay * w[j]
            m[j] = c.beta1 * m[j] + (1 - c.beta1) * gj
            v[j] = c.beta2 * v[j] + (1 - c.beta2) * gj * gj
            w[j] -= (c.learningRate / c.correction1) * m[j] / (v[j].squareRoot() / c.correction2.squareRoot() + c.epsilon)
        }
    }
}
