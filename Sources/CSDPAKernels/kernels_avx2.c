/* x86-64 AVX2 + FMA (+ F16C) implementation.  The target is compiled with no
 * special flags, so every function carries a target attribute; the whole
 * file is selected at run time by dispatch.c only when the CPU supports
 * avx2, fma and f16c. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#define AVX2_FN static __attribute__((target("avx2,fma,f16c")))
#define AVX2_INL                                                               \
    static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Lane mask with the first n (0..8) lanes active. */
static const int32_t sdpa_mask_tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                          0,  0,  0,  0,  0,  0,  0,  0};
AVX2_INL __m256i tail_mask(int n) {
    return _mm256_loadu_si256((const __m256i *)(sdpa_mask_tbl + 8 - n));
}

/* Lanes whose mask byte is 0 -> all-ones (8 bytes at b, low 64 bits). */
AVX2_INL __m256 bool_zero8(__m128i b) {
    return _mm256_castsi256_ps(
        _mm256_cvtepi8_epi32(_mm_cmpeq_epi8(b, _mm_setzero_si128())));
}

/* A float mask added to 8 scores; -inf replaces the score (a NaN score at a
 * masked position stays masked). */
AVX2_INL __m256 add_mask8(__m256 v, __m256 m, __m256 ninf) {
    __m256 masked = _mm256_cmp_ps(m, ninf, _CMP_EQ_OQ);
    return _mm256_blendv_ps(_mm256_add_ps(v, m), ninf, masked);
}

/* Dense masks a score tile can take in the GEMM's epilogue (MK). */
enum { MK_NONE = 0, MK_BOOL = SDPA_MASK_BOOL, MK_F32 = SDPA_MASK_F32 };

/* The mask element n elements after mk (mk itself without a mask: no
 * arithmetic on a null pointer). */
AVX2_INL const void *mask_at(const int MK, const void *mk, ptrdiff_t n) {
    if (MK == MK_BOOL) return (const uint8_t *)mk + n;
    if (MK == MK_F32) return (const float *)mk + n;
    return mk;
}

/* ====================================================================== */
/* GEMM micro-kernel: MR x (8*NV) register tile, MR <= 6, NV <= 2.         */
/*   C (= scale*AB | += AB),  A: MR x K (broadcast elements),              */
/*   B: K x (8*NV) (contiguous vectors).  If MASK, the last vector column  */
/*   is partial (lanes given by m) and is loaded/stored with vmaskmov.     */
/*   MK: a dense mask (MR x 8*NV at mk, row stride ldm) applied to the     */
/*   scaled products before they are stored (not with ACC).                */
/* ====================================================================== */
AVX2_INL void ukr(const int MR, const int NV, const int MASK, const int ACC,
                  const int MAX, const int MK, int K, const float *A,
                  ptrdiff_t lda, const float *B, ptrdiff_t ldb, float *C,
                  ptrdiff_t ldc, float scale, __m256i m, const void *mk,
                  ptrdiff_t ldm, __m256 *vmax) {
    __m256 acc[6][2];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = _mm256_setzero_ps();

    /* row pointers (only those < MR are formed / used) */
    const float *a0 = A;
    const float *a1 = MR > 1 ? A + 1 * lda : A;
    const float *a2 = MR > 2 ? A + 2 * lda : A;
    const float *a3 = MR > 3 ? A + 3 * lda : A;
    const float *a4 = MR > 4 ? A + 4 * lda : A;
    const float *a5 = MR > 5 ? A + 5 * lda : A;
    const float *b = B;
    for (int k = 0; k < K; k++) {
        __m256 bv[2];
        if (NV == 1) {
            bv[0] = MASK ? _mm256_maskload_ps(b, m) : _mm256_loadu_ps(b);
        } else {
            bv[0] = _mm256_loadu_ps(b);
            bv[1] = MASK ? _mm256_maskload_ps(b + 8, m) : _mm256_loadu_ps(b + 8);
        }
        b += ldb;
#define SDPA_ROW(I, AP)                                                        \
    if (MR > I) {                                                              \
        __m256 av = _mm256_broadcast_ss(AP + k);                               \
        acc[I][0] = _mm256_fmadd_ps(av, bv[0], acc[I][0]);                     \
        if (NV == 2) acc[I][1] = _mm256_fmadd_ps(av, bv[1], acc[I][1]);        \
    }
        SDPA_ROW(0, a0)
        SDPA_ROW(1, a1)
        SDPA_ROW(2, a2)
        SDPA_ROW(3, a3)
        SDPA_ROW(4, a4)
        SDPA_ROW(5, a5)
#undef SDPA_ROW
    }

    const __m256 vs = _mm256_set1_ps(scale);
    for (int i = 0; i < MR; i++) {
        float *c = C + i * ldc;
        for (int j = 0; j < NV; j++) {
            const int last_masked = MASK && j == NV - 1;
            __m256 r = acc[i][j];
            if (ACC) {
                __m256 old = last_masked ? _mm256_maskload_ps(c + 8 * j, m)
                                         : _mm256_loadu_ps(c + 8 * j);
                r = _mm256_add_ps(old, r);
            } else {
                r = _mm256_mul_ps(r, vs);
            }
            if (MK == MK_BOOL) {
                const uint8_t *mb = (const uint8_t *)mask_at(MK, mk, i * ldm + 8 * j);
                __m128i b;
                if (last_masked) {
                    /* only the tile's bytes: a register-sized copy, no over-read */
                    uint64_t bits = ~(uint64_t)0;
                    __builtin_memcpy(&bits, mb,
                                     (size_t)__builtin_popcount(
                                         _mm256_movemask_ps(_mm256_castsi256_ps(m))));
                    b = _mm_cvtsi64_si128((long long)bits);
                } else {
                    b = _mm_loadl_epi64((const __m128i *)mb);
                }
                r = _mm256_blendv_ps(r, _mm256_set1_ps(-__builtin_inff()), bool_zero8(b));
            } else if (MK == MK_F32) {
                const float *mf = (const float *)mask_at(MK, mk, i * ldm + 8 * j);
                r = add_mask8(r, last_masked ? _mm256_maskload_ps(mf, m) : _mm256_loadu_ps(mf),
                              _mm256_set1_ps(-__builtin_inff()));
            }
            if (last_masked)
                _mm256_maskstore_ps(c + 8 * j, m, r);
            else
                _mm256_storeu_ps(c + 8 * j, r);
            if (MAX) {
                /* Lanes past the edge are -inf; NaN scores are skipped
                 * (vmaxps returns its 2nd operand when either is NaN). */
                __m256 v = last_masked ? _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), r,
                                                          _mm256_castsi256_ps(m))
                                       : r;
                vmax[i] = _mm256_max_ps(v, vmax[i]);
            }
        }
    }
}

/* One column panel (8*NV wide) for all M rows: the B panel (K x 16 floats)
 * stays in L1 while the rows stream past it.  With MAX, vmax[i] (one vector
 * per row) takes the maximum of row i's scores. */
AVX2_INL void gemm_panel(const int NV, const int MASK, const int ACC,
                         const int MAX, const int MK, int M, int K,
                         const float *A, ptrdiff_t lda, const float *B,
                         ptrdiff_t ldb, float *C, ptrdiff_t ldc, float scale,
                         __m256i m, const void *mk, ptrdiff_t ldm,
                         __m256 *vmax) {
    int i = 0;
    for (; i + 6 <= M; i += 6)
        ukr(6, NV, MASK, ACC, MAX, MK, K, A + i * lda, lda, B, ldb, C + i * ldc,
            ldc, scale, m, mask_at(MK, mk, i * ldm), ldm, vmax + i);
    const float *Ai = A + i * lda;
    float *Ci = C + i * ldc;
    const void *mi = mask_at(MK, mk, i * ldm);
    __m256 *vi = vmax + i;
#define SDPA_UKR(R) ukr(R, NV, MASK, ACC, MAX, MK, K, Ai, lda, B, ldb, Ci, ldc, scale, m, mi, ldm, vi)
    switch (M - i) {
    case 5: SDPA_UKR(5); break;
    case 4: SDPA_UKR(4); break;
    case 3: SDPA_UKR(3); break;
    case 2: SDPA_UKR(2); break;
    case 1: SDPA_UKR(1); break;
    default: break;
    }
#undef SDPA_UKR
}

AVX2_INL void gemm(const int ACC, const int MAX, const int MK, int M, int N,
                   int K, const float *A, ptrdiff_t lda, const float *B,
                   ptrdiff_t ldb, float *C, ptrdiff_t ldc, float scale,
                   const void *mk, ptrdiff_t ldm, __m256 *vmax) {
    if (M <= 0 || N <= 0) return;
    if (K < 0) K = 0;
    const __m256i all = _mm256_set1_epi32(-1);
    int j = 0;
#define SDPA_PANEL(NV, MASK, LANES)                                            \
    gemm_panel(NV, MASK, ACC, MAX, MK, M, K, A, lda, B + j, ldb, C + j, ldc,   \
               scale, LANES, mask_at(MK, mk, j), ldm, vmax)
    for (; j + 16 <= N; j += 16) SDPA_PANEL(2, 0, all);
    int rem = N - j;
    if (rem > 8)
        SDPA_PANEL(2, 1, tail_mask(rem - 8));
    else if (rem == 8)
        SDPA_PANEL(1, 0, all);
    else if (rem > 0)
        SDPA_PANEL(1, 1, tail_mask(rem));
#undef SDPA_PANEL
}

AVX2_INL float hmax8(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* Row chunks of QK_CHUNK rows keep the per-row maxima in a stack array. */
#define QK_CHUNK 96
AVX2_INL void qk_tile(const int MK, int rows, int cols, int depth,
                      const float *q, ptrdiff_t ldq, const float *kt,
                      ptrdiff_t ldkt, float scale, float *s, ptrdiff_t lds,
                      const void *mask, ptrdiff_t ldm, float *tileMax) {
    if (!tileMax) {
        gemm(0, 0, MK, rows, cols, depth, q, ldq, kt, ldkt, s, lds, scale, mask, ldm, NULL);
        return;
    }
    __m256 vmax[QK_CHUNK];
    for (int r0 = 0; r0 < rows; r0 += QK_CHUNK) {
        const int nr = rows - r0 < QK_CHUNK ? rows - r0 : QK_CHUNK;
        for (int i = 0; i < nr; i++) vmax[i] = _mm256_set1_ps(-__builtin_inff());
        gemm(0, 1, MK, nr, cols, depth, q + r0 * ldq, ldq, kt, ldkt, s + r0 * lds, lds, scale,
             mask_at(MK, mask, r0 * ldm), ldm, vmax);
        for (int i = 0; i < nr; i++) tileMax[r0 + i] = hmax8(vmax[i]);
    }
}

AVX2_FN void a_qk_tile(int rows, int cols, int depth, const float *q,
                       ptrdiff_t ldq, const float *kt, ptrdiff_t ldkt,
                       float scale, float *s, ptrdiff_t lds, float *tileMax) {
    qk_tile(MK_NONE, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, NULL, 0, tileMax);
}

AVX2_FN void a_qk_tile_masked(int rows, int cols, int depth, const float *q,
                              ptrdiff_t ldq, const float *kt, ptrdiff_t ldkt,
                              float scale, float *s, ptrdiff_t lds, int kind,
                              const void *mask, ptrdiff_t ldm, float *tileMax) {
    if (kind == SDPA_MASK_BOOL)
        qk_tile(MK_BOOL, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, mask, ldm, tileMax);
    else
        qk_tile(MK_F32, rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, mask, ldm, tileMax);
}

/* P.V for one row (decoding): keys outer, 8*NV output columns held in
 * registers, so each V row is read front to back, NV vectors at a time (the
 * 6x16 register tiles would sweep the V tile once per 16 columns instead).
 * The last vector of the block may be partial (lanes m). */
AVX2_INL void pv_row_block(const int NV, int cols, const float *p,
                           const float *v, ptrdiff_t ldv, float *o, int last,
                           __m256i m) {
    __m256 acc[12];
    for (int j = 0; j < NV; j++) acc[j] = _mm256_setzero_ps();
    for (int c = 0; c < cols; c++) {
        const __m256 pc = _mm256_broadcast_ss(p + c);
        const float *vr = v + (ptrdiff_t)c * ldv;
        for (int j = 0; j < NV; j++) {
            __m256 vv = j == NV - 1 && last < 8 ? _mm256_maskload_ps(vr + 8 * j, m)
                                                : _mm256_loadu_ps(vr + 8 * j);
            acc[j] = _mm256_fmadd_ps(pc, vv, acc[j]);
        }
    }
    for (int j = 0; j < NV; j++) {
        if (j == NV - 1 && last < 8)
            _mm256_maskstore_ps(o + 8 * j, m, _mm256_add_ps(_mm256_maskload_ps(o + 8 * j, m), acc[j]));
        else
            _mm256_storeu_ps(o + 8 * j, _mm256_add_ps(_mm256_loadu_ps(o + 8 * j), acc[j]));
    }
}

AVX2_INL void pv_row(int cols, int dv, const float *p, const float *v,
                     ptrdiff_t ldv, float *o) {
    for (int d0 = 0; d0 < dv; d0 += 96) {
        const int n = dv - d0 < 96 ? dv - d0 : 96;
        const int nv = (n + 7) / 8, last = n - 8 * (nv - 1);
        const __m256i m = tail_mask(last);
        const float *vb = v + d0;
        float *ob = o + d0;
        switch (nv) {
#define SDPA_PV_ROW(NV) case NV: pv_row_block(NV, cols, p, vb, ldv, ob, last, m); break;
        SDPA_PV_ROW(1) SDPA_PV_ROW(2) SDPA_PV_ROW(3) SDPA_PV_ROW(4)
        SDPA_PV_ROW(5) SDPA_PV_ROW(6) SDPA_PV_ROW(7) SDPA_PV_ROW(8)
        SDPA_PV_ROW(9) SDPA_PV_ROW(10) SDPA_PV_ROW(11) SDPA_PV_ROW(12)
#undef SDPA_PV_ROW
        default: break;
        }
    }
}

AVX2_FN void a_pv_tile(int rows, int cols, int dv, const float *p,
                       ptrdiff_t ldp, const float *v, ptrdiff_t ldv, float *o,
                       ptrdiff_t ldo) {
    if (rows == 1)
        pv_row(cols, dv, p, v, ldv, o);
    else
        gemm(1, 0, MK_NONE, rows, dv, cols, p, ldp, v, ldv, o, ldo, 1.0f, NULL, 0, NULL);
}

/* ====================================================================== */
/* Packing K^T with 8x8 register transposes                               */
/* ====================================================================== */
AVX2_INL void tr8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
    __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);
    __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);
    __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);
    __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
    __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

enum { KIND_F32 = 0, KIND_F16 = 1, KIND_BF16 = 2 };

AVX2_INL __m256 load8(const int kind, const void *base, ptrdiff_t idx) {
    if (kind == KIND_F32) return _mm256_loadu_ps((const float *)base + idx);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + idx));
    if (kind == KIND_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2_INL float load1(const int kind, const void *base, ptrdiff_t idx) {
    if (kind == KIND_F32) return ((const float *)base)[idx];
    if (kind == KIND_F16) return sdpa_half_to_float(((const uint16_t *)base)[idx]);
    return sdpa_bf16_to_float(((const uint16_t *)base)[idx]);
}

AVX2_INL void pack_kt(const int kind, int cols, int depth, const void *k,
                      ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    int c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
        int e0 = 0;
        for (; e0 + 8 <= depth; e0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = load8(kind, k, (ptrdiff_t)(c0 + i) * ldk + e0);
            tr8x8(r);
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(kt + (ptrdiff_t)(e0 + j) * ldkt + c0, r[j]);
        }
        for (int e = e0; e < depth; e++)
            for (int i = 0; i < 8; i++)
                kt[(ptrdiff_t)e * ldkt + c0 + i] =
                    load1(kind, k, (ptrdiff_t)(c0 + i) * ldk + e);
    }
    if (c0 < cols)
        for (int e = 0; e < depth; e++)
            for (int c = c0; c < cols; c++)
                kt[(ptrdiff_t)e * ldkt + c] = load1(kind, k, (ptrdiff_t)c * ldk + e);
}

AVX2_FN void a_pack_kt_f32(int cols, int depth, const float *k, ptrdiff_t ldk,
                           float *kt, ptrdiff_t ldkt) {
    pack_kt(KIND_F32, cols, depth, k, ldk, kt, ldkt);
}
AVX2_FN void a_pack_kt_f16(int cols, int depth, const uint16_t *k,
                           ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    pack_kt(KIND_F16, cols, depth, k, ldk, kt, ldkt);
}
AVX2_FN void a_pack_kt_bf16(int cols, int depth, const uint16_t *k,
                            ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    pack_kt(KIND_BF16, cols, depth, k, ldk, kt, ldkt);
}

/* ====================================================================== */
/* Q.K^T for a few query rows, keys read as stored                        */
/* ====================================================================== */
/* Lane i of the result is the sum of the lanes of v[i] (8 rows' partial
 * sums -> 8 row sums; 8 keys' partial dot products -> 8 scores). */
AVX2_INL __m256 hsum8x8(const __m256 v[8]) {
    __m256 a0 = _mm256_hadd_ps(v[0], v[1]);
    __m256 a1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 a2 = _mm256_hadd_ps(v[4], v[5]);
    __m256 a3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 b0 = _mm256_hadd_ps(a0, a1); /* rows 0-3: low half | high half */
    __m256 b1 = _mm256_hadd_ps(a2, a3); /* rows 4-7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20),
                         _mm256_permute2f128_ps(b0, b1, 0x31));
}

AVX2_INL void qk_direct(const int kind, int rows, int cols, int depth,
                        const float *q, ptrdiff_t ldq, const void *k,
                        ptrdiff_t ldk, float scale, float *s, ptrdiff_t lds,
                        float *tileMax) {
    const __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-__builtin_inff());
    const int dtail = depth & 7, dvec = depth - dtail;
    const __m256i dm = tail_mask(dtail);
    if (tileMax)
        for (int r = 0; r < rows; r++) tileMax[r] = -__builtin_inff();
    for (int c0 = 0; c0 < cols; c0 += 8) {
        const int nk = cols - c0 < 8 ? cols - c0 : 8;
        /* a short last group repeats its last key (read, never stored) */
        ptrdiff_t row[8];
        for (int j = 0; j < 8; j++) row[j] = (ptrdiff_t)(c0 + (j < nk ? j : nk - 1)) * ldk;
        const __m256i cm = tail_mask(nk);
        for (int r = 0; r < rows; r++) {
            const float *qr = q + (ptrdiff_t)r * ldq;
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
            for (int e = 0; e < dvec; e += 8) {
                const __m256 qv = _mm256_loadu_ps(qr + e);
                for (int j = 0; j < 8; j++)
                    acc[j] = _mm256_fmadd_ps(qv, load8(kind, k, row[j] + e), acc[j]);
            }
            if (dtail) {
                const __m256 qv = _mm256_maskload_ps(qr + dvec, dm);
                for (int j = 0; j < 8; j++) {
                    __m256 kv;
                    if (kind == KIND_F32) {
                        kv = _mm256_maskload_ps((const float *)k + row[j] + dvec, dm);
                    } else {
                        float t[8] = {0};
                        for (int e = 0; e < dtail; e++) t[e] = load1(kind, k, row[j] + dvec + e);
                        kv = _mm256_loadu_ps(t);
                    }
                    acc[j] = _mm256_fmadd_ps(qv, kv, acc[j]);
                }
            }
            __m256 sc = _mm256_mul_ps(hsum8x8(acc), vs);
            float *sr = s + (ptrdiff_t)r * lds + c0;
            if (nk == 8) {
                _mm256_storeu_ps(sr, sc);
            } else {
                _mm256_maskstore_ps(sr, cm, sc);
                sc = _mm256_blendv_ps(ninf, sc, _mm256_castsi256_ps(cm));
            }
            if (tileMax) {
                /* NaN scores are skipped (vmaxps returns its 2nd operand) */
                float m = hmax8(_mm256_max_ps(sc, ninf));
                if (m > tileMax[r]) tileMax[r] = m;
            }
        }
    }
}

AVX2_FN void a_qk_tile_direct(int rows, int cols, int depth, const float *q,
                              ptrdiff_t ldq, int kind, const void *k,
                              ptrdiff_t ldk, float scale, float *s,
                              ptrdiff_t lds, float *tileMax) {
    if (kind == KIND_F16)
        qk_direct(KIND_F16, rows, cols, depth, q, ldq, k, ldk, scale, s, lds, tileMax);
    else if (kind == KIND_BF16)
        qk_direct(KIND_BF16, rows, cols, depth, q, ldq, k, ldk, scale, s, lds, tileMax);
    else
        qk_direct(KIND_F32, rows, cols, depth, q, ldq, k, ldk, scale, s, lds, tileMax);
}

/* ====================================================================== */
/* Converters                                                             */
/* ====================================================================== */
AVX2_FN void a_f16_to_f32(size_t n, const uint16_t *src, float *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = sdpa_half_to_float(src[i]);
}

AVX2_FN void a_f32_to_f16(size_t n, const float *src, uint16_t *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = sdpa_float_to_half(src[i]);
}

AVX2_FN void a_bf16_to_f32(size_t n, const uint16_t *src, float *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load8(KIND_BF16, src, (ptrdiff_t)i));
    for (; i < n; i++) dst[i] = sdpa_bf16_to_float(src[i]);
}

AVX2_FN void a_f32_to_bf16(size_t n, const float *src, uint16_t *dst) {
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i inf = _mm256_set1_epi32(0x7F800000);
    const __m256i rnd = _mm256_set1_epi32(0x7FFF);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i qbit = _mm256_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + i));
        __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(x, absm), inf);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
        __m256i r = _mm256_add_epi32(_mm256_add_epi32(x, rnd), lsb);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(x, qbit), isnan);
        r = _mm256_srli_epi32(r, 16);
        __m256i packed = _mm256_packus_epi32(r, r);          /* per 128 lane */
        packed = _mm256_permute4x64_epi64(packed, 0x08);     /* lanes 0,2 */
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) dst[i] = sdpa_float_to_bf16(src[i]);
}

/* ====================================================================== */
/* exp and softmax                                                        */
/* ====================================================================== */

/* Fast path, valid for x <= 88.376 (n <= 127) or NaN.  Same reduction and
 * polynomial as sdpa_exp_scalar, 13 vector ops:
 *  - x is clamped from below to -88 (NaN kept: vmaxps returns its 2nd
 *    operand when either is NaN).  For x <= -87.68 the rounded n is -127,
 *    and the magic constant 1.5*2^23 + 127 makes the low 9 bits of t equal
 *    n + 127 = 0, so 2^n = bits(t) << 23 is +0.0 and the result is exactly
 *    0 (this covers -inf).  For -87.68 < x < ln(FLT_MIN) the result is the
 *    (subnormal) true value.
 *  - (1 + y) * 2^n is folded into one FMA. */
AVX2_INL __m256 exp8_fast(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12583039.0f);
    x = _mm256_max_ps(_mm256_set1_ps(-88.0f), x);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(SDPA_LOG2E), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SDPA_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SDPA_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SDPA_EXP_C4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C0));
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 y = _mm256_fmadd_ps(p, r2, r);                 /* e^r - 1 */
    __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_fmadd_ps(y, pow2n, pow2n);              /* (1+y) * 2^n */
}

/* Full-range version (x up to +inf): clamps, splits 2^n into two factors;
 * same results as sdpa_exp_scalar. */
AVX2_INL __m256 exp8_safe(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 xc = _mm256_min_ps(_mm256_set1_ps(SDPA_EXP_HI), x); /* NaN kept */
    xc = _mm256_max_ps(_mm256_set1_ps(SDPA_EXP_CLAMP), xc);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(SDPA_LOG2E), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SDPA_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SDPA_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SDPA_EXP_C4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDPA_EXP_C0));
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 y = _mm256_fmadd_ps(p, r2, r);
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    y = _mm256_mul_ps(_mm256_fmadd_ps(y, s1, s1), s2);
    __m256 zero = _mm256_cmp_ps(n, _mm256_set1_ps(-127.0f), _CMP_LE_OQ); /* not NaN */
    y = _mm256_andnot_ps(zero, y);
    __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(SDPA_EXP_HI), _CMP_GT_OQ);
    return _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
}

/* 2^u for u <= 127.5 or NaN, the softmax's form: the caller folds log2(e)
 * into the FMA that subtracts the row maximum (u = s*log2e - m*log2e).
 * 2^u = 2^n * 2^(j/8) * 2^r with k = round(8u), n = floor(k/8), j = k mod 8
 * and |r| <= 1/16: 2^(j/8) comes from an 8-entry table held in a register
 * (vpermd reads only the low 3 bits of each index, which are j), so 2^r
 * needs only a cubic, and 2^n goes into the table entry's exponent field by
 * an integer add: 4 FMA-port operations per vector (with the caller's FMA,
 * 5) instead of 8 with a degree-6 polynomial on |f| <= 1/2, same accuracy
 * (1.9 ulp against exp2 in double over [-126, 1.5], the table's rounding
 * included).  The add instead of a multiply by 2^n: +2 % on the whole
 * no-mask call, E = 64 (8 alternating rounds).
 * u is clamped from below to -127 (NaN kept: vmaxps returns its 2nd operand
 * when either is NaN): u = -127 (which covers -inf) has j = 0, whose
 * mantissa field is 0, and n + 127 = 0, so it gives exactly +0.0; for
 * -127 < u < -126 the result is a subnormal below 2^-126 (approximate, as
 * is the true value's contribution to any sum of probabilities that holds
 * a 1).  r = u - k/8 is exact. */
AVX2_INL __m256 exp2_8_fast(__m256 u) {
    /* 1.5 * 2^20 + 127: t's last 3 mantissa bits are j and the 9 above them
     * n + 127 (the float's exponent field, once shifted left by 20) */
    const __m256 magic = _mm256_set1_ps(1572991.0f);
    /* the table's mantissa fields (its exponent field, 127, taken off) */
    const __m256i table = _mm256_sub_epi32(_mm256_castps_si256(_mm256_setr_ps(SDPA_EXP2_EIGHTHS)),
                                           _mm256_set1_epi32(0x3F800000));
    u = _mm256_max_ps(_mm256_set1_ps(-127.0f), u);
    __m256 t = _mm256_add_ps(u, magic);
    __m256 r = _mm256_sub_ps(u, _mm256_sub_ps(t, magic));
    __m256i ti = _mm256_castps_si256(t);
    /* a = 2^n * 2^(j/8): the exponent field n + 127 added to the table's
     * mantissa field, an integer add rather than a multiply on the FMA ports */
    __m256i field = _mm256_and_si256(_mm256_slli_epi32(ti, 20), _mm256_set1_epi32(0x7F800000));
    __m256 a = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_permutevar8x32_epi32(table, ti), field));
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(SDPA_EXP2_Q2), r, _mm256_set1_ps(SDPA_EXP2_Q1));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(SDPA_EXP2_Q0));
    return _mm256_fmadd_ps(a, _mm256_mul_ps(q, r), a);    /* a * (1 + r q) */
}

AVX2_INL __m256 exp8(__m256 x) {
    __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_GT_OQ);
    if (__builtin_expect(!_mm256_testz_ps(big, big), 0)) return exp8_safe(x);
    return exp8_fast(x);
}

AVX2_FN void a_exp_f32(size_t n, const float *x, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask((int)(n - i));
        _mm256_maskstore_ps(y + i, m, exp8(_mm256_maskload_ps(x + i, m)));
    }
}

/* row *= a for n floats */
AVX2_INL void scale_row(float *row, int n, __m256 va) {
    int d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(row + d, _mm256_mul_ps(_mm256_loadu_ps(row + d), va));
    if (d < n) {
        __m256i m = tail_mask(n - d);
        _mm256_maskstore_ps(row + d, m, _mm256_mul_ps(_mm256_maskload_ps(row + d, m), va));
    }
}


/* Rows are processed in chunks of SM_CHUNK: the per-row state is computed
 * 8 rows to a vector before and after the exp pass (maxima, M, alpha; row
 * sums), which keeps the horizontal reductions and the scalar per-row work
 * off the exp loop's critical path. */
#define SM_CHUNK 64
AVX2_FN void a_softmax_tile(int rows, int cols, float *s, ptrdiff_t lds,
                            const float *tileMax, float *rowMax, float *rowSum,
                            float *o, ptrdiff_t ldo, int dv) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    if (cols < 0) cols = 0;
    const int rem = cols & 7;
    const __m256i tm = tail_mask(rem);
    const __m256 vl = _mm256_set1_ps(SDPA_LOG2E);
    float tmax[SM_CHUNK], mold[SM_CHUNK], mlog2[SM_CHUNK], alpha[SM_CHUNK];
    __m256 sums[SM_CHUNK + 7];
    for (int r0 = 0; r0 < rows; r0 += SM_CHUNK) {
        const int nr = rows - r0 < SM_CHUNK ? rows - r0 : SM_CHUNK;

        /* the tile's row maxima, from sdpa_qk_tile when it took them, else
         * read here.  vmaxps returns its 2nd operand when either is NaN, so
         * NaN scores are skipped. */
        const float *m = tileMax ? tileMax + r0 : tmax;
        if (!tileMax)
            for (int i = 0; i < nr; i++) {
                const float *sr = s + (ptrdiff_t)(r0 + i) * lds;
                __m256 m0 = ninf, m1 = ninf;
                int c = 0;
                for (; c + 16 <= cols; c += 16) {
                    m0 = _mm256_max_ps(_mm256_loadu_ps(sr + c), m0);
                    m1 = _mm256_max_ps(_mm256_loadu_ps(sr + c + 8), m1);
                }
                if (c + 8 <= cols) {
                    m0 = _mm256_max_ps(_mm256_loadu_ps(sr + c), m0);
                    c += 8;
                }
                if (rem) {
                    __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(sr + c, tm),
                                                _mm256_castsi256_ps(tm));
                    m1 = _mm256_max_ps(v, m1);
                }
                tmax[i] = hmax8(_mm256_max_ps(m0, m1));
            }

        /* per-row state, 8 rows at a time: mNew = max(mOld, tile max),
         * mUse = mNew (0 when -inf), M = mUse*log2e rounded once, the same for
         * every tile of the row, and alpha = 2^(M(mOld) - M(mUse)), so the
         * terms of earlier tiles (taken against M(mOld)) and this tile's agree
         * exactly in scale and the rounding of M cancels in the normalization;
         * mOld = mUse gives exactly 1 (no rescale), mOld = -inf exactly 0,
         * never NaN.  Neither maximum is NaN. */
        for (int i = 0; i < nr; i += 8) {
            const __m256i lm = tail_mask(nr - i < 8 ? nr - i : 8);
            __m256 mo = _mm256_maskload_ps(rowMax + r0 + i, lm);
            __m256 mn = _mm256_max_ps(_mm256_maskload_ps(m + i, lm), mo);
            __m256 mu = _mm256_andnot_ps(_mm256_cmp_ps(mn, ninf, _CMP_EQ_OQ), mn);
            __m256 Mu = _mm256_mul_ps(mu, vl);
            _mm256_maskstore_ps(mold + i, lm, mo);
            _mm256_maskstore_ps(rowMax + r0 + i, lm, mn);
            _mm256_maskstore_ps(mlog2 + i, lm, Mu);
            _mm256_maskstore_ps(alpha + i, lm,
                                exp2_8_fast(_mm256_sub_ps(_mm256_mul_ps(mo, vl), Mu)));
        }

        /* p = exp(s - mUse) = 2^(s*log2e - M) in place, and each row's sum as
         * a vector of partial sums.  s <= mUse, so the argument is <= ~0 (or
         * NaN / -inf). */
        for (int i = 0; i < nr; i++) {
            float *sr = s + (ptrdiff_t)(r0 + i) * lds;
            const __m256 vm = _mm256_broadcast_ss(mlog2 + i);
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            int c = 0;
            for (; c + 16 <= cols; c += 16) {
                __m256 p0 = exp2_8_fast(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c), vl, vm));
                __m256 p1 = exp2_8_fast(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c + 8), vl, vm));
                _mm256_storeu_ps(sr + c, p0);
                _mm256_storeu_ps(sr + c + 8, p1);
                s0 = _mm256_add_ps(s0, p0);
                s1 = _mm256_add_ps(s1, p1);
            }
            if (c + 8 <= cols) {
                __m256 p0 = exp2_8_fast(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c), vl, vm));
                _mm256_storeu_ps(sr + c, p0);
                s0 = _mm256_add_ps(s0, p0);
                c += 8;
            }
            if (rem) {
                __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(sr + c, tm),
                                            _mm256_castsi256_ps(tm));
                __m256 p1 = exp2_8_fast(_mm256_fmsub_ps(v, vl, vm)); /* masked lanes -> 0 */
                _mm256_maskstore_ps(sr + c, tm, p1);
                s1 = _mm256_add_ps(s1, p1);
            }
            sums[i] = _mm256_add_ps(s0, s1);
        }

        /* rowSum = rowSum * alpha + this tile's sum, 8 rows at a time */
        for (int i = nr; i < ((nr + 7) & ~7); i++) sums[i] = _mm256_setzero_ps();
        for (int i = 0; i < nr; i += 8) {
            const __m256i lm = tail_mask(nr - i < 8 ? nr - i : 8);
            __m256 l = _mm256_fmadd_ps(_mm256_maskload_ps(rowSum + r0 + i, lm),
                                       _mm256_maskload_ps(alpha + i, lm), hsum8x8(sums + i));
            _mm256_maskstore_ps(rowSum + r0 + i, lm, l);
        }

        /* O *= alpha; a row with no earlier contribution (mOld = -inf) holds
         * the zeros the driver filled it with and needs none */
        if (dv > 0)
            for (int i = 0; i < nr; i++)
                if (alpha[i] != 1.0f && mold[i] != -__builtin_inff())
                    scale_row(o + (ptrdiff_t)(r0 + i) * ldo, dv,
                              _mm256_set1_ps(alpha[i]));
    }
}

AVX2_FN void a_normalize_tile(int rows, int dv, float *o, ptrdiff_t ldo,
                              const float *rowSum) {
    for (int r = 0; r < rows; r++) {
        float *orow = o + (ptrdiff_t)r * ldo;
        const float l = rowSum[r];
        if (l == 0.0f) {
            for (int d = 0; d < dv; d++) orow[d] = 0.0f;
        } else {
            scale_row(orow, dv, _mm256_set1_ps(1.0f / l));
        }
    }
}

/* ====================================================================== */
/* Masks and soft-capping                                                 */
/* ====================================================================== */

AVX2_FN void a_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds,
                              const uint8_t *mask, ptrdiff_t ldm) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const uint8_t *mr = mask + (ptrdiff_t)r * ldm;
        int c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(mr + c));
            __m128i z = _mm_cmpeq_epi8(b, _mm_setzero_si128());
            __m256 z0 = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(z));
            __m256 z1 = _mm256_castsi256_ps(
                _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(z, z)));
            _mm256_storeu_ps(sr + c, _mm256_blendv_ps(_mm256_loadu_ps(sr + c), ninf, z0));
            _mm256_storeu_ps(sr + c + 8,
                             _mm256_blendv_ps(_mm256_loadu_ps(sr + c + 8), ninf, z1));
        }
        if (c + 8 <= cols) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(mr + c));
            _mm256_storeu_ps(sr + c, _mm256_blendv_ps(_mm256_loadu_ps(sr + c), ninf,
                                                      bool_zero8(b)));
            c += 8;
        }
        if (c < cols) {
            /* 1..7 bytes: copy into a register-sized buffer (no over-read) */
            const int n = cols - c;
            uint64_t bits = ~(uint64_t)0; /* lanes >= n: "visible", not stored */
            __builtin_memcpy(&bits, mr + c, (size_t)n);
            __m256i tm = tail_mask(n);
            __m256 v = _mm256_maskload_ps(sr + c, tm);
            v = _mm256_blendv_ps(v, ninf, bool_zero8(_mm_cvtsi64_si128((long long)bits)));
            _mm256_maskstore_ps(sr + c, tm, v);
        }
    }
}

AVX2_FN void a_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds,
                                 const float *mask, ptrdiff_t ldm) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const float *mr = mask + (ptrdiff_t)r * ldm;
        int c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m256 v0 = add_mask8(_mm256_loadu_ps(sr + c), _mm256_loadu_ps(mr + c), ninf);
            __m256 v1 = add_mask8(_mm256_loadu_ps(sr + c + 8), _mm256_loadu_ps(mr + c + 8), ninf);
            _mm256_storeu_ps(sr + c, v0);
            _mm256_storeu_ps(sr + c + 8, v1);
        }
        if (c + 8 <= cols) {
            _mm256_storeu_ps(sr + c, add_mask8(_mm256_loadu_ps(sr + c),
                                               _mm256_loadu_ps(mr + c), ninf));
            c += 8;
        }
        if (c < cols) {
            __m256i tm = tail_mask(cols - c);
            __m256 v = add_mask8(_mm256_maskload_ps(sr + c, tm),
                                 _mm256_maskload_ps(mr + c, tm), ninf);
            _mm256_maskstore_ps(sr + c, tm, v);
        }
    }
}

/* cap * tanh(x / cap), -inf kept (see the header for the method). */
AVX2_INL __m256 softcap8(__m256 x, __m256 vcap) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    __m256 u = _mm256_div_ps(x, vcap);
    __m256 au = _mm256_andnot_ps(sign, u);
    __m256 small = _mm256_cmp_ps(au, _mm256_set1_ps(SDPA_TANH_SMALL), _CMP_LT_OQ);
    /* |u| < 0.625: cap * (u + u^3 P(u^2)) = x + x * (u^2 P(u^2)), formed
     * from x itself: no rounding of x / cap or of the final product, and
     * tiny / subnormal x come back unchanged. */
    __m256 z = _mm256_mul_ps(u, u);
    __m256 p = _mm256_set1_ps(SDPA_TANH_P4);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SDPA_TANH_P3));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SDPA_TANH_P2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SDPA_TANH_P1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SDPA_TANH_P0));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    if (_mm256_movemask_ps(small) != 0xFF) {
        /* |u| >= 0.625 (or NaN): cap * (1 - 2/(exp(2|u|) + 1)), sign below.
         * vminps returns its 2nd operand when either is NaN: NaN is kept,
         * +inf is clamped (-> 1).  2|u| <= 19: the fast exp is valid. */
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 a = _mm256_min_ps(_mm256_set1_ps(SDPA_TANH_CLAMP), au);
        __m256 e = exp8_fast(_mm256_add_ps(a, a));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                                    _mm256_add_ps(e, one)));
        y = _mm256_blendv_ps(_mm256_mul_ps(vcap, t), y, small);
    }
    /* tanh is odd: |y| with the sign of x (also makes -0 -> -0) */
    y = _mm256_or_ps(_mm256_andnot_ps(sign, y), _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(y, ninf, _mm256_cmp_ps(x, ninf, _CMP_EQ_OQ));
}

AVX2_FN void a_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds,
                            float cap) {
    const __m256 vcap = _mm256_set1_ps(cap);
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        int c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m256 v0 = softcap8(_mm256_loadu_ps(sr + c), vcap);
            __m256 v1 = softcap8(_mm256_loadu_ps(sr + c + 8), vcap);
            _mm256_storeu_ps(sr + c, v0);
            _mm256_storeu_ps(sr + c + 8, v1);
        }
        if (c + 8 <= cols) {
            _mm256_storeu_ps(sr + c, softcap8(_mm256_loadu_ps(sr + c), vcap));
            c += 8;
        }
        if (c < cols) {
            __m256i tm = tail_mask(cols - c);
            _mm256_maskstore_ps(sr + c, tm, softcap8(_mm256_maskload_ps(sr + c, tm), vcap));
        }
    }
}

/* 32 mask bytes (or 8 floats) at a time: a lane is masked when its byte is 0
 * (or its float is -inf); rows are checked for `enough` after each one. */
AVX2_FN int a_mask_tile_visibility(int kind, int rows, int cols,
                                   const void *mask, ptrdiff_t ldm, int enough) {
    int seen = 0;
    for (int r = 0; r < rows; r++) {
        int c = 0;
        if (kind == SDPA_MASK_BOOL) {
            const uint8_t *mr = (const uint8_t *)mask + (ptrdiff_t)r * ldm;
            __m256i anyZero = _mm256_setzero_si256(), allZero = _mm256_set1_epi8(-1);
            for (; c + 32 <= cols; c += 32) {
                __m256i z = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(mr + c)),
                                              _mm256_setzero_si256());
                anyZero = _mm256_or_si256(anyZero, z);
                allZero = _mm256_and_si256(allZero, z);
            }
            if (c > 0) {
                if (!_mm256_testz_si256(anyZero, anyZero)) seen |= SDPA_MASK_SEEN_MASKED;
                if (!_mm256_testc_si256(allZero, _mm256_set1_epi8(-1))) seen |= SDPA_MASK_SEEN_VISIBLE;
            }
            for (; c < cols; c++) seen |= mr[c] == 0 ? SDPA_MASK_SEEN_MASKED : SDPA_MASK_SEEN_VISIBLE;
        } else {
            const float *mr = (const float *)mask + (ptrdiff_t)r * ldm;
            const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
            int anyMasked = 0, anyVisible = 0;
            for (; c + 8 <= cols; c += 8) {
                int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(mr + c), ninf, _CMP_EQ_OQ));
                anyMasked |= m != 0;
                anyVisible |= m != 0xFF;
            }
            if (anyMasked) seen |= SDPA_MASK_SEEN_MASKED;
            if (anyVisible) seen |= SDPA_MASK_SEEN_VISIBLE;
            for (; c < cols; c++)
                seen |= mr[c] == -__builtin_inff() ? SDPA_MASK_SEEN_MASKED : SDPA_MASK_SEEN_VISIBLE;
        }
        if ((seen & enough) == enough) break;
    }
    return seen;
}

const sdpa_kernel_table sdpa_avx2_table = {
    "avx2",
    a_qk_tile, a_qk_tile_masked, a_qk_tile_direct, a_pv_tile,
    a_pack_kt_f32, a_pack_kt_f16, a_pack_kt_bf16,
    a_f16_to_f32, a_f32_to_f16, a_bf16_to_f32, a_f32_to_bf16,
    a_softmax_tile, a_normalize_tile, a_exp_f32,
    a_mask_tile_bool, a_add_mask_tile_f32, a_softcap_tile,
    a_mask_tile_visibility,
};

#endif /* x86-64 */
