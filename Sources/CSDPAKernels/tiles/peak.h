/* The machine's peaks as this family's loops reach them: the FP32
 * multiply-add peak of one thread, what "% of peak" in the benchmarks divides
 * by (SDPA_PEAK_CHAINS independent chains, enough to cover the FMA latency on
 * every pipe, within the register file; nothing but registers is touched),
 * and a read pass over memory, what decoding's time is set against. */
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

/* The sum of the whole vectors in `bytes` bytes from p (the rest ignored),
 * four accumulators deep so that the adds never hold up the loads: a read
 * pass in this family's loads, the widest the kernels use. */
static double k_read_sum(const void *p, size_t bytes) {
    const float *f = (const float *)p;
    const size_t vectors = bytes / (sizeof(float) * SDPA_VL);
    vf a = vzero(), b = vzero(), c = vzero(), d = vzero();
    size_t i = 0;
    for (; i + 4 <= vectors; i += 4) {
        a = vadd(a, vload(f + i * SDPA_VL));
        b = vadd(b, vload(f + (i + 1) * SDPA_VL));
        c = vadd(c, vload(f + (i + 2) * SDPA_VL));
        d = vadd(d, vload(f + (i + 3) * SDPA_VL));
    }
    for (; i < vectors; i++) a = vadd(a, vload(f + i * SDPA_VL));
    return (double)vhsum(vadd(vadd(a, b), vadd(c, d)));
}

#endif
