/* The products of decoding (a few query rows): Q.K^T reading the keys as
 * stored, and one output row's P.V with its columns in registers.  Also the
 * P.V entry point, which picks that form for one row. */
#ifndef SDPA_TILES_DECODE_H
#define SDPA_TILES_DECODE_H

/* P.V for one row: keys outer, NV vectors of output columns held in
 * registers, so each V row is read once, front to back (register tiles would
 * sweep the V tile once per panel instead).  The last vector of the block
 * may be partial (lanes < n, mask m). */
SDPA_INLINE void pv_row_block(const int NV, int cols, const float *p, const float *v,
                              ptrdiff_t ldv, float *o, int n, vm m) {
    vf acc[SDPA_PV_ROW_VECS];
    const int tail = n < SDPA_VL;
    for (int j = 0; j < NV; j++) acc[j] = vzero();
    for (int c = 0; c < cols; c++) {
        const vf pc = vbroadcast(p + c);
        const float *vr = v + (ptrdiff_t)c * ldv;
        for (int j = 0; j < NV; j++) {
            vf vv = tail && j == NV - 1 ? vload_first(vr + SDPA_VL * j, n, m) : vload(vr + SDPA_VL * j);
            acc[j] = vfma(pc, vv, acc[j]);
        }
    }
    for (int j = 0; j < NV; j++) {
        if (tail && j == NV - 1)
            vstore_first(o + SDPA_VL * j, n, m, vadd(vload_first(o + SDPA_VL * j, n, m), acc[j]));
        else
            vstore(o + SDPA_VL * j, vadd(vload(o + SDPA_VL * j), acc[j]));
    }
}

SDPA_INLINE void pv_row(int cols, int dv, const float *p, const float *v, ptrdiff_t ldv, float *o) {
    const int W = SDPA_VL * SDPA_PV_ROW_VECS;
    for (int d0 = 0; d0 < dv; d0 += W) {
        const int n = dv - d0 < W ? dv - d0 : W;
        const int nv = (n + SDPA_VL - 1) / SDPA_VL, last = n - SDPA_VL * (nv - 1);
        const vm m = vmask_first(last);
        const float *vb = v + d0;
        float *ob = o + d0;
        switch (nv) {
#define SDPA_PV_ROW(NV) case NV: pv_row_block(NV, cols, p, vb, ldv, ob, last, m); break;
        SDPA_PV_ROW(1) SDPA_PV_ROW(2) SDPA_PV_ROW(3) SDPA_PV_ROW(4)
        SDPA_PV_ROW(5) SDPA_PV_ROW(6) SDPA_PV_ROW(7) SDPA_PV_ROW(8)
#if SDPA_PV_ROW_VECS > 8
        SDPA_PV_ROW(9) SDPA_PV_ROW(10) SDPA_PV_ROW(11) SDPA_PV_ROW(12)
#endif
#if SDPA_PV_ROW_VECS > 12
        SDPA_PV_ROW(13) SDPA_PV_ROW(14) SDPA_PV_ROW(15) SDPA_PV_ROW(16)
#endif
#if SDPA_PV_ROW_VECS > 16
        SDPA_PV_ROW(17) SDPA_PV_ROW(18) SDPA_PV_ROW(19) SDPA_PV_ROW(20)
        SDPA_PV_ROW(21) SDPA_PV_ROW(22) SDPA_PV_ROW(23) SDPA_PV_ROW(24)
#endif
#undef SDPA_PV_ROW
        default: break;
        }
    }
}

static void k_pv_tile(int rows, int cols, int dv, const float *p, ptrdiff_t ldp,
                      const float *v, ptrdiff_t ldv, float *o, ptrdiff_t ldo) {
    if (rows == 1)
        pv_row(cols, dv, p, v, ldv, o);
    else
        gemm(FMT_F32, 1, 0, MK_NONE, rows, dv, cols, p, ldp, 1, v, ldv, o, ldo, 1.0f, NULL, 0, NULL);
}

/* One group of up to SDPA_VL keys (rows row[0..SDPA_VL), a short group
 * repeating its last key) against every query row: SDPA_VL-wide partial sums
 * per key, reduced SDPA_VL keys to a vector. */
SDPA_INLINE void qk_direct_group(const int kind, int rows, int nk, int depth, const float *q, ptrdiff_t ldq,
                                 const void *const row[SDPA_VL], vf vs, float *s, ptrdiff_t lds, float *tileMax) {
    const vf ninf = vneg_inf();
    const int dtail = depth % SDPA_VL, dvec = depth - dtail;
    const vm dm = vmask_first(dtail), cm = vmask_first(nk);
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (ptrdiff_t)r * ldq;
        vf acc[SDPA_VL];
        for (int j = 0; j < SDPA_VL; j++) acc[j] = vzero();
        for (int e = 0; e < dvec; e += SDPA_VL) {
            const vf qv = vload(qr + e);
            for (int j = 0; j < SDPA_VL; j++) acc[j] = vfma(qv, vload_kind(kind, row[j], e), acc[j]);
        }
        if (dtail) {
            const vf qv = vload_first(qr + dvec, dtail, dm);
            for (int j = 0; j < SDPA_VL; j++)
                acc[j] = vfma(qv, vload_kind_first(kind, row[j], dvec, dtail, dm), acc[j]);
        }
        vf sc = vmul(vhsum_lanes(acc), vs);
        float *sr = s + (ptrdiff_t)r * lds;
        if (nk == SDPA_VL) {
            vstore(sr, sc);
        } else {
            vstore_first(sr, nk, cm, sc);
            sc = vblend(cm, ninf, sc);
        }
        if (tileMax) {
            /* NaN scores are skipped (vmax returns its 2nd operand) */
            float mx = vhmax(vmax(sc, ninf));
            if (mx > tileMax[r]) tileMax[r] = mx;
        }
    }
}

/* Keys of a half kind widened once per group for this many query rows or
 * more (a GQA group's stacked rows): each would otherwise convert every key
 * element again.  Up to this depth the widened group stays on the stack. */
#define SDPA_DIRECT_WIDEN_ROWS 2
#define SDPA_DIRECT_WIDEN_DEPTH 576

/* Q.K^T for a few rows, keys read as stored: SDPA_VL keys at a time.  The
 * same products, in the same order, whether the keys are widened first or
 * as they are read. */
SDPA_INLINE void qk_direct(const int kind, int rows, int cols, int depth, const float *q,
                           ptrdiff_t ldq, sdpa_rows k, float scale, float *s,
                           ptrdiff_t lds, float *tileMax) {
    const vf vs = vset1(scale);
    const int widen = kind != SDPA_KIND_F32 && rows >= SDPA_DIRECT_WIDEN_ROWS && depth <= SDPA_DIRECT_WIDEN_DEPTH;
    _Alignas(64) float wide[SDPA_VL][SDPA_DIRECT_WIDEN_DEPTH];
    if (tileMax)
        for (int r = 0; r < rows; r++) tileMax[r] = -__builtin_inff();
    for (int c0 = 0; c0 < cols; c0 += SDPA_VL) {
        const int nk = cols - c0 < SDPA_VL ? cols - c0 : SDPA_VL;
        const void *row[SDPA_VL];
        for (int j = 0; j < SDPA_VL; j++) row[j] = row_at(kind, k, c0 + (j < nk ? j : nk - 1));
        if (widen) {
            for (int j = 0; j < nk; j++) convert_to_f32(kind, (size_t)depth, (const uint16_t *)row[j], wide[j]);
            for (int j = 0; j < SDPA_VL; j++) row[j] = wide[j < nk ? j : nk - 1];
            qk_direct_group(SDPA_KIND_F32, rows, nk, depth, q, ldq, row, vs, s + c0, lds, tileMax);
        } else {
            qk_direct_group(kind, rows, nk, depth, q, ldq, row, vs, s + c0, lds, tileMax);
        }
    }
}

static void k_scores_direct(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                            sdpa_element_kind kind, sdpa_rows k, float scale, float *s, ptrdiff_t lds,
                            float *tileMax) {
    if (kind == SDPA_ELEMENT_F16)
        qk_direct(SDPA_KIND_F16, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax);
    else if (kind == SDPA_ELEMENT_BF16)
        qk_direct(SDPA_KIND_BF16, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax);
    else
        qk_direct(SDPA_KIND_F32, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax);
}

static void k_qk_tile_direct(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                             sdpa_element_kind kind, const void *k, ptrdiff_t ldk, float scale,
                             float *s, ptrdiff_t lds, float *tileMax) {
    sdpa_rows r = {k, ldk, NULL};
    k_scores_direct(rows, cols, depth, q, ldq, kind, r, scale, s, lds, tileMax);
}

#endif
