/* Portable C implementation.  Written so that clang/gcc auto-vectorize the
 * hot loops at -O2 for whatever baseline ISA the target has (SSE2 on
 * x86-64, NEON on arm64): fixed-width inner loops over local accumulator
 * arrays, branchless exp. */
#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#include <math.h>

#define P_MR 4
#define P_NR 16

/* C[r][c] (= scale * | +=) sum_k A[r][k] * B[k][c] over an mr x nr block,
 * generic edges. */
static void p_block_edge(int mr, int nr, int K, const float *A, ptrdiff_t lda,
                         const float *B, ptrdiff_t ldb, float *C,
                         ptrdiff_t ldc, float scale, int accumulate) {
    for (int i = 0; i < mr; i++) {
        float acc[P_NR];
        for (int j = 0; j < P_NR; j++) acc[j] = 0.0f;
        for (int k = 0; k < K; k++) {
            float a = A[i * lda + k];
            const float *b = B + (ptrdiff_t)k * ldb;
            for (int j = 0; j < nr; j++) acc[j] += a * b[j];
        }
        float *c = C + i * ldc;
        if (accumulate)
            for (int j = 0; j < nr; j++) c[j] += acc[j];
        else
            for (int j = 0; j < nr; j++) c[j] = scale * acc[j];
    }
}

static void p_block_full(int K, const float *A, ptrdiff_t lda, const float *B,
                         ptrdiff_t ldb, float *C, ptrdiff_t ldc, float scale,
                         int accumulate) {
    float acc[P_MR][P_NR];
    for (int i = 0; i < P_MR; i++)
        for (int j = 0; j < P_NR; j++) acc[i][j] = 0.0f;
    for (int k = 0; k < K; k++) {
        const float *b = B + (ptrdiff_t)k * ldb;
        for (int i = 0; i < P_MR; i++) {
            float a = A[i * lda + k];
            for (int j = 0; j < P_NR; j++) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < P_MR; i++) {
        float *c = C + i * ldc;
        if (accumulate)
            for (int j = 0; j < P_NR; j++) c[j] += acc[i][j];
        else
            for (int j = 0; j < P_NR; j++) c[j] = scale * acc[i][j];
    }
}

static void p_gemm(int M, int N, int K, const float *A, ptrdiff_t lda,
                   const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                   float scale, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K < 0) K = 0;
    for (int j = 0; j < N; j += P_NR) {
        int nr = N - j < P_NR ? N - j : P_NR;
        int i = 0;
        if (nr == P_NR)
            for (; i + P_MR <= M; i += P_MR)
                p_block_full(K, A + i * lda, lda, B + j, ldb, C + i * ldc + j,
                             ldc, scale, accumulate);
        for (; i < M; i += P_MR) {
            int mr = M - i < P_MR ? M - i : P_MR;
            p_block_edge(mr, nr, K, A + i * lda, lda, B + j, ldb,
                         C + i * ldc + j, ldc, scale, accumulate);
        }
    }
}

/* The maximum of a row's scores; NaN scores are skipped.  8 independent
 * partial maxima so the loop vectorizes without -ffast-math. */
static float p_row_max(const float *sr, int cols) {
    float mp[8];
    for (int j = 0; j < 8; j++) mp[j] = -__builtin_inff();
    int c = 0;
    for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; j++)
            mp[j] = sr[c + j] > mp[j] ? sr[c + j] : mp[j];
    for (; c < cols; c++) mp[0] = sr[c] > mp[0] ? sr[c] : mp[0];
    float m = mp[0];
    for (int j = 1; j < 8; j++) m = mp[j] > m ? mp[j] : m;
    return m;
}

static void p_qk_tile(int rows, int cols, int depth, const float *q,
                      ptrdiff_t ldq, const float *kt, ptrdiff_t ldkt,
                      float scale, float *s, ptrdiff_t lds, float *tileMax) {
    p_gemm(rows, cols, depth, q, ldq, kt, ldkt, s, lds, scale, 0);
    if (tileMax)
        for (int r = 0; r < rows; r++) tileMax[r] = p_row_max(s + (ptrdiff_t)r * lds, cols);
}

static void p_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds,
                             const uint8_t *mask, ptrdiff_t ldm);
static void p_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds,
                                const float *mask, ptrdiff_t ldm);

static void p_qk_tile_masked(int rows, int cols, int depth, const float *q,
                             ptrdiff_t ldq, const float *kt, ptrdiff_t ldkt,
                             float scale, float *s, ptrdiff_t lds, int kind,
                             const void *mask, ptrdiff_t ldm, float *tileMax) {
    p_gemm(rows, cols, depth, q, ldq, kt, ldkt, s, lds, scale, 0);
    if (kind == SDPA_MASK_BOOL)
        p_mask_tile_bool(rows, cols, s, lds, (const uint8_t *)mask, ldm);
    else
        p_add_mask_tile_f32(rows, cols, s, lds, (const float *)mask, ldm);
    if (tileMax)
        for (int r = 0; r < rows; r++) tileMax[r] = p_row_max(s + (ptrdiff_t)r * lds, cols);
}

static void p_qk_tile_direct(int rows, int cols, int depth, const float *q,
                             ptrdiff_t ldq, int kind, const void *k,
                             ptrdiff_t ldk, float scale, float *s,
                             ptrdiff_t lds, float *tileMax) {
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (ptrdiff_t)r * ldq;
        for (int c = 0; c < cols; c++) {
            float sum = 0.0f;
            for (int e = 0; e < depth; e++) {
                ptrdiff_t i = (ptrdiff_t)c * ldk + e;
                float kv = kind == SDPA_ELEMENT_F16 ? sdpa_half_to_float(((const uint16_t *)k)[i])
                         : kind == SDPA_ELEMENT_BF16 ? sdpa_bf16_to_float(((const uint16_t *)k)[i])
                         : ((const float *)k)[i];
                sum += qr[e] * kv;
            }
            s[(ptrdiff_t)r * lds + c] = scale * sum;
        }
        if (tileMax) tileMax[r] = p_row_max(s + (ptrdiff_t)r * lds, cols);
    }
}

static void p_pv_tile(int rows, int cols, int dv, const float *p,
                      ptrdiff_t ldp, const float *v, ptrdiff_t ldv, float *o,
                      ptrdiff_t ldo) {
    p_gemm(rows, dv, cols, p, ldp, v, ldv, o, ldo, 1.0f, 1);
}

/* ---- packing: blocked transpose for cache friendliness ---- */
#define P_TB 8
static void p_pack_kt_f32(int cols, int depth, const float *k, ptrdiff_t ldk,
                          float *kt, ptrdiff_t ldkt) {
    for (int c0 = 0; c0 < cols; c0 += P_TB)
        for (int e0 = 0; e0 < depth; e0 += P_TB) {
            int c1 = c0 + P_TB < cols ? c0 + P_TB : cols;
            int e1 = e0 + P_TB < depth ? e0 + P_TB : depth;
            for (int e = e0; e < e1; e++)
                for (int c = c0; c < c1; c++)
                    kt[e * ldkt + c] = k[c * ldk + e];
        }
}
static void p_pack_kt_f16(int cols, int depth, const uint16_t *k,
                          ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    for (int c0 = 0; c0 < cols; c0 += P_TB)
        for (int e0 = 0; e0 < depth; e0 += P_TB) {
            int c1 = c0 + P_TB < cols ? c0 + P_TB : cols;
            int e1 = e0 + P_TB < depth ? e0 + P_TB : depth;
            for (int e = e0; e < e1; e++)
                for (int c = c0; c < c1; c++)
                    kt[e * ldkt + c] = sdpa_half_to_float(k[c * ldk + e]);
        }
}
static void p_pack_kt_bf16(int cols, int depth, const uint16_t *k,
                           ptrdiff_t ldk, float *kt, ptrdiff_t ldkt) {
    for (int c0 = 0; c0 < cols; c0 += P_TB)
        for (int e0 = 0; e0 < depth; e0 += P_TB) {
            int c1 = c0 + P_TB < cols ? c0 + P_TB : cols;
            int e1 = e0 + P_TB < depth ? e0 + P_TB : depth;
            for (int e = e0; e < e1; e++)
                for (int c = c0; c < c1; c++)
                    kt[e * ldkt + c] = sdpa_bf16_to_float(k[c * ldk + e]);
        }
}

/* ---- converters ---- */
static void p_f16_to_f32(size_t n, const uint16_t *src, float *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = sdpa_half_to_float(src[i]);
}
static void p_f32_to_f16(size_t n, const float *src, uint16_t *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = sdpa_float_to_half(src[i]);
}
static void p_bf16_to_f32(size_t n, const uint16_t *src, float *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = sdpa_bf16_to_float(src[i]);
}
static void p_f32_to_bf16(size_t n, const float *src, uint16_t *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = sdpa_float_to_bf16(src[i]);
}

/* ---- softmax ---- */
static void p_exp_f32(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = sdpa_exp_scalar(x[i]);
}

static void p_softmax_tile(int rows, int cols, float *s, ptrdiff_t lds,
                           const float *tileMax, float *rowMax, float *rowSum,
                           float *o, ptrdiff_t ldo, int dv) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        float mOld = rowMax[r];
        float m = tileMax ? tileMax[r] : p_row_max(sr, cols); /* NaN ignored */
        float mNew = m > mOld ? m : mOld;
        float mUse = (mNew == -__builtin_inff()) ? 0.0f : mNew;
        int c;
        for (c = 0; c < cols; c++) sr[c] = sdpa_exp_scalar(sr[c] - mUse);
        /* 8 partial sums, as in p_row_max: vectorizes without reassociation. */
        float sp[8];
        for (int j = 0; j < 8; j++) sp[j] = 0.0f;
        for (c = 0; c + 8 <= cols; c += 8)
            for (int j = 0; j < 8; j++) sp[j] += sr[c + j];
        for (; c < cols; c++) sp[0] += sr[c];
        float sum = ((sp[0] + sp[1]) + (sp[2] + sp[3])) +
                    ((sp[4] + sp[5]) + (sp[6] + sp[7]));
        float alpha = sdpa_exp_scalar(mOld - mUse);
        rowSum[r] = rowSum[r] * alpha + sum;
        if (alpha != 1.0f && mOld != -__builtin_inff() && dv > 0) {
            float *orow = o + (ptrdiff_t)r * ldo;
            for (int d = 0; d < dv; d++) orow[d] *= alpha;
        }
        rowMax[r] = mNew;
    }
}

static void p_normalize_tile(int rows, int dv, float *o, ptrdiff_t ldo,
                             const float *rowSum) {
    for (int r = 0; r < rows; r++) {
        float *orow = o + (ptrdiff_t)r * ldo;
        float l = rowSum[r];
        if (l == 0.0f) {
            for (int d = 0; d < dv; d++) orow[d] = 0.0f;
        } else {
            float inv = 1.0f / l;
            for (int d = 0; d < dv; d++) orow[d] *= inv;
        }
    }
}

/* ---- masks and soft-capping ---- */
static void p_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds,
                             const uint8_t *mask, ptrdiff_t ldm) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const uint8_t *mr = mask + (ptrdiff_t)r * ldm;
        for (int c = 0; c < cols; c++)
            sr[c] = mr[c] != 0 ? sr[c] : -__builtin_inff();
    }
}

static void p_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds,
                                const float *mask, ptrdiff_t ldm) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        const float *mr = mask + (ptrdiff_t)r * ldm;
        for (int c = 0; c < cols; c++) {
            float m = mr[c];
            sr[c] = m == -__builtin_inff() ? m : sr[c] + m;
        }
    }
}

static void p_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds,
                           float cap) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        for (int c = 0; c < cols; c++) {
            float x = sr[c], u = x / cap;
            if (x == -__builtin_inff()) continue;
            /* |u| < 2^-12: tanh(u) = u (1 - u^2/3 ...) and the result is x to
             * within 1/3 ulp; cap * (x / cap) would lose the low bits of a
             * subnormal x. */
            sr[c] = fabsf(u) < 0x1p-12f ? x : cap * tanhf(u);
        }
    }
}

static int p_mask_tile_visibility(int kind, int rows, int cols,
                                  const void *mask, ptrdiff_t ldm, int enough) {
    int seen = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            int masked = kind == SDPA_MASK_BOOL
                             ? ((const uint8_t *)mask)[(ptrdiff_t)r * ldm + c] == 0
                             : ((const float *)mask)[(ptrdiff_t)r * ldm + c] == -__builtin_inff();
            seen |= masked ? SDPA_MASK_SEEN_MASKED : SDPA_MASK_SEEN_VISIBLE;
        }
        if ((seen & enough) == enough) break;
    }
    return seen;
}

const sdpa_kernel_table sdpa_portable_table = {
    "portable",
    p_qk_tile, p_qk_tile_masked, p_qk_tile_direct, p_pv_tile,
    p_pack_kt_f32, p_pack_kt_f16, p_pack_kt_bf16,
    p_f16_to_f32, p_f32_to_f16, p_bf16_to_f32, p_f32_to_bf16,
    p_softmax_tile, p_normalize_tile, p_exp_f32,
    p_mask_tile_bool, p_add_mask_tile_f32, p_softcap_tile,
    p_mask_tile_visibility,
};
