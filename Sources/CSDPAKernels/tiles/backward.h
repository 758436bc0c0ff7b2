/* The tiles of a FlashAttention-2 backward pass besides Q.K^T and the bias:
 * a general tile GEMM (dV += P^T dO, dP = dO V^T, dQ += scale dS K, dK +=
 * scale dS^T Q), the probabilities recomputed from the log-sum-exp, D =
 * rowsum(dO o O), dS = P o (dP - D) and the soft-cap derivative.  Written
 * once over the vector layer. */
#ifndef SDPA_TILES_BACKWARD_H
#define SDPA_TILES_BACKWARD_H

/* C (= | +=) alpha op(A) B on the GEMM micro-kernel: a transposed A is read
 * through its strides (rows 1 apart, columns lda apart), so P^T and dS^T
 * cost no copy.  In bfloat16 pairs the depth runs in pairs (k elements,
 * pairs_of(k) words), A's and B's elements are 32-bit pair words; a family
 * without a bfloat16 dot product is never given that layout (sdpa_layout_for)
 * and reads any as float32, as k_scores does. */
static void k_gemm_tile(sdpa_operand_layout layout, int transposeA, int accumulate, int m, int n, int k, float alpha,
                        const void *a, ptrdiff_t lda, const void *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    const ptrdiff_t rsa = transposeA ? 1 : lda, csa = transposeA ? lda : 1;
#if SDPA_BF16_DOT
    if (layout == SDPA_LAYOUT_BF16_PAIRS) {
        const int kp = k > 0 ? pairs_of(k) : 0;
        if (accumulate)
            gemm(FMT_BF16_PAIRS, 2, 0, MK_NONE, m, n, kp, a, rsa, csa, b, ldb, c, ldc, alpha, NULL, 0, NULL);
        else
            gemm(FMT_BF16_PAIRS, 0, 0, MK_NONE, m, n, kp, a, rsa, csa, b, ldb, c, ldc, alpha, NULL, 0, NULL);
        return;
    }
#endif
    (void)layout;
    if (accumulate)
        gemm(FMT_F32, 2, 0, MK_NONE, m, n, k, a, rsa, csa, b, ldb, c, ldc, alpha, NULL, 0, NULL);
    else
        gemm(FMT_F32, 0, 0, MK_NONE, m, n, k, a, rsa, csa, b, ldb, c, ldc, alpha, NULL, 0, NULL);
}

/* s = exp(s - lse[r]) in place; a row whose lse is -inf (it saw no key)
 * becomes 0, never NaN.  vexp: vexp_fast unless an argument is above 88 (an
 * lse that is not the row's). */
static void k_probabilities_tile(int rows, int cols, float *s, ptrdiff_t lds, const float *lse) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        if (lse[r] == -__builtin_inff()) {
            for (int c = 0; c < cols; c++) sr[c] = 0.0f;
            continue;
        }
        const vf vl = vset1(lse[r]);
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore(sr + c, vexp(vsub(vload(sr + c), vl)));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(sr + c, n, m, vexp(vsub(vload_first(sr + c, n, m), vl)));
        }
    }
}

/* d[r] = sum_c a[r][c] b[r][c], two vectors of partial sums per row. */
static void k_row_dot(int rows, int cols, const float *a, ptrdiff_t lda, const float *b,
                      ptrdiff_t ldb, float *d) {
    for (int r = 0; r < rows; r++) {
        const float *ar = a + (ptrdiff_t)r * lda, *br = b + (ptrdiff_t)r * ldb;
        vf s0 = vzero(), s1 = vzero();
        int c = 0;
        for (; c + 2 * SDPA_VL <= cols; c += 2 * SDPA_VL) {
            s0 = vfma(vload(ar + c), vload(br + c), s0);
            s1 = vfma(vload(ar + c + SDPA_VL), vload(br + c + SDPA_VL), s1);
        }
        if (c + SDPA_VL <= cols) {
            s0 = vfma(vload(ar + c), vload(br + c), s0);
            c += SDPA_VL;
        }
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            s1 = vfma(vload_first(ar + c, n, m), vload_first(br + c, n, m), s1);
        }
        d[r] = vhsum(vadd(s0, s1));
    }
}

/* dp = p (dp - d[r]) in place, exactly 0 where p is 0 (a masked key: a NaN
 * in its value row does not reach the gradients, as it does not reach the
 * forward's output). */
SDPA_INLINE vf score_gradient(vf p, vf dp, vf d) {
    return vzero_where(vcmp_eq(p, vzero()), vmul(p, vsub(dp, d)));
}

static void k_score_gradient_tile(int rows, int cols, const float *p, ptrdiff_t ldp, float *dp,
                                  ptrdiff_t lddp, const float *d) {
    for (int r = 0; r < rows; r++) {
        const float *pr = p + (ptrdiff_t)r * ldp;
        float *gr = dp + (ptrdiff_t)r * lddp;
        const vf vd = vset1(d[r]);
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore(gr + c, score_gradient(vload(pr + c), vload(gr + c), vd));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(gr + c, n, m, score_gradient(vload_first(pr + c, n, m), vload_first(gr + c, n, m), vd));
        }
    }
}

/* g *= (1 - u)(1 + u), u = y / cap: the derivative of cap tanh(x / cap) is
 * 1 - tanh^2, and y = cap tanh(x / cap) is the capped score.  (1 - u)(1 + u)
 * rather than 1 - u^2: exact factors for |u| near 1.  y = -inf (masked)
 * gives 0. */
SDPA_INLINE vf softcap_gradient(vf g, vf y, vf vcap) {
    const vf one = vset1(1.0f);
    const vf u = vdiv(y, vcap);
    const vf d = vmul(vsub(one, u), vadd(one, u));
    return vzero_where(vcmp_eq(y, vneg_inf()), vmul(g, d));
}

static void k_softcap_gradient_tile(int rows, int cols, float *g, ptrdiff_t ldg, const float *y,
                                    ptrdiff_t ldy, float cap) {
    const vf vcap = vset1(cap);
    for (int r = 0; r < rows; r++) {
        float *gr = g + (ptrdiff_t)r * ldg;
        const float *yr = y + (ptrdiff_t)r * ldy;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore(gr + c, softcap_gradient(vload(gr + c), vload(yr + c), vcap));
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            vstore_first(gr + c, n, m, softcap_gradient(vload_first(gr + c, n, m), vload_first(yr + c, n, m), vcap));
        }
    }
}

/* sum_r sum_c g[r][c] |first + r - c|: each row in float32 vectors, the
 * rows in double (ALiBi's slope gradient over a tile). */
static double k_distance_weighted_sum(int rows, int cols, const float *g, ptrdiff_t ldg, ptrdiff_t first) {
    const vf lanes = vlane_indices();
    double total = 0;
    for (int r = 0; r < rows; r++) {
        const float *gr = g + (ptrdiff_t)r * ldg;
        vf sum = vzero();
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL)
            sum = vfma(vload(gr + c), vabs(vsub(vset1((float)(first + r - c)), lanes)), sum);
        if (c < cols) {
            const int n = cols - c;
            const vm m = vmask_first(n);
            sum = vfma(vload_first(gr + c, n, m), vabs(vsub(vset1((float)(first + r - c)), lanes)), sum);
        }
        total += vhsum(sum);
    }
    return total;
}

#endif
