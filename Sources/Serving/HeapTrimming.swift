import Foundation

/// When the server hands freed heap memory back to the system (`malloc_trim`), decided once per
/// tick of its trim timer (2 s).
///
/// NOTE: `Kernels` raises glibc's trim and mmap thresholds to 1 GiB so that training steps reuse
/// their activation buffers; in a server that would keep what a burst of requests freed resident
/// for good, so the server trims by itself:
/// - on the first tick with no inference running or finished after one was served (the buffers
///   of bodies, decoded JSON and activations are free by then);
/// - otherwise on a backoff, doubling from 1 to `maxBackoffTicks` ticks while trims release
///   little, back to 1 tick after one releases `largeRelease` bytes or more. Connections also
///   free memory when they close, after the last inference (a load's thousand connections
///   closing frees some 50 MB across the arenas), and nothing else would trim it. A trim walks
///   every free chunk of every arena, so an idle server trims rarely: every 64 s at most once its
///   heap is clean.
///
/// `malloc_trim` cannot shrink a thread arena's top: glibc shrinks it on a free() in that arena
/// alone, once it exceeds the trim threshold, which `Kernels` sets to 1 GiB. So from a trim to
/// the next admitted inference the server lowers the threshold to `idleTrimThreshold`, and the
/// threads that keep working (the event loops answering probes) give their arenas' tops back.
/// Lowered for good, it cost a third of the throughput under load (every 256-image batch handed
/// its activations back and faulted them in again: 239 against 342-373 such batches a minute).
struct HeapTrimPolicy: Sendable, Equatable {
    /// glibc's trim threshold while the server is idle.
    static let idleTrimThreshold = 8 << 20
    /// A trim that releases at least this much (resident bytes) resets the backoff.
    static let largeRelease = 4 << 20
    static let maxBackoffTicks = 32

    /// Ticks between trims when no inference calls for one.
    private(set) var backoffTicks = 1
    private var ticksSinceTrim = 0

    /// Whether to trim at this tick. `inferenceServedSinceTrim`: an inference finished since the
    /// last trim; `busy`: one is running, or one finished during this tick.
    mutating func shouldTrim(inferenceServedSinceTrim: Bool, busy: Bool) -> Bool {
        ticksSinceTrim += 1
        if busy { return false }
        return inferenceServedSinceTrim || ticksSinceTrim >= backoffTicks
    }

    /// Records a trim that released `released` resident bytes (negative: memory grew meanwhile).
    mutating func trimmed(released: Int) {
        ticksSinceTrim = 0
        backoffTicks = released >= Self.largeRelease ? 1 : min(Self.maxBackoffTicks, backoffTicks * 2)
    }
}

/// This process's resident memory in bytes (`/proc/self/statm`), nil where there is none.
func residentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Frees a 256 KiB block from the calling thread's arena: glibc checks the arena's top against
/// the trim threshold on a free() of 64 KiB or more, and gives back what lies above it.
@inline(never) func releaseArenaTop() {
    let block = malloc(256 << 10)
    escape(block)  // else the compiler may drop an unused malloc and free pair
    free(block)
}

@inline(never) @_optimize(none) private func escape(_ pointer: UnsafeMutableRawPointer?) {}
