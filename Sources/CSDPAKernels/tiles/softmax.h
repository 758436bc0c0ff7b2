/* The online softmax (one step per score tile), the end of a row (normalize,
 * log-sum-exp), and the merge of two partial results of one row.
 *
 * Each row's running state is its maximum m (natural units) and a sum and
 * output row relative to a reference that depends on m alone:
 *  - fast rows, |m| < SDPA_SOFTMAX_FAST_BELOW (32768 with FMA): 2^M, M =
 *    m * L rounded once (L = log2(e) as a float), and p = 2^(s L - M) costs
 *    one FMA per score; the rounding of M scales the whole row alike (alpha
 *    uses the same M) and |m L - M| <= 2^-9, so p <= 2^(2^-9) for the row's
 *    largest score;
 *  - exact rows, beyond: e^m itself, and p = e^(s - m): far from 0 the
 *    rounding of M (up to half an ulp of a number ~ m) would put 2^(s L - M)
 *    out of range.  Rows of huge finite scores (a scale of 1e9, inputs near
 *    1e19) stay right.  Without FMA every row is exact: s L rounded before
 *    subtracting M would cost more accuracy than the subtraction first.
 * The reference relates to e^m by c = M - m L (fast rows) or 0 (exact ones):
 * 2^M = e^m 2^c.  (m = -inf, no visible key yet: nothing has been added.) */
#ifndef SDPA_TILES_SOFTMAX_H
#define SDPA_TILES_SOFTMAX_H

/* A layer without fused multiply-add rounds s * log2(e) before subtracting M,
 * which costs more accuracy than the exact form's extra subtraction: every
 * row takes the exact form there. */
#if SDPA_HAS_FMA
#define SDPA_SOFTMAX_FAST_BELOW 32768.0f
#else
#define SDPA_SOFTMAX_FAST_BELOW 0.0f
#endif

/* dst[0..n) = src[0..n) * a, stored as KIND (float16 and bfloat16 rounded
 * from the float32 product); dst may be src for float32. */
SDPA_INLINE void scale_row_into(const int kind, const float *src, int n, vf va, void *dst) {
    float *df = (float *)dst;
    uint16_t *dh = (uint16_t *)dst;
    int d = 0;
    for (; d + SDPA_VL <= n; d += SDPA_VL) {
        const vf v = vmul(vload(src + d), va);
        if (kind == SDPA_KIND_F32) vstore(df + d, v);
        else if (kind == SDPA_KIND_F16) vstore_f16(dh + d, v);
        else vstore_bf16(dh + d, v);
    }
    if (d < n) {
        const vm m = vmask_first(n - d);
        const vf v = vmul(vload_first(src + d, n - d, m), va);
        if (kind == SDPA_KIND_F32) vstore_first(df + d, n - d, m, v);
        else vstore_half_first(kind, dh + d, n - d, v);
    }
}

/* row[0..n) *= a */
SDPA_INLINE void scale_row(float *row, int n, vf va) { scale_row_into(SDPA_KIND_F32, row, n, va, row); }

/* Whether rows with these maxima take the fast reference. */
SDPA_INLINE vm softmax_fast(vf m) {
    return vcmp_lt(vabs(m), vset1(SDPA_SOFTMAX_FAST_BELOW));
}

/* c = M - m L of fast rows, 0 for exact ones (and -inf). */
SDPA_INLINE double softmax_offset(float m) {
    if (!(__builtin_fabsf(m) < SDPA_SOFTMAX_FAST_BELOW)) return 0.0;
    const float M = m * SDPA_LOG2E;
    return (double)M - (double)m * (double)SDPA_LOG2E; /* exact in double */
}

/* The factor a row's sum and output take when its maximum moves from mOld to
 * m >= mOld (0 when mOld = -inf): 2^(M(mOld) - M(m)) between fast
 * references, e^(mOld - m) 2^(c(mOld) - c(m)) otherwise. */
SDPA_INLINE double softmax_rescaling(float mOld, float m) {
    if (mOld == -__builtin_inff()) return 0.0;
    if (mOld == m) return 1.0;
    if (__builtin_fabsf(mOld) < SDPA_SOFTMAX_FAST_BELOW && __builtin_fabsf(m) < SDPA_SOFTMAX_FAST_BELOW)
        return exp2((double)(mOld * SDPA_LOG2E) - (double)(m * SDPA_LOG2E));
    return exp((double)mOld - (double)m) * exp2(softmax_offset(mOld) - softmax_offset(m));
}

/* One row of a score tile: p = 2^(s L - ref) in place (EXACT: ref is the
 * natural maximum and p = e^(s - ref)); returns the row's sum as a vector of
 * partial sums.  BF16P: p is stored rounded to bfloat16 for the pairs
 * product (each row's bfloat16 over the front half of its floats, an odd
 * count padded with 0: a store never overtakes the loads), the sum taken
 * before rounding, as rounding after the softmax gives.  RAW: the row holds
 * unscaled products, each multiplied by vsc as it is loaded (the rounding
 * the scores' epilogue would have stored). */
SDPA_INLINE vf softmax_exp_row(const int EXACT, const int BF16P, const int RAW, float *sr, int cols, float ref, vf vsc,
                               vtab8 table) {
    const vf vl = vset1(SDPA_LOG2E), vr = vset1(ref), ninf = vneg_inf();
    const int rem = cols % SDPA_VL;
    uint16_t *br = (uint16_t *)(void *)sr;
    vf s0 = vzero(), s1 = vzero();
    int c = 0;
#define SDPA_SC(x) (RAW ? vmul((x), vsc) : (x))
#define SDPA_EXP(x) (EXACT ? vexp_fast(vsub(SDPA_SC(x), vr)) : vexp2_softmax(vfms(SDPA_SC(x), vl, vr), table))
#define SDPA_STORE(at, p) (BF16P ? vstore_bf16_operand(br + (at), (p)) : vstore(sr + (at), (p)))
    for (; c + 2 * SDPA_VL <= cols; c += 2 * SDPA_VL) {
        vf p0 = SDPA_EXP(vload(sr + c));
        vf p1 = SDPA_EXP(vload(sr + c + SDPA_VL));
        SDPA_STORE(c, p0);
        SDPA_STORE(c + SDPA_VL, p1);
        s0 = vadd(s0, p0);
        s1 = vadd(s1, p1);
    }
    if (c + SDPA_VL <= cols) {
        vf p0 = SDPA_EXP(vload(sr + c));
        SDPA_STORE(c, p0);
        s0 = vadd(s0, p0);
        c += SDPA_VL;
    }
    if (rem) {
        const vm tm = vmask_first(rem);
        vf v = vblend(tm, ninf, vload_first(sr + c, rem, tm));
        vf p1 = SDPA_EXP(v); /* lanes past the edge -> 0 */
        if (BF16P) vstore_half_first(SDPA_KIND_BF16, br + c, rem, p1);
        else vstore_first(sr + c, rem, tm, p1);
        s1 = vadd(s1, p1);
    }
    if (BF16P && cols % 2) br[cols] = 0;
#undef SDPA_STORE
#undef SDPA_EXP
#undef SDPA_SC
    return vadd(s0, s1);
}

/* RAW: s holds unscaled products and tileMax their scaled maxima (see
 * softmax_exp_row); otherwise scale is not read.
 * Rows are processed in chunks of SM_CHUNK: the per-row state is computed
 * SDPA_VL rows to a vector before and after the exp pass (maxima, M, alpha;
 * row sums), which keeps the horizontal reductions and the scalar per-row
 * work off the exp loop's critical path. */
#define SM_CHUNK 64
SDPA_INLINE void softmax_tile(const int BF16P, const int RAW, int rows, int cols, float *s, ptrdiff_t lds,
                              float scale, const float *tileMax, float *rowMax, float *rowSum, float *o,
                              ptrdiff_t ldo, int dv) {
    const vf vsc = vset1(scale);
    const vf ninf = vneg_inf();
    if (cols < 0) cols = 0;
    const int rem = cols % SDPA_VL;
    const vm tm = vmask_first(rem);
    const vtab8 table = vexp2_table();
    float tmax[SM_CHUNK], mold[SM_CHUNK], mref[SM_CHUNK], mnat[SM_CHUNK], alpha[SM_CHUNK];
    int exact[SM_CHUNK + SDPA_VL];
    vf sums[SM_CHUNK + SDPA_VL - 1];
    for (int r0 = 0; r0 < rows; r0 += SM_CHUNK) {
        const int nr = rows - r0 < SM_CHUNK ? rows - r0 : SM_CHUNK;

        /* the tile's row maxima, from the Q.K^T tile when it took them, else
         * read here (NaN scores skipped) */
        const float *m = tileMax ? tileMax + r0 : tmax;
        if (!tileMax)
            for (int i = 0; i < nr; i++) {
                const float *sr = s + (ptrdiff_t)(r0 + i) * lds;
                vf m0 = ninf, m1 = ninf;
                int c = 0;
                for (; c + 2 * SDPA_VL <= cols; c += 2 * SDPA_VL) {
                    m0 = vmax(vload(sr + c), m0);
                    m1 = vmax(vload(sr + c + SDPA_VL), m1);
                }
                if (c + SDPA_VL <= cols) {
                    m0 = vmax(vload(sr + c), m0);
                    c += SDPA_VL;
                }
                if (rem) m1 = vmax(vblend(tm, ninf, vload_first(sr + c, rem, tm)), m1);
                tmax[i] = vhmax(vmax(m0, m1));
            }

        /* per-row state, SDPA_VL rows at a time: mNew = max(mOld, tile max),
         * mUse = mNew (0 when -inf), its reference, and alpha (see
         * softmax_rescaling): exactly 1 when the maximum did not move,
         * exactly 0 when mOld = -inf, never NaN for finite scores. */
        for (int i = 0; i < nr; i += SDPA_VL) {
            const int n = nr - i < SDPA_VL ? nr - i : SDPA_VL;
            const vm lm = vmask_first(n);
            const vf vl = vset1(SDPA_LOG2E);
            vf mo = vload_first(rowMax + r0 + i, n, lm);
            vf mn = vmax(vload_first(m + i, n, lm), mo);
            vf mu = vzero_where(vcmp_eq(mn, ninf), mn);
            vf Mu = vmul(mu, vl), Mo = vmul(mo, vl);
            vm fu = softmax_fast(mu), fo = vmask_or(softmax_fast(mo), vcmp_eq(mo, ninf));
            vf a = vexp2_softmax(vsub(Mo, Mu), table);
            if (vmask_bits(vmask_and(fu, fo)) != (1 << SDPA_VL) - 1) {
                vf co = vblend(softmax_fast(mo), vzero(), vfnma(mo, vl, Mo));
                vf cu = vblend(fu, vzero(), vfnma(mu, vl, Mu));
                vf exact = vmul(vexp_fast(vsub(mo, mu)), vexp2_softmax(vsub(co, cu), table));
                a = vblend(vmask_and(fu, fo), exact, a);
            }
            vstore_first(mold + i, n, lm, mo);
            vstore_first(rowMax + r0 + i, n, lm, mn);
            vstore_first(mref + i, n, lm, Mu);
            vstore_first(mnat + i, n, lm, mu);
            vstore_first(alpha + i, n, lm, a);
            const int bits = vmask_bits(fu);
            for (int j = 0; j < n; j++) exact[i + j] = !((bits >> j) & 1);
        }

        /* p in place, and each row's sum as a vector of partial sums.  s <=
         * mUse, so the argument is <= ~0 (or NaN / -inf). */
        for (int i = 0; i < nr; i++) {
            float *sr = s + (ptrdiff_t)(r0 + i) * lds;
            sums[i] = exact[i] ? softmax_exp_row(1, BF16P, RAW, sr, cols, mnat[i], vsc, table)
                               : softmax_exp_row(0, BF16P, RAW, sr, cols, mref[i], vsc, table);
        }

        /* rowSum = rowSum * alpha + this tile's sum, SDPA_VL rows at a time */
        for (int i = nr; i < (nr + SDPA_VL - 1) / SDPA_VL * SDPA_VL; i++) sums[i] = vzero();
        for (int i = 0; i < nr; i += SDPA_VL) {
            const int n = nr - i < SDPA_VL ? nr - i : SDPA_VL;
            const vm lm = vmask_first(n);
            vf l = vfma(vload_first(rowSum + r0 + i, n, lm), vload_first(alpha + i, n, lm), vhsum_lanes(sums + i));
            vstore_first(rowSum + r0 + i, n, lm, l);
        }

        /* O *= alpha; a row with no earlier contribution (mOld = -inf) holds
         * the zeros the driver filled it with and needs none */
        if (dv > 0)
            for (int i = 0; i < nr; i++)
                if (alpha[i] != 1.0f && mold[i] != -__builtin_inff())
                    scale_row(o + (ptrdiff_t)(r0 + i) * ldo, dv, vset1(alpha[i]));
    }
}

static void k_softmax_tile(int rows, int cols, float *s, ptrdiff_t lds, const float *tileMax, float *rowMax,
                           float *rowSum, float *o, ptrdiff_t ldo, int dv) {
    softmax_tile(0, 0, rows, cols, s, lds, 1.0f, tileMax, rowMax, rowSum, o, ldo, dv);
}

static void k_normalize_tile(int rows, int dv, const float *o, ptrdiff_t ldo, const float *rowSum,
                             sdpa_element_kind kind, void *dst, ptrdiff_t ldd) {
    const size_t es = kind == SDPA_KIND_F32 ? 4 : 2;
    for (int r = 0; r < rows; r++) {
        const float l = rowSum[r];
        char *drow = (char *)dst + (ptrdiff_t)r * ldd * (ptrdiff_t)es;
        if (l == 0.0f) __builtin_memset(drow, 0, (size_t)dv * es); /* +0 in every kind */
        else scale_row_into(kind, o + (ptrdiff_t)r * ldo, dv, vset1(1.0f / l), drow);
    }
}

/* The natural log-sum-exp of each finished row: m + log(sum) + c ln 2 (the
 * sum is relative to e^m 2^c), or -inf for a row that saw no key. */
static void k_row_logsumexp(int rows, const float *rowMax, const float *rowSum, float *lse) {
    for (int r = 0; r < rows; r++) {
        if (rowSum[r] == 0.0f) { lse[r] = -__builtin_inff(); continue; }
        const float mu = rowMax[r] == -__builtin_inff() ? 0.0f : rowMax[r];
        lse[r] = (float)((double)mu + (log((double)rowSum[r]) + softmax_offset(mu) * 0.6931471805599453));
    }
}

/* Merges the partial state (o2, rowMax2, rowSum2) of the same rows over other
 * keys into (o, rowMax, rowSum): both rescaled to the larger maximum's
 * reference (softmax_rescaling), then added. */
static void k_merge_rows(int rows, int dv, float *o, ptrdiff_t ldo, float *rowMax, float *rowSum,
                         const float *o2, ptrdiff_t ldo2, const float *rowMax2, const float *rowSum2) {
    for (int r = 0; r < rows; r++) {
        const float m1 = rowMax[r], m2 = rowMax2[r], m = m1 > m2 ? m1 : m2;
        if (m == -__builtin_inff()) continue;
        const float a = (float)softmax_rescaling(m1, m), c = (float)softmax_rescaling(m2, m);
        rowSum[r] = rowSum[r] * a + rowSum2[r] * c;
        float *orow = o + (ptrdiff_t)r * ldo;
        const float *prow = o2 + (ptrdiff_t)r * ldo2;
        const vf va = vset1(a), vc = vset1(c);
        int dd = 0;
        for (; dd + SDPA_VL <= dv; dd += SDPA_VL)
            vstore(orow + dd, vfma(vload(prow + dd), vc, vmul(vload(orow + dd), va)));
        if (dd < dv) {
            const int n = dv - dd;
            const vm lm = vmask_first(n);
            vstore_first(orow + dd, n, lm,
                         vfma(vload_first(prow + dd, n, lm), vc, vmul(vload_first(orow + dd, n, lm), va)));
        }
        rowMax[r] = m;
    }
}

static void k_exp_f32(size_t n, const float *x, float *y) { vmap_f32(n, x, y, vexp); }

#endif
