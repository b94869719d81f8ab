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

/// 1 when this CPU has AVX512_BF16 (bfloat16 dot products, VDPBF16PS: CPUID leaf 7 subleaf 1,
/// EAX bit 5) and the operating system saves the AVX-512 state.
int medsynth_has_avx512_bf16(void);

/// The bf16 loop: `CHAINS` chains of VDPBF16PS (two bf16 products added into each of 16 f32
/// lanes: 64 FLOP an instruction) for `iterations` iterations; returns the FLOP it executed (0
/// without AVX512_BF16) and the thread's CPU time in `cpu_seconds`.
double medsynth_peak_run_bf16(long iterations, double *cpu_seconds);

/// Independent accumulator chains per loop iteration (enough to hide a 4-cycle FMA latency at
/// two FMAs a cycle, with room to spare).
int medsynth_peak_chains(void);

/// Runs `iterations` iterations of the loop for `isa` on the calling thread and returns the
/// FP32 floating-point operations it executed (0 when `isa` is not supported); `cpu_seconds`
/// (when not NULL) receives the CPU time the thread spent in the loop.
double medsynth_peak_run(medsynth_peak_isa isa, long iterations, double *cpu_seconds);

#endif
