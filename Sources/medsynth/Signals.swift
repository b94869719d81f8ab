import Foundation

/// Makes this process stoppable by the usual signals whatever mask it was started with.
///
/// A child inherits the blocked-signal mask of the thread that spawned it, and Foundation's
/// `Process` spawns from whichever thread calls `run()`: a Dispatch or Swift-concurrency worker
/// thread blocks SIGHUP, SIGINT, SIGQUIT and SIGTERM (mask fffffffe3bfbea27 read in
/// /proc/PID/status). A `medsynth gan train` started by the test suite that way kept training for
/// 17 minutes after the suite had crashed, and `kill PID` did nothing: SIGTERM stayed pending. The
/// same holds for a `medsynth` started by a server, a scheduler or an experiment's `--jobs` run.
/// So the main thread unblocks them first; threads created later inherit its mask (Dispatch's
/// block them again, so a signal goes to a thread that takes it), and the default actions (end
/// the process) apply.
enum TerminationSignals {
    static let all: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM]

    static func unblock() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in all { sigaddset(&set, signal) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
