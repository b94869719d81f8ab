import Foundation

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
enum OpenMPSettings {
    /// What medsynth sets (measured with bench/contention.sh; figures in the README).
    static let variables = ["OMP_WAIT_POLICY": "passive"]
    /// Set on the re-executed process, so that it never re-executes again.
    static let marker = "MEDSYNTH_OPENMP_SET"

    /// Re-executes this program with `variables` set, unless the user set OpenMP's wait
    /// behaviour already; returns (and carries on with libgomp's defaults) if `execv` fails.
    static func reexecIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        let userSet = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", marker].contains { environment[$0] != nil }
        guard !userSet else { return }
        for (name, value) in variables { setenv(name, value, 1) }
        setenv(marker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
