/* The FP32 multiply-add peak of one thread in this family's vectors: what
 * "% of peak" in the benchmarks divides by.  SDPA_PEAK_CHAINS independent
 * chains (enough to cover the FMA latency on every pipe, within the register
 * file); nothing but registers is touched. */
#ifndef SDPA_TILES_PEAK_H
#define SDPA_TILES_PEAK_H

/* Loaded through a volatile so that the compiler cannot fold the recurrence:
 * acc = acc * m + a converges to a / (1 - m), never overflows or goes
 * subnormal, and every step is a real multiply-add. */
static volatile float sdpa_peak_multiplier = 0.999999f;
static volatile float sdpa_peak_addend = 1e-3f;

/* Runs the chains `iterations` times; returns the FLOP done. */
static double k_fma_flops(long iterations) {
    const vf m = vset1(sdpa_peak_multiplier), a = vset1(sdpa_peak_addend);
    vf c[SDPA_PEAK_CHAINS];
    for (int j = 0; j < SDPA_PEAK_CHAINS; j++) c[j] = vset1((float)j);
    for (long i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int j = 0; j < SDPA_PEAK_CHAINS; j++) c[j] = vfma(c[j], m, a);
    }
    vf s = c[0];
    for (int j = 1; j < SDPA_PEAK_CHAINS; j++) s = vadd(s, c[j]);
    /* a volatile of the caller's own, so that threads measuring at once share no write (a race to ThreadSanitizer) */
    volatile float sink = vhsum(s);
    (void)sink;
    return 2.0 * SDPA_PEAK_CHAINS * SDPA_VL * (double)iterations;
}

#endif
