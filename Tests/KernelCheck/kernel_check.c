/* Checks every entry point of every kernel family this CPU runs against a
 * reference in double, through the public C API only.  Built natively by
 * run.sh (every x86-64 family) and cross-compiled for arm64 and run under
 * qemu (the neon family), where Swift cannot run.  Exit status 0: no
 * mismatch; 1: mismatches (the first few printed per check). */
#include "CSDPAKernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, reported;
static const char *family;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            if (reported++ < 25) {                                            \
                printf("  [%s] %s:%d: ", family, __func__, __LINE__);         \
                printf(__VA_ARGS__);                                          \
                printf("\n");                                                 \
            }                                                                 \
        }                                                                     \
    } while (0)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double uniform(void) { /* [0, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}
static float randf(float lo, float hi) { return (float)(lo + (hi - lo) * uniform()); }
static float *buffer(size_t n, float fill) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = fill;
    return p;
}
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static const float GUARD = 12345.0f; /* written around outputs: must survive */

/* Half-precision references, written independently of the library. */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}
static double bf16_value(uint16_t b) { return from_bits((uint32_t)b << 16); }
static uint16_t half_bits_of(float f) { /* round to nearest even, by search */
    if (isnan(f)) return 0x7E00;
    uint16_t best = 0;
    double bd = INFINITY;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7C00;
    int lo = 0, hi = 0x7BFF;
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (half_value((uint16_t)mid) <= a) lo = mid; else hi = mid - 1; }
    for (int c = lo; c <= lo + 1 && c <= 0x7C00; c++) {
        double d = fabs(half_value((uint16_t)c) - a);
        if (d < bd || (d == bd && (c & 1) == 0)) { bd = d; best = (uint16_t)c; }
    }
    return sign | best;
}

/* ---- Q.K^T ------------------------------------------------------------ */
static void check_qk(int rows, int cols, int depth, int masked, int maskKind, int ldmZero) {
    const ptrdiff_t ldq = depth + 3, ldkt = cols + 5, lds = cols + 7, ldm = ldmZero ? 0 : cols + 2;
    float *q = buffer((size_t)rows * ldq, 0), *kt = buffer((size_t)depth * ldkt + 1, 0);
    float *s = buffer((size_t)rows * lds + 8, GUARD), *tmax = buffer((size_t)rows + 1, GUARD);
    uint8_t *mb = malloc((size_t)(ldmZero ? 1 : rows) * (cols + 2) + 1);
    float *mf = buffer((size_t)(ldmZero ? 1 : rows) * (cols + 2) + 1, 0);
    for (int r = 0; r < rows; r++) for (int e = 0; e < depth; e++) q[r * ldq + e] = randf(-1, 1);
    for (int e = 0; e < depth; e++) for (int c = 0; c < cols; c++) kt[e * ldkt + c] = randf(-1, 1);
    for (int r = 0; r < (ldmZero ? 1 : rows); r++)
        for (int c = 0; c < cols; c++) {
            mb[r * (cols + 2) + c] = uniform() < 0.3 ? 0 : (uint8_t)(1 + (int)(uniform() * 200));
            double u = uniform();
            mf[r * (cols + 2) + c] = u < 0.3 ? -INFINITY : randf(-3, 3);
        }
    const float scale = 0.37f;
    if (!masked)
        sdpa_qk_tile(rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, tmax);
    else
        sdpa_qk_tile_masked(rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, maskKind,
                            maskKind == SDPA_MASK_BOOL ? (const void *)mb : (const void *)mf, ldm, tmax);
    for (int r = 0; r < rows; r++) {
        float mx = -INFINITY;
        for (int c = 0; c < lds; c++) {
            float got = s[r * lds + c];
            if (c >= cols) { CHECK(got == GUARD, "qk wrote past the tile: r %d c %d", r, c); continue; }
            double ref = 0, mag = 0;
            for (int e = 0; e < depth; e++) {
                ref += (double)q[r * ldq + e] * kt[e * ldkt + c];
                mag += fabs((double)q[r * ldq + e] * kt[e * ldkt + c]);
            }
            ref *= scale; mag *= scale;
            if (masked) {
                const ptrdiff_t mi = (ptrdiff_t)r * ldm + c;
                if (maskKind == SDPA_MASK_BOOL) { if (mb[mi] == 0) ref = -INFINITY; }
                else if (mf[mi] == -INFINITY) ref = -INFINITY;
                else { ref += mf[mi]; mag += fabs(mf[mi]); }
            }
            if (isinf(ref)) CHECK(got == ref, "qk r %d c %d: %g, want %g", r, c, got, ref);
            else CHECK(fabs(got - ref) <= (depth + 4) * 1.2e-7 * mag + 1e-30,
                       "qk rows %d cols %d depth %d masked %d: r %d c %d got %.9g want %.9g", rows, cols, depth, masked, r, c, got, ref);
            if (got > mx) mx = got;
        }
        CHECK(bits(tmax[r]) == bits(mx), "qk tileMax r %d: %g, the stored maximum is %g", r, tmax[r], mx);
    }
    CHECK(tmax[rows] == GUARD, "tileMax written past its rows");
    free(q); free(kt); free(s); free(tmax); free(mb); free(mf);
}

/* A direct reader's scores (scale * Q K^T, q and k rows of `depth` floats
 * at strides ldq and ldk) against double, nothing written past the tile,
 * and its row maxima the stored scores' exactly. */
static void check_direct_scores(const char *what, int kind, int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                                const float *k, ptrdiff_t ldk, double scale, const float *s, ptrdiff_t lds, const float *tmax) {
    for (int r = 0; r < rows; r++) {
        float mx = -INFINITY;
        for (int c = 0; c < lds; c++) {
            if (c >= cols) { CHECK(s[r * lds + c] == GUARD, "%s wrote past the tile", what); continue; }
            double ref = 0, mag = 0;
            for (int e = 0; e < depth; e++) { ref += (double)q[r * ldq + e] * k[c * ldk + e]; mag += fabs((double)q[r * ldq + e] * k[c * ldk + e]); }
            CHECK(fabs(s[r * lds + c] - scale * ref) <= (depth + 4) * 1.2e-7 * scale * mag + 1e-30,
                  "%s kind %d rows %d cols %d depth %d: r %d c %d got %.9g want %.9g", what, kind, rows, cols, depth, r, c, s[r * lds + c], scale * ref);
            if (s[r * lds + c] > mx) mx = s[r * lds + c];
        }
        CHECK(bits(tmax[r]) == bits(mx), "%s tileMax r %d: %g vs %g", what, r, tmax[r], mx);
    }
}

static void check_qk_direct(int rows, int cols, int depth, sdpa_element_kind kind) {
    const ptrdiff_t ldq = depth + 1, ldk = depth + 2, lds = cols + 3;
    float *q = buffer((size_t)rows * ldq, 0), *kf = buffer((size_t)cols * ldk, 0);
    uint16_t *kh = malloc(sizeof *kh * ((size_t)cols * ldk + 1));
    float *s = buffer((size_t)rows * lds, GUARD), *tmax = buffer((size_t)rows, 0);
    for (int r = 0; r < rows; r++) for (int e = 0; e < depth; e++) q[r * ldq + e] = randf(-1, 1);
    for (int c = 0; c < cols; c++)
        for (int e = 0; e < ldk; e++) {
            float x = randf(-1, 1);
            if (kind == SDPA_ELEMENT_F16) { kh[c * ldk + e] = half_bits_of(x); kf[c * ldk + e] = (float)half_value(kh[c * ldk + e]); }
            else if (kind == SDPA_ELEMENT_BF16) { kh[c * ldk + e] = (uint16_t)(bits(x) >> 16); kf[c * ldk + e] = (float)bf16_value(kh[c * ldk + e]); }
            else kf[c * ldk + e] = x;
        }
    sdpa_qk_tile_direct(rows, cols, depth, q, ldq, kind, kind == SDPA_ELEMENT_F32 ? (const void *)kf : (const void *)kh,
                        ldk, 0.5f, s, lds, tmax);
    check_direct_scores("qk_direct", kind, rows, cols, depth, q, ldq, kf, ldk, 0.5, s, lds, tmax);
    free(q); free(kf); free(kh); free(s); free(tmax);
}

/* The direct reader through the operand API, as decoding calls it: query
 * rows of `kind` prepared in the family's layout (bfloat16 pairs multiply
 * the stored keys as pairs), keys and values named by row lists (a paged
 * cache's), the values prefetched; then O += P V with the values as stored,
 * whose bits must be sdpa_accumulate's in SDPA_LAYOUT_F32. */
static void check_direct_operands(sdpa_element_kind kind, int rows, int cols, int depth, int dv) {
    const sdpa_operand_layout layout = sdpa_layout_for(kind);
    const int es = kind == SDPA_ELEMENT_F32 ? 4 : 2;
    const ptrdiff_t lds = cols + 5, ldo = dv + 3;
    float *qf = buffer((size_t)rows * depth + 1, 0), *kf = buffer((size_t)cols * depth + 1, 0), *vf_ = buffer((size_t)cols * dv + 1, 0);
    char *qs = malloc((size_t)es * rows * depth + 2), *ks = malloc((size_t)es * cols * (depth + 1) + 2), *vs = malloc((size_t)es * cols * (dv + 1) + 2);
    const void **krows = malloc(sizeof(void *) * (size_t)(cols + 1)), **vrows = malloc(sizeof(void *) * (size_t)(cols + 1));
    void *prepared = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_QUERY, rows, depth) + 64);
    float *s = buffer((size_t)rows * lds, GUARD), *tmax = buffer((size_t)rows + 1, GUARD);
    float *o = buffer((size_t)rows * ldo, 0), *o2 = buffer((size_t)rows * ldo, 0), *packed = buffer((size_t)cols * dv + 1, 0);
    #define STORE(dst, i, x, ref) do { float x_ = (x);                                                         \
        if (kind == SDPA_ELEMENT_F16) { uint16_t h = half_bits_of(x_); memcpy((dst) + 2 * (i), &h, 2); (ref) = (float)half_value(h); } \
        else if (kind == SDPA_ELEMENT_BF16) { uint16_t b = (uint16_t)(bits(x_) >> 16); memcpy((dst) + 2 * (i), &b, 2); (ref) = (float)bf16_value(b); } \
        else { memcpy((dst) + 4 * (i), &x_, 4); (ref) = x_; } } while (0)
    for (int i = 0; i < rows * depth; i++) STORE(qs, i, randf(-1, 1), qf[i]);
    /* keys and values in reverse row order, one element apart, named by lists */
    for (int c = 0; c < cols; c++) {
        const int slot = cols - 1 - c;
        krows[c] = ks + (size_t)es * slot * (depth + 1);
        vrows[c] = vs + (size_t)es * slot * (dv + 1);
        for (int e = 0; e < depth; e++) STORE((char *)krows[c], e, randf(-1, 1), kf[c * depth + e]);
        for (int d = 0; d < dv; d++) STORE((char *)vrows[c], d, randf(-1, 1), vf_[c * dv + d]);
    }
    #undef STORE
    ptrdiff_t ldq = 0;
    const void *q = sdpa_prepare_query(layout, kind, rows, depth, qs, depth, 1.0f, prepared, &ldq);
    const sdpa_rows k = {NULL, 0, krows}, v = {NULL, 0, vrows};
    sdpa_scores_direct(layout, rows, cols, depth, q, ldq, kind, k, 0.75f, s, lds, tmax, v, dv);
    check_direct_scores("scores_direct", kind, rows, cols, depth, qf, depth, kf, depth, 0.75, s, lds, tmax);
    CHECK(tmax[rows] == GUARD, "scores_direct tileMax written past its rows");
    /* P.V: the probabilities are the scores' magnitudes, O starts non-zero */
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) s[r * lds + c] = fabsf(s[r * lds + c]) / (float)(cols + depth);
        for (int d = 0; d < dv; d++) o[r * ldo + d] = o2[r * ldo + d] = randf(-1, 1);
    }
    /* half the cases with a next tile to prefetch (these rows again: the keys by list, the values strided):
     * the prefetches change no bits */
    const sdpa_next_tile next = {k, {vs, dv + 1, NULL}, cols, depth};
    sdpa_accumulate_direct(rows, cols, dv, s, lds, kind, v, o, ldo, (rows + cols) % 2 ? &next : NULL);
    ptrdiff_t ldv = 0;
    const void *values = sdpa_pack_values(SDPA_LAYOUT_F32, kind, cols, dv, v, packed, &ldv);
    sdpa_accumulate(SDPA_LAYOUT_F32, rows, cols, dv, s, lds, values, ldv, o2, ldo);
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < ldo; d++) {
            if (d >= dv) { CHECK(o[r * ldo + d] == 0, "accumulate_direct wrote past the row"); continue; }
            double ref = o2[r * ldo + d];
            CHECK(bits(o[r * ldo + d]) == bits(o2[r * ldo + d]), "accumulate_direct kind %d rows %d cols %d dv %d: r %d d %d got %.9g, packed %.9g",
                  kind, rows, cols, dv, r, d, o[r * ldo + d], ref);
        }
    free(qf); free(kf); free(vf_); free(qs); free(ks); free(vs); free(krows); free(vrows); free(prepared);
    free(s); free(tmax); free(o); free(o2); free(packed);
}

/* The operand API: query rows prepared (scaled by a power of two), keys and
 * values packed in the family's layout for the element kind, then scores
 * and P.V against double, for every kind. */
static void check_operands(sdpa_element_kind kind, int rows, int cols, int depth, int dv, int maskKind) {
    const sdpa_operand_layout layout = sdpa_layout_for(kind);
    const ptrdiff_t ldq = depth + 1, ldk = depth + 3, ldv = dv + 2, lds = cols + 4, ldo = dv + 1, ldm = cols;
    const size_t esize = kind == SDPA_ELEMENT_F32 ? 4 : 2;
    char *q = malloc(esize * rows * ldq + 4), *k = malloc(esize * cols * ldk + 4), *v = malloc(esize * cols * ldv + 4);
    float *qf = buffer((size_t)rows * ldq, 0), *kf = buffer((size_t)cols * ldk, 0), *vf_ = buffer((size_t)cols * ldv, 0);
    /* inputs exactly representable in the kind */
    for (int pass = 0; pass < 3; pass++) {
        char *dst = pass == 0 ? q : pass == 1 ? k : v;
        float *ref = pass == 0 ? qf : pass == 1 ? kf : vf_;
        const int n = pass == 0 ? rows * (int)ldq : pass == 1 ? cols * (int)ldk : cols * (int)ldv;
        for (int i = 0; i < n; i++) {
            float x = randf(-1, 1);
            if (kind == SDPA_ELEMENT_F16) { uint16_t h = half_bits_of(x); memcpy(dst + 2 * i, &h, 2); ref[i] = (float)half_value(h); }
            else if (kind == SDPA_ELEMENT_BF16) { uint16_t b = (uint16_t)(bits(x) >> 16); memcpy(dst + 2 * i, &b, 2); ref[i] = (float)bf16_value(b); }
            else { memcpy(dst + 4 * i, &x, 4); ref[i] = x; }
        }
    }
    void *qbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_QUERY, rows, depth) + 64);
    void *kbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_KEYS, cols, depth) + 64);
    void *vbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, cols, dv) + 64);
    ptrdiff_t lq = 0, lv = 0;
    const float qscale = 0.25f, scale = 1.3f;
    const void *qp = sdpa_prepare_query(layout, kind, rows, depth, q, ldq, qscale, qbuf, &lq);
    /* keys named row by row (as a paged cache does) give the same packed tile */
    const void **krows = malloc(sizeof *krows * (cols + 1));
    for (int c = 0; c < cols; c++) krows[c] = k + esize * c * ldk;
    const sdpa_rows kr = {k, ldk, NULL}, kl = {NULL, 0, krows};
    const size_t kbytes = sdpa_operand_bytes(layout, SDPA_OPERAND_KEYS, cols, depth);
    void *kbuf2 = malloc(kbytes + 64);
    memset(kbuf, 0, kbytes); /* padding columns are never written: the same in both */
    memset(kbuf2, 0, kbytes);
    sdpa_pack_keys(layout, kind, cols, depth, kr, kbuf);
    sdpa_pack_keys(layout, kind, cols, depth, kl, kbuf2);
    CHECK(memcmp(kbuf, kbuf2, kbytes) == 0, "keys packed from row addresses differ (kind %d, cols %d, depth %d)", kind, cols, depth);
    float *s = buffer((size_t)rows * lds, GUARD), *tmax = buffer(rows, 0);
    uint8_t *mb = malloc((size_t)rows * ldm + 1);
    for (int i = 0; i < rows * ldm; i++) mb[i] = uniform() < 0.3 ? 0 : 1;
    sdpa_scores(layout, rows, cols, depth, qp, lq, kbuf, scale, s, lds, maskKind, mb, ldm, tmax);
    for (int r = 0; r < rows; r++) {
        float mx = -INFINITY;
        for (int c = 0; c < lds; c++) {
            if (c >= cols) { CHECK(s[r * lds + c] == GUARD, "scores wrote past the tile"); continue; }
            double ref = 0, mag = 0;
            for (int e = 0; e < depth; e++) { ref += (double)qf[r * ldq + e] * kf[c * ldk + e]; mag += fabs((double)qf[r * ldq + e] * kf[c * ldk + e]); }
            ref *= qscale * scale; mag *= qscale * scale;
            if (maskKind == SDPA_MASK_BOOL && mb[r * ldm + c] == 0) ref = -INFINITY;
            CHECK(isinf(ref) ? s[r * lds + c] == ref : fabs(s[r * lds + c] - ref) <= (depth + 4) * 1.2e-7 * mag + 1e-30,
                  "scores kind %d layout %d rows %d cols %d depth %d: r %d c %d got %.9g want %.9g", kind, layout, rows, cols, depth, r, c, s[r * lds + c], ref);
            if (s[r * lds + c] > mx) mx = s[r * lds + c];
        }
        CHECK(bits(tmax[r]) == bits(mx), "scores tileMax r %d", r);
    }
    /* P.V with probabilities in [0, 1] */
    float *p = buffer((size_t)rows * lds, 0), *o = buffer((size_t)rows * ldo, GUARD);
    double *ref = calloc((size_t)rows * dv + 1, sizeof *ref), *mag = calloc((size_t)rows * dv + 1, sizeof *mag);
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) p[r * lds + c] = randf(0, 1);
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < dv; d++) {
            o[r * ldo + d] = 0.5f;
            ref[r * dv + d] = 0.5; mag[r * dv + d] = 0.5;
            for (int c = 0; c < cols; c++) { ref[r * dv + d] += (double)p[r * lds + c] * vf_[c * ldv + d]; mag[r * dv + d] += fabs((double)p[r * lds + c] * vf_[c * ldv + d]); }
        }
    const sdpa_rows vr = {v, ldv, NULL};
    const void *vp = sdpa_pack_values(layout, kind, cols, dv, vr, vbuf, &lv);
    sdpa_accumulate(layout, rows, cols, dv, p, lds, vp, lv, o, ldo);
    /* bfloat16 pairs round P to bfloat16: 2^-9 relative per term */
    const double rel = layout == SDPA_LAYOUT_BF16_PAIRS ? 0x1p-8 : 0;
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < ldo; d++) {
            if (d >= dv) { CHECK(o[r * ldo + d] == GUARD, "accumulate wrote past the tile"); continue; }
            CHECK(fabs(o[r * ldo + d] - ref[r * dv + d]) <= ((cols + 4) * 1.2e-7 + rel) * mag[r * dv + d],
                  "accumulate kind %d layout %d rows %d cols %d dv %d: r %d d %d got %.9g want %.9g", kind, layout, rows, cols, dv, r, d, o[r * ldo + d], ref[r * dv + d]);
        }
    free(q); free(k); free(v); free(qf); free(kf); free(vf_); free(qbuf); free(kbuf); free(vbuf); free(krows); free(kbuf2);
    free(s); free(tmax); free(mb); free(p); free(o); free(ref); free(mag);
}

/* sdpa_attend gives the bits of sdpa_scores, sdpa_softmax_tile and
 * sdpa_accumulate called in turn, over two key tiles (the second rescales
 * the first's output), and touches no output past its rows x dv. */
static void check_attend(sdpa_element_kind kind, int rows, int cols, int depth, int dv, int maskKind, float scale) {
    const sdpa_operand_layout layout = sdpa_layout_for(kind);
    const size_t esize = kind == SDPA_ELEMENT_F32 ? 4 : 2;
    const ptrdiff_t ldq = depth + 1, ldm = cols + 2, lds = cols + 3, ldo = dv + 2;
    char *q = malloc(esize * rows * ldq + 4), *k = malloc(esize * 2 * cols * depth + 4), *v = malloc(esize * 2 * cols * dv + 4);
    for (int pass = 0; pass < 3; pass++) {
        char *dst = pass == 0 ? q : pass == 1 ? k : v;
        const size_t n = pass == 0 ? (size_t)rows * ldq : pass == 1 ? (size_t)2 * cols * depth : (size_t)2 * cols * dv;
        for (size_t i = 0; i < n; i++) {
            const float x = pass == 2 ? randf(-1, 1) : randf(-3, 3);
            const uint16_t h = kind == SDPA_ELEMENT_F16 ? half_bits_of(x) : (uint16_t)(bits(x) >> 16);
            memcpy(dst + esize * i, kind == SDPA_ELEMENT_F32 ? (const void *)&x : (const void *)&h, esize);
        }
    }
    void *mask = malloc((size_t)rows * ldm * 4 + 4);
    for (int i = 0; i < rows * (int)ldm; i++) {
        if (maskKind == SDPA_MASK_BOOL) ((uint8_t *)mask)[i] = uniform() < 0.3 ? 0 : 1;
        else ((float *)mask)[i] = uniform() < 0.2 ? -INFINITY : randf(-2, 2);
    }
    void *qbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_QUERY, rows, depth) + 64);
    void *kbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_KEYS, cols, depth) + 64);
    void *vbuf = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, cols, dv) + 64);
    ptrdiff_t lq = 0, lv = 0;
    const void *qp = sdpa_prepare_query(layout, kind, rows, depth, q, ldq, 0.5f, qbuf, &lq);
    float *o[2], *m[2], *l[2], *sc = buffer((size_t)rows * lds, 0), *tm = buffer(rows, 0);
    for (int w = 0; w < 2; w++) {
        o[w] = buffer((size_t)rows * ldo, GUARD); m[w] = buffer(rows, -INFINITY); l[w] = buffer(rows, 0);
        for (int r = 0; r < rows; r++) for (int d = 0; d < dv; d++) o[w][r * ldo + d] = 0;
    }
    for (int t = 0; t < 2; t++) {
        const sdpa_rows kr = {k + esize * t * cols * depth, depth, NULL}, vr = {v + esize * t * cols * dv, dv, NULL};
        sdpa_pack_keys(layout, kind, cols, depth, kr, kbuf);
        const void *vp = sdpa_pack_values(layout, kind, cols, dv, vr, vbuf, &lv);
        const void *mk = maskKind == SDPA_MASK_NONE ? NULL : mask;
        sdpa_scores(layout, rows, cols, depth, qp, lq, kbuf, scale, sc, lds, maskKind, mk, ldm, tm);
        sdpa_softmax_tile(rows, cols, sc, lds, tm, m[0], l[0], o[0], ldo, dv);
        sdpa_accumulate(layout, rows, cols, dv, sc, lds, vp, lv, o[0], ldo);
        sdpa_attend(layout, rows, cols, depth, dv, qp, lq, kbuf, scale, maskKind, mk, ldm, vp, lv, sc, lds, tm, m[1], l[1], o[1], ldo);
    }
    for (int r = 0; r < rows; r++) {
        CHECK(bits(m[0][r]) == bits(m[1][r]) && bits(l[0][r]) == bits(l[1][r]), "attend kind %d rows %d cols %d: row %d state differs", kind, rows, cols, r);
        for (int d = 0; d < ldo; d++)
            CHECK(bits(o[0][r * ldo + d]) == bits(o[1][r * ldo + d]),
                  "attend kind %d mask %d rows %d cols %d depth %d dv %d: o[%d][%d] %.9g, the three calls %.9g", kind, maskKind, rows, cols,
                  depth, dv, r, d, o[1][r * ldo + d], o[0][r * ldo + d]);
    }
    free(q); free(k); free(v); free(mask); free(qbuf); free(kbuf); free(vbuf); free(sc); free(tm);
    for (int w = 0; w < 2; w++) { free(o[w]); free(m[w]); free(l[w]); }
}

/* ---- P.V ----------------------------------------------------------------- */
static void check_pv(int rows, int cols, int dv) {
    const ptrdiff_t ldp = cols + 1, ldv = dv + 4, ldo = dv + 6;
    float *p = buffer((size_t)rows * ldp, 0), *v = buffer((size_t)cols * ldv, 0), *o = buffer((size_t)rows * ldo, GUARD);
    double *ref = calloc((size_t)rows * dv + 1, sizeof *ref), *mag = calloc((size_t)rows * dv + 1, sizeof *mag);
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) p[r * ldp + c] = randf(0, 1);
    for (int c = 0; c < cols; c++) for (int d = 0; d < dv; d++) v[c * ldv + d] = randf(-2, 2);
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < dv; d++) {
            o[r * ldo + d] = randf(-1, 1);
            ref[r * dv + d] = o[r * ldo + d]; mag[r * dv + d] = fabs(o[r * ldo + d]);
            for (int c = 0; c < cols; c++) { ref[r * dv + d] += (double)p[r * ldp + c] * v[c * ldv + d]; mag[r * dv + d] += fabs((double)p[r * ldp + c] * v[c * ldv + d]); }
        }
    sdpa_pv_tile(rows, cols, dv, p, ldp, v, ldv, o, ldo);
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < ldo; d++) {
            if (d >= dv) { CHECK(o[r * ldo + d] == GUARD, "pv wrote past the tile"); continue; }
            CHECK(fabs(o[r * ldo + d] - ref[r * dv + d]) <= (cols + 4) * 1.2e-7 * mag[r * dv + d],
                  "pv rows %d cols %d dv %d: r %d d %d got %g want %g", rows, cols, dv, r, d, o[r * ldo + d], ref[r * dv + d]);
        }
    free(p); free(v); free(o); free(ref); free(mag);
}

/* ---- packing and conversions --------------------------------------------- */
static void check_pack(int cols, int depth) {
    const ptrdiff_t ldk = depth + 3, ldkt = cols + 5;
    float *k = buffer((size_t)cols * ldk, 0), *kt = buffer((size_t)depth * ldkt, GUARD);
    uint16_t *kh = malloc(sizeof *kh * ((size_t)cols * ldk + 1));
    for (int i = 0; i < cols * ldk; i++) { k[i] = randf(-5, 5); kh[i] = (uint16_t)(bits(k[i]) >> 16); }
    sdpa_pack_kt_f32(cols, depth, k, ldk, kt, ldkt);
    for (int e = 0; e < depth; e++)
        for (int c = 0; c < ldkt; c++)
            CHECK(c < cols ? kt[e * ldkt + c] == k[c * ldk + e] : kt[e * ldkt + c] == GUARD, "pack f32 e %d c %d", e, c);
    sdpa_pack_kt_bf16(cols, depth, kh, ldk, kt, ldkt);
    for (int e = 0; e < depth; e++)
        for (int c = 0; c < cols; c++) CHECK(kt[e * ldkt + c] == (float)bf16_value(kh[c * ldk + e]), "pack bf16 e %d c %d", e, c);
    for (int i = 0; i < cols * ldk; i++) kh[i] = (uint16_t)(uniform() * 0x7BFF) | (uniform() < 0.5 ? 0x8000 : 0);
    sdpa_pack_kt_f16(cols, depth, kh, ldk, kt, ldkt);
    for (int e = 0; e < depth; e++)
        for (int c = 0; c < cols; c++) CHECK(kt[e * ldkt + c] == (float)half_value(kh[c * ldk + e]), "pack f16 e %d c %d", e, c);
    free(k); free(kt); free(kh);
}

static void check_conversions(void) {
    enum { N = 65536 };
    uint16_t *h = malloc(sizeof *h * (N + 3));
    float *f = buffer(N + 3, GUARD);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    for (int n = N; n >= N - 2; n--) {         /* every vector tail */
        f[n] = GUARD;
        sdpa_convert_f16_to_f32((size_t)n, h, f);
        for (int i = 0; i < n; i++) {
            double want = half_value(h[i]);
            CHECK(isnan(want) ? isnan(f[i]) && signbit(f[i]) == !!(h[i] & 0x8000) : f[i] == want && signbit(f[i]) == !!(h[i] & 0x8000),
                  "f16->f32 %04x: %g", h[i], f[i]);
        }
        CHECK(f[n] == GUARD, "f16->f32 wrote past n");
        sdpa_convert_bf16_to_f32((size_t)n, h, f);
        for (int i = 0; i < n; i++)
            CHECK(isnan(bf16_value(h[i])) ? isnan(f[i]) : bits(f[i]) == (uint32_t)h[i] << 16, "bf16->f32 %04x", h[i]);
    }
    /* float -> half / bfloat16: special values, boundaries and random floats */
    float x[4099];
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65519.99f, 65520.0f, 6.1035156e-05f,
                             5.9604645e-08f, 2.9802322e-08f, 2.98023259e-08f, 1e-10f, 3.4e38f, -1.0f, 1.0009765625f};
    const int ns = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < 4099; i++) x[i] = i < ns ? special[i] : from_bits((uint32_t)(uniform() * 4294967295.0));
    uint16_t out[4100];
    out[4099] = 0xABCD;
    sdpa_convert_f32_to_f16(4099, x, out);
    for (int i = 0; i < 4099; i++) {
        if (isnan(x[i])) { CHECK((out[i] & 0x7C00) == 0x7C00 && (out[i] & 0x3FF), "f32->f16 NaN -> %04x", out[i]); continue; }
        CHECK(out[i] == half_bits_of(x[i]), "f32->f16 %.9g: %04x, want %04x", x[i], out[i], half_bits_of(x[i]));
    }
    CHECK(out[4099] == 0xABCD, "f32->f16 wrote past n");
    sdpa_convert_f32_to_bf16(4099, x, out);
    for (int i = 0; i < 4099; i++) {
        if (isnan(x[i])) { CHECK((out[i] & 0x7F80) == 0x7F80 && (out[i] & 0x7F) && ((out[i] >> 15) == (bits(x[i]) >> 31)), "f32->bf16 NaN"); continue; }
        /* nearest even among the two neighbours */
        uint32_t lo = bits(x[i]) & 0xFFFF0000u;
        const uint32_t up = lo + 0x10000u; /* the next bfloat16 away from zero: 2^128 past the largest */
        const double upv = (up & 0x7FFFFFFFu) == 0x7F800000u ? copysign(ldexp(1.0, 128), x[i]) : from_bits(up);
        double a = fabs((double)from_bits(lo) - x[i]), b = fabs(upv - x[i]);
        uint16_t want = (uint16_t)((a < b || (a == b && ((lo >> 16) & 1) == 0) ? lo : lo + 0x10000u) >> 16);
        if (isinf(x[i])) want = (uint16_t)(bits(x[i]) >> 16);
        CHECK(out[i] == want, "f32->bf16 %.9g: %04x, want %04x", x[i], out[i], want);
    }
    free(h); free(f);
}

/* ---- exp, softmax, log-sum-exp, merge -------------------------------------- */
static void check_exp(void) {
    enum { N = 20003 };
    float *x = buffer(N, 0), *y = buffer(N + 1, GUARD);
    for (int i = 0; i < N; i++) x[i] = randf(-100, 90);
    x[0] = -INFINITY; x[1] = INFINITY; x[2] = NAN; x[3] = 0; x[4] = -87.5f; x[5] = 88.7f; x[6] = 89.0f;
    sdpa_exp_f32(N, x, y);
    for (int i = 0; i < N; i++) {
        double want = exp((double)x[i]);
        if (isnan(x[i])) CHECK(isnan(y[i]), "exp(NaN)");
        else if (want > 3.4028234663852886e38) CHECK(y[i] == INFINITY, "exp(%g) = %g", x[i], y[i]);
        else if (want < 1.1754943508222875e-38) CHECK(y[i] >= 0 && y[i] <= 1.2e-38, "exp(%g) = %g", x[i], y[i]);
        else CHECK(fabs(y[i] - want) <= 2.5e-7 * want, "exp(%g) = %.9g, want %.9g", x[i], y[i], want);
    }
    CHECK(y[N] == GUARD, "exp wrote past n");
    free(x); free(y);
}

/* GELU against x/2 (1 + erf(x/sqrt 2)) in double, the specials, odd counts. */
static void check_gelu(void) {
    const int N = 1003;
    float *x = buffer(N, 0), *y = buffer(N + 1, GUARD);
    for (int i = 0; i < N; i++) x[i] = randf(-12, 12);
    x[0] = -INFINITY; x[1] = INFINITY; x[2] = NAN; x[3] = 0; x[4] = -30; x[5] = 1e30f; x[6] = -1e-30f;
    sdpa_gelu_f32(N, x, y);
    for (int i = 0; i < N; i++) {
        const double want = 0.5 * (double)x[i] * (1 + erf((double)x[i] / sqrt(2.0)));
        if (isnan(x[i])) CHECK(isnan(y[i]), "gelu(NaN)");
        else if (isinf(x[i])) CHECK(y[i] == (x[i] > 0 ? INFINITY : 0.0f), "gelu(%g) = %g", x[i], y[i]);
        else CHECK(fabs(y[i] - want) <= 2e-7 * fabs(x[i]) + 1e-7 * fabs(want) + 1e-38, "gelu(%.9g) = %.9g, want %.9g", x[i], y[i], want);
    }
    CHECK(y[N] == GUARD, "gelu wrote past n");
    free(x); free(y);
}

/* Two (or more) key tiles of scores through the online softmax, against the
 * full softmax in double: p (rescaled to the end), the output, the log-sum-exp;
 * and the same keys split in two and merged. */
static void check_softmax(sdpa_kernel_info info, int rows, int cols, int tiles, double spread, double offset) {
    const int dv = 5;
    const ptrdiff_t lds = cols + 2, ldo = dv + 1;
    const int S = cols * tiles;
    float *all = buffer((size_t)rows * S, 0);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < S; j++) {
            double u = uniform();
            all[r * S + j] = r % 7 == 3 ? -INFINITY : u < 0.1 ? -INFINITY : (float)(offset + spread * (uniform() - 0.5) + (r % 5));
        }
    float *v = buffer((size_t)S * dv, 0);
    for (int i = 0; i < S * dv; i++) v[i] = randf(-1, 1);
    /* one pass over every tile, and two halves merged */
    float *o = buffer((size_t)rows * ldo, 0), *rm = buffer(rows, -INFINITY), *rs = buffer(rows, 0), *s = buffer((size_t)rows * lds, 0);
    float *o2 = buffer((size_t)rows * ldo, 0), *rm2 = buffer(rows, -INFINITY), *rs2 = buffer(rows, 0);
    float *lse = buffer(rows, 0), *lse2 = buffer(rows, 0);
    const int half = tiles / 2;
    for (int pass = 0; pass < 2; pass++) {
        for (int t = 0; t < tiles; t++) {
            const int second = pass == 1 && t >= half;
            float *oo = second ? o2 : o, *mm = second ? rm2 : rm, *ss = second ? rs2 : rs;
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) s[r * lds + c] = all[r * S + t * cols + c];
            sdpa_softmax_tile(rows, cols, s, lds, NULL, mm, ss, oo, ldo, dv);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) {
                    /* p = 2^(x L - M) (fast rows) or e^(x - m) (exact ones), see sdpa_softmax_tile */
                    const float x = all[r * S + t * cols + c], m = mm[r] == -INFINITY ? 0 : mm[r];
                    const float L = 1.44269504088896341f;
                    const int fast = fabsf(m) < info.softmax_exact_from;
                    const double want = x == -INFINITY ? 0 : fast ? exp2((double)x * L - (double)(m * L)) : exp((double)x - m);
                    const double arg = fast ? (double)x * L - (double)(m * L) : ((double)x - m) * 1.4426950408889634;
                    const float got = s[r * lds + c];
                    if (want < 1.1754943508222875e-38)
                        CHECK(got >= 0 && got <= 1.2e-38, "p of x %g, m %g: %g, want %g", x, m, got, want);
                    else
                        CHECK(fabs(got - want) <= (1.5e-7 + 6e-8 * fabs(arg)) * want,
                              "p of x %.9g, m %.9g (%s): %.9g, want %.9g", x, m, fast ? "fast" : "exact", got, want);
                }
            sdpa_pv_tile(rows, cols, dv, s, lds, v + (size_t)t * cols * dv, dv, oo, ldo);
        }
        if (pass == 1) sdpa_merge_rows(rows, dv, o, ldo, rm, rs, o2, ldo, rm2, rs2);
        sdpa_row_logsumexp(rows, rm, rs, pass ? lse2 : lse);
        sdpa_normalize_tile(rows, dv, o, ldo, rs, SDPA_ELEMENT_F32, o, ldo);
        for (int r = 0; r < rows; r++) {
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < S; j++) if (all[r * S + j] > m) m = all[r * S + j];
            for (int j = 0; j < S; j++) if (m > -INFINITY) sum += exp((double)all[r * S + j] - m);
            double want = m == -INFINITY ? -INFINITY : m + log(sum);
            float got = pass ? lse2[r] : lse[r];
            CHECK(isinf(want) ? got == want : fabs(got - want) <= 4e-7 * (fabs(want) + 1) + 2e-7 * fabs(m) * 0,
                  "lse pass %d rows %d cols %d offset %g r %d: %.9g want %.9g", pass, rows, cols, offset, r, got, want);
            for (int d = 0; d < dv; d++) {
                double ref = 0;
                for (int j = 0; j < S; j++) if (m > -INFINITY) ref += exp((double)all[r * S + j] - m) / sum * v[j * dv + d];
                CHECK(fabs(o[r * ldo + d] - ref) <= 2e-6 + 1e-6 * fabs(spread),
                      "softmax output pass %d offset %g spread %g r %d d %d: %.9g want %.9g", pass, offset, spread, r, d, o[r * ldo + d], ref);
            }
        }
        for (int r = 0; r < rows; r++) { rm[r] = -INFINITY; rs[r] = 0; rm2[r] = -INFINITY; rs2[r] = 0; }
        for (int i = 0; i < rows * ldo; i++) { o[i] = 0; o2[i] = 0; }
    }
    free(all); free(v); free(o); free(rm); free(rs); free(s); free(o2); free(rm2); free(rs2); free(lse); free(lse2);
}

/* ---- masks, soft-capping, visibility ------------------------------------------ */
static void check_masks(int rows, int cols) {
    const ptrdiff_t lds = cols + 3, ldm = cols + 1;
    float *s = buffer((size_t)rows * lds, GUARD), *s0 = buffer((size_t)rows * lds, 0), *mf = buffer((size_t)rows * ldm, 0);
    uint8_t *mb = malloc((size_t)rows * ldm + 1);
    for (int i = 0; i < rows * lds; i++) s0[i] = (i % lds) < cols ? randf(-10, 10) : GUARD;
    if (rows * cols > 3) s0[2] = NAN;
    for (int i = 0; i < rows * ldm; i++) { mb[i] = uniform() < 0.4 ? 0 : 7; mf[i] = uniform() < 0.4 ? -INFINITY : randf(-2, 2); }
    memcpy(s, s0, sizeof *s * rows * lds);
    sdpa_mask_tile_bool(rows, cols, s, lds, mb, ldm);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < lds; c++) {
            float want = c >= cols ? GUARD : mb[r * ldm + c] ? s0[r * lds + c] : -INFINITY;
            CHECK(bits(s[r * lds + c]) == bits(want) || (isnan(want) && isnan(s[r * lds + c])), "mask bool r %d c %d", r, c);
        }
    memcpy(s, s0, sizeof *s * rows * lds);
    sdpa_add_mask_tile_f32(rows, cols, s, lds, mf, ldm);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < lds; c++) {
            float m = mf[r * ldm + c];
            float want = c >= cols ? GUARD : m == -INFINITY ? -INFINITY : s0[r * lds + c] + m;
            CHECK(bits(s[r * lds + c]) == bits(want) || (isnan(want) && isnan(s[r * lds + c])), "mask f32 r %d c %d", r, c);
        }
    const float caps[] = {1.0f, 50.0f, 0.37f};
    for (int k = 0; k < 3; k++) {
        memcpy(s, s0, sizeof *s * rows * lds);
        for (int i = 0; i < rows * lds; i++) if (i % lds < cols && i % 5 == 1) s[i] = -INFINITY;
        float *before = buffer((size_t)rows * lds, 0);
        memcpy(before, s, sizeof *s * rows * lds);
        sdpa_softcap_tile(rows, cols, s, lds, caps[k]);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < lds; c++) {
                float x = before[r * lds + c];
                if (c >= cols) { CHECK(s[r * lds + c] == GUARD, "softcap wrote past the tile"); continue; }
                if (isnan(x)) { CHECK(isnan(s[r * lds + c]), "softcap NaN"); continue; }
                double want = x == -INFINITY ? -INFINITY : caps[k] * tanh((double)x / caps[k]);
                CHECK(x == -INFINITY ? s[r * lds + c] == -INFINITY : fabs(s[r * lds + c] - want) <= 4 * 6e-8 * fabs(want) + 1e-38,
                      "softcap cap %g x %g: %.9g want %.9g", caps[k], x, s[r * lds + c], want);
            }
        free(before);
    }
    /* visibility: the exact answer for random, all-visible and all-masked tiles */
    for (int kind = SDPA_MASK_BOOL; kind <= SDPA_MASK_F32; kind++)
        for (int pattern = 0; pattern < 3; pattern++) {
            for (int i = 0; i < rows * ldm; i++) {
                int masked = pattern == 0 ? uniform() < 0.5 : pattern == 1 ? 0 : 1;
                mb[i] = masked ? 0 : 3; mf[i] = masked ? -INFINITY : 1.5f;
            }
            int want = 0;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) want |= (kind == SDPA_MASK_BOOL ? mb[r * ldm + c] == 0 : mf[r * ldm + c] == -INFINITY) ? SDPA_MASK_SEEN_MASKED : SDPA_MASK_SEEN_VISIBLE;
            int got = sdpa_mask_tile_visibility(kind, rows, cols, kind == SDPA_MASK_BOOL ? (const void *)mb : (const void *)mf, ldm, 3);
            CHECK(got == want, "visibility kind %d pattern %d rows %d cols %d: %d want %d", kind, pattern, rows, cols, got, want);
        }
    free(s); free(s0); free(mf); free(mb);
}

/* ---- backward pass: GEMM, probabilities, D, dS, soft-cap derivative, dropout ---- */
/* float -> bfloat16 -> float, nearest even, by comparing the two
 * neighbours in double (finite inputs). */
static float bf16_rounded(float f) {
    const uint32_t lo = bits(f) & 0xFFFF0000u, hi = lo + 0x10000u;
    const double dl = fabs((double)from_bits(lo) - f), dh = fabs((double)from_bits(hi) - f);
    return dl < dh || (dl == dh && !(lo & 0x10000u)) ? from_bits(lo) : from_bits(hi);
}

/* In bfloat16 pairs, float32 A and B are rounded to bfloat16 by
 * sdpa_prepare_query / sdpa_pack_values (kind float32) and multiplied; the
 * reference takes the rounded values (products exact, float32 sums). */
static void check_gemm(sdpa_operand_layout layout, int transposeA, int accumulate, int m, int n, int k, float alpha) {
    /* a: m x k (or k x m stored for transposeA), b: k x n, c: m x n; strides off the sizes */
    const int ar = transposeA ? k : m, ac = transposeA ? m : k, pairs = layout == SDPA_LAYOUT_BF16_PAIRS;
    const ptrdiff_t lda = ac + 3, ldb = n + 5, ldc = n + 2;
    float *a = buffer((size_t)ar * lda + 1, 0), *b = buffer((size_t)k * ldb + 1, 0), *c = buffer((size_t)m * ldc + 4, GUARD);
    for (int i = 0; i < ar * lda; i++) a[i] = randf(-1, 1);
    for (int i = 0; i < k * ldb; i++) b[i] = randf(-1, 1);
    for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) c[i * ldc + j] = randf(-2, 2);
    float *before = buffer((size_t)m * ldc + 4, 0);
    memcpy(before, c, sizeof *c * ((size_t)m * ldc + 4));
    const void *pa = a, *pb = b;
    ptrdiff_t lap = lda, lbp = ldb;
    void *ap = NULL, *bp = NULL;
    if (pairs) {
        const sdpa_rows arows = {a, lda, NULL}, brows = {b, ldb, NULL};
        ap = malloc(transposeA ? sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, k, m) + 4 : sdpa_operand_bytes(layout, SDPA_OPERAND_QUERY, m, k) + 4);
        bp = malloc(sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, k, n) + 4);
        pa = transposeA ? sdpa_pack_values(layout, SDPA_ELEMENT_F32, k, m, arows, ap, &lap)
                        : sdpa_prepare_query(layout, SDPA_ELEMENT_F32, m, k, a, lda, 1.0f, ap, &lap);
        pb = sdpa_pack_values(layout, SDPA_ELEMENT_F32, k, n, brows, bp, &lbp);
    }
    sdpa_gemm_tile(layout, transposeA, accumulate, m, n, k, alpha, pa, lap, pb, lbp, c, ldc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= n) { CHECK(c[i * ldc + j] == GUARD, "gemm wrote past the tile"); continue; }
            double ref = 0, mag = 0;
            for (int e = 0; e < k; e++) {
                float x = transposeA ? a[e * lda + i] : a[i * lda + e], y = b[e * ldb + j];
                if (pairs) { x = bf16_rounded(x); y = bf16_rounded(y); }
                ref += (double)x * y;
                mag += fabs((double)x * y);
            }
            ref *= alpha; mag *= fabs(alpha);
            if (accumulate) { ref += before[i * ldc + j]; mag += fabs(before[i * ldc + j]); }
            CHECK(fabs(c[i * ldc + j] - ref) <= (k + 4) * 1.2e-7 * mag + 1e-30,
                  "gemm %s transA %d acc %d %dx%dx%d alpha %g: [%d][%d] got %.9g want %.9g", pairs ? "pairs" : "float32",
                  transposeA, accumulate, m, n, k, alpha, i, j, c[i * ldc + j], ref);
        }
    CHECK(c[m * ldc] == GUARD || m == 0, "gemm wrote past the last row");
    free(a); free(b); free(c); free(before); free(ap); free(bp);
}

static void check_probabilities(int rows, int cols) {
    const ptrdiff_t lds = cols + 3;
    float *s = buffer((size_t)rows * lds, GUARD), *s0 = buffer((size_t)rows * lds, GUARD), *lse = buffer(rows, 0);
    for (int r = 0; r < rows; r++) {
        double m = -INFINITY, sum = 0;
        for (int c = 0; c < cols; c++) {
            s0[r * lds + c] = r % 5 == 2 || uniform() < 0.2 ? -INFINITY : randf(-30, 10);
            if (s0[r * lds + c] > m) m = s0[r * lds + c];
        }
        for (int c = 0; c < cols; c++) if (m > -INFINITY) sum += exp(s0[r * lds + c] - m);
        lse[r] = m == -INFINITY ? -INFINITY : (float)(m + log(sum));
    }
    if (rows > 3 && cols > 1) s0[3 * lds + 1] = NAN;
    memcpy(s, s0, sizeof *s * rows * lds);
    sdpa_probabilities_tile(rows, cols, s, lds, lse);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < lds; c++) {
            const float x = s0[r * lds + c], got = s[r * lds + c];
            if (c >= cols) { CHECK(got == GUARD, "probabilities wrote past the tile"); continue; }
            if (lse[r] == -INFINITY) { CHECK(bits(got) == 0, "a row that saw no key: %g, want 0", got); continue; }
            if (isnan(x)) { CHECK(isnan(got), "NaN score gave %g", got); continue; }
            const double arg = (double)x - lse[r], want = exp(arg);
            if (x == -INFINITY) CHECK(bits(got) == 0, "masked score gave %g", got);
            else if (want < 1.1754943508222875e-38) CHECK(got >= 0 && got <= 1.2e-38, "exp(%g) = %g", arg, got);
            else CHECK(fabs(got - want) <= (2.5e-7 + 6e-8 * fabs(arg)) * want, "probability of %g - %g: %.9g want %.9g", x, lse[r], got, want);
        }
    free(s); free(s0); free(lse);
}

static void check_row_dot(int rows, int cols) {
    const ptrdiff_t lda = cols + 1, ldb = cols + 4;
    float *a = buffer((size_t)rows * lda, 0), *b = buffer((size_t)rows * ldb, 0), *d = buffer(rows + 1, GUARD);
    for (int i = 0; i < rows * lda; i++) a[i] = randf(-2, 2);
    for (int i = 0; i < rows * ldb; i++) b[i] = randf(-2, 2);
    sdpa_row_dot(rows, cols, a, lda, b, ldb, d);
    for (int r = 0; r < rows; r++) {
        double ref = 0, mag = 0;
        for (int c = 0; c < cols; c++) { ref += (double)a[r * lda + c] * b[r * ldb + c]; mag += fabs((double)a[r * lda + c] * b[r * ldb + c]); }
        CHECK(fabs(d[r] - ref) <= (cols + 4) * 1.2e-7 * mag + 1e-30, "row_dot %d cols r %d: %.9g want %.9g", cols, r, d[r], ref);
    }
    CHECK(d[rows] == GUARD, "row_dot wrote past its rows");
    free(a); free(b); free(d);
}

static void check_score_gradient(int rows, int cols) {
    const ptrdiff_t ldp = cols + 2, ldg = cols + 5;
    float *p = buffer((size_t)rows * ldp, 0), *g = buffer((size_t)rows * ldg, GUARD), *g0 = buffer((size_t)rows * ldg, GUARD), *d = buffer(rows, 0);
    for (int r = 0; r < rows; r++) {
        d[r] = randf(-1, 1);
        for (int c = 0; c < cols; c++) {
            p[r * ldp + c] = uniform() < 0.3 ? 0.0f : randf(0, 1);
            g0[r * ldg + c] = p[r * ldp + c] == 0 && uniform() < 0.3 ? NAN : randf(-3, 3);
        }
    }
    memcpy(g, g0, sizeof *g * rows * ldg);
    sdpa_score_gradient_tile(rows, cols, p, ldp, g, ldg, d);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ldg; c++) {
            const float got = g[r * ldg + c];
            if (c >= cols) { CHECK(got == GUARD, "score_gradient wrote past the tile"); continue; }
            const double pp = p[r * ldp + c], x = g0[r * ldg + c];
            if (pp == 0) { CHECK(got == 0, "p = 0 (dP %g) gave %g, want 0", x, got); continue; }
            const double want = pp * (x - d[r]);
            CHECK(fabs(got - want) <= 2.5e-7 * pp * (fabs(x) + fabs(d[r])), "dS p %g dP %g D %g: %.9g want %.9g", pp, x, d[r], got, want);
        }
    free(p); free(g); free(g0); free(d);
}

/* ALiBi in place: bit for bit the float32 `s - slope * |d|` (product, then
 * difference), -inf past the diagonal when causal; nothing past the tile. */
static void check_alibi(int rows, int cols, int first, float slope, int causal) {
    const ptrdiff_t lds = cols + 3;
    float *s = buffer((size_t)rows * lds + 1, GUARD), *s0 = buffer((size_t)rows * lds + 1, GUARD);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) s0[r * lds + c] = (r + c) % 11 == 3 ? NAN : randf(-20, 20);
    memcpy(s, s0, sizeof *s * ((size_t)rows * lds + 1));
    sdpa_alibi_tile(rows, cols, s, lds, slope, first, causal);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < lds; c++) {
            const float got = s[r * lds + c];
            if (c >= cols) { CHECK(got == GUARD, "alibi wrote past the tile"); continue; }
            const int d = first + r - c;
            const float product = slope * (float)abs(d);
            const float want = causal && d < 0 ? -INFINITY : s0[r * lds + c] - product;
            CHECK(isnan(want) ? isnan(got) : bits(got) == bits(want), "alibi %dx%d first %d slope %g causal %d: [%d][%d] got %.9g want %.9g",
                  rows, cols, first, slope, causal, r, c, got, want);
        }
    CHECK(s[rows * lds] == GUARD, "alibi wrote past the last row");
    free(s); free(s0);
}

static void check_distance_weighted_sum(int rows, int cols, int first) {
    const ptrdiff_t ldg = cols + 5;
    float *g = buffer((size_t)rows * ldg + 1, GUARD);
    double want = 0, mag = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            g[r * ldg + c] = randf(-1, 1);
            want += (double)g[r * ldg + c] * abs(first + r - c);
            mag += fabs((double)g[r * ldg + c]) * abs(first + r - c);
        }
    const double got = sdpa_distance_weighted_sum(rows, cols, g, ldg, first);
    CHECK(fabs(got - want) <= (cols + 4) * 1.2e-7 * mag + 1e-30, "distance-weighted sum %dx%d first %d: got %.12g want %.12g",
          rows, cols, first, got, want);
    free(g);
}

static void check_softcap_gradient(int rows, int cols, float cap) {
    const ptrdiff_t ldg = cols + 1, ldy = cols + 3;
    float *g = buffer((size_t)rows * ldg, GUARD), *g0 = buffer((size_t)rows * ldg, GUARD), *y = buffer((size_t)rows * ldy, 0);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const double x = randf(-8, 8) * cap;
            y[r * ldy + c] = (r + c) % 7 == 3 ? -INFINITY : (float)(cap * tanh(x / cap));
            g0[r * ldg + c] = randf(-2, 2);
        }
    memcpy(g, g0, sizeof *g * rows * ldg);
    sdpa_softcap_gradient_tile(rows, cols, g, ldg, y, ldy, cap);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ldg; c++) {
            const float got = g[r * ldg + c];
            if (c >= cols) { CHECK(got == GUARD, "softcap_gradient wrote past the tile"); continue; }
            const double yy = y[r * ldy + c], gg = g0[r * ldg + c];
            if (yy == -INFINITY) { CHECK(got == 0, "masked: %g, want 0", got); continue; }
            const double u = yy / cap, want = gg * (1 - u * u);
            CHECK(fabs(got - want) <= 5e-7 * fabs(gg), "softcap gradient cap %g y %g g %g: %.9g want %.9g", cap, yy, gg, got, want);
        }
    free(g); free(g0); free(y);
}

/* The generator, written out again from CounterRandom.swift. */
static int reference_drops(uint64_t seed, uint64_t n, float p) {
    uint64_t z = seed + (n + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53 < (double)p;
}

static void check_dropout(int rows, int cols, float p, uint64_t seed, uint64_t counter) {
    const ptrdiff_t ldp = cols + 2;
    const uint64_t rowStride = (uint64_t)cols + 37;
    float *x = buffer((size_t)rows * ldp, GUARD), *x0 = buffer((size_t)rows * ldp, GUARD);
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) x0[r * ldp + c] = (r + c) % 11 == 4 ? NAN : randf(0, 1);
    memcpy(x, x0, sizeof *x * rows * ldp);
    sdpa_dropout_tile(rows, cols, x, ldp, p, seed, counter, rowStride);
    const float keep = p >= 1 ? 0 : (float)(1.0 / (1.0 - p));
    long dropped = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ldp; c++) {
            const float got = x[r * ldp + c];
            if (c >= cols) { CHECK(got == GUARD, "dropout wrote past the tile"); continue; }
            const int drop = reference_drops(seed, counter + r * rowStride + c, p);
            const float want = drop ? 0.0f : x0[r * ldp + c] * keep;
            dropped += drop;
            CHECK(bits(got) == bits(want) || (isnan(got) && isnan(want)), "dropout p %g seed %llu n %llu: %g want %g", p, (unsigned long long)seed,
                  (unsigned long long)(counter + r * rowStride + c), got, want);
        }
    /* the drop rate: within 6 standard deviations of p */
    const double n = (double)rows * cols, sd = sqrt(n * p * (1 - p));
    CHECK(fabs(dropped - n * p) <= 6 * sd + 1e-9, "dropout p %g: dropped %ld of %.0f", p, dropped, n);
    free(x); free(x0);
}

/* The read pass sums whole vectors of any alignment and ignores a partial last one. */
static void check_read_sum(int vectorFloats) {
    enum { N = 1031 };
    float *buffer = malloc((N + 1) * sizeof(float));
    double whole = 0;
    for (int i = 0; i <= N; i++) buffer[i] = (float)(i % 7) - 2.5f;
    for (int offset = 0; offset <= 1; offset++)
        for (int n = 0; n <= N; n += n < 70 ? 1 : 61) {
            const int counted = n / vectorFloats * vectorFloats;
            whole = 0;
            for (int i = 0; i < counted; i++) whole += buffer[offset + i];
            const double got = sdpa_read_sum(buffer + offset, (size_t)n * sizeof(float) + 3);
            CHECK(fabs(got - whole) <= 1e-3 * (1 + fabs(whole)), "read_sum n=%d offset=%d: %g, expected %g", n, offset, got, whole);
        }
    free(buffer);
}

/* Another library's AMX work may release the tiles between two of our products
 * (oneDNN does after each job: TILERELEASE returns them to their initial,
 * unconfigured state): the next product must configure them again rather
 * than fault, and give the same results. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
__attribute__((target("amx-tile"))) static void release_tiles(void) { _tile_release(); }
static void check_after_tiles_released(void) {
    check_operands(SDPA_ELEMENT_BF16, 37, 65, 64, 33, SDPA_MASK_NONE);
    release_tiles();
    check_operands(SDPA_ELEMENT_BF16, 37, 65, 64, 33, SDPA_MASK_BOOL);
}
#endif

int main(void) {
    int total = 0;
    const int families = sdpa_kernels_family_count();
    for (int fi = 0; fi < families; fi++) {
        family = sdpa_kernels_family_name(fi);
        if (sdpa_kernels_use_on_this_thread(family) != 0) { printf("%s: cannot select\n", family); return 1; }
        failures = reported = 0;
        sdpa_kernel_info info;
        sdpa_kernels_info(&info);
        const int rowsList[] = {1, 2, 3, 5, 6, 7, 13, 37, 96};
        const int colsList[] = {1, 3, 8, 15, 16, 17, 31, 33, 64, 65, 128, 130};
        const int depthList[] = {0, 1, 3, 8, 16, 40, 64, 65, 128};
        for (int a = 0; a < 9; a++)
            for (int b = 0; b < 12; b++)
                for (int c = 0; c < 9; c++) {
                    if ((a + b + c) % 3) continue; /* a third of the grid, every size of each axis */
                    check_qk(rowsList[a], colsList[b], depthList[c], 0, 0, 0);
                    check_qk(rowsList[a], colsList[b], depthList[c], 1, SDPA_MASK_BOOL, c % 2);
                    check_qk(rowsList[a], colsList[b], depthList[c], 1, SDPA_MASK_F32, c % 2 == 0);
                }
        for (int kind = 0; kind < 3; kind++)
            for (int rows = 1; rows <= 5; rows++) {
                check_qk_direct(rows, 1 + rows * 7, 64, kind);
                check_qk_direct(rows, 40, 3 + rows * 9, kind);
            }
        const int dvList[] = {1, 5, 16, 33, 64, 96, 97, 128, 257, 300};
        for (int kind = 0; kind < 3; kind++)
            for (int a = 0; a < 9; a++) {
                check_direct_operands(kind, rowsList[a] % 17, colsList[(a * 5) % 12], depthList[(a * 7) % 9], dvList[a]);
                check_direct_operands(kind, 1 + a % 5, 64, a % 2 ? 128 : 127, 128);
                check_direct_operands(kind, 4 + a, 17 + a, 576, 512 - a);
            }
        for (int a = 0; a < 9; a++)
            for (int d = 0; d < 10; d++) check_pv(rowsList[a], colsList[(a + d) % 12], dvList[d]);
        for (int b = 0; b < 12; b++) check_pack(colsList[b], depthList[b % 9]);
        for (int kind = 0; kind < 3; kind++)
            for (int a = 0; a < 9; a++) {
                check_operands(kind, rowsList[a], colsList[(a * 7) % 12], depthList[(a * 5) % 9], dvList[(a * 3) % 10], a % 2 ? SDPA_MASK_BOOL : SDPA_MASK_NONE);
                check_operands(kind, rowsList[a], 128, 64, 64, SDPA_MASK_NONE);
                check_operands(kind, rowsList[a], 63, 63, 33, SDPA_MASK_BOOL);
            }
        for (int kind = 0; kind < 3; kind++)
            for (int a = 0; a < 9; a++) {
                check_attend(kind, rowsList[a], colsList[(a * 5 + 2) % 12], depthList[(a * 4 + 1) % 9], dvList[(a * 7) % 10], a % 3, 1.1f);
                check_attend(kind, 96 - a, 128, 64, 64, a % 3, 1.1f);
                /* a negative or zero scale: the tile unit's unmasked rows take
                 * their maxima from the raw products only for a positive finite one */
                if (a % 3 == 0) check_attend(kind, 40 + a, 100, 64, 64, SDPA_MASK_NONE, a == 3 ? -0.7f : 0.0f);
            }
        check_conversions();
        check_read_sum(info.vector_floats);
        check_exp();
        check_gelu();
        check_softmax(info, 67, 203, 2, 60, 0);
        check_softmax(info, 9, 16, 4, 30, 5);
        check_softmax(info, 13, 33, 2, 40, 40000);   /* exact reference rows */
        check_softmax(info, 13, 33, 3, 2e3, 32760);  /* rows crossing to the exact reference */
        check_softmax(info, 5, 7, 2, 1e8, 1e9);      /* a scale of 1e9: huge finite scores */
        check_softmax(info, 5, 7, 2, 1, -3e38);      /* scores near the float limit */
        for (int a = 0; a < 9; a++) check_masks(rowsList[a], colsList[(a * 5) % 12]);
        for (int a = 0; a < 9; a++)
            for (int b = 0; b < 12; b++) {
                if ((a + b) % 2) continue;
                const int k = depthList[(a + b) % 9];
                for (int pairs = 0; pairs < 2; pairs++) {
                    const sdpa_operand_layout layout = pairs ? SDPA_LAYOUT_BF16_PAIRS : SDPA_LAYOUT_F32;
                    if (pairs && sdpa_layout_for(SDPA_ELEMENT_BF16) != SDPA_LAYOUT_BF16_PAIRS) continue;
                    check_gemm(layout, (a + b) % 4 == 0, b % 3 == 0, rowsList[a], colsList[b], k, b % 5 == 0 ? 1.0f : 0.37f);
                    check_gemm(layout, (a + b) % 4 != 0, b % 3 != 0, colsList[b] % 97, rowsList[a] + 1, k + 1, -0.8f);
                }
            }
        for (int a = 0; a < 9; a++) {
            check_probabilities(rowsList[a], colsList[(a * 7) % 12]);
            check_row_dot(rowsList[a], dvList[a]);
            check_score_gradient(rowsList[a], colsList[(a * 5 + 3) % 12]);
            check_softcap_gradient(rowsList[a], colsList[(a * 3 + 1) % 12], a % 2 ? 50.0f : 0.7f);
            check_alibi(rowsList[a], colsList[(a * 5 + 1) % 12], a * 37 - 100, a % 3 ? 0.0625f : 0.37f, a % 2);
            check_distance_weighted_sum(rowsList[a], colsList[(a * 7 + 2) % 12], 150 - a * 41);
        }
#if defined(__x86_64__) || defined(_M_X64)
        if (strcmp(family, "amx") == 0) check_after_tiles_released();
#endif
        const float dropProbabilities[] = {0.0f, 0.1f, 0.3f, 0.5f, 0.9f, 1.0f};
        for (int q = 0; q < 6; q++) {
            check_dropout(37, 130, dropProbabilities[q], 0x1234567890ABCDEFull * (q + 1), 0);
            check_dropout(5, 17, dropProbabilities[q], (uint64_t)q, 0xFFFFFFFFull - 40); /* counters across 2^32 */
        }
        printf("%-10s (vector %2d, tile %d x %2d, exact softmax from %g, bfloat16 %s): %s (%d mismatches)\n", family,
               info.vector_floats, info.tile_rows, info.tile_columns, info.softmax_exact_from,
               sdpa_layout_for(SDPA_ELEMENT_BF16) == SDPA_LAYOUT_BF16_PAIRS ? "pairs" : "float32",
               failures ? "FAILED" : "ok", failures);
        total += failures;
    }
    return total ? 1 : 0;
}
