/* The GEMM micro-kernel and the tile products built on it: Q.K^T (scores,
 * with the row maxima and an optional dense mask taken in the epilogue) and
 * P.V (accumulated).  Written once over the vector layer. */
#ifndef SDPA_TILES_GEMM_H
#define SDPA_TILES_GEMM_H

/* Dense masks a score tile can take in the GEMM's epilogue. */
enum { MK_NONE = 0, MK_BOOL = SDPA_MASK_BOOL, MK_F32 = SDPA_MASK_F32 };

/* The mask element n elements after mk (mk itself without a mask: no
 * arithmetic on a null pointer). */
SDPA_INLINE const void *mask_at(const int MK, const void *mk, ptrdiff_t n) {
    if (MK == MK_BOOL) return (const uint8_t *)mk + n;
    if (MK == MK_F32) return (const float *)mk + n;
    return mk;
}

/* Stores an MR x (NV vectors) tile of accumulators into C: scaled (or added
 * to C with ACC = 1, scaled and added with ACC = 2), a dense mask applied
 * (MK), each row's maximum taken (MAX).  Shared by every micro-kernel,
 * whatever its operands' format. */
SDPA_INLINE void tile_epilogue(const int MR, const int NV, const int TAIL, const int ACC,
                               const int MAX, const int MK, vf acc[SDPA_MR][SDPA_NV], float *C,
                               ptrdiff_t ldc, float scale, int n, vm m, const void *mk,
                               ptrdiff_t ldm, vf *vmaxv) {
    const vf vs = vset1(scale), ninf = vneg_inf();
    for (int i = 0; i < MR; i++) {
        float *c = C + i * ldc;
        for (int j = 0; j < NV; j++) {
            const int last = TAIL && j == NV - 1;
            vf r = acc[i][j];
            if (ACC == 2)
                r = vfma(r, vs, last ? vload_first(c + SDPA_VL * j, n, m) : vload(c + SDPA_VL * j));
            else if (ACC)
                r = vadd(last ? vload_first(c + SDPA_VL * j, n, m) : vload(c + SDPA_VL * j), r);
            else
                r = vmul(r, vs);
            if (MK == MK_BOOL) {
                const uint8_t *mb = (const uint8_t *)mask_at(MK, mk, i * ldm + SDPA_VL * j);
                r = vblend(vmask_zero_bytes(mb, last ? n : SDPA_VL), r, ninf);
            } else if (MK == MK_F32) {
                const float *mf = (const float *)mask_at(MK, mk, i * ldm + SDPA_VL * j);
                r = vadd_mask(r, last ? vload_first(mf, n, m) : vload(mf));
            }
            if (last)
                vstore_first(c + SDPA_VL * j, n, m, r);
            else
                vstore(c + SDPA_VL * j, r);
            if (MAX) vmaxv[i] = vmax(last ? vblend(m, ninf, r) : r, vmaxv[i]);
        }
    }
}

/* The formats a micro-kernel's operands come in: float32, or bfloat16 pairs
 * (two consecutive elements along the depth in one 32-bit lane, the layout
 * of the bfloat16 dot-product instructions; a family without them never
 * uses it). */
enum { FMT_F32 = 0, FMT_BF16_PAIRS = 1 };

/* One MR x (NV vectors) register tile of C (= scale * A B, or += A B with
 * ACC = 1, += scale * A B with ACC = 2), over the whole depth K (in pairs for FMT_BF16_PAIRS).
 *   A: element (i, k) at A[i * rsa + k * csa] (floats, or 32-bit pairs),
 *      broadcast one at a time, so a transposed A (the backward pass's P^T,
 *      dS^T) costs nothing extra;
 *   B: K rows of contiguous vectors, row stride ldb (floats, or pairs).
 * With TAIL the last vector is partial: lanes < n (mask m) are loaded and
 * stored, nothing past them touched.  Then tile_epilogue. */
SDPA_INLINE void ukr(const int FMT, const int MR, const int NV, const int TAIL, const int ACC,
                     const int MAX, const int MK, int K, const void *A, ptrdiff_t rsa,
                     ptrdiff_t csa, const void *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                     float scale, int n, vm m, const void *mk, ptrdiff_t ldm, vf *vmaxv) {
    vf acc[SDPA_MR][SDPA_NV];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = vzero();
    if (FMT == FMT_F32) {
        const float *a[SDPA_MR];
        for (int i = 0; i < MR; i++) a[i] = (const float *)A + i * rsa;
        const float *b = (const float *)B;
        ptrdiff_t ka = 0;
        for (int k = 0; k < K; k++, ka += csa, b += ldb) {
            vf bv[SDPA_NV];
            for (int j = 0; j < NV; j++)
                bv[j] = TAIL && j == NV - 1 ? vload_first(b + SDPA_VL * j, n, m) : vload(b + SDPA_VL * j);
            for (int i = 0; i < MR; i++) {
                const vf av = vbroadcast(a[i] + ka);
                for (int j = 0; j < NV; j++) acc[i][j] = vfma(av, bv[j], acc[i][j]);
            }
        }
    }
#if SDPA_BF16_DOT
    else {
        const uint32_t *a[SDPA_MR];
        for (int i = 0; i < MR; i++) a[i] = (const uint32_t *)A + i * rsa;
        const uint32_t *b = (const uint32_t *)B;
        ptrdiff_t ka = 0;
        for (int k = 0; k < K; k++, ka += csa, b += ldb) {
            vp bv[SDPA_NV];
            for (int j = 0; j < NV; j++)
                bv[j] = TAIL && j == NV - 1 ? vload_pairs_first(b + SDPA_VL * j, n, m) : vload_pairs(b + SDPA_VL * j);
            for (int i = 0; i < MR; i++) {
                const vp av = vbroadcast_pair(a[i] + ka);
                for (int j = 0; j < NV; j++) acc[i][j] = vdot_pairs(acc[i][j], av, bv[j]);
            }
        }
    }
#endif
    tile_epilogue(MR, NV, TAIL, ACC, MAX, MK, acc, C, ldc, scale, n, m, mk, ldm, vmaxv);
}

/* The element size of a format, in bytes. */
#define FMT_BYTES(FMT) 4 /* a float, or a pair of bfloat16 */

/* One column panel (NV vectors wide) for all M rows: the B panel stays in L1
 * while the rows stream past it. */
SDPA_INLINE void gemm_panel(const int FMT, const int NV, const int TAIL, const int ACC, const int MAX,
                            const int MK, int M, int K, const void *A, ptrdiff_t rsa,
                            ptrdiff_t csa, const void *B, ptrdiff_t ldb, float *C,
                            ptrdiff_t ldc, float scale, int n, vm m, const void *mk,
                            ptrdiff_t ldm, vf *vmaxv) {
    int i = 0;
    for (; i + SDPA_MR <= M; i += SDPA_MR)
        ukr(FMT, SDPA_MR, NV, TAIL, ACC, MAX, MK, K, (const char *)A + i * rsa * FMT_BYTES(FMT), rsa, csa, B, ldb, C + i * ldc, ldc,
            scale, n, m, mask_at(MK, mk, i * ldm), ldm, vmaxv + i);
    if (i == M) return;
    const void *Ai = (const char *)A + i * rsa * FMT_BYTES(FMT);
    float *Ci = C + i * ldc;
    const void *mi = mask_at(MK, mk, i * ldm);
    vf *vi_ = vmaxv + i;
    switch (M - i) {
#define SDPA_ROWS(R) \
    case R: ukr(FMT, R, NV, TAIL, ACC, MAX, MK, K, Ai, rsa, csa, B, ldb, Ci, ldc, scale, n, m, mi, ldm, vi_); break;
    SDPA_ROWS(1)
#if SDPA_MR > 2
    SDPA_ROWS(2)
#endif
#if SDPA_MR > 3
    SDPA_ROWS(3)
#endif
#if SDPA_MR > 4
    SDPA_ROWS(4)
#endif
#if SDPA_MR > 5
    SDPA_ROWS(5)
#endif
#if SDPA_MR > 6
    SDPA_ROWS(6)
#endif
#if SDPA_MR > 7
    SDPA_ROWS(7)
#endif
#undef SDPA_ROWS
    default: break;
    }
}

/* C (= scale * A B | += A B | += scale * A B, by ACC) for M x N, depth K (in the format's elements):
 * full panels of SDPA_NV
 * vectors, then one narrower panel whose last vector may be partial. */
SDPA_INLINE void gemm(const int FMT, const int ACC, const int MAX, const int MK, int M, int N, int K,
                      const void *A, ptrdiff_t rsa, ptrdiff_t csa, const void *B,
                      ptrdiff_t ldb, float *C, ptrdiff_t ldc, float scale, const void *mk,
                      ptrdiff_t ldm, vf *vmaxv) {
    if (M <= 0 || N <= 0) return;
    if (K < 0) K = 0;
    const int W = SDPA_VL * SDPA_NV;
    const vm all = vmask_first(SDPA_VL);
    int j = 0;
#define SDPA_PANEL(NV, TAIL, N_, M_) \
    gemm_panel(FMT, NV, TAIL, ACC, MAX, MK, M, K, A, rsa, csa, (const char *)B + j * FMT_BYTES(FMT), ldb, C + j, ldc, scale, N_, M_, \
               mask_at(MK, mk, j), ldm, vmaxv)
    for (; j + W <= N; j += W) SDPA_PANEL(SDPA_NV, 0, SDPA_VL, all);
    const int rem = N - j;
    if (rem == 0) return;
    const int nv = (rem + SDPA_VL - 1) / SDPA_VL, last = rem - SDPA_VL * (nv - 1);
    const vm lm = vmask_first(last);
    const int tail = last != SDPA_VL;
    switch (nv * 2 + tail) {
#define SDPA_REST(NV) \
    case 2 * NV: SDPA_PANEL(NV, 0, SDPA_VL, all); break; \
    case 2 * NV + 1: SDPA_PANEL(NV, 1, last, lm); break;
    SDPA_REST(1)
#if SDPA_NV > 1
    SDPA_REST(2)
#endif
#if SDPA_NV > 2
    SDPA_REST(3)
#endif
#if SDPA_NV > 3
    SDPA_REST(4)
#endif
#undef SDPA_REST
    default: break;
    }
#undef SDPA_PANEL
}

/* Row chunks of QK_CHUNK rows keep the per-row maxima in a stack array. */
#define QK_CHUNK 96
SDPA_INLINE void qk_tile(const int FMT, const int MK, int rows, int cols, int depth, const void *q,
                         ptrdiff_t ldq, const void *kt, ptrdiff_t ldkt, float scale, float *s,
                         ptrdiff_t lds, const void *mask, ptrdiff_t ldm, float *tileMax) {
    if (!tileMax) {
        gemm(FMT, 0, 0, MK, rows, cols, depth, q, ldq, 1, kt, ldkt, s, lds, scale, mask, ldm, NULL);
        return;
    }
    vf vmaxv[QK_CHUNK];
    for (int r0 = 0; r0 < rows; r0 += QK_CHUNK) {
        const int nr = rows - r0 < QK_CHUNK ? rows - r0 : QK_CHUNK;
        for (int i = 0; i < nr; i++) vmaxv[i] = vneg_inf();
        gemm(FMT, 0, 1, MK, nr, cols, depth, (const char *)q + r0 * ldq * FMT_BYTES(FMT), ldq, 1, kt, ldkt, s + r0 * lds, lds, scale,
             mask_at(MK, mask, r0 * ldm), ldm, vmaxv);
        for (int i = 0; i < nr; i++) tileMax[r0 + i] = vhmax(vmaxv[i]);
    }
}

/* A score tile that already holds the plain dot products (a tile unit's
 * product, not the register tile's): each row scaled, masked and its maximum
 * taken by the register tile's own epilogue, one vector at a time. */
SDPA_INLINE void scores_epilogue(const int MK, int rows, int cols, float *s, ptrdiff_t lds, float scale,
                                 const void *mask, ptrdiff_t ldm, float *tileMax) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + r * lds;
        vf vmaxv = vneg_inf(), acc[SDPA_MR][SDPA_NV];
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) {
            acc[0][0] = vload(sr + c);
            tile_epilogue(1, 1, 0, 0, 1, MK, acc, sr + c, lds, scale, SDPA_VL, vmask_first(SDPA_VL),
                          mask_at(MK, mask, r * ldm + c), ldm, &vmaxv);
        }
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            acc[0][0] = vload_first(sr + c, n, m);
            tile_epilogue(1, 1, 1, 0, 1, MK, acc, sr + c, lds, scale, n, m, mask_at(MK, mask, r * ldm + c), ldm, &vmaxv);
        }
        if (tileMax) tileMax[r] = vhmax(vmaxv);
    }
}

static void k_qk_tile(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                      const float *kt, ptrdiff_t ldkt, float scale, float *s, ptrdiff_t lds,
                      float *tileMax) {
    qk_tile(FMT_F32, MK_NONE, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, NULL, 0, tileMax);
}

static void k_qk_tile_masked(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                             const float *kt, ptrdiff_t ldkt, float scale, float *s,
                             ptrdiff_t lds, sdpa_mask_kind kind, const void *mask,
                             ptrdiff_t ldm, float *tileMax) {
    if (kind == SDPA_MASK_BOOL)
        qk_tile(FMT_F32, MK_BOOL, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, mask, ldm, tileMax);
    else
        qk_tile(FMT_F32, MK_F32, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, mask, ldm, tileMax);
}

#endif
