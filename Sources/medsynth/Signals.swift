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
///
/// An ignored disposition survives `exec` too, and servers ignore SIGTERM while they run:
/// swift-service-lifecycle sets it to SIG_IGN (and takes it on a dispatch source) and never sets it
/// back. A `medsynth` started by `medsynth serve` (a retraining run) or by the test suite after a
/// server test ignored `kill PID` (SigIgn 0000000000004006 in /proc/PID/status). So SIGTERM's
/// disposition is reset to the default as well. SIGINT, SIGQUIT and SIGHUP keep an ignored
/// disposition: a shell ignores the first two for a background job, and nohup the third, on purpose.
enum TerminationSignals {
    static let all: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM]

    static func restore() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in all { sigaddset(&set, signal) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGTERM, SIG_DFL)
    }
}
