#ifndef MEDSYNTH_CPEAK_H
#define MEDSYNTH_CPEAK_H

/// The vector instruction sets the peak loop can run, narrowest first.
typedef enum {
    /// Not x86-64: a plain C loop (not a peak figure).
    MEDSYNTH_PEAK_GENERIC = 0,
    /// 4-wide multiply then add (two instructions, 8 FLOP).
    MEDSYNTH_PEAK_SSE2 = 1,
    /// 8-wide fused multiply-add on ymm registers (16 FLOP).
    MEDSYNTH_PEAK_AVX2_FMA = 2,
    /// 16-wide fused multiply-add on zmm registers (32 FLOP).
    MEDSYNTH_PEAK_AVX512F = 3,
} medsynth_peak_isa;

/// 1 when this CPU and its operating system can run `isa` (CPUID and XGETBV, at run time).
int medsynth_peak_supported(medsynth_peak_isa isa);

/// Independent accumulator chains per loop iteration (enough to hide a 4-cycle FMA latency at
/// two FMAs a cycle, with room to spare).
int medsynth_peak_chains(void);

/// Runs `iterations` iterations of the loop for `isa` on the calling thread and returns the
/// FP32 floating-point operations it executed (0 when `isa` is not supported); `cpu_seconds`
/// (when not NULL) receives the CPU time the thread spent in the loop.
double medsynth_peak_run(medsynth_peak_isa isa, long iterations, double *cpu_seconds);

#endif
