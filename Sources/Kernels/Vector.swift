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
    /// Parameters below which `adam` stays on the calling thread (waking a second costs more).
    static let adamParallelMinimum = 1 << 16

    /// One Adam/AdamW update of `count` parameters in place (torch.optim.Adam / AdamW). A large
    /// tensor is split over the kernels' threads in ranges of whole SIMD blocks (each element's
    /// arithmetic is the same, so the bits are too): the update streams seven arrays of `count`
    /// floats through memory, and one core alone left the other idle for about 2.7 ms of a 28 px
    /// DCGAN step (`perf`: 3.8% of its samples, single-threaded).
    public static func adam(
        _ c: AdamCoefficients, count: Int, weights w: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
        secondMoment v: UnsafeMutablePointer<Float>
    ) {
        guard count >= adamParallelMinimum, KernelParallel.threads(count) > 1 else {
            adamRange(c, count: count, weights: w, gradients: g, firstMoment: m, secondMoment: v)
            return
        }
        let blocks = count / 8
        // NOTE: pointers cross into the workers as addresses; each worker writes its own range.
        let (wa, ga, ma, va) = (Int(bitPattern: w), Int(bitPattern: g), Int(bitPattern: m), Int(bitPattern: v))
        KernelParallel.forEach(blocks) { _, range in
            let start = range.lowerBound * 8
            let end = range.upperBound == blocks ? count : range.upperBound * 8
            adamRange(
                c, count: end - start, weights: UnsafeMutablePointer(bitPattern: wa)! + start,
                gradients: UnsafePointer(bitPattern: ga)! + start, firstMoment: UnsafeMutablePointer(bitPattern: ma)! + start,
                secondMoment: UnsafeMutablePointer(bitPattern: va)! + start)
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
