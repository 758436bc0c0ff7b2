/* One key tile's whole step for query rows whose bias is none or a dense
 * mask and that take no dropout: scores, the online-softmax step and P.V,
 * a pass of rows at a time, so that a pass's scores, probabilities and
 * output rows stay in L1 from the product that writes them to the one that
 * reads them (a 96 x 128 score tile alone is 48 KiB).  Each row's bits are
 * those of sdpa_scores, sdpa_softmax_tile and sdpa_accumulate called in
 * turn: every step works row by row.  On the tile unit, unmasked rows skip
 * the scores' store pass: the row maxima come from the raw products and the
 * softmax scales each product as it loads it, the same roundings in the
 * same order. */
#ifndef SDPA_TILES_ATTEND_H
#define SDPA_TILES_ATTEND_H

/* Rows per pass: a row of tile blocks with a tile layer, else a multiple
 * of the register tile whose float32 scores fit in L1 beside the operands. */
#ifndef SDPA_ATTEND_PASS_ROWS
#define SDPA_ATTEND_PASS_ROWS (SDPA_TILE_PASS_ROWS ? SDPA_TILE_PASS_ROWS : 4 * SDPA_MR)
#endif

static void k_attend(sdpa_operand_layout layout, int rows, int cols, int depth, int dv, const void *query,
                     ptrdiff_t ldq, const void *keys, float scale, sdpa_mask_kind maskKind, const void *mask,
                     ptrdiff_t ldm, const void *values, ptrdiff_t ldv, float *s, ptrdiff_t lds, float *tileMax,
                     float *rowMax, float *rowSum, float *o, ptrdiff_t ldo) {
    for (int r0 = 0; r0 < rows; r0 += SDPA_ATTEND_PASS_ROWS) {
        const int n = rows - r0 < SDPA_ATTEND_PASS_ROWS ? rows - r0 : SDPA_ATTEND_PASS_ROWS;
        /* query and mask rows r0 on (4-byte units; a mask row stride of 0 is one row for all) */
        const void *q = (const char *)query + 4 * (ptrdiff_t)r0 * ldq;
        const void *m = maskKind == SDPA_MASK_BOOL ? mask_at(MK_BOOL, mask, r0 * ldm)
                      : maskKind == SDPA_MASK_F32 ? mask_at(MK_F32, mask, r0 * ldm) : NULL;
        float *sr = s, *or = o + (ptrdiff_t)r0 * ldo;
        /* unmasked rows on the tile unit: maxima from the raw products, the
         * scale applied by the softmax */
        const int raw = SDPA_AMX_BF16 && layout == SDPA_LAYOUT_BF16_PAIRS && maskKind == SDPA_MASK_NONE && scale > 0.0f &&
                        scale < __builtin_inff();
        if (raw) {
#if SDPA_AMX_BF16
            amx_raw_scores(n, cols, depth, q, ldq, keys, sr, lds);
#endif
            /* rounding is monotonic, so max fl(scale x) = fl(scale max x) for
             * scale > 0 (NaN skipped alike; row_maxima's chain is the scores
             * epilogue's, signed zeros included); a scale of 0 or inf would
             * turn an infinite x into NaN, so those take k_scores */
            row_maxima(n, cols, sr, lds, tileMax);
            for (int i = 0; i < n; i++) tileMax[i] *= scale;
        } else {
            k_scores(layout, n, cols, depth, q, ldq, keys, scale, sr, lds, maskKind, m, ldm, tileMax);
        }
#if SDPA_BF16_DOT
        if (layout == SDPA_LAYOUT_BF16_PAIRS) {
            /* P rounded to bfloat16 as the softmax stores it */
            if (raw) softmax_tile(1, 1, n, cols, sr, lds, scale, tileMax, rowMax + r0, rowSum + r0, or, ldo, dv);
            else softmax_tile(1, 0, n, cols, sr, lds, scale, tileMax, rowMax + r0, rowSum + r0, or, ldo, dv);
            pairs_accumulate(n, cols, dv, sr, lds, values, ldv, or, ldo);
            continue;
        }
#endif
        softmax_tile(0, 0, n, cols, sr, lds, scale, tileMax, rowMax + r0, rowSum + r0, or, ldo, dv);
        k_accumulate(layout, n, cols, dv, sr, lds, values, ldv, or, ldo);
    }
}

#endif
