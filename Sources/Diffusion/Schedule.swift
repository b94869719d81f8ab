import Foundation

/// How the noise level grows over the diffusion's T steps.
public enum NoiseScheduleKind: String, Codable, Sendable, CaseIterable {
    /// beta_t from 1e-4 to 0.02 in equal steps (Ho et al. 2020).
    case linear
    /// alpha-bar(t) = cos^2(((t / T + s) / (1 + s)) pi / 2) / alpha-bar(0), s = 0.008, each beta capped at
    /// 0.999 (Nichol and Dhariwal 2021). Noise grows gently at both ends, so fewer steps are spent on
    /// pure noise or on nearly clean images: better for small 28-px images.
    case cosine
}

/// What the U-Net is trained to predict from x_t.
///
/// The default is `v` with the cosine schedule (Salimans and Ho 2022): its target
/// v = sqrt(abar) eps - sqrt(1 - abar) x0 has unit variance at every t, and x0 follows from it
/// without dividing by sqrt(abar). Epsilon prediction recovers x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar),
/// which amplifies every error of eps by 1 / sqrt(abar) -- over 300x at the cosine schedule's last
/// step, which DDIM with few steps (25) starts from. `epsilon` is kept for comparison.
public enum DiffusionPrediction: String, Codable, Sendable, CaseIterable {
    /// The added noise eps (Ho et al. 2020).
    case epsilon
    /// The velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans and Ho 2022).
    case v
}

/// The forward (noising) process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) over
/// `steps` steps; t counts from 0 (least noise) to steps - 1 (almost pure noise).
public struct NoiseSchedule: Sendable, Equatable {
    public let kind: NoiseScheduleKind
    public let steps: Int
    /// abar_t = prod over s <= t of (1 - beta_s), for t in 0..<steps.
    public let alphaBar: [Double]

    public init(_ kind: NoiseScheduleKind, steps: Int = 1000) {
        self.kind = kind; self.steps = steps
        var betas: [Double]
        switch kind {
        case .linear:
            betas = (0..<steps).map { 1e-4 + (0.02 - 1e-4) * Double($0) / Double(max(steps - 1, 1)) }
        case .cosine:
            let s = 0.008
            func f(_ t: Double) -> Double { let a = cos((t / Double(steps) + s) / (1 + s) * .pi / 2); return a * a }
            betas = (0..<steps).map { min(1 - f(Double($0 + 1)) / f(Double($0)), 0.999) }
        }
        var product = 1.0
        alphaBar = betas.map {
            product *= 1 - $0; return product
        }
    }

    /// (sqrt(abar_t), sqrt(1 - abar_t)): the weights of x_0 and of the noise in x_t.
    public func coefficients(_ t: Int) -> (signal: Float, noise: Float) {
        (Float(alphaBar[t].squareRoot()), Float((1 - alphaBar[t]).squareRoot()))
    }

    /// DDIM's `count` timesteps, "trailing" spacing (Lin et al. 2024): evenly spread and ending at
    /// the last step, so sampling starts from (almost) pure noise as training saw it; ascending.
    public func samplingTimesteps(_ count: Int) -> [Int] {
        let n = min(max(count, 1), steps)
        return (1...n).map { Int((Double($0) * Double(steps) / Double(n)).rounded()) - 1 }
    }
}
