import CPeak
import Dispatch
import Foundation

// The machine's FP32 limit, measured: every "% of peak" figure divides by it. Each core runs 12
// independent chains of fused multiply-adds on the widest vectors its CPU has (the loops are
// assembly in CPeak, chosen at run time), so the figure is what the FMA units can retire, as
// oneDNN's own AVX-512 kernels see it, not what an 8-wide loop reaches on a 16-wide machine.

/// The vector instruction sets the peak loop can run.
public enum VectorISA: Int, CaseIterable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Not x86-64: a scalar C loop (not a peak figure).
    case generic
    /// 4 lanes, multiply and add (no FMA).
    case sse2
    /// 8 lanes, fused multiply-add (ymm).
    case avx2
    /// 16 lanes, fused multiply-add (zmm).
    case avx512

    /// The name `bench peak` prints, as CPU flags spell it.
    public var description: String {
        switch self {
        case .generic: "generic C"
        case .sse2: "sse2"
        case .avx2: "avx2+fma"
        case .avx512: "avx512f"
        }
    }

    /// FP32 lanes of one register.
    public var lanes: Int { [1, 4, 8, 16][rawValue] }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    var c: medsynth_peak_isa { medsynth_peak_isa(rawValue: UInt32(rawValue)) }

    /// Whether this CPU and its operating system run the instruction set (CPUID and XGETBV).
    public var isSupported: Bool { medsynth_peak_supported(c) != 0 }

    /// The widest instruction set this machine runs.
    public static var widest: VectorISA { allCases.last { $0.isSupported } ?? .generic }
}

/// One peak measurement.
public struct PeakMeasurement: Sendable, Codable, CustomStringConvertible {
    public var isa: VectorISA
    /// Threads, one per core, each running its own loop.
    public var threads: Int
    /// Independent accumulator chains per thread.
    public var chains: Int
    /// Best of the repeats, all threads together.
    public var gflops: Double

    /// `"412.3 GFLOP/s FP32 (avx512f: 16 lanes, 12 FMA chains, 2 threads)"`.
    public var description: String {
        String(format: "%.1f GFLOP/s FP32 (%@: %d lanes, %d FMA chains, %d threads)", gflops, isa.description, isa.lanes,
               chains, threads)
    }
}

public enum FMAPeak {
    /// Runs `isa`'s loop on `threads` threads at once (one per core by default), `repeats`
    /// times, each thread for `iterations` iterations; returns the best rate. Nil when the CPU
    /// does not run `isa`.
    ///
    /// NOTE: the best of several repeats, as peaks are quoted: on a shared machine another
    /// process's time slices only ever lower a repeat's figure.
    public static func measure(_ isa: VectorISA = .widest, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                               iterations: Int = 20_000_000, repeats: Int = 3) -> PeakMeasurement? {
        guard isa.isSupported, threads >= 1, iterations >= 1, repeats >= 1 else { return nil }
        var best = 0.0
        for _ in 0..<repeats {
            let flop = FLOPCounter()
            let done = DispatchGroup()
            let start = DispatchTime.now().uptimeNanoseconds
            // NOTE: threads of our own: `concurrentPerform` may run two loops one after the other
            // on one pool thread when the pool is short of threads, and halve the figure.
            for _ in 0..<threads {
                done.enter()
                Thread.detachNewThread {
                    flop.add(medsynth_peak_run(isa.c, iterations))
                    done.leave()
                }
            }
            done.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, flop.total / seconds / 1e9)
        }
        return PeakMeasurement(isa: isa, threads: threads, chains: Int(medsynth_peak_chains()), gflops: best)
    }

    /// The peak of the widest instruction set, the figure "% of peak" divides by.
    public static func widest(threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> PeakMeasurement {
        measure(.widest, threads: threads)!
    }

    private final class FLOPCounter: @unchecked Sendable {
        // NOTE: @unchecked: `total` is guarded by `lock`.
        private let lock = NSLock()
        private var sum = 0.0
        func add(_ value: Double) { lock.withLock { sum += value } }
        var total: Double { lock.withLock { sum } }
    }
}
