/* The FP32 FMA peak of one thread, per kernel family: what "% of peak" in
 * the benchmarks divides by.  Each family gets the loop its kernels can at
 * best sustain: independent multiply-add chains in that family's widest
 * vectors, enough of them to cover the FMA latency on every pipe.  Nothing
 * but registers is touched, so the figure is the core's arithmetic limit at
 * the clock it runs this code at. */
#include "CSDPAKernels.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define SDPA_PEAK_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* Loaded through a volatile so that the compiler cannot fold the recurrence:
 * acc = acc * m + a converges to a / (1 - m), never overflows or goes
 * subnormal, and every step is a real FMA. */
static volatile float sdpa_peak_multiplier = 0.999999f;
static volatile float sdpa_peak_addend = 1e-3f;
static volatile float sdpa_peak_sink;

/* Each loop runs `iterations` times its body and returns the FLOP done. */
typedef double (*sdpa_peak_loop)(long iterations);

static double sdpa_peak_portable(long iterations) {
    /* Plain C, as the portable kernels are: the compiler vectorizes the 16
     * independent chains for the baseline target (SSE2 mul + add on x86-64,
     * NEON fmla on arm64). */
    const float m = sdpa_peak_multiplier, a = sdpa_peak_addend;
    float acc[16];
    for (int j = 0; j < 16; j++) acc[j] = (float)j;
    for (long i = 0; i < iterations; i++)
        for (int j = 0; j < 16; j++) acc[j] = acc[j] * m + a;
    float sum = 0;
    for (int j = 0; j < 16; j++) sum += acc[j];
    sdpa_peak_sink = sum;
    return 2.0 * 16 * (double)iterations;
}

#ifdef SDPA_PEAK_X86
/* 12 chains of 8 lanes: two FMA pipes of latency 4-5 need 8-10 in flight;
 * 12 accumulators and 2 constants fit the 16 ymm registers. */
__attribute__((target("avx2,fma")))
static double sdpa_peak_avx2(long iterations) {
    const __m256 m = _mm256_set1_ps(sdpa_peak_multiplier), a = _mm256_set1_ps(sdpa_peak_addend);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2), c3 = _mm256_set1_ps(3);
    __m256 c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5), c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7);
    __m256 c8 = _mm256_set1_ps(8), c9 = _mm256_set1_ps(9), c10 = _mm256_set1_ps(10), c11 = _mm256_set1_ps(11);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm256_fmadd_ps(c0, m, a); c1 = _mm256_fmadd_ps(c1, m, a);
        c2 = _mm256_fmadd_ps(c2, m, a); c3 = _mm256_fmadd_ps(c3, m, a);
        c4 = _mm256_fmadd_ps(c4, m, a); c5 = _mm256_fmadd_ps(c5, m, a);
        c6 = _mm256_fmadd_ps(c6, m, a); c7 = _mm256_fmadd_ps(c7, m, a);
        c8 = _mm256_fmadd_ps(c8, m, a); c9 = _mm256_fmadd_ps(c9, m, a);
        c10 = _mm256_fmadd_ps(c10, m, a); c11 = _mm256_fmadd_ps(c11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    sdpa_peak_sink = lanes[0] + lanes[7];
    return 2.0 * 12 * 8 * (double)iterations;
}

/* 16 chains of 16 lanes: two 512-bit FMA pipes of latency 4 need 8 in
 * flight; 16 leaves room for a longer latency, in half the 32 zmm registers. */
__attribute__((target("avx512f")))
static double sdpa_peak_avx512(long iterations) {
    const __m512 m = _mm512_set1_ps(sdpa_peak_multiplier), a = _mm512_set1_ps(sdpa_peak_addend);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3);
    __m512 c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7);
    __m512 c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    __m512 c12 = _mm512_set1_ps(12), c13 = _mm512_set1_ps(13), c14 = _mm512_set1_ps(14), c15 = _mm512_set1_ps(15);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm512_fmadd_ps(c0, m, a); c1 = _mm512_fmadd_ps(c1, m, a);
        c2 = _mm512_fmadd_ps(c2, m, a); c3 = _mm512_fmadd_ps(c3, m, a);
        c4 = _mm512_fmadd_ps(c4, m, a); c5 = _mm512_fmadd_ps(c5, m, a);
        c6 = _mm512_fmadd_ps(c6, m, a); c7 = _mm512_fmadd_ps(c7, m, a);
        c8 = _mm512_fmadd_ps(c8, m, a); c9 = _mm512_fmadd_ps(c9, m, a);
        c10 = _mm512_fmadd_ps(c10, m, a); c11 = _mm512_fmadd_ps(c11, m, a);
        c12 = _mm512_fmadd_ps(c12, m, a); c13 = _mm512_fmadd_ps(c13, m, a);
        c14 = _mm512_fmadd_ps(c14, m, a); c15 = _mm512_fmadd_ps(c15, m, a);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    sdpa_peak_sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * 16 * (double)iterations;
}
#endif

#if defined(__aarch64__)
/* 24 chains of 4 lanes: four FMA pipes of latency 4 need 16 in flight;
 * 24 accumulators and 2 constants fit the 32 vector registers.  The chain
 * runs through fmla's accumulator (acc += a * m, growing by 1e-9 a step) so
 * that no register copy sits between two FMAs. */
static double sdpa_peak_neon(long iterations) {
    const float32x4_t m = vdupq_n_f32(sdpa_peak_multiplier), a = vdupq_n_f32(sdpa_peak_addend);
    float32x4_t c[24];
    for (int j = 0; j < 24; j++) c[j] = vdupq_n_f32((float)j);
    for (long i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int j = 0; j < 24; j++) c[j] = vfmaq_f32(c[j], a, m);
    }
    float32x4_t s = c[0];
    for (int j = 1; j < 24; j++) s = vaddq_f32(s, c[j]);
    sdpa_peak_sink = vaddvq_f32(s);
    return 2.0 * 24 * 4 * (double)iterations;
}
#endif

static int sdpa_peak_has_prefix(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* The loop for the family `name` (matched by prefix: "avx512bf16" runs the
 * avx512 loop) if this CPU runs it, else NULL; *slot is its cache. */
static sdpa_peak_loop sdpa_peak_loop_for(const char *name, int *slot) {
#ifdef SDPA_PEAK_X86
    if (sdpa_peak_has_prefix(name, "avx512")) {
        __builtin_cpu_init();
        *slot = 0;
        return __builtin_cpu_supports("avx512f") ? sdpa_peak_avx512 : NULL;
    }
    if (sdpa_peak_has_prefix(name, "avx2")) {
        __builtin_cpu_init();
        *slot = 1;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? sdpa_peak_avx2 : NULL;
    }
#endif
#if defined(__aarch64__)
    if (sdpa_peak_has_prefix(name, "neon")) {
        *slot = 2;
        return sdpa_peak_neon;
    }
#endif
    if (sdpa_peak_has_prefix(name, "portable")) {
        *slot = 3;
        return sdpa_peak_portable;
    }
    return NULL;
}

static double sdpa_peak_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The best of several short runs: the fastest is the one least disturbed by
 * other processes, interrupts and the clock ramping up. */
static double sdpa_peak_measure(sdpa_peak_loop loop) {
    enum { RUNS = 8 };
    const double run_seconds = 4e-4;
    long iterations = 1024;
    for (;;) { /* grow the run until it lasts run_seconds (also warms up) */
        double start = sdpa_peak_seconds();
        loop(iterations);
        double elapsed = sdpa_peak_seconds() - start;
        if (elapsed >= run_seconds || iterations >= (1L << 40)) break;
        iterations *= elapsed > run_seconds / 64 ? 2 : 8;
    }
    double best = 0;
    for (int r = 0; r < RUNS; r++) {
        double start = sdpa_peak_seconds();
        double flop = loop(iterations);
        double elapsed = sdpa_peak_seconds() - start;
        if (elapsed > 0 && flop / elapsed > best) best = flop / elapsed;
    }
    return best / 1e9;
}

/* Per loop, 0 until measured. */
static _Atomic double sdpa_peak_cache[4];

double sdpa_kernels_fma_peak_gflops(const char *family) {
    const char *name = family ? family : sdpa_kernels_isa();
    int slot = 0;
    sdpa_peak_loop loop = sdpa_peak_loop_for(name, &slot);
    if (!loop) return -1;
    double cached = atomic_load_explicit(&sdpa_peak_cache[slot], memory_order_relaxed);
    if (cached > 0) return cached;
    /* Racing first callers each measure; either figure is a fair one. */
    double measured = sdpa_peak_measure(loop);
    atomic_store_explicit(&sdpa_peak_cache[slot], measured, memory_order_relaxed);
    return measured;
}
