/* Dense masks, ALiBi and soft-capping applied to a score tile in place, and
 * what a tile of a dense mask holds (for skipping tiles). */
#ifndef SDPA_TILES_MASKS_H
#define SDPA_TILES_MASKS_H

static void k_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds, const uint8_t *mask,
                             ptrdiff_t ldm) {
    const vf ninf = vneg_inf();
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const uint8_t *mr = mask + (ptrdiff_t)r * ldm;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL)
            vstore(sr + c, vblend(vmask_zero_bytes(mr + c, SDPA_VL), vload(sr + c), ninf));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(sr + c, n, m, vblend(vmask_zero_bytes(mr + c, n), vload_first(sr + c, n, m), ninf));
        }
    }
}

static void k_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds, const float *mask,
                                ptrdiff_t ldm) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const float *mr = mask + (ptrdiff_t)r * ldm;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore(sr + c, vadd_mask(vload(sr + c), vload(mr + c)));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(sr + c, n, m, vadd_mask(vload_first(sr + c, n, m), vload_first(mr + c, n, m)));
        }
    }
}

static void k_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds, float cap) {
    const vf vcap = vset1(cap);
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore(sr + c, vsoftcap(vload(sr + c), vcap));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(sr + c, n, m, vsoftcap(vload_first(sr + c, n, m), vcap));
        }
    }
}

/* The lanes' indices, 0 ... SDPA_VL - 1, as floats. */
SDPA_INLINE vf vlane_indices(void) {
    static const float indices[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return vload(indices);
}

/* s - slope |d| with d = first + r - c (a float, exact below 2^24), -inf
 * where causal and d < 0: the product rounded, then the difference, never
 * fused, so the bits are those of score - slope * |d| in float. */
SDPA_INLINE vf alibi_scores(vf s, vf d, vf vslope, int causal) {
    const vf biased = vsub(s, vmul(vslope, vabs(d)));
    return causal ? vblend(vcmp_lt(d, vzero()), biased, vneg_inf()) : biased;
}

static void k_alibi_tile(int rows, int cols, float *s, ptrdiff_t lds, float slope, ptrdiff_t first, int causal) {
    const vf vslope = vset1(slope), lanes = vlane_indices();
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL)
            vstore(sr + c, alibi_scores(vload(sr + c), vsub(vset1((float)(first + r - c)), lanes), vslope, causal));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(sr + c, n, m, alibi_scores(vload_first(sr + c, n, m), vsub(vset1((float)(first + r - c)), lanes), vslope, causal));
        }
    }
}

/* A lane is masked when its byte is 0 (or its float is -inf); rows are
 * checked for `enough` after each one. */
static int k_mask_tile_visibility(sdpa_mask_kind kind, int rows, int cols, const void *mask,
                                  ptrdiff_t ldm, int enough) {
    int seen = 0;
    const vf ninf = vneg_inf();
    for (int r = 0; r < rows; r++) {
        int anyMasked = 0, anyVisible = 0;
        if (kind == SDPA_MASK_BOOL) {
            vscan_bytes((const uint8_t *)mask + (ptrdiff_t)r * ldm, cols, &anyMasked, &anyVisible);
        } else {
            const float *mr = (const float *)mask + (ptrdiff_t)r * ldm;
            const int full = (1 << SDPA_VL) - 1;
            int c = 0;
            for (; c + SDPA_VL <= cols; c += SDPA_VL) {
                const int b = vmask_bits(vcmp_eq(vload(mr + c), ninf));
                anyMasked |= b != 0;
                anyVisible |= b != full;
            }
            for (; c < cols; c++) {
                if (mr[c] == -__builtin_inff()) anyMasked = 1; else anyVisible = 1;
            }
        }
        if (anyMasked) seen |= SDPA_MASK_SEEN_MASKED;
        if (anyVisible) seen |= SDPA_MASK_SEEN_VISIBLE;
        if ((seen & enough) == enough) break;
    }
    return seen;
}

#endif
