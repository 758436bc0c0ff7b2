/* The operands of the attention tile products, in the layout the family's
 * micro-kernels read: float32 (query rows, K^T packed along keys, value rows)
 * or, for bfloat16 inputs on a family with a bfloat16 dot product, bfloat16
 * pairs (two consecutive elements along the depth in one 32-bit lane: query
 * rows as pairs, keys packed as [depth/2][keys], values as [keys/2][dv], and
 * P rounded to bfloat16 for P.V, as FlashAttention does).  A driver sizes and
 * passes these buffers without looking inside them. */
#ifndef SDPA_TILES_OPERANDS_H
#define SDPA_TILES_OPERANDS_H

/* Columns of a packed operand, padded to whole vectors. */
SDPA_INLINE ptrdiff_t padded_columns(int n) { return (n + SDPA_VL - 1) / SDPA_VL * SDPA_VL; }
SDPA_INLINE int pairs_of(int n) { return (n + 1) / 2; }

static sdpa_operand_layout k_layout_for(sdpa_element_kind kind) {
#if SDPA_BF16_DOT
    if (kind == SDPA_ELEMENT_BF16) return SDPA_LAYOUT_BF16_PAIRS;
#endif
    (void)kind;
    return SDPA_LAYOUT_F32;
}

static size_t k_operand_bytes(sdpa_operand_layout layout, sdpa_operand_role role, int count, int width) {
    if (count <= 0 || width < 0) return 0;
    const size_t pairs = layout == SDPA_LAYOUT_BF16_PAIRS;
    switch (role) {
    case SDPA_OPERAND_QUERY: return 4 * (size_t)count * (size_t)(pairs ? pairs_of(width) : width);
    case SDPA_OPERAND_KEYS: return 4 * (size_t)padded_columns(count) * (size_t)(pairs ? pairs_of(width) : width);
    case SDPA_OPERAND_VALUES:
        return pairs ? 4 * (size_t)pairs_of(count) * (size_t)padded_columns(width) : 4 * (size_t)count * (size_t)width;
    }
    return 0;
}

static sdpa_const_ptr k_prepare_query(sdpa_operand_layout layout, sdpa_element_kind kind, int rows, int depth,
                                      const void *q, ptrdiff_t ldq, float scale, void *dst, ptrdiff_t *ld) {
    if (layout == SDPA_LAYOUT_F32 && kind == SDPA_ELEMENT_F32 && scale == 1.0f) { *ld = ldq; return q; }
    const vf vs = vset1(scale);
    if (layout == SDPA_LAYOUT_F32) {
        float *out = (float *)dst;
        for (int r = 0; r < rows; r++) {
            const char *src = (const char *)q + (size_t)r * ldq * (kind == SDPA_ELEMENT_F32 ? 4 : 2);
            float *row = out + (size_t)r * depth;
            int e = 0;
            for (; e + SDPA_VL <= depth; e += SDPA_VL) vstore(row + e, vmul(vload_kind(kind, src, e), vs));
            if (e < depth) {
                const int n = depth - e;
                const vm m = vmask_first(n);
                vstore_first(row + e, n, m, vmul(vload_kind_first(kind, src, e, n, m), vs));
            }
        }
        *ld = depth;
        return dst;
    }
    /* bfloat16 pairs: the rows as bfloat16 (float32 rows rounded, nearest
     * even), an odd depth padded with 0 */
    const int dp = pairs_of(depth);
    uint16_t *out = (uint16_t *)dst;
    for (int r = 0; r < rows; r++) {
        uint16_t *row = out + (size_t)r * 2 * dp;
        int e = 0;
        if (kind == SDPA_ELEMENT_F32) {
            const float *src = (const float *)q + (size_t)r * ldq;
            for (; e + SDPA_VL <= depth; e += SDPA_VL) vstore_bf16(row + e, vmul(vload(src + e), vs));
            if (e < depth) {
                const int n = depth - e;
                vstore_half_first(SDPA_KIND_BF16, row + e, n, vmul(vload_first(src + e, n, vmask_first(n)), vs));
            }
        } else {
            const uint16_t *src = (const uint16_t *)q + (size_t)r * ldq;
            for (; e + SDPA_VL <= depth; e += SDPA_VL) vstore_bf16(row + e, vmul(vload_bf16(src + e), vs));
            if (e < depth) vstore_half_first(SDPA_KIND_BF16, row + e, depth - e, vmul(vload_half_first(SDPA_KIND_BF16, src + e, depth - e), vs));
        }
        if (depth % 2) row[depth] = 0;
    }
    *ld = dp;
    return dst;
}

/* bfloat16 pairs of keys: pair i of key c, (k[c][2i], k[c][2i+1]), at
 * [i][c], keys padded with zeros to whole vectors: a transpose of 32-bit
 * words. */
SDPA_INLINE void pack_key_pairs(int cols, int depth, sdpa_rows k, uint32_t *dst) {
    const int dp = pairs_of(depth), whole = depth / 2;
    const ptrdiff_t ld = padded_columns(cols);
    int c0 = 0;
    for (; c0 + SDPA_VL <= cols; c0 += SDPA_VL) {
        const uint16_t *row[SDPA_VL];
        for (int j = 0; j < SDPA_VL; j++) row[j] = (const uint16_t *)row_at(SDPA_KIND_BF16, k, c0 + j);
        int i0 = 0;
        for (; i0 + SDPA_VL <= whole; i0 += SDPA_VL) {
            vf r[SDPA_VL];
            for (int j = 0; j < SDPA_VL; j++) r[j] = vload((const float *)(const void *)(row[j] + 2 * i0));
            vtranspose(r);
            for (int j = 0; j < SDPA_VL; j++) vstore((float *)(void *)(dst + (ptrdiff_t)(i0 + j) * ld + c0), r[j]);
        }
        for (int i = i0; i < dp; i++)
            for (int j = 0; j < SDPA_VL; j++) {
                const uint16_t *kr = row[j] + 2 * i;
                dst[(ptrdiff_t)i * ld + c0 + j] = kr[0] | (2 * i + 1 < depth ? (uint32_t)kr[1] << 16 : 0);
            }
    }
    for (int c = c0; c < ld; c++) {
        const uint16_t *row = c < cols ? (const uint16_t *)row_at(SDPA_KIND_BF16, k, c) : NULL;
        for (int i = 0; i < dp; i++)
            dst[(ptrdiff_t)i * ld + c] = !row ? 0 : row[2 * i] | (2 * i + 1 < depth ? (uint32_t)row[2 * i + 1] << 16 : 0);
    }
}

/* Float32 rows rounded to bfloat16 (nearest even) as pairs of rows:
 * (v[2j][d], v[2j+1][d]) at [j][d] (row stride ld words, columns up to ld
 * and a missing last row zero). */
SDPA_INLINE void pack_float_pairs(int cols, int dv, sdpa_rows v, uint32_t *out, ptrdiff_t ld) {
    for (int j = 0; j < pairs_of(cols); j++) {
        const float *a = (const float *)row_at(SDPA_KIND_F32, v, 2 * j);
        const float *b = 2 * j + 1 < cols ? (const float *)row_at(SDPA_KIND_F32, v, 2 * j + 1) : NULL;
        uint32_t *row = out + (ptrdiff_t)j * ld;
        for (int d = 0; d < ld; d += SDPA_VL) {
            const int n = dv - d < SDPA_VL ? (dv - d > 0 ? dv - d : 0) : SDPA_VL;
            const vm m = vmask_first(n);
            const vf x = n == SDPA_VL ? vload(a + d) : vload_first(a + d, n, m);
            const vf y = !b ? vzero() : n == SDPA_VL ? vload(b + d) : vload_first(b + d, n, m);
            /* lanes past dv load 0, so the padding is 0 */
            vstore((float *)(void *)(row + d), vfloat(vi_or(vbf16_bits(x), vi_slli(vbf16_bits(y), 16))));
        }
    }
}

static void k_pack_keys(sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int depth, sdpa_rows k,
                        void *dst) {
    if (layout == SDPA_LAYOUT_BF16_PAIRS) {
        pack_key_pairs(cols, depth, k, (uint32_t *)dst);
        return;
    }
    const ptrdiff_t ld = padded_columns(cols);
    if (kind == SDPA_ELEMENT_F16) pack_kt(SDPA_KIND_F16, cols, depth, k, (float *)dst, ld);
    else if (kind == SDPA_ELEMENT_BF16) pack_kt(SDPA_KIND_BF16, cols, depth, k, (float *)dst, ld);
    else pack_kt(SDPA_KIND_F32, cols, depth, k, (float *)dst, ld);
}

static sdpa_const_ptr k_pack_values(sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int dv,
                                    sdpa_rows v, void *dst, ptrdiff_t *ld) {
    if (layout == SDPA_LAYOUT_F32) {
        if (kind == SDPA_ELEMENT_F32 && !v.rows) { *ld = v.stride; return v.base; }
        const int k = kind == SDPA_ELEMENT_F32 ? SDPA_KIND_F32 : kind == SDPA_ELEMENT_F16 ? SDPA_KIND_F16 : SDPA_KIND_BF16;
        for (int c = 0; c < cols; c++) {
            const void *row = row_at(k, v, c);
            float *out = (float *)dst + (size_t)c * dv;
            if (k == SDPA_KIND_F32) __builtin_memcpy(out, row, sizeof(float) * (size_t)dv);
            else convert_to_f32(k, (size_t)dv, (const uint16_t *)row, out);
        }
        *ld = dv;
        return dst;
    }
    /* bfloat16 pairs of rows (keys; the backward's query rows):
     * (v[2j][d], v[2j+1][d]) at [j][d], columns padded */
    const ptrdiff_t w = padded_columns(dv);
    uint32_t *out = (uint32_t *)dst;
    if (kind == SDPA_ELEMENT_F32) {
        pack_float_pairs(cols, dv, v, out, w);
        *ld = w;
        return dst;
    }
    static const uint16_t zeros[SDPA_VL];
    for (int j = 0; j < pairs_of(cols); j++) {
        const uint16_t *a = (const uint16_t *)row_at(SDPA_KIND_BF16, v, 2 * j);
        const int second = 2 * j + 1 < cols;
        const uint16_t *b = second ? (const uint16_t *)row_at(SDPA_KIND_BF16, v, 2 * j + 1) : zeros;
        uint32_t *row = out + (ptrdiff_t)j * w;
        int d = 0;
        for (; d + SDPA_VL <= dv; d += SDPA_VL) {
            vi lo = vi_srli(vbits(vload_bf16(a + d)), 16), hi = vbits(vload_bf16(second ? b + d : zeros));
            vstore((float *)(void *)(row + d), vfloat(vi_or(lo, hi)));
        }
        for (; d < w; d++) row[d] = d < dv ? a[d] | (second ? (uint32_t)b[d] << 16 : 0) : 0;
    }
    *ld = w;
    return dst;
}

#if SDPA_AMX_BF16
/* Q K^T on the tile unit, unscaled, for rows of bfloat16 query pairs (ldq
 * pairs apart) against a packed key tile. */
SDPA_INLINE void amx_raw_scores(int rows, int cols, int depth, const void *q, ptrdiff_t ldq, const void *keys, float *s,
                                ptrdiff_t lds) {
    amx_product(0, rows, cols, pairs_of(depth), q, 4 * ldq, keys, 4 * padded_columns(cols), s, lds);
}
#endif

static void k_scores(sdpa_operand_layout layout, int rows, int cols, int depth, const void *query, ptrdiff_t ldq,
                     const void *keys, float scale, float *s, ptrdiff_t lds, sdpa_mask_kind maskKind,
                     const void *mask, ptrdiff_t ldm, float *tileMax) {
    const ptrdiff_t ldk = padded_columns(cols);
#if SDPA_AMX_BF16
    if (layout == SDPA_LAYOUT_BF16_PAIRS) {
        /* a row of tile blocks at a time, each taken by the epilogue while
         * its scores are still in L1 */
        for (int r0 = 0; r0 < rows; r0 += SDPA_TILE_PASS_ROWS) {
            const int n = rows - r0 < SDPA_TILE_PASS_ROWS ? rows - r0 : SDPA_TILE_PASS_ROWS;
            float *sr = s + r0 * lds, *mr = tileMax ? tileMax + r0 : NULL;
            amx_raw_scores(n, cols, depth, (const char *)query + 4 * r0 * ldq, ldq, keys, sr, lds);
            if (maskKind == SDPA_MASK_BOOL) scores_epilogue(MK_BOOL, n, cols, sr, lds, scale, mask_at(MK_BOOL, mask, r0 * ldm), ldm, mr);
            else if (maskKind == SDPA_MASK_F32) scores_epilogue(MK_F32, n, cols, sr, lds, scale, mask_at(MK_F32, mask, r0 * ldm), ldm, mr);
            else scores_epilogue(MK_NONE, n, cols, sr, lds, scale, NULL, 0, mr);
        }
        return;
    }
#elif SDPA_BF16_DOT
    if (layout == SDPA_LAYOUT_BF16_PAIRS) {
        const int dp = pairs_of(depth);
        if (maskKind == SDPA_MASK_BOOL)
            qk_tile(FMT_BF16_PAIRS, MK_BOOL, rows, cols, dp, query, ldq, keys, ldk, scale, s, lds, mask, ldm, tileMax);
        else if (maskKind == SDPA_MASK_F32)
            qk_tile(FMT_BF16_PAIRS, MK_F32, rows, cols, dp, query, ldq, keys, ldk, scale, s, lds, mask, ldm, tileMax);
        else
            qk_tile(FMT_BF16_PAIRS, MK_NONE, rows, cols, dp, query, ldq, keys, ldk, scale, s, lds, NULL, 0, tileMax);
        return;
    }
#endif
    (void)layout;
    if (maskKind == SDPA_MASK_BOOL)
        qk_tile(FMT_F32, MK_BOOL, rows, cols, depth, query, ldq, keys, ldk, scale, s, lds, mask, ldm, tileMax);
    else if (maskKind == SDPA_MASK_F32)
        qk_tile(FMT_F32, MK_F32, rows, cols, depth, query, ldq, keys, ldk, scale, s, lds, mask, ldm, tileMax);
    else
        qk_tile(FMT_F32, MK_NONE, rows, cols, depth, query, ldq, keys, ldk, scale, s, lds, NULL, 0, tileMax);
}

#if SDPA_BF16_DOT
/* O += P V for rows of P already rounded to bfloat16 pairs (each row's
 * over the front half of its floats, row stride ldp floats). */
SDPA_INLINE void pairs_accumulate(int rows, int cols, int dv, const float *p, ptrdiff_t ldp, const void *values,
                                  ptrdiff_t ldv, float *o, ptrdiff_t ldo) {
#if SDPA_AMX_BF16
    amx_product(1, rows, dv, pairs_of(cols), p, 4 * ldp, values, 4 * ldv, o, ldo);
#else
    gemm(FMT_BF16_PAIRS, 1, 0, MK_NONE, rows, dv, pairs_of(cols), p, ldp, 1, values, ldv, o, ldo, 1.0f, NULL, 0, NULL);
#endif
}
#endif

static void k_accumulate(sdpa_operand_layout layout, int rows, int cols, int dv, float *p, ptrdiff_t ldp,
                         const void *values, ptrdiff_t ldv, float *o, ptrdiff_t ldo) {
#if SDPA_BF16_DOT
    if (layout == SDPA_LAYOUT_BF16_PAIRS) {
        /* P rounded to bfloat16 in place (each row's bfloat16 pairs over the
         * front half of its floats: a store never overtakes the loads); with a
         * tile layer a row of tile blocks at a time, multiplied while it is
         * in L1, else all rows, so the register tile runs no extra edges */
        const int pass = SDPA_TILE_PASS_ROWS ? SDPA_TILE_PASS_ROWS : rows;
        for (int r0 = 0; r0 < rows; r0 += pass) {
            const int n = rows - r0 < pass ? rows - r0 : pass;
            for (int r = r0; r < r0 + n; r++) {
                float *pr = p + (ptrdiff_t)r * ldp;
                uint16_t *br = (uint16_t *)(void *)pr;
                int c = 0;
                for (; c + SDPA_VL <= cols; c += SDPA_VL) vstore_bf16_operand(br + c, vload(pr + c));
                if (c < cols) vstore_half_first(SDPA_KIND_BF16, br + c, cols - c, vload_first(pr + c, cols - c, vmask_first(cols - c)));
                if (cols % 2) br[cols] = 0;
            }
            pairs_accumulate(n, cols, dv, p + (ptrdiff_t)r0 * ldp, ldp, values, ldv, o + (ptrdiff_t)r0 * ldo, ldo);
        }
        return;
    }
#endif
    (void)layout;
    k_pv_tile(rows, cols, dv, p, ldp, (const float *)values, ldv, o, ldo);
}

#endif
