/* The products of decoding (a few query rows): Q.K^T and P.V reading the
 * keys and values as stored, and one output row's P.V with its columns in
 * registers.  Also the P.V entry point, which picks that form for one row. */
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

/* The direct reader: Q.K^T for a few query rows (a decoding step's, a GQA
 * group's stacked heads) with the keys read as stored, no packing.  A block
 * of RB rows x KB keys (RB * KB = SDPA_DIRECT_ACC) keeps one vector of
 * partial sums per (row, key), so each key vector is loaded once for all RB
 * rows; the partial sums reduce to scores SDPA_VL at a time.  Lane l of a
 * partial sum takes depth positions l, l + SDPA_VL, ... in order, whatever
 * the block: the scores are the same bits for any row count or blocking.
 * FMT_F32: query rows as floats, keys of any kind widened as loaded (exact);
 * FMT_BF16_PAIRS: query rows as bfloat16 pairs, bfloat16 keys multiplied as
 * stored pairs (vdot_pairs). */
/* A line at `offset` bytes into each of count rows toward the cache (none: rows NULL). */
SDPA_INLINE void prefetch_at(const void *const *rows, int count, ptrdiff_t offset) {
    if (rows)
        for (int j = 0; j < count; j++) __builtin_prefetch((const char *)rows[j] + offset, 0, 3);
}

/* One vector of depth for a block: its keys loaded once, against every row. */
SDPA_INLINE void qk_direct_step(const int kind, const int RB, const int KB, const void *q, ptrdiff_t ldq,
                                const void *const row[SDPA_DIRECT_ACC], int e, vf acc[SDPA_DIRECT_ACC]) {
    vf kv[SDPA_DIRECT_ACC];
    for (int j = 0; j < KB; j++) kv[j] = vload_kind(kind, row[j], e);
    for (int r = 0; r < RB; r++) {
        const vf qv = vload((const float *)q + r * ldq + e);
        for (int j = 0; j < KB; j++) acc[r * KB + j] = vfma(qv, kv[j], acc[r * KB + j]);
    }
}

SDPA_INLINE void qk_direct_block(const int FMT, const int kind, const int RB, int nk, int depth,
                                 const void *q, ptrdiff_t ldq, const void *const row[SDPA_DIRECT_ACC],
                                 const void *const *ahead, const void *const *values, vf vs, float *s,
                                 ptrdiff_t lds) {
    const int KB = SDPA_DIRECT_ACC / RB;
    vf acc[SDPA_DIRECT_ACC];
    for (int i = 0; i < SDPA_DIRECT_ACC; i++) acc[i] = vzero();
    if (FMT == FMT_F32) {
        const int dtail = depth % SDPA_VL, dvec = depth - dtail;
        const vm dm = vmask_first(dtail);
        int e = 0;
        if (ahead || values) {
            /* whole cache lines of the keys, each line's prefetches once */
            const int es = kind == SDPA_KIND_F32 ? 4 : 2, LE = 64 / es > SDPA_VL ? 64 / es : SDPA_VL;
            for (; e + LE <= dvec; e += LE) {
                prefetch_at(ahead, KB, e * es);
                prefetch_at(values, KB, e * es);
                for (int u = e; u < e + LE; u += SDPA_VL) qk_direct_step(kind, RB, KB, q, ldq, row, u, acc);
            }
            /* the rows' last, partial line */
            if (e < depth) {
                prefetch_at(ahead, KB, e * es);
                prefetch_at(values, KB, e * es);
            }
        }
        for (; e < dvec; e += SDPA_VL) qk_direct_step(kind, RB, KB, q, ldq, row, e, acc);
        if (dtail) {
            vf kv[SDPA_DIRECT_ACC];
            for (int j = 0; j < KB; j++) kv[j] = vload_kind_first(kind, row[j], dvec, dtail, dm);
            for (int r = 0; r < RB; r++) {
                const vf qv = vload_first((const float *)q + r * ldq + dvec, dtail, dm);
                for (int j = 0; j < KB; j++) acc[r * KB + j] = vfma(qv, kv[j], acc[r * KB + j]);
            }
        }
    }
#if SDPA_BF16_DOT
    else {
        /* 2 * SDPA_VL elements (SDPA_VL pairs) a step; the last, shorter step
         * through a zero-padded copy, so nothing past a key row is read and an
         * odd depth's last pair multiplies the query's padding 0 by 0 */
        const int W = 2 * SDPA_VL, rest = depth % W, whole = depth - rest;
        for (int e = 0; e < whole; e += W) {
            vp kv[SDPA_DIRECT_ACC];
            for (int j = 0; j < KB; j++) kv[j] = vload_bf16_pairs((const uint16_t *)row[j] + e);
            prefetch_at(ahead, KB, e * 2);
            prefetch_at(values, KB, e * 2);
            for (int r = 0; r < RB; r++) {
                const vp qv = vload_pairs((const uint32_t *)q + r * ldq + e / 2);
                for (int j = 0; j < KB; j++) acc[r * KB + j] = vdot_pairs(acc[r * KB + j], qv, kv[j]);
            }
        }
        if (rest) {
            const int np = (rest + 1) / 2;
            const vm pm = vmask_first(np);
            vp kv[SDPA_DIRECT_ACC];
            for (int j = 0; j < KB; j++) {
                uint16_t t[2 * SDPA_VL];
                const uint16_t *kr = (const uint16_t *)row[j] + whole;
                for (int i = 0; i < W; i++) t[i] = i < rest ? kr[i] : 0;
                kv[j] = vload_bf16_pairs(t);
            }
            for (int r = 0; r < RB; r++) {
                const vp qv = vload_pairs_first((const uint32_t *)q + r * ldq + whole / 2, np, pm);
                for (int j = 0; j < KB; j++) acc[r * KB + j] = vdot_pairs(acc[r * KB + j], qv, kv[j]);
            }
        }
    }
#endif
    float sc[SDPA_DIRECT_ACC];
    for (int g = 0; g < SDPA_DIRECT_ACC; g += SDPA_VL) vstore(sc + g, vmul(vhsum_lanes(acc + g), vs));
    for (int r = 0; r < RB; r++) {
        float *sr = s + (ptrdiff_t)r * lds;
        if (nk == KB) /* a copy of constant size: a register move, not a call */
            for (int j = 0; j < KB; j++) sr[j] = sc[r * KB + j];
        else
            for (int j = 0; j < nk; j++) sr[j] = sc[r * KB + j];
    }
}

/* The row maxima of a score tile, NaN skipped (vmax returns its 2nd operand). */
SDPA_INLINE void row_maxima(int rows, int cols, const float *s, ptrdiff_t lds, float *tileMax) {
    const vf ninf = vneg_inf();
    for (int r = 0; r < rows; r++) {
        const float *sr = s + (ptrdiff_t)r * lds;
        vf m = ninf;
        int c = 0;
        for (; c + SDPA_VL <= cols; c += SDPA_VL) m = vmax(vload(sr + c), m);
        if (c < cols) {
            const vm cm = vmask_first(cols - c);
            m = vmax(vblend(cm, ninf, vload_first(sr + c, cols - c, cm)), m);
        }
        tileMax[r] = vhmax(m);
    }
}

/* How the direct reader brings K and V toward the cache ahead of use.
 * Rows of at most SDPA_BLOCK_PREFETCH_BYTES: whole rows at a block's start
 * (the next block's keys, the block's values).  Longer rows: a block's rows
 * at once would overflow the core's queue of outstanding misses (RFC.md,
 * "Decoding"), so the prefetches are spread over the key reads: a line of
 * the key SDPA_KEYS_AHEAD on, and the same line of the key's own value row,
 * with each key line read; P.V, which runs after the tile's Q.K^T, then
 * finds its values on their way.  One query row costs a key so little
 * arithmetic that its loads wait on memory either way, and whole rows at a
 * block's start keep more lines in flight: up to twice as long rows take
 * them there. */
#define SDPA_BLOCK_PREFETCH_BYTES 128
#define SDPA_BLOCK_PREFETCH_BYTES_ONE_ROW 256
#define SDPA_KEYS_AHEAD 16
/* Keys whose row addresses the direct reader's Q.K^T finds at once. */
#define SDPA_DIRECT_CHUNK 64

/* The addresses of rows first..first+count-1 into out[0..count), then the
 * last of them again up to out[total - 1]. */
SDPA_INLINE void row_addresses(const int kind, sdpa_rows r, int first, int count, int total, const void **out) {
    if (r.rows) {
        for (int c = 0; c < count; c++) out[c] = r.rows[first + c];
    } else {
        const ptrdiff_t step = r.stride * (kind == SDPA_KIND_F32 ? 4 : 2);
        const char *p = (const char *)r.base + first * step;
        for (int c = 0; c < count; c++) out[c] = p + c * step;
    }
    for (int c = count; c < total; c++) out[c] = out[count - 1];
}

/* Brings `bytes` of each of rows first..first+count toward the cache. */
SDPA_INLINE void prefetch_rows(const int kind, sdpa_rows r, int first, int count, int bytes) {
    if (!r.base && !r.rows) return;
    for (int j = 0; j < count; j++) {
        const char *p = (const char *)row_at(kind, r, first + j);
        for (int b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
    }
}

/* Q.K^T for a few rows, keys read as stored: SDPA_DIRECT_ACC keys at a
 * time against every row (blocks of 4, 2, 1 rows), with keys and values
 * prefetched as SDPA_BLOCK_PREFETCH_BYTES says: decoding is a stream through
 * K and V, and without them the loads wait on memory one block at a time. */
SDPA_INLINE void qk_direct(const int FMT, const int kind, int rows, int cols, int depth, const void *q,
                           ptrdiff_t ldq, sdpa_rows k, float scale, float *s, ptrdiff_t lds,
                           float *tileMax, sdpa_rows v, int dv) {
    const vf vs = vset1(scale);
    const int es = kind == SDPA_KIND_F32 ? 4 : 2, vbytes = dv * es, kbytes = depth * es;
    const int blockBytes = rows > 1 ? SDPA_BLOCK_PREFETCH_BYTES : SDPA_BLOCK_PREFETCH_BYTES_ONE_ROW;
    const int spreadKeys = kbytes > blockBytes;
    const int spreadValues = vbytes > blockBytes && (v.base || v.rows);
    /* A chunk's row addresses are found once, not per block and row block: the keys', the keys'
     * SDPA_KEYS_AHEAD on (clamped to the last) and the values'; past the chunk's end its last key
     * repeats, so a short last block reads real rows and stores only its own scores. */
    const void *krow[SDPA_DIRECT_CHUNK + SDPA_DIRECT_ACC];
    const void *kahead[SDPA_DIRECT_CHUNK + SDPA_DIRECT_ACC], *vrow[SDPA_DIRECT_CHUNK + SDPA_DIRECT_ACC];
    for (int h0 = 0; h0 < cols; h0 += SDPA_DIRECT_CHUNK) {
        const int hn = cols - h0 < SDPA_DIRECT_CHUNK ? cols - h0 : SDPA_DIRECT_CHUNK;
        const int filled = hn + SDPA_DIRECT_ACC;
        row_addresses(kind, k, h0, hn, filled, krow);
        if (spreadValues) row_addresses(kind, v, h0, hn, filled, vrow);
        if (spreadKeys) {
            const int a0 = h0 + SDPA_KEYS_AHEAD, na = cols - a0 < hn ? cols - a0 : hn;
            if (na > 0) row_addresses(kind, k, a0, na, filled, kahead);
            else row_addresses(kind, k, cols - 1, 1, filled, kahead);
        }
        for (int c0 = 0; c0 < hn; c0 += SDPA_DIRECT_ACC) {
            const int ng = hn - c0 < SDPA_DIRECT_ACC ? hn - c0 : SDPA_DIRECT_ACC, g0 = h0 + c0;
            if (!spreadKeys && g0 + SDPA_DIRECT_ACC < cols) {
                const int c2 = g0 + SDPA_DIRECT_ACC;
                prefetch_rows(kind, k, c2, cols - c2 < SDPA_DIRECT_ACC ? cols - c2 : SDPA_DIRECT_ACC, kbytes);
            }
            if (vbytes <= blockBytes) prefetch_rows(kind, v, g0, ng, vbytes);
            for (int r0 = 0; r0 < rows;) {
                const int RB = rows - r0 >= 4 ? 4 : rows - r0 >= 2 ? 2 : 1, KB = SDPA_DIRECT_ACC / RB;
                const void *qr = (const char *)q + (ptrdiff_t)r0 * ldq * 4;
                for (int c1 = c0; c1 < c0 + ng; c1 += KB) {
                    const int nk = c0 + ng - c1 < KB ? c0 + ng - c1 : KB;
                    /* the first row block reads the keys from memory: it spreads the prefetches */
                    const void *const *pa = spreadKeys && r0 == 0 && h0 + c1 + SDPA_KEYS_AHEAD < cols ? kahead + c1 : NULL;
                    const void *const *pv = spreadValues && r0 == 0 ? vrow + c1 : NULL;
                    /* the value row's lines past the key row's length */
                    if (pv && vbytes > kbytes)
                        for (int j = 0; j < nk; j++)
                            for (int b = kbytes; b < vbytes; b += 64) __builtin_prefetch((const char *)pv[j] + b, 0, 3);
                    float *sb = s + (ptrdiff_t)r0 * lds + h0 + c1;
                    if (RB == 4) qk_direct_block(FMT, kind, 4, nk, depth, qr, ldq, krow + c1, pa, pv, vs, sb, lds);
                    else if (RB == 2) qk_direct_block(FMT, kind, 2, nk, depth, qr, ldq, krow + c1, pa, pv, vs, sb, lds);
                    else qk_direct_block(FMT, kind, 1, nk, depth, qr, ldq, krow + c1, pa, pv, vs, sb, lds);
                }
                r0 += RB;
            }
        }
    }
    if (tileMax) row_maxima(rows, cols, s, lds, tileMax);
}

static void k_scores_direct(sdpa_operand_layout layout, int rows, int cols, int depth, const void *q,
                            ptrdiff_t ldq, sdpa_element_kind kind, sdpa_rows k, float scale, float *s,
                            ptrdiff_t lds, float *tileMax, sdpa_rows v, int dv) {
#if SDPA_BF16_DOT
    if (layout == SDPA_LAYOUT_BF16_PAIRS && kind == SDPA_ELEMENT_BF16) {
        qk_direct(FMT_BF16_PAIRS, SDPA_KIND_BF16, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax, v, dv);
        return;
    }
#endif
    (void)layout;
    if (kind == SDPA_ELEMENT_F16)
        qk_direct(FMT_F32, SDPA_KIND_F16, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax, v, dv);
    else if (kind == SDPA_ELEMENT_BF16)
        qk_direct(FMT_F32, SDPA_KIND_BF16, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax, v, dv);
    else
        qk_direct(FMT_F32, SDPA_KIND_F32, rows, cols, depth, q, ldq, k, scale, s, lds, tileMax, v, dv);
}

static void k_qk_tile_direct(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                             sdpa_element_kind kind, const void *k, ptrdiff_t ldk, float scale,
                             float *s, ptrdiff_t lds, float *tileMax) {
    const sdpa_rows r = {k, ldk, NULL}, none = {NULL, 0, NULL};
    k_scores_direct(SDPA_LAYOUT_F32, rows, cols, depth, q, ldq, kind, r, scale, s, lds, tileMax, none, 0);
}

/* The next tile's rows for one pass of P.V to prefetch (tile NULL: none),
 * with their lengths in bytes. */
typedef struct sdpa_next_rows {
    const sdpa_next_tile *tile;
    int keyBytes, valueBytes;
} sdpa_next_rows;

/* P.V with the value rows read as stored (any kind, widened as loaded):
 * RB rows x NV vectors of output columns in registers, keys in order, so
 * each output element is the same chain of products as the packed P.V's.
 * Where SDPA_BF16_EVEN_ODD, bfloat16 values in whole pairs of vectors load as
 * even and odd columns (vload_bf16_even_odd: fewer instructions a key than
 * widening each vector; on model 207 decoding ran 6-14 % faster with K and V
 * in cache, 3 % from memory, RFC.md); each column's chain is the same, and
 * the pairs of sums are put back in column order once, at the end. */
SDPA_INLINE void pv_direct_block(const int kind, const int RB, const int NV, const int TAIL, int cols,
                                 const float *p, ptrdiff_t ldp, sdpa_rows v, int d0, float *o,
                                 ptrdiff_t ldo, int n, vm m, sdpa_next_rows next) {
    const int ahead = next.tile ? (next.tile->count < cols ? next.tile->count : cols) : 0;
#if SDPA_BF16_EVEN_ODD
    const int evenOdd = kind == SDPA_KIND_BF16 && !TAIL && NV % 2 == 0;
#endif
    vf acc[4][SDPA_PV_ROW_VECS];
    for (int r = 0; r < RB; r++)
        for (int j = 0; j < NV; j++) acc[r][j] = vzero();
    for (int c = 0; c < cols; c++) {
        const void *vr = row_at(kind, v, c);
        if (c < ahead) {
            prefetch_rows(kind, next.tile->keys, c, 1, next.keyBytes);
            prefetch_rows(kind, next.tile->values, c, 1, next.valueBytes);
        }
        vf vv[SDPA_PV_ROW_VECS];
#if SDPA_BF16_EVEN_ODD
        if (evenOdd)
            for (int j = 0; j < NV; j += 2)
                vload_bf16_even_odd((const uint16_t *)vr + d0 + SDPA_VL * j, &vv[j], &vv[j + 1]);
        else
#endif
            for (int j = 0; j < NV; j++)
                vv[j] = TAIL && j == NV - 1 ? vload_kind_first(kind, vr, d0 + SDPA_VL * j, n, m)
                                            : vload_kind(kind, vr, d0 + SDPA_VL * j);
        for (int r = 0; r < RB; r++) {
            const vf pc = vbroadcast(p + (ptrdiff_t)r * ldp + c);
            for (int j = 0; j < NV; j++) acc[r][j] = vfma(pc, vv[j], acc[r][j]);
        }
    }
#if SDPA_BF16_EVEN_ODD
    if (evenOdd)
        for (int r = 0; r < RB; r++)
            for (int j = 0; j < NV; j += 2) vzip(acc[r][j], acc[r][j + 1], &acc[r][j], &acc[r][j + 1]);
#endif
    for (int r = 0; r < RB; r++) {
        float *orow = o + (ptrdiff_t)r * ldo + d0;
        for (int j = 0; j < NV; j++) {
            if (TAIL && j == NV - 1)
                vstore_first(orow + SDPA_VL * j, n, m, vadd(vload_first(orow + SDPA_VL * j, n, m), acc[r][j]));
            else
                vstore(orow + SDPA_VL * j, vadd(vload(orow + SDPA_VL * j), acc[r][j]));
        }
    }
}

/* Output vectors a pass keeps per row block: as many as the registers hold
 * beside the loaded value vectors, so the value rows are swept as few times
 * as possible (one row: a whole output row of up to SDPA_PV_ROW_VECS).  Rows
 * x vectors of sums, the vectors of a value row and a broadcast must leave a
 * register spare: AVX2's 4 rows x 3 filled all 16 and spilled a sum, whose
 * store and reload then chained every key of the pass.  Passes want an even
 * number of vectors, which bfloat16's even/odd loads fill in pairs. */
#define SDPA_PV_DIRECT_FIT(RB) ((SDPA_VREGS - 2) / ((RB) + 1))
#define SDPA_PV_DIRECT_WANT(RB) (((RB) == 2 ? SDPA_PV_ROW_VECS / 3 : SDPA_PV_ROW_VECS / 4) & ~1)
#define SDPA_PV_DIRECT_VECS(RB)                                                                         \
    ((RB) == 1 ? SDPA_PV_ROW_VECS                                                                       \
               : SDPA_PV_DIRECT_WANT(RB) < SDPA_PV_DIRECT_FIT(RB) ? SDPA_PV_DIRECT_WANT(RB) : SDPA_PV_DIRECT_FIT(RB))

SDPA_INLINE void pv_direct_rows(const int kind, const int RB, int cols, int dv, const float *p, ptrdiff_t ldp,
                                sdpa_rows v, float *o, ptrdiff_t ldo, sdpa_next_rows next) {
    /* wide passes, then the rest in passes of 16, 8, 4 and 2 vectors (each at most once, only below the
     * widest) and single vectors, the last one partial: few copies of the block per family, and few
     * passes over the value rows whatever dv is; the last pass prefetches the next tile */
    const int NVMAX = SDPA_PV_DIRECT_VECS(RB), W = SDPA_VL * NVMAX;
    const sdpa_next_rows none = {NULL, 0, 0};
    int d0 = 0;
    for (; d0 + W <= dv; d0 += W)
        pv_direct_block(kind, RB, NVMAX, 0, cols, p, ldp, v, d0, o, ldo, SDPA_VL, vmask_first(0), d0 + W < dv ? none : next);
#define SDPA_PV_DIRECT_PART(NV)                                                                    \
    if (NVMAX > (NV) && d0 + SDPA_VL * (NV) <= dv) {                                               \
        pv_direct_block(kind, RB, NV, 0, cols, p, ldp, v, d0, o, ldo, SDPA_VL, vmask_first(0),     \
                        d0 + SDPA_VL * (NV) < dv ? none : next);                                   \
        d0 += SDPA_VL * (NV);                                                                      \
    }
#if SDPA_PV_ROW_VECS > 16
    SDPA_PV_DIRECT_PART(16)
#endif
    SDPA_PV_DIRECT_PART(8)
    SDPA_PV_DIRECT_PART(4)
    SDPA_PV_DIRECT_PART(2)
#undef SDPA_PV_DIRECT_PART
    while (d0 < dv) {
        const int n = dv - d0 < SDPA_VL ? dv - d0 : SDPA_VL;
        const sdpa_next_rows pass = d0 + n < dv ? none : next;
        if (n == SDPA_VL) pv_direct_block(kind, RB, 1, 0, cols, p, ldp, v, d0, o, ldo, n, vmask_first(0), pass);
        else pv_direct_block(kind, RB, 1, 1, cols, p, ldp, v, d0, o, ldo, n, vmask_first(n), pass);
        d0 += n;
    }
}

SDPA_INLINE void pv_direct(const int kind, int rows, int cols, int dv, const float *p, ptrdiff_t ldp,
                           sdpa_rows v, float *o, ptrdiff_t ldo, const sdpa_next_tile *next) {
    const int es = kind == SDPA_KIND_F32 ? 4 : 2;
    const sdpa_next_rows none = {NULL, 0, 0};
    /* the last row block's last pass prefetches: the rows it brings to L1 evict none that a later pass reads */
    const sdpa_next_rows last = {next, next ? next->depth * es : 0, dv * es};
    for (int r0 = 0; r0 < rows;) {
        const int RB = rows - r0 >= 4 ? 4 : rows - r0 >= 2 ? 2 : 1;
        const float *pr = p + (ptrdiff_t)r0 * ldp;
        float *orow = o + (ptrdiff_t)r0 * ldo;
        const sdpa_next_rows pass = r0 + RB < rows ? none : last;
        if (RB == 4) pv_direct_rows(kind, 4, cols, dv, pr, ldp, v, orow, ldo, pass);
        else if (RB == 2) pv_direct_rows(kind, 2, cols, dv, pr, ldp, v, orow, ldo, pass);
        else pv_direct_rows(kind, 1, cols, dv, pr, ldp, v, orow, ldo, pass);
        r0 += RB;
    }
}

static void k_accumulate_direct(int rows, int cols, int dv, const float *p, ptrdiff_t ldp, sdpa_element_kind kind,
                                sdpa_rows v, float *o, ptrdiff_t ldo, const sdpa_next_tile *next) {
    if (kind == SDPA_ELEMENT_F16) pv_direct(SDPA_KIND_F16, rows, cols, dv, p, ldp, v, o, ldo, next);
    else if (kind == SDPA_ELEMENT_BF16) pv_direct(SDPA_KIND_BF16, rows, cols, dv, p, ldp, v, o, ldo, next);
    else pv_direct(SDPA_KIND_F32, rows, cols, dv, p, ldp, v, o, ldo, next);
}

#endif
