/// A small, fast, seedable random-number generator (xoshiro256**) whose whole state is four
/// 64-bit words, so that it can be saved in a checkpoint and restored for an exact resume.
///
/// Seeding goes through SplitMix64, as the xoshiro authors recommend
/// (https://prng.di.unimi.it/). Every stream of randomness in MedSynth (weight initialisation,
/// noise, data order, augmentation, dropout) is one of these, derived from the user's `--seed`.
public struct SeededGenerator: RandomNumberGenerator, Codable, Equatable, Sendable {
    /// The four state words; never all zero.
    public private(set) var state: [UInt64]

    /// Creates a generator from a seed; equal seeds give equal streams.
    public init(seed: UInt64) {
        var sm = seed
        var words = [UInt64]()
        for _ in 0..<4 { words.append(SeededGenerator.splitMix(&sm)) }
        if words.allSatisfy({ $0 == 0 }) { words[0] = 1 }
        state = words
    }

    /// Restores a generator from saved state words (four of them, not all zero).
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        self.state = state
    }

    /// A generator for an independent sub-stream, e.g. `fork(1)` for dropout, `fork(2)` for data.
    public func fork(_ stream: UInt64) -> SeededGenerator {
        var sm = state[0] ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ state[3]
        return SeededGenerator(seed: SeededGenerator.splitMix(&sm))
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = SeededGenerator.rotl(state[3], 45)
        return result
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample in Double precision (Box-Muller on two fresh uniforms; no cached
    /// second value, so the state alone determines the stream).
    /// NOTE: 1 - u lies in (0, 1], so the logarithm is finite.
    public mutating func normalDouble() -> Double {
        let u1 = uniformDouble(), u2 = uniformDouble()
        return (-2.0 * libmLog(1.0 - u1)).squareRoot() * libmCos(2.0 * Double.pi * u2)
    }

    /// A standard normal sample (`normalDouble` rounded to Float).
    public mutating func normal() -> Float { Float(normalDouble()) }

    /// A uniform integer in 0..<bound.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// Fisher-Yates shuffle of `array`, deterministic from the state.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = int(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }
}

#if canImport(Glibc)
    import Glibc
    @inline(__always) private func libmLog(_ x: Double) -> Double { Glibc.log(x) }
    @inline(__always) private func libmCos(_ x: Double) -> Double { Glibc.cos(x) }
#else
    import Darwin
    @inline(__always) private func libmLog(_ x: Double) -> Double { Darwin.log(x) }
    @inline(__always) private func libmCos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
