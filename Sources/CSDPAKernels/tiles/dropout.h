/* Dropout on a tile of attention weights (or of their gradients), with the
 * keep decision of the Swift side's counter-based generator
 * (Sources/SDPA/Support/CounterRandom.swift): the same seed and counter drop
 * the same weights in the forward and the backward pass, fused or not, on
 * any thread.  Scalar 64-bit arithmetic, written once: each family's
 * compiler vectorizes it as its registers allow. */
#ifndef SDPA_TILES_DROPOUT_H
#define SDPA_TILES_DROPOUT_H

/* SplitMix64's finalizer applied to the seeded counter: _CounterRandom.bits. */
SDPA_INLINE uint64_t dropout_bits(uint64_t seed, uint64_t counter) {
    uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A weight is dropped when unit = (bits >> 11) 2^-53 < p.  unit is a 53-bit
 * integer times 2^-53 and p 2^53 is exact, so this is (bits >> 11) <
 * ceil(p 2^53), all in integers. */
static void k_dropout_tile(int rows, int cols, float *p, ptrdiff_t ldp, float dropoutP, uint64_t seed,
                           uint64_t counter, uint64_t counterRowStride) {
    if (rows <= 0 || cols <= 0) return;
    const double prob = (double)dropoutP;
    const uint64_t threshold = !(prob > 0) ? 0 : prob >= 1 ? (1ull << 53) : (uint64_t)ceil(prob * 0x1p53);
    const float keep = prob >= 1 ? 0.0f : (float)(1.0 / (1.0 - prob));
    for (int r = 0; r < rows; r++) {
        float *pr = p + (ptrdiff_t)r * ldp;
        const uint64_t first = counter + (uint64_t)r * counterRowStride;
        for (int c = 0; c < cols; c++)
            pr[c] = (dropout_bits(seed, first + (uint64_t)c) >> 11) < threshold ? 0.0f : pr[c] * keep;
    }
}

#endif
