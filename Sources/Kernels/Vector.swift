import Foundation

// Pure-Swift vector loops that sit beside the oneDNN primitives (optimizer updates, the residual
// connection's add and ReLU). Written on
// SIMD8<Float> so they vectorise whatever the compiler can prove about aliasing: with AVX2+FMA
// enabled (Package.swift) each SIMD8 operation is one ymm instruction, otherwise two SSE ones.
// Each has a scalar reference in Reference/ that the tests compare with.

/// Hyperparameters of one Adam update, with the bias corrections of step t folded in.
public struct AdamCoefficients: Sendable {
    public var learningRate: Float, beta1: Float, beta2: Float, epsilon: Float
    /// L2 penalty added to the gradient (Adam) or decoupled shrinkage of the weights (AdamW).
    public var weightDecay: Float, decoupled: Bool
    /// 1 - beta1^t and 1 - beta2^t.
    public var correction1: Float, correction2: Float

    public init(
        learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool,
        step: Int
    ) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.decoupled = decoupled
        correction1 = 1 - pow(beta1, Float(step)); correction2 = 1 - pow(beta2, Float(step))
    }
}

public enum VectorKernels {
    /// Elements below which the loops here stay on the calling thread (waking a second costs more).
    static let parallelMinimum = 1 << 16

    /// Runs `body(start, count)` over `count` elements: on the calling thread below
    /// `parallelMinimum`, else split over the kernels' threads in ranges of whole blocks of 16
    /// (the last range takes the tail). These loops stream memory; one core alone left the other
    /// idle (`perf`: Adam 3.8% of a 28 px DCGAN step's samples; the residual add + ReLU, its
    /// backward and gradient sums 4% of a ResNet step's). Each element's arithmetic is unchanged,
    /// so the bits are too.
    static func split(_ count: Int, _ body: (_ start: Int, _ count: Int) -> Void) {
        guard count >= parallelMinimum, KernelParallel.threads(count) > 1 else {
            body(0, count)
            return
        }
        let blocks = count / 16
        KernelParallel.forEach(blocks) { _, range in
            let start = range.lowerBound * 16
            let end = range.upperBound == blocks ? count : range.upperBound * 16
            body(start, end - start)
        }
    }

    /// One Adam/AdamW update of `count` parameters in place (torch.optim.Adam / AdamW), over the
    /// kernels' threads for a large tensor (`split`): it streams seven arrays of `count` floats.
    public static func adam(
        _ c: AdamCoefficients, count: Int, weights w: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
        secondMoment v: UnsafeMutablePointer<Float>
    ) {
        split(count) { start, n in
            adamRange(c, count: n, weights: w + start, gradients: g + start, firstMoment: m + start, secondMoment: v + start)
        }
    }

    private static func adamRange(
        _ c: AdamCoefficients, count: Int, weights w: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
        secondMoment v: UnsafeMutablePointer<Float>
    ) {
        typealias V = SIMD8<Float>
        let b1 = V(repeating: c.beta1), b2 = V(repeating: c.beta2)
        let one = V(repeating: 1), eps = V(repeating: c.epsilon), wd = V(repeating: c.weightDecay)
        let stepSize = V(repeating: c.learningRate / c.correction1), rootC2 = V(repeating: c.correction2.squareRoot())
        let shrink = V(repeating: 1 - c.learningRate * c.weightDecay)
        let vectorEnd = count & ~7
        var i = 0
        while i < vectorEnd {
            var wi = UnsafeRawPointer(w + i).loadUnaligned(as: V.self)
            var gi = UnsafeRawPointer(g + i).loadUnaligned(as: V.self)
            if c.decoupled { wi = wi * shrink } else { gi = gi.addingProduct(wd, wi) }  // AdamW shrink | Adam L2
            let mi = b1 * UnsafeRawPointer(m + i).loadUnaligned(as: V.self) + (one - b1) * gi  // first moment
            let vi = b2 * UnsafeRawPointer(v + i).loadUnaligned(as: V.self) + (one - b2) * gi * gi  // second moment
            wi = wi - stepSize * mi / (vi.squareRoot() / rootC2 + eps)  // p -= lr m^ / (sqrt v^ + eps)
            UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: V.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: V.self)
            UnsafeMutableRawPointer(w + i).storeBytes(of: wi, as: V.self)
            i += 8
        }
        if vectorEnd < count {
            Reference.adam(c, range: vectorEnd..<count, weights: w, gradients: g, firstMoment: m, secondMoment: v)
        }
    }

    /// out = max(a + b, 0) over `count` floats: a residual connection and the ReLU after it in
    /// one pass (one read of each input, one write), where oneDNN's eltwise would read the sum again.
    public static func addReLU(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output out: UnsafeMutablePointer<Float>, count: Int
    ) {
        split(count) { start, n in addReLURange(a + start, b + start, output: out + start, count: n) }
    }

    /// out = a + b over `count` floats (gradients meeting at a tensor used twice).
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output out: UnsafeMutablePointer<Float>, count: Int
    ) {
        split(count) { start, n in
            typealias V = SIMD16<Float>
            let (a, b, out) = (a + start, b + start, out + start)
            let vectorEnd = n & ~15
            var i = 0
            while i < vectorEnd {
                let sum = UnsafeRawPointer(a + i).loadUnaligned(as: V.self) + UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: sum, as: V.self)
                i += 16
            }
            while i < n { out[i] = a[i] + b[i]; i += 1 }
        }
    }

    private static func addReLURange(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output out: UnsafeMutablePointer<Float>, count: Int
    ) {
        typealias V = SIMD16<Float>
        let zero = V(repeating: 0)
        let vectorEnd = count & ~15
        var i = 0
        while i < vectorEnd {
            let sum = UnsafeRawPointer(a + i).loadUnaligned(as: V.self) + UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: pointwiseMax(sum, zero), as: V.self)
            i += 16
        }
        if vectorEnd < count { Reference.addReLU(range: vectorEnd..<count, a, b, output: out) }
    }

    /// gradInput = gradOutput where output > 0, else 0: the ReLU's backward read from its output.
    public static func reluBackward(
        output: UnsafePointer<Float>, gradOutput g: UnsafePointer<Float>, gradInput dx: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        split(count) { start, n in
            reluBackwardRange(output: output + start, gradOutput: g + start, gradInput: dx + start, count: n)
        }
    }

    private static func reluBackwardRange(
        output: UnsafePointer<Float>, gradOutput g: UnsafePointer<Float>, gradInput dx: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        typealias V = SIMD16<Float>
        let zero = V(repeating: 0)
        let vectorEnd = count & ~15
        var i = 0
        while i < vectorEnd {
            let y = UnsafeRawPointer(output + i).loadUnaligned(as: V.self)
            let gi = UnsafeRawPointer(g + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: zero.replacing(with: gi, where: y .> zero), as: V.self)
            i += 16
        }
        if vectorEnd < count { Reference.reluBackward(range: vectorEnd..<count, output: output, gradOutput: g, gradInput: dx) }
    }
}
