/* Packing K^T (keys contiguous, the layout the Q.K^T tile reads), with the
 * half-precision conversion done on the way. */
#ifndef SDPA_TILES_PACK_H
#define SDPA_TILES_PACK_H

SDPA_INLINE void pack_kt(const int kind, int cols, int depth, sdpa_rows k, float *kt, ptrdiff_t ldkt) {
    int c0 = 0;
    for (; c0 + SDPA_VL <= cols; c0 += SDPA_VL) {
        const void *row[SDPA_VL];
        for (int i = 0; i < SDPA_VL; i++) row[i] = row_at(kind, k, c0 + i);
        int e0 = 0;
        for (; e0 + SDPA_VL <= depth; e0 += SDPA_VL) {
            vf r[SDPA_VL];
            for (int i = 0; i < SDPA_VL; i++) r[i] = vload_kind(kind, row[i], e0);
            vtranspose(r);
            for (int j = 0; j < SDPA_VL; j++) vstore(kt + (ptrdiff_t)(e0 + j) * ldkt + c0, r[j]);
        }
        for (int e = e0; e < depth; e++)
            for (int i = 0; i < SDPA_VL; i++) kt[(ptrdiff_t)e * ldkt + c0 + i] = load1_kind(kind, row[i], e);
    }
    for (int c = c0; c < cols; c++) {
        const void *row = row_at(kind, k, c);
        for (int e = 0; e < depth; e++) kt[(ptrdiff_t)e * ldkt + c] = load1_kind(kind, row, e);
    }
}

SDPA_INLINE sdpa_rows strided_rows(const void *base, ptrdiff_t stride) {
    sdpa_rows r = {base, stride, NULL};
    return r;
}

static void k_pack_kt_f32(int cols, int depth, const float *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    pack_kt(SDPA_KIND_F32, cols, depth, strided_rows(k, ldk), kt, ldkt);
}
static void k_pack_kt_f16(int cols, int depth, const uint16_t *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    pack_kt(SDPA_KIND_F16, cols, depth, strided_rows(k, ldk), kt, ldkt);
}
static void k_pack_kt_bf16(int cols, int depth, const uint16_t *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    pack_kt(SDPA_KIND_BF16, cols, depth, strided_rows(k, ldk), kt, ldkt);
}

#endif
