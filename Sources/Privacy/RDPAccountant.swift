import Foundation

/// Errors of privacy accounting and private training, named with the offending value.
public enum PrivacyError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(String)
    case budgetTooLow(String)
    case batchNormNotAllowed(String)

    public var description: String {
        switch self {
        case .invalidArgument(let s): return s
        case .budgetTooLow(let s): return s
        case .batchNormNotAllowed(let s): return s
        }
    }
}

/// Renyi-DP accounting of the subsampled Gaussian mechanism with Poisson sampling
/// (Mironov, Talwar and Zhang 2019, "Renyi Differential Privacy of the Sampled Gaussian
/// Mechanism"), as TensorFlow Privacy's `rdp_accountant.py` and Opacus's
/// `opacus/accountants/analysis/rdp.py` compute it: integer orders by the binomial expansion,
/// fractional orders by the two-sided series with erfc terms.
///
/// Conversion to (epsilon, delta): `.improved` is Balle et al. 2020, Theorem 21 (Opacus and
/// dp_accounting): eps = rdp - (log delta + log alpha) / (alpha - 1) + log((alpha - 1) / alpha);
/// `.classic` is Mironov 2017, Proposition 3: eps = rdp - log(delta) / (alpha - 1).
public struct RDPAccountant: Sendable, Equatable {
    /// How RDP turns into (epsilon, delta).
    public enum Conversion: String, Sendable, Codable { case classic, improved }

    /// Opacus's default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
    public static let defaultOrders: [Double] = (1..<100).map { 1 + Double($0) / 10 } + (12..<64).map(Double.init)

    /// The orders alpha at which RDP is tracked.
    public let orders: [Double]
    /// Accumulated RDP at each order.
    public private(set) var rdp: [Double]

    public init(orders: [Double] = RDPAccountant.defaultOrders) {
        self.orders = orders
        rdp = Array(repeating: 0, count: orders.count)
    }

    /// Composes `steps` applications of the Gaussian mechanism with `noiseMultiplier` (noise std
    /// over sensitivity) on Poisson samples of rate `samplingRate`.
    public mutating func step(noiseMultiplier: Double, samplingRate: Double, steps: Int = 1) throws {
        guard noiseMultiplier >= 0, (0...1).contains(samplingRate), steps >= 0 else {
            throw PrivacyError.invalidArgument(
                "accountant: noise multiplier \(noiseMultiplier) must be >= 0, sampling rate "
                    + "\(samplingRate) in [0, 1], steps \(steps) >= 0")
        }
        for (i, a) in orders.enumerated() {
            rdp[i] += Double(steps) * RDPAccountant.rdpOfSampledGaussian(q: samplingRate, sigma: noiseMultiplier, alpha: a)
        }
    }

    /// The smallest epsilon over the orders at `delta`, and the order that gives it.
    public func epsilon(delta: Double, conversion: Conversion = .improved) throws -> (epsilon: Double, order: Double) {
        try RDPAccountant.epsilon(orders: orders, rdp: rdp, delta: delta, conversion: conversion)
    }

    /// (epsilon, best order) from RDP values at `orders`.
    public static func epsilon(orders: [Double], rdp: [Double], delta: Double, conversion: Conversion = .improved) throws
        -> (epsilon: Double, order: Double)
    {
        guard delta > 0, delta < 1 else { throw PrivacyError.invalidArgument("delta \(delta) must lie in (0, 1)") }
        var best = (epsilon: Double.infinity, order: orders.first ?? .nan)
        for (a, r) in zip(orders, rdp) where a > 1 {
            let eps: Double
            switch conversion {
            case .classic: eps = r - log(delta) / (a - 1)
            case .improved: eps = r - (log(delta) + log(a)) / (a - 1) + log((a - 1) / a)
            }
            if eps < best.epsilon { best = (eps, a) }
        }
        // NOTE: the improved bound can dip below 0 for tiny RDP; epsilon is never negative.
        return (max(0, best.epsilon), best.order)
    }

    /// Epsilon after `steps` steps at (noise, rate), from a fresh accountant.
    public static func epsilon(
        noiseMultiplier: Double, samplingRate: Double, steps: Int, delta: Double,
        orders: [Double] = defaultOrders, conversion: Conversion = .improved
    ) throws -> Double {
        var acc = RDPAccountant(orders: orders)
        try acc.step(noiseMultiplier: noiseMultiplier, samplingRate: samplingRate, steps: steps)
        return try acc.epsilon(delta: delta, conversion: conversion).epsilon
    }

    /// The noise multiplier whose epsilon after `steps` steps at `samplingRate` is at most
    /// `targetEpsilon` (within `tolerance` below it), by bisection as Opacus's
    /// `get_noise_multiplier`: double the upper end from 20 until it suffices, then halve the bracket
    /// until eps(high) is within `tolerance` of the target.
    public static func noiseMultiplier(
        targetEpsilon: Double, delta: Double, samplingRate: Double, steps: Int,
        orders: [Double] = defaultOrders, conversion: Conversion = .improved,
        tolerance: Double = 0.01
    ) throws -> Double {
        guard targetEpsilon > 0 else { throw PrivacyError.invalidArgument("target epsilon \(targetEpsilon) must be > 0") }
        func eps(_ s: Double) throws -> Double {
            try epsilon(
                noiseMultiplier: s, samplingRate: samplingRate, steps: steps, delta: delta, orders: orders,
                conversion: conversion)
        }
        var low = 0.0, high = 10.0, epsHigh = Double.infinity
        while epsHigh > targetEpsilon {
            high *= 2
            guard high <= 2000 else {
                throw PrivacyError.budgetTooLow(
                    "epsilon \(targetEpsilon) at delta \(delta) needs a noise multiplier above 2000 "
                        + "for \(steps) steps at sampling rate \(samplingRate)")
            }
            epsHigh = try eps(high)
        }
        while targetEpsilon - epsHigh > tolerance {
            let mid = (low + high) / 2
            let e = try eps(mid)
            if e < targetEpsilon { high = mid; epsHigh = e } else { low = mid }
        }
        return high
    }

    // MARK: RDP of one step

    /// RDP at order `alpha` of one step of the sampled Gaussian mechanism: log(A_alpha) / (alpha - 1).
    public static func rdpOfSampledGaussian(q: Double, sigma: Double, alpha: Double) -> Double {
        if q == 0 { return 0 }
        if sigma == 0 { return .infinity }
        if q == 1 { return alpha / (2 * sigma * sigma) }  // the plain Gaussian mechanism
        if alpha.isInfinite { return .infinity }
        let logA =
            alpha == alpha.rounded()
            ? logAInteger(q: q, sigma: sigma, alpha: Int(alpha))
            : logAFractional(q: q, sigma: sigma, alpha: alpha)
        return logA / (alpha - 1)
    }

    /// log A_alpha for integer alpha: A = sum_i binom(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)).
    static func logAInteger(q: Double, sigma: Double, alpha: Int) -> Double {
        var logA = -Double.infinity
        for i in 0...alpha {
            let logCoef = logBinomial(alpha, i) + Double(i) * log(q) + Double(alpha - i) * log(1 - q)
            logA = logAdd(logA, logCoef + Double(i * i - i) / (2 * sigma * sigma))
        }
        return logA
    }

    /// log A_alpha for fractional alpha (Mironov et al. 2019, Section 3.3): two series split at
    /// z0 = sigma^2 log(1/q - 1) + 1/2, each term weighted by a Gaussian tail (erfc); binomial
    /// coefficients of a fractional alpha change sign, so terms are added or subtracted in log space.
    /// Summation stops once both new terms fall below exp(-30).
    static func logAFractional(q: Double, sigma: Double, alpha: Double) -> Double {
        var logA0 = -Double.infinity, logA1 = -Double.infinity
        let z0 = sigma * sigma * log(1 / q - 1) + 0.5
        var i = 0.0
        var logAbsCoef = 0.0, coefSign = 1.0  // binom(alpha, 0) = 1
        while true {
            let j = alpha - i
            let logT0 = logAbsCoef + i * log(q) + j * log(1 - q)
            let logT1 = logAbsCoef + j * log(q) + i * log(1 - q)
            let logE0 = log(0.5) + logErfc((i - z0) / (2.0.squareRoot() * sigma))
            let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * sigma))
            let logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0
            let logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1
            if coefSign > 0 {
                logA0 = logAdd(logA0, logS0); logA1 = logAdd(logA1, logS1)
            } else {
                logA0 = logSub(logA0, logS0); logA1 = logSub(logA1, logS1)
            }
            if max(logS0, logS1) < -30 { break }
            // binom(alpha, i + 1) = binom(alpha, i) (alpha - i) / (i + 1)
            let factor = (alpha - i) / (i + 1)
            logAbsCoef += log(abs(factor)); if factor < 0 { coefSign = -coefSign }
            i += 1
        }
        return logAdd(logA0, logA1)
    }

    static func logBinomial(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// log(exp(a) + exp(b)) without overflow.
    static func logAdd(_ a: Double, _ b: Double) -> Double {
        let (lo, hi) = (min(a, b), max(a, b))
        if lo == -.infinity { return hi }
        return log1p(exp(lo - hi)) + hi
    }

    /// log(exp(a) - exp(b)) for a >= b.
    /// NOTE: the fractional series can cancel to (numerically) zero; that yields -inf, as in Opacus.
    static func logSub(_ a: Double, _ b: Double) -> Double {
        if b == -.infinity { return a }
        if a <= b { return -.infinity }
        // log(e^a - e^b) = a + log(1 - e^(b - a))
        return a + log(-expm1(b - a))
    }

    /// log(erfc(x)), with the asymptotic expansion where erfc underflows (x above about 26).
    static func logErfc(_ x: Double) -> Double {
        let r = erfc(x)
        if r > 0 { return log(r) }
        // NOTE: erfc(x) ~ exp(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - ...), taken in log form
        // (the series TensorFlow Privacy used before scipy's log_ndtr).
        return -log(Double.pi) / 2 - log(x) - x * x - 0.5 / (x * x) + 0.625 / pow(x, 4) - 37.0 / 24.0 / pow(x, 6)
            + 353.0 / 64.0 / pow(x, 8)
    }
}
