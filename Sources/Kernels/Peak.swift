import CPeak
import Dispatch
import Foundation

// The machine's FP32 limit, measured: every "% of peak" figure divides by it. Each physical core
// runs 12 independent chains of fused multiply-adds on the widest vectors its CPU has (the loops
// are assembly in CPeak, chosen at run time), so the figure is what the FMA units can retire, as
// oneDNN's own AVX-512 kernels see it, not what an 8-wide loop reaches on a 16-wide machine.
//
// NOTE: each thread's rate is its FLOP over its own CPU time (CLOCK_THREAD_CPUTIME_ID), and the
// machine's is their sum. On a shared machine wall time would count the time slices other
// processes took (a 28 ms loop measured at load 7 showed AVX-512 and AVX2 equal); CPU time
// does not. One thread per physical core (sysfs topology), so SMT siblings sharing one core's
// FMA units are not counted twice.

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
    /// Threads, one per physical core, each running its own loop.
    public var threads: Int
    /// Independent accumulator chains per thread.
    public var chains: Int
    /// Best of the repeats, the threads' rates (FLOP over own CPU time) summed.
    public var gflops: Double

    /// `"412.3 GFLOP/s FP32 (avx512f: 16 lanes, 12 FMA chains, 2 threads)"`.
    public var description: String {
        String(
            format: "%.1f GFLOP/s FP32 (%@: %d lanes, %d chains, %d threads)", gflops, isa.description, isa.lanes,
            chains, threads)
    }
}

public enum FMAPeak {
    /// Runs `isa`'s loop on `threads` threads at once (one per physical core by default),
    /// `repeats` times, each thread for `iterations` iterations; returns the best rate. Nil when
    /// the CPU does not run `isa`.
    public static func measure(
        _ isa: VectorISA = .widest, threads: Int = physicalCores(),
        iterations: Int = 20_000_000, repeats: Int = 3
    ) -> PeakMeasurement? {
        guard isa.isSupported, threads >= 1, iterations >= 1, repeats >= 1 else { return nil }
        let best = bestRate(threads: threads, repeats: repeats) { seconds in medsynth_peak_run(isa.c, iterations, &seconds) }
        return PeakMeasurement(isa: isa, threads: threads, chains: Int(medsynth_peak_chains()), gflops: best)
    }

    /// The bf16 peak in GFLOP/s: 12 chains of VDPBF16PS (two bf16 multiply-adds into each f32
    /// lane, twice the FLOP of an FMA) on `threads` threads; what "% of peak" divides by when the
    /// convolutions run in bf16. Nil without AVX512_BF16.
    public static func bf16(
        threads: Int = physicalCores(), iterations: Int = 20_000_000, repeats: Int = 3
    ) -> Double? {
        guard CPUFeatures.hasAVX512BF16, threads >= 1, iterations >= 1, repeats >= 1 else { return nil }
        return bestRate(threads: threads, repeats: repeats) { seconds in medsynth_peak_run_bf16(iterations, &seconds) }
    }

    /// Runs `loop` (returns its FLOP, writes its thread CPU seconds) on `threads` threads at once,
    /// `repeats` times; the best of the summed per-thread rates, in GFLOP/s.
    private static func bestRate(
        threads: Int, repeats: Int, _ loop: @escaping @Sendable (inout Double) -> Double
    ) -> Double {
        var best = 0.0
        for _ in 0..<repeats {
            let rate = RateCounter()
            let done = DispatchGroup()
            // NOTE: threads of our own: `concurrentPerform` may run two loops one after the other
            // on one pool thread when the pool is short of threads, and halve the figure.
            for _ in 0..<threads {
                done.enter()
                Thread.detachNewThread {
                    var seconds = 0.0
                    let flop = loop(&seconds)
                    rate.add(seconds > 0 ? flop / seconds / 1e9 : 0)
                    done.leave()
                }
            }
            done.wait()
            best = max(best, rate.total)
        }
        return best
    }

    /// The peak of the widest instruction set, the figure "% of peak" divides by.
    public static func widest(threads: Int = physicalCores()) -> PeakMeasurement {
        measure(.widest, threads: threads)!
    }

    /// Physical cores: distinct (package, core) pairs of the online CPUs in sysfs; the logical
    /// CPU count where sysfs has no topology.
    public static func physicalCores() -> Int {
        let logical = ProcessInfo.processInfo.activeProcessorCount
        var cores = Set<String>()
        for cpu in 0..<logical {
            let topology = "/sys/devices/system/cpu/cpu\(cpu)/topology/"
            guard let package = try? String(contentsOfFile: topology + "physical_package_id", encoding: .utf8),
                let core = try? String(contentsOfFile: topology + "core_id", encoding: .utf8)
            else { return logical }
            cores.insert(
                package.trimmingCharacters(in: .whitespacesAndNewlines) + "/"
                    + core.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return max(1, cores.count)
    }

    private final class RateCounter: @unchecked Sendable {
        // NOTE: @unchecked: `total` is guarded by `lock`.
        private let lock = NSLock()
        private var sum = 0.0
        func add(_ value: Double) { lock.withLock { sum += value } }
        var total: Double { lock.withLock { sum } }
    }
}

/// CPU features the kernels choose by, read with CPUID at run time.
public enum CPUFeatures {
    /// AVX512_BF16 (bfloat16 dot products): where oneDNN's bf16 convolutions run natively.
    public static let hasAVX512BF16: Bool = medsynth_has_avx512_bf16() != 0
}
