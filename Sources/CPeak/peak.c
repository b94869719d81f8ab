// FP32 peak loops: `CHAINS` independent accumulators, each updated once per iteration by one
// fused multiply-add (acc += a * b) of the widest vectors an instruction set has.
//
// NOTE: the loops are inline assembly, not intrinsics: a debug build compiles C at -O0, where
// intrinsics spill every accumulator to the stack each iteration and measure the stores, not
// the FMA units. Assembly is the same in every build, needs no compiler flags (the package
// stays free of unsafe flags), and the instruction set is chosen at run time.
// The registers start at zero and stay zero: no denormals, no overflow, no data-dependent timing.

#include "CPeak.h"

#include <time.h>

/// CPU time of the calling thread, in seconds.
static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAINS 12

int medsynth_peak_chains(void) { return CHAINS; }

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

int medsynth_peak_supported(medsynth_peak_isa isa) {
    unsigned a, b, c, d;
    if (isa == MEDSYNTH_PEAK_SSE2) return 1;                     // every x86-64 CPU
    if (isa != MEDSYNTH_PEAK_AVX2_FMA && isa != MEDSYNTH_PEAK_AVX512F) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;                           // the OS saves xmm and ymm state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (isa == MEDSYNTH_PEAK_AVX2_FMA) return avx2;
    return avx512f && (xcr0 & 0xE6) == 0xE6;                     // and opmask, zmm0-15 high, zmm16-31
}

int medsynth_has_avx512_bf16(void) {
    unsigned a, b, c, d;
    if (!medsynth_peak_supported(MEDSYNTH_PEAK_AVX512F)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;  // leaf 7's highest subleaf
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}

#define FMA12(op, r)                                                                       \
    op " %%" r "13, %%" r "12, %%" r "0\n\t" op " %%" r "13, %%" r "12, %%" r "1\n\t"    \
    op " %%" r "13, %%" r "12, %%" r "2\n\t" op " %%" r "13, %%" r "12, %%" r "3\n\t"    \
    op " %%" r "13, %%" r "12, %%" r "4\n\t" op " %%" r "13, %%" r "12, %%" r "5\n\t"    \
    op " %%" r "13, %%" r "12, %%" r "6\n\t" op " %%" r "13, %%" r "12, %%" r "7\n\t"    \
    op " %%" r "13, %%" r "12, %%" r "8\n\t" op " %%" r "13, %%" r "12, %%" r "9\n\t"    \
    op " %%" r "13, %%" r "12, %%" r "10\n\t" op " %%" r "13, %%" r "12, %%" r "11\n\t"

// The zmm loops: zero zmm0-13, then `n` iterations of 12 independent `op zmm13, zmm12, zmm_i`.
#define ZMM_LOOP(op, n)                                                                                  \
    __asm__ volatile(                                                                                    \
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"                                                              \
        "vmovaps %%zmm0, %%zmm1\n\t vmovaps %%zmm0, %%zmm2\n\t vmovaps %%zmm0, %%zmm3\n\t"               \
        "vmovaps %%zmm0, %%zmm4\n\t vmovaps %%zmm0, %%zmm5\n\t vmovaps %%zmm0, %%zmm6\n\t"               \
        "vmovaps %%zmm0, %%zmm7\n\t vmovaps %%zmm0, %%zmm8\n\t vmovaps %%zmm0, %%zmm9\n\t"               \
        "vmovaps %%zmm0, %%zmm10\n\t vmovaps %%zmm0, %%zmm11\n\t vmovaps %%zmm0, %%zmm12\n\t"            \
        "vmovaps %%zmm0, %%zmm13\n\t"                                                                  \
        "1:\n\t" FMA12(op, "zmm") "dec %0\n\t jnz 1b\n\t vzeroupper\n\t"                                \
        : "+r"(n)                                                                                        \
        :                                                                                                \
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
          "xmm12", "xmm13", "cc")

// acc_i += zmm12 * zmm13 for i in 0..<12, `n` times: 12 x 16 lanes x 2 = 384 FLOP an iteration.
__attribute__((target("avx512f"))) static void loop_avx512(long n) {
    ZMM_LOOP("vfmadd231ps", n);
}

// acc_i += dot(zmm12, zmm13) over bf16 pairs, for i in 0..<12: each VDPBF16PS multiplies 32 bf16
// pairs and adds them pairwise into 16 f32 lanes, 12 x 32 x 2 = 768 FLOP an iteration.
// The registers hold zeros, which are zeros in bf16 too.
static void loop_avx512_bf16(long n) {
    ZMM_LOOP("vdpbf16ps", n);
}

double medsynth_peak_run_bf16(long iterations, double *cpu_seconds) {
    if (cpu_seconds) *cpu_seconds = 0;
    if (iterations <= 0 || !medsynth_has_avx512_bf16()) return 0;
    double start = thread_seconds();
    loop_avx512_bf16(iterations);
    if (cpu_seconds) *cpu_seconds = thread_seconds() - start;
    return (double)iterations * CHAINS * 32 * 2;
}

// The same with 8-wide ymm registers: 12 x 8 x 2 = 192 FLOP an iteration.
__attribute__((target("avx2,fma"))) static void loop_avx2(long n) {
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vmovaps %%ymm0, %%ymm1\n\t vmovaps %%ymm0, %%ymm2\n\t vmovaps %%ymm0, %%ymm3\n\t"
        "vmovaps %%ymm0, %%ymm4\n\t vmovaps %%ymm0, %%ymm5\n\t vmovaps %%ymm0, %%ymm6\n\t"
        "vmovaps %%ymm0, %%ymm7\n\t vmovaps %%ymm0, %%ymm8\n\t vmovaps %%ymm0, %%ymm9\n\t"
        "vmovaps %%ymm0, %%ymm10\n\t vmovaps %%ymm0, %%ymm11\n\t vmovaps %%ymm0, %%ymm12\n\t"
        "vmovaps %%ymm0, %%ymm13\n\t"
        "1:\n\t" FMA12("vfmadd231ps", "ymm")
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "cc");
}

// SSE2 has no FMA: a multiply and an add per chain (6 chains of each), 4 lanes:
// 6 x 4 x 2 = 48 FLOP an iteration.
static void loop_sse2(long n) {
    __asm__ volatile(
        "xorps %%xmm0, %%xmm0\n\t"
        "movaps %%xmm0, %%xmm1\n\t movaps %%xmm0, %%xmm2\n\t movaps %%xmm0, %%xmm3\n\t"
        "movaps %%xmm0, %%xmm4\n\t movaps %%xmm0, %%xmm5\n\t movaps %%xmm0, %%xmm6\n\t"
        "movaps %%xmm0, %%xmm7\n\t movaps %%xmm0, %%xmm8\n\t movaps %%xmm0, %%xmm9\n\t"
        "movaps %%xmm0, %%xmm10\n\t movaps %%xmm0, %%xmm11\n\t movaps %%xmm0, %%xmm12\n\t"
        "1:\n\t"
        "mulps %%xmm12, %%xmm0\n\t addps %%xmm12, %%xmm1\n\t mulps %%xmm12, %%xmm2\n\t addps %%xmm12, %%xmm3\n\t"
        "mulps %%xmm12, %%xmm4\n\t addps %%xmm12, %%xmm5\n\t mulps %%xmm12, %%xmm6\n\t addps %%xmm12, %%xmm7\n\t"
        "mulps %%xmm12, %%xmm8\n\t addps %%xmm12, %%xmm9\n\t mulps %%xmm12, %%xmm10\n\t addps %%xmm12, %%xmm11\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "cc");
}

double medsynth_peak_run(medsynth_peak_isa isa, long iterations, double *cpu_seconds) {
    if (cpu_seconds) *cpu_seconds = 0;
    if (iterations <= 0 || !medsynth_peak_supported(isa)) return 0;
    double start = thread_seconds(), flop = 0;
    switch (isa) {
    case MEDSYNTH_PEAK_AVX512F: loop_avx512(iterations); flop = (double)iterations * CHAINS * 16 * 2; break;
    case MEDSYNTH_PEAK_AVX2_FMA: loop_avx2(iterations); flop = (double)iterations * CHAINS * 8 * 2; break;
    case MEDSYNTH_PEAK_SSE2: loop_sse2(iterations); flop = (double)iterations * 12 * 4; break;
    default: return 0;
    }
    if (cpu_seconds) *cpu_seconds = thread_seconds() - start;
    return flop;
}

#else

int medsynth_peak_supported(medsynth_peak_isa isa) { return isa == MEDSYNTH_PEAK_GENERIC; }
int medsynth_has_avx512_bf16(void) { return 0; }
double medsynth_peak_run_bf16(long iterations, double *cpu_seconds) {
    (void)iterations;
    if (cpu_seconds) *cpu_seconds = 0;
    return 0;
}

// Other architectures: a scalar C loop, so the package builds and `bench peak` answers; the
// figure depends on the optimisation level and is no peak.
double medsynth_peak_run(medsynth_peak_isa isa, long iterations, double *cpu_seconds) {
    if (cpu_seconds) *cpu_seconds = 0;
    if (iterations <= 0 || isa != MEDSYNTH_PEAK_GENERIC) return 0;
    double start = thread_seconds();
    volatile float sink = 0;
    float acc[CHAINS] = {0};
    for (long i = 0; i < iterations; i++)
        for (int k = 0; k < CHAINS; k++) acc[k] = acc[k] * 0.999999f + 1e-7f;
    for (int k = 0; k < CHAINS; k++) sink += acc[k];
    if (cpu_seconds) *cpu_seconds = thread_seconds() - start;
    return (double)iterations * CHAINS * 2;
}

#endif
