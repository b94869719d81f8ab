import Autodiff
import Foundation
import Kernels

/// An optimizer: explicit per-parameter state, a pure per-parameter update, and state that a
/// checkpoint can save (`stateTensors`) and restore.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Number of `step()` calls so far.
    var stepCount: Int { get }
    /// Applies one update to every parameter that has a gradient.
    func step()
    /// Optimizer state as named tensors (`<param>.exp_avg`, ..., and `step`).
    func stateTensors() -> [String: Tensor]
    func loadState(_ state: [String: Tensor]) throws
}

/// SGD with momentum and L2 weight decay (torch.optim.SGD, dampening 0):
/// g += wd p; b = mu b + g (b = g on the first step); p -= lr b.
public final class SGD: Optimizer {
    public let parameters: [(String, Parameter)]
    public var learningRate: Float
    public let momentum: Float, weightDecay: Float
    public private(set) var stepCount = 0
    var buffers: [Tensor?]

    public init(_ parameters: [(String, Parameter)], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters; self.learningRate = learningRate
        self.momentum = momentum; self.weightDecay = weightDecay
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        stepCount += 1
        for (i, (_, p)) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let g = grad.storage.pointer, w = p.pointer
            if momentum != 0 && buffers[i] == nil { buffers[i] = .zeros(p.shape) }
            let b = buffers[i]?.storage.pointer
            let first = stepCount == 1
            for j in 0..<p.count {
                var d = g[j] + weightDecay * w[j]  // L2 penalty folded into the gradient
                if let b {
                    b[j] = first ? d : momentum * b[j] + d  // momentum buffer
                    d = b[j]
                }
                w[j] -= learningRate * d  // descent step
            }
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var s: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for (i, (name, _)) in parameters.enumerated() { if let b = buffers[i] { s["\(name).momentum_buffer"] = b.copy() } }
        return s
    }

    public func loadState(_ state: [String: Tensor]) throws {
        stepCount = Int(try requireStep(state))
        for (i, (name, p)) in parameters.enumerated() {
            buffers[i] = try state["\(name).momentum_buffer"].map { try checkedCopy($0, p, "\(name).momentum_buffer") }
        }
    }
}

/// Adam (Kingma and Ba 2015) as torch.optim.Adam, and AdamW (decoupled weight decay, Loshchilov
/// and Hutter 2019) when `decoupledWeightDecay` is true.
public final class Adam: Optimizer {
    public let parameters: [(String, Parameter)]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupledWeightDecay: Bool
    public private(set) var stepCount = 0
    var m: [Tensor], v: [Tensor]

    public init(
        _ parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false
    ) {
        self.parameters = parameters; self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.decoupledWeightDecay = decoupledWeightDecay
        m = parameters.map { .zeros($0.1.shape) }; v = parameters.map { .zeros($0.1.shape) }
    }

    /// AdamW with PyTorch's default weight decay 0.01.
    public static func adamW(
        _ parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
        beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01
    ) -> Adam {
        Adam(
            parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func step() {
        stepCount += 1
        // The per-element math (moments, bias correction, L2 or decoupled decay) is spelled out
        // in Reference.adam; VectorKernels.adam is its SIMD version, tested against it.
        let c = AdamCoefficients(
            learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, decoupled: decoupledWeightDecay, step: stepCount)
        for (i, (_, p)) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            VectorKernels.adam(
                c, count: p.count, weights: p.pointer, gradients: grad.storage.pointer,
                firstMoment: m[i].storage.pointer, secondMoment: v[i].storage.pointer)
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var s: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for (i, (name, _)) in parameters.enumerated() {
            s["\(name).exp_avg"] = m[i].copy(); s["\(name).exp_avg_sq"] = v[i].copy()
        }
        return s
    }

    public func loadState(_ state: [String: Tensor]) throws {
        let step = try requireStep(state)
        var newM: [Tensor] = [], newV: [Tensor] = []
        for (name, p) in parameters {
            guard let a = state["\(name).exp_avg"], let b = state["\(name).exp_avg_sq"] else {
                throw CheckpointError.stateMismatch(missing: ["\(name).exp_avg"], wrongShape: [], unexpected: [])
            }
            newM.append(try checkedCopy(a, p, "\(name).exp_avg")); newV.append(try checkedCopy(b, p, "\(name).exp_avg_sq"))
        }
        m = newM; v = newV; stepCount = Int(step)
    }
}

func requireStep(_ state: [String: Tensor]) throws -> Float {
    guard let s = state["step"], s.count == 1 else {
        throw CheckpointError.stateMismatch(missing: ["step"], wrongShape: [], unexpected: [])
    }
    return s.item
}

func checkedCopy(_ t: Tensor, _ p: Parameter, _ name: String) throws -> Tensor {
    guard t.shape == p.shape else {
        throw CheckpointError.stateMismatch(
            missing: [], wrongShape: ["\(name): expected \(p.shape), found \(t.shape)"], unexpected: [])
    }
    return t.copy()
}

/// Learning-rate schedules: the rate for a given epoch (0-based) from a base rate.
public enum LearningRateSchedule: Codable, Sendable, Equatable {
    case constant
    /// lr = base * gamma^(floor(epoch / stepSize)) (torch StepLR).
    case step(stepSize: Int, gamma: Float)
    /// lr = min + (base - min) (1 + cos(pi epoch / tMax)) / 2 (torch CosineAnnealingLR, closed form).
    case cosine(tMax: Int, minimum: Float)

    public func rate(base: Float, epoch: Int) -> Float {
        switch self {
        case .constant: return base
        case let .step(size, gamma): return base * Foundation.pow(gamma, Float(epoch / max(size, 1)))
        case let .cosine(tMax, minimum):
            let e = Float(min(epoch, tMax))
            return minimum + (base - minimum) * (1 + Foundation.cos(Float.pi * e / Float(max(tMax, 1)))) / 2
        }
    }
}
