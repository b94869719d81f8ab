import Foundation
import Kernels

#if canImport(Glibc)
    import Glibc
#endif

/// How oneDNN's OpenMP threads wait between parallel regions.
///
/// NOTE: libgomp spins for a while (GOMP_SPINCOUNT, 300,000 iterations by default) before it
/// sleeps. With two medsynth processes on 2 cores, each one's spinning threads steal the cores
/// the other's threads are working on: each ran 7.5x slower than alone (bench/contention.sh).
/// libgomp reads its environment once, when it is loaded, before `main`; so when the user has
/// set none of its variables, medsynth sets them and re-executes itself once (a few ms). A user's
/// own OMP_WAIT_POLICY, GOMP_SPINCOUNT or OMP_NUM_THREADS is left as it is.
///
/// Passive waiting costs a futex wake-up at every parallel region (about a hundred a training
/// step): in bf16 a 28 px DCGAN step ran 10-11% and a ResNet step 5% slower than with a short
/// spin. bf16 runs cannot share their cores anyway (oneDNN 2.6's bf16 backward-weights kernels join their threads
/// at spinning barriers: a pair of bf16 processes ran at 5% of one process's throughput whatever
/// the wait policy, bench/contention.sh), so they spin for GOMP_SPINCOUNT=1000 iterations (some
/// microseconds) before sleeping. f32 runs stay passive, where a pair keeps 100% (with the short
/// spin 90%).
enum OpenMPSettings {
    /// What medsynth sets (measured with bench/contention.sh; figures in the README): passive
    /// waiting, or a short spin when the convolutions run in bf16 (`ConvPrecision.autoTakesBF16`).
    static func variables(bf16: Bool) -> [String: String] {
        bf16 ? ["GOMP_SPINCOUNT": "1000"] : ["OMP_WAIT_POLICY": "passive"]
    }
    /// Set on the re-executed process, so that it never re-executes again.
    static let marker = "MEDSYNTH_OPENMP_SET"

    /// Re-executes this program with `variables` set, unless the user set OpenMP's wait
    /// behaviour already; returns (and carries on with libgomp's defaults) if `execv` fails.
    /// Under `mpirun` with several ranks on this machine and no OMP_NUM_THREADS, also gives each
    /// rank its share of the cores (cores / ranks here, at least 1), as `--jobs` does its workers.
    static func reexecIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment[marker] == nil else { return }
        var set: [String: String] = [:]
        if !["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"].contains(where: { environment[$0] != nil }) {
            set = variables(bf16: ConvPrecision.autoTakesBF16)
        }
        if environment["OMP_NUM_THREADS"] == nil,
            let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap({ Int($0) }), local > 1
        {
            set["OMP_NUM_THREADS"] = "\(max(1, ProcessInfo.processInfo.activeProcessorCount / local))"
        }
        guard !set.isEmpty else { return }
        for (name, value) in set { setenv(name, value, 1) }
        setenv(marker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
