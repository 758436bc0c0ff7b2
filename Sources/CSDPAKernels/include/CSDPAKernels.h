/*
 * CSDPAKernels — the innermost CPU loops of scaled-dot-product (flash)
 * attention: per-tile products, the online softmax, masks, conversions.
 * The tiling and the flash-attention driver live in Swift
 * (Sources/SDPA/Kernels/Fused); this target only provides the per-tile
 * loops.  What the forward driver calls, per work item (a few query tiles
 * of one batch and key/value head, for every query head of its group):
 * sdpa_prepare_query once per query tile; per key tile, sdpa_pack_keys
 * and sdpa_pack_values once for all the item's query tiles, then per query
 * tile sdpa_scores, the bias, sdpa_softmax_tile and sdpa_accumulate (one
 * call, sdpa_attend, for rows with at most a dense mask and no dropout;
 * or, for a few query rows, sdpa_scores_direct and sdpa_accumulate_direct
 * around the softmax, reading keys and values as stored);
 * at the end sdpa_normalize_tile (or sdpa_merge_rows for an item whose
 * keys were split across threads).  sdpa_kernels_info's register tile
 * sizes the query tiles.
 *
 * Conventions shared by every function below
 * ------------------------------------------
 *  - All matrices are row-major.  `ld*` is the row stride in ELEMENTS (not
 *    bytes) and must be >= the number of columns actually touched.
 *  - Any size >= 0 is accepted (rows/cols/depth need not be multiples of the
 *    register tile).  A size of 0 is a no-op.  No function reads or writes
 *    an element outside the described rows x cols windows.
 *  - No alignment is required; 64-byte aligned buffers and strides that are
 *    multiples of 16 floats are slightly faster.
 *  - Output buffers must not overlap input buffers (except where a function
 *    explicitly works in place).
 *  - Every function is reentrant and thread-safe.
 *  - The implementation is a *kernel family* (an instruction set), chosen
 *    once, at the first call: the best this CPU runs (amx, avx512bf16,
 *    avx512, avx2 on x86-64; neonbf16, neon on arm64; portable C anywhere),
 *    unless SDPA_KERNELS names another.  amx runs only where Linux grants
 *    the process the tile state (asked for at the first call).
 *    Per call the dispatch costs a thread-local load, an atomic load and an
 *    indirect call.  sdpa_kernels_info gives the family's register tile, so
 *    a driver can size its tiles to it.
 */
#ifndef CSDPA_KERNELS_H
#define CSDPA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* ISA selection                                                           */
/* ---------------------------------------------------------------------- */

/* Name of the kernel family in use on this thread: "amx", "avx512bf16",
 * "avx512", "avx2", "neonbf16", "neon" or "portable".
 * Triggers the one-time CPU detection if it has not happened yet.  The
 * returned string is static. */
const char *sdpa_kernels_isa(void);

/* The families this build has and this CPU can run, best first:
 * sdpa_kernels_family_name(i) for 0 <= i < sdpa_kernels_family_count()
 * (NULL past the end).  The first is what runs unless the environment
 * variable SDPA_KERNELS, read once at the first call, or
 * sdpa_kernels_select names another. */
int sdpa_kernels_family_count(void);
const char *sdpa_kernels_family_name(int index);

/* Selects the family called `name` for the whole process (NULL: the default
 * again: the one SDPA_KERNELS names, else the best).  Returns 0, or -1 (nothing changed) when this build has no such
 * family or the CPU cannot run it.  Calls in flight on other threads finish
 * with the family they started with: for tests and benchmarks, not hot
 * paths. */
int sdpa_kernels_select(const char *name);

/* Selects `name` for the calls made on the calling thread only (NULL: the
 * process's choice again); returns 0, or -1 as sdpa_kernels_select.  Lets a
 * test check every family in one process: a fused call on one thread
 * (withSDPAThreads(1)) runs entirely on its caller's thread. */
int sdpa_kernels_use_on_this_thread(const char *name);

/* The shape of the family's register tiles, for a driver's tiling. */
typedef struct sdpa_kernel_info {
    int vector_floats; /* float lanes per vector */
    int tile_rows;     /* rows of the GEMM register tile: a query tile whose
                          rows are a multiple of it runs no edge tiles */
    int tile_columns;  /* columns of one register-tile panel */
    float softmax_exact_from; /* rows whose maximum is at least this in
                                 magnitude take sdpa_softmax_tile's exact
                                 reference (32768; 0 without FMA) */
} sdpa_kernel_info;

/* Fills *info for the family in use on this thread. */
void sdpa_kernels_info(sdpa_kernel_info *info);

/* ---------------------------------------------------------------------- */
/* GEMM tiles                                                              */
/* ---------------------------------------------------------------------- */

/* Scores tile:  S[r][c] = scale * sum_{e < depth} Q[r][e] * Kt[e][c]
 *   for 0 <= r < rows, 0 <= c < cols;  tileMax[r] = max_c S[r][c] (NaN
 *   skipped, -INFINITY for cols == 0) when tileMax is not NULL, taken from
 *   the registers as the tile is stored, so sdpa_softmax_tile can skip its
 *   own pass over the scores.
 *   q  : rows  x depth, row stride ldq   (query rows, as stored)
 *   kt : depth x cols,  row stride ldkt  (K tile packed TRANSPOSED, i.e.
 *        contiguous along keys; produce it with sdpa_pack_kt_*)
 *   s  : rows  x cols,  row stride lds   (overwritten, not accumulated)
 * depth is the head dimension (1..256 typical; any value >= 0 works, depth 0
 * writes zeros).  Kt is transposed so that the inner loop broadcasts one Q
 * element and multiplies it with contiguous vectors of keys, in a register
 * tile of sdpa_kernel_info's tile_rows x tile_columns (padding columns of
 * kt are never read or written). */
void sdpa_qk_tile(int rows, int cols, int depth,
                  const float *q, ptrdiff_t ldq,
                  const float *kt, ptrdiff_t ldkt,
                  float scale,
                  float *s, ptrdiff_t lds,
                  float *tileMax);

/* The element types sdpa_qk_tile_direct reads keys in. */
typedef enum sdpa_element_kind {
    SDPA_ELEMENT_F32 = 0,
    SDPA_ELEMENT_F16 = 1, /* IEEE binary16 bits */
    SDPA_ELEMENT_BF16 = 2 /* bfloat16 bits */
} sdpa_element_kind;

/* sdpa_qk_tile for a few query rows (decoding: one row per head, or a GQA
 * group's few), reading the keys as stored instead of from a packed K^T:
 *   S[r][c] = scale * sum_e Q[r][e] * K[c][e],  tileMax as sdpa_qk_tile.
 *   k : cols x depth, row stride ldk, elements of `kind` (converted to float
 *       exactly on the way).
 * With one query row, packing K^T costs more than the product it feeds
 * (the transpose read and wrote every key, then the product read it
 * again); here each key row is read once, 8 keys at a time (a dot product
 * per key over 8-wide partial sums, reduced 8 keys to a vector).  Any rows
 * works; it pays off below about 6 (one register tile of sdpa_qk_tile).
 * The sum runs in another order than sdpa_qk_tile's: results agree to
 * rounding, not to the bit. */
void sdpa_qk_tile_direct(int rows, int cols, int depth,
                         const float *q, ptrdiff_t ldq,
                         sdpa_element_kind kind, const void *k, ptrdiff_t ldk,
                         float scale,
                         float *s, ptrdiff_t lds,
                         float *tileMax);

/* The kinds of dense mask sdpa_qk_tile_masked applies. */
typedef enum sdpa_mask_kind {
    SDPA_MASK_NONE = 0, /* no mask (sdpa_scores only) */
    SDPA_MASK_BOOL = 1, /* uint8_t, 0 = masked (the score becomes -INFINITY) */
    SDPA_MASK_F32 = 2   /* float, added to the score; -INFINITY replaces it */
} sdpa_mask_kind;

/* sdpa_qk_tile with a dense mask applied in registers as the tile is
 * stored (the same results as sdpa_qk_tile followed by sdpa_mask_tile_bool
 * or sdpa_add_mask_tile_f32, in one pass):
 *   mask : rows x cols of the kind given, contiguous along keys, row stride
 *          ldm (0 = one row for every query)
 *   tileMax: NULL, or the rows' maxima of the masked scores (NaN skipped,
 *          -INFINITY for a fully masked row), for sdpa_softmax_tile.
 * A masked score is -INFINITY whatever Q.K gave (NaN included), as on the
 * math path. */
void sdpa_qk_tile_masked(int rows, int cols, int depth,
                         const float *q, ptrdiff_t ldq,
                         const float *kt, ptrdiff_t ldkt,
                         float scale,
                         float *s, ptrdiff_t lds,
                         sdpa_mask_kind kind, const void *mask, ptrdiff_t ldm,
                         float *tileMax);

/* Output accumulation tile:  O[r][d] += sum_{c < cols} P[r][c] * V[c][d]
 *   for 0 <= r < rows, 0 <= d < dv.
 *   p : rows x cols, row stride ldp  (probabilities from sdpa_softmax_tile)
 *   v : cols x dv,   row stride ldv  (value rows, as stored: no packing)
 *   o : rows x dv,   row stride ldo  (ACCUMULATED into; read-modify-write)
 * dv is the value head dimension (1..256 typical).  Same register tile as
 * sdpa_qk_tile, the reduction runs over the key index c; V is used in
 * place because its rows are already contiguous along d.  Call it AFTER
 * sdpa_softmax_tile for the same tile (softmax rescales O by alpha first). */
void sdpa_pv_tile(int rows, int cols, int dv,
                  const float *p, ptrdiff_t ldp,
                  const float *v, ptrdiff_t ldv,
                  float *o, ptrdiff_t ldo);

/* ---------------------------------------------------------------------- */
/* Operands in the family's own layout                                     */
/* ---------------------------------------------------------------------- */

/* The layout a family's tile products read for inputs of one element kind.
 * A driver sizes the buffers (sdpa_operand_bytes) and passes them from the
 * preparing call to the product without looking inside:
 *  - SDPA_LAYOUT_F32: query rows and value rows as float32, keys packed
 *    transposed (K^T, contiguous along keys);
 *  - SDPA_LAYOUT_BF16_PAIRS (bfloat16 inputs, on a family with a bfloat16
 *    dot product): two consecutive elements along the depth in each 32-bit
 *    lane (the dot-product instructions' layout), float32 accumulation; P
 *    is rounded to bfloat16 for P.V, as FlashAttention does. */
typedef enum sdpa_operand_layout {
    SDPA_LAYOUT_F32 = 0,
    SDPA_LAYOUT_BF16_PAIRS = 1
} sdpa_operand_layout;

/* Which operand a buffer holds. */
typedef enum sdpa_operand_role {
    SDPA_OPERAND_QUERY = 0,  /* count = rows, width = depth (the reduction) */
    SDPA_OPERAND_KEYS = 1,   /* count = keys, width = depth */
    SDPA_OPERAND_VALUES = 2  /* count = rows along the reduction (keys), width = columns (value depth) */
} sdpa_operand_role;

typedef const void *sdpa_const_ptr;

/* Where `cols` rows of an input are: row c at rows[c] when rows is not NULL
 * (a paged cache, whose rows sit in blocks), else at base + c * stride
 * elements (a strided tensor).  Row addresses need no alignment. */
typedef struct sdpa_rows {
    const void *base;
    ptrdiff_t stride;
    const void *const *rows;
} sdpa_rows;

/* The layout this family's products read for inputs of `kind`. */
sdpa_operand_layout sdpa_layout_for(sdpa_element_kind kind);

/* Bytes of a buffer holding `count` x `width` of an operand in `layout`. */
size_t sdpa_operand_bytes(sdpa_operand_layout layout, sdpa_operand_role role, int count, int width);

/* Query rows for sdpa_scores: rows x depth elements of `kind` (row stride
 * ldq), times `scale` (a power of two, so exact), in `layout`; in
 * SDPA_LAYOUT_BF16_PAIRS `kind` is bfloat16, or float32 rows to be rounded
 * to bfloat16 (nearest even: the backward's dS).  Returns where they are
 * and sets *ld to their row stride (in the layout's 4-byte units): dst, or
 * q itself when nothing needs doing (float32 rows, scale 1,
 * SDPA_LAYOUT_F32). */
sdpa_const_ptr sdpa_prepare_query(sdpa_operand_layout layout, sdpa_element_kind kind, int rows,
                                  int depth, const void *q, ptrdiff_t ldq, float scale, void *dst,
                                  ptrdiff_t *ld);

/* Packs cols keys (rows of `depth` elements of `kind`) for sdpa_scores into
 * dst (sdpa_operand_bytes(layout, SDPA_OPERAND_KEYS, cols, depth) bytes).
 * The packed tile is the same whatever rows k names, so a paged cache and a
 * contiguous tensor holding the same keys give the same bits. */
void sdpa_pack_keys(sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int depth,
                    sdpa_rows k, void *dst);

/* Value rows for sdpa_accumulate: cols rows of dv elements of `kind` in
 * `layout`; in SDPA_LAYOUT_BF16_PAIRS `kind` is bfloat16, or float32 rows
 * to be rounded to bfloat16 (nearest even: the backward's P and dS as the
 * transposed A of sdpa_gemm_tile, cols = query rows).  Returns where they
 * are and sets *ld to their row stride: dst, or v's own rows when they need
 * nothing (float32 rows at a stride, SDPA_LAYOUT_F32). */
sdpa_const_ptr sdpa_pack_values(sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int dv,
                                sdpa_rows v, void *dst, ptrdiff_t *ld);

/* sdpa_qk_tile_direct with the keys wherever k names them and the query
 * rows prepared by sdpa_prepare_query in `layout` (row stride ldq in its
 * 32-bit units: floats, or bfloat16 pairs when layout is
 * sdpa_layout_for(SDPA_ELEMENT_BF16) and kind is bfloat16, whose keys are then
 * multiplied as stored pairs).  The value rows v names for the same keys (dv
 * elements of `kind` each; v.base and v.rows NULL: none) are prefetched while
 * the keys are read, for sdpa_accumulate_direct: short ones (at most 128
 * bytes, 256 for one query row) whole at a block's start, longer ones a line
 * with each key line. */
void sdpa_scores_direct(sdpa_operand_layout layout, int rows, int cols, int depth, const void *q,
                        ptrdiff_t ldq, sdpa_element_kind kind, sdpa_rows k, float scale, float *s,
                        ptrdiff_t lds, float *tileMax, sdpa_rows v, int dv);

/* The key tile a decoding item reads after this one: `count` rows of keys
 * (`depth` elements each) and of values (dv elements), of the same kind. */
typedef struct sdpa_next_tile {
    sdpa_rows keys, values;
    int count, depth;
} sdpa_next_tile;

/* O += P V for a few rows with the value rows read as stored (cols rows of
 * dv elements of `kind`, wherever v names them; half kinds widened exactly
 * as loaded): the bits sdpa_accumulate gives in SDPA_LAYOUT_F32, without
 * packing the values.  With `next` (NULL: none), the next tile's key and
 * value rows are prefetched during the last pass over the values, a row of
 * each with each value row read: the values were prefetched during Q.K^T,
 * so P.V issues no memory reads of its own, and without these the memory
 * would idle while it runs.  Pass it only where sdpa_prefetches_next_tile()
 * says so. */
void sdpa_accumulate_direct(int rows, int cols, int dv, const float *p, ptrdiff_t ldp,
                            sdpa_element_kind kind, sdpa_rows v, float *o, ptrdiff_t ldo,
                            const sdpa_next_tile *next);

/* Whether handing sdpa_accumulate_direct the next tile pays on this CPU
 * (1) or not (0), whatever the family.  An Intel core's software prefetches
 * each hold one of its few L1 miss buffers until the line arrives, so the
 * next tile's burst (a key and a value row with each value row read) stalls
 * P.V there: GQA decoding on a Xeon ran faster without it, from memory and
 * in cache, while an AMD core (Zen 5) ran faster from memory with it
 * (RFC.md, "The fused kernel", and its metrics).  So 0 on Intel, 1
 * elsewhere.
 * SDPA_PREFETCH_NEXT_TILE=0 or 1 in the environment overrides the choice
 * (to measure both on one machine).  Decided once per process. */
int sdpa_prefetches_next_tile(void);

/* sdpa_qk_tile / sdpa_qk_tile_masked (maskKind SDPA_MASK_NONE: no mask) on
 * prepared operands: S = scale * Q K^T, rows x cols, depth elements, with
 * the dense mask applied and the row maxima taken as those functions do. */
void sdpa_scores(sdpa_operand_layout layout, int rows, int cols, int depth, const void *query,
                 ptrdiff_t ldq, const void *keys, float scale, float *s, ptrdiff_t lds,
                 sdpa_mask_kind maskKind, const void *mask, ptrdiff_t ldm, float *tileMax);

/* sdpa_pv_tile on prepared values: O += P V (rows x dv, over cols keys).
 * In SDPA_LAYOUT_BF16_PAIRS, P (rows x cols floats, row stride ldp) is
 * overwritten: rounded to bfloat16 in place. */
void sdpa_accumulate(sdpa_operand_layout layout, int rows, int cols, int dv, float *p, ptrdiff_t ldp,
                     const void *values, ptrdiff_t ldv, float *o, ptrdiff_t ldo);

/* One key tile's step for rows whose bias is none or a dense mask and that
 * take no dropout: sdpa_scores (into s, with tileMax as its row maxima),
 * sdpa_softmax_tile (rowMax, rowSum and O, rows x dv, row stride ldo) and
 * sdpa_accumulate, a few rows at a time (a family's pass: the scores, P and
 * output rows of a pass stay in L1 between the steps), with the bits of the
 * three calls in turn.  s and tileMax are scratch: the first pass's rows of
 * s (row stride lds) and tileMax are overwritten, at most `rows` of each. */
void sdpa_attend(sdpa_operand_layout layout, int rows, int cols, int depth, int dv, const void *query,
                 ptrdiff_t ldq, const void *keys, float scale, sdpa_mask_kind maskKind, const void *mask,
                 ptrdiff_t ldm, const void *values, ptrdiff_t ldv, float *s, ptrdiff_t lds, float *tileMax,
                 float *rowMax, float *rowSum, float *o, ptrdiff_t ldo);

/* ---------------------------------------------------------------------- */
/* Packing K^T                                                             */
/* ---------------------------------------------------------------------- */

/* Kt[e][c] = K[c][e]  for 0 <= c < cols, 0 <= e < depth.
 *   k  : cols  x depth, row stride ldk  (key rows as stored)
 *   kt : depth x cols,  row stride ldkt (output, ldkt >= cols)
 * Why: sdpa_qk_tile wants keys contiguous (one Q broadcast x 16 keys per
 * FMA pair).  Vectorized 8x8 transposes.  The f16/bf16 variants take raw
 * IEEE binary16 / bfloat16 bit patterns and convert to float while
 * transposing (exact), so half-precision K never needs a separate f32 copy. */
void sdpa_pack_kt_f32(int cols, int depth,
                      const float *k, ptrdiff_t ldk,
                      float *kt, ptrdiff_t ldkt);
void sdpa_pack_kt_f16(int cols, int depth,
                      const uint16_t *k, ptrdiff_t ldk,
                      float *kt, ptrdiff_t ldkt);
void sdpa_pack_kt_bf16(int cols, int depth,
                       const uint16_t *k, ptrdiff_t ldk,
                       float *kt, ptrdiff_t ldkt);

/* ---------------------------------------------------------------------- */
/* Row converters (n contiguous elements, src and dst must not overlap)    */
/* For half-precision Q / V inputs (convert a tile's rows into f32 scratch) */
/* and f16 / bf16 outputs (convert normalized f32 output rows).            */
/* ---------------------------------------------------------------------- */

/* IEEE binary16 -> float32 (exact, subnormals/inf/NaN handled; F16C). */
void sdpa_convert_f16_to_f32(size_t n, const uint16_t *src, float *dst);
/* float32 -> IEEE binary16, round to nearest even; overflow -> +-inf,
 * inf preserved, NaN stays NaN (quieted, sign kept). */
void sdpa_convert_f32_to_f16(size_t n, const float *src, uint16_t *dst);
/* bfloat16 -> float32 (exact: bits << 16). */
void sdpa_convert_bf16_to_f32(size_t n, const uint16_t *src, float *dst);
/* float32 -> bfloat16, round to nearest even; overflow -> +-inf, inf
 * preserved, NaN stays NaN (quiet bit set, sign kept). */
void sdpa_convert_f32_to_bf16(size_t n, const float *src, uint16_t *dst);

/* ---------------------------------------------------------------------- */
/* Online softmax                                                          */
/* ---------------------------------------------------------------------- */

/* One online-softmax step on a rows x cols score tile (flash attention):
 * lets the driver process keys tile by tile with O(Br x Bc) scratch instead
 * of materializing a full L x S score matrix.
 *   s      : rows x cols, row stride lds.  In: scores already scaled and
 *            biased, -INFINITY = masked.  Out: p = exp(s - m) (in place).
 *   tileMax: NULL, or the rows' maxima of s as sdpa_qk_tile gives them
 *            (valid only if nothing changed s since: a bias applied to the
 *            tile must pass NULL, and the maxima are then computed here).
 *   rowMax : rows values, running max m (initialize to -INFINITY; never
 *            NaN afterwards).
 *   rowSum : rows values, running sum l (initialize to 0).
 * Any rows / cols >= 0 (rows are processed in chunks of 64 internally).
 *   o      : rows x dv, row stride ldo, running (unnormalized) output;
 *            rescaled by alpha.  o may be NULL when dv == 0.
 * For each row r, with rho(m) the reference described below:
 *   mOld = rowMax[r];  mNew = max(mOld, max_c s[r][c])   (NaN ignored)
 *   mUse = (mNew == -inf) ? 0 : mNew
 *   s[r][c] = 2^(s[r][c] log2e - rho(mUse))  (exp(s - mUse), up to a factor
 *                                    the whole row shares; -inf gives
 *                                    exactly 0, NaN stays NaN)
 *   alpha = 2^(rho(mOld) - rho(mUse)) (0 if mOld == -inf; exactly 1 if the
 *                                    maximum did not move; never NaN)
 *   rowSum[r] = rowSum[r]*alpha + sum_c s[r][c]
 *   o[r][0..dv) *= alpha            (skipped when alpha == 1, and when
 *                                    mOld == -inf: no key has contributed
 *                                    yet, o holds the zeros it started as)
 *   rowMax[r] = mNew
 * NaN scores do not take part in the max but do propagate (p = NaN, so the
 * row sum and, through sdpa_pv_tile, the output row become NaN).  A +inf
 * score yields NaN for that row (inf - inf), like the reference formula.
 * The reference: for |m| < 32768 (sdpa_kernel_info's softmax_exact_from; 0 in
 * a family without FMA), rho(m) = M = m*log2e rounded once (one FMA
 * per score; M's rounding scales the whole row alike and cancels in the
 * normalization; sdpa_row_logsumexp undoes it); beyond, rho(m) = m*log2e
 * exactly and p = 2^((s - m) log2e), so that any finite scores (a scale of
 * 1e9, inputs near 1e19) give the right probabilities.  2^u: 2^(j/8) from an
 * 8-entry table times a cubic for 2^r, |r| <= 1/16, 1.9 ulp; arguments at
 * or below -127 (including -inf) give exactly +0.0 (masked keys contribute
 * exactly nothing), results below FLT_MIN (2^-126) are approximate.
 * sdpa_exp_f32 (Cody-Waite reduction, degree-4 minimax polynomial, ~1 ulp
 * for results >= FLT_MIN) returns subnormal results too, and handles
 * positive arguments (> ln(FLT_MAX) ~ 88.72 -> +inf). */
void sdpa_softmax_tile(int rows, int cols,
                       float *s, ptrdiff_t lds,
                       const float *tileMax,
                       float *rowMax, float *rowSum,
                       float *o, ptrdiff_t ldo, int dv);

/* Final normalization of a flash-attention output tile (after the last key
 * tile; softmax denominators are applied once at the end, not per tile),
 * written where the output goes, in its element kind:
 *   dst[r][d] = o[r][d] * (1 / rowSum[r])   for 0 <= r < rows, 0 <= d < dv,
 * dst's rows ldd elements apart, float16 and bfloat16 rounded from the
 * float32 product.  Rows with rowSum[r] == 0 (every key masked) are set to
 * +0 (not NaN); a driver that wants NaN for fully masked rows must check
 * rowSum itself.  dst may be o (float32, ldd = ldo): in place. */
void sdpa_normalize_tile(int rows, int dv, const float *o, ptrdiff_t ldo,
                         const float *rowSum, sdpa_element_kind kind,
                         void *dst, ptrdiff_t ldd);

/* The log-sum-exp of each finished row from its online-softmax state:
 *   lse[r] = log(sum_c exp(score_rc)) over every key the row saw, or
 *   -INFINITY for a row that saw none (rowSum[r] == 0).
 * The softmax keeps each row's sum relative to a reference that depends on
 * rowMax[r] alone (see sdpa_softmax_tile); this undoes it exactly. */
void sdpa_row_logsumexp(int rows, const float *rowMax, const float *rowSum, float *lse);

/* Merges two partial online-softmax states of the same rows, computed over
 * disjoint key ranges (split-KV), into the first:
 *   (o, rowMax, rowSum) <- both rescaled to the larger maximum and added.
 * o, o2: rows x dv, row strides ldo, ldo2 (unnormalized running outputs).
 * A row whose maxima are both -INFINITY is left as it is.  The result is
 * what one softmax over both ranges would hold, to rounding; merging in a
 * fixed order gives the same bits whatever thread computed each part. */
void sdpa_merge_rows(int rows, int dv, float *o, ptrdiff_t ldo, float *rowMax,
                     float *rowSum, const float *o2, ptrdiff_t ldo2,
                     const float *rowMax2, const float *rowSum2);

/* y[i] = exp(x[i]) for i < n with the same vectorized exp as
 * sdpa_softmax_tile (same accuracy and special-value rules; +inf -> +inf,
 * NaN -> NaN, values in (88.72, +inf] -> +inf).  Exposed for tests and for
 * drivers that need the kernel's exp elsewhere.  x and y may be equal. */
void sdpa_exp_f32(size_t n, const float *x, float *y);

/* y[i] = GELU(x[i]) = x/2 (1 + erf(x/sqrt 2)) for i < n, the exact GELU of
 * BERT and PyTorch's nn.GELU(): erf from Abramowitz and Stegun 7.1.26
 * (absolute error <= 1.5e-7, PyTorch's own vectorized erf), 1 + erf(z) for
 * z < 0 formed as erfc(|z|) = P(t) exp(-z^2), so large negative inputs lose
 * nothing to cancellation.  -inf -> 0, +inf -> +inf, NaN -> NaN.  x and y
 * may be equal. */
void sdpa_gelu_f32(size_t n, const float *x, float *y);

/* ---------------------------------------------------------------------- */
/* Masks and score modifiers (applied to a score tile in place, between    */
/* sdpa_qk_tile and sdpa_softmax_tile)                                     */
/* ---------------------------------------------------------------------- */

/* Bool mask:  s[r][c] = (mask[r*ldm + c] != 0) ? s[r][c] : -INFINITY
 *   for 0 <= r < rows, 0 <= c < cols.
 *   s    : rows x cols, row stride lds (in place)
 *   mask : rows x cols bytes, row stride ldm (0 = nonzero means visible).
 *          ldm may be 0 (the same mask row for every score row, e.g. a
 *          key-padding mask broadcast over queries).
 * The mask is read as bytes, one per key, contiguous along keys; a mask
 * with a key stride != 1 must be applied by the caller.  Visible scores are
 * left bit-for-bit unchanged (NaN, -0.0 included). */
void sdpa_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds,
                         const uint8_t *mask, ptrdiff_t ldm);

/* Additive float mask:  with m = mask[r*ldm + c],
 *   s[r][c] = (m == -INFINITY) ? -INFINITY : s[r][c] + m
 *   for 0 <= r < rows, 0 <= c < cols.
 * -INFINITY replaces the score rather than being added to it, so a NaN (or
 * +inf) score at a masked position stays masked.  Other values are a plain
 * float addition (NaN in the mask propagates; +inf + finite = +inf).
 * Same layout rules as sdpa_mask_tile_bool (ldm may be 0). */
void sdpa_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds,
                            const float *mask, ptrdiff_t ldm);

/* What a rows x cols tile of a dense mask of this kind holds, for skipping
 * tiles: bit 0 (SDPA_MASK_SEEN_MASKED) is set if some position is masked
 * (a zero byte, or -INFINITY), bit 1 (SDPA_MASK_SEEN_VISIBLE) if some
 * position is not.  Stops reading as soon as the bits in `enough` are all
 * set (e.g. both bits: the tile is partial, the rest does not matter).
 * Layout as sdpa_mask_tile_bool (contiguous along keys, row stride ldm,
 * which may be 0); no byte outside the tile is read. */
enum { SDPA_MASK_SEEN_MASKED = 1, SDPA_MASK_SEEN_VISIBLE = 2 };
int sdpa_mask_tile_visibility(sdpa_mask_kind kind, int rows, int cols,
                              const void *mask, ptrdiff_t ldm, int enough);

/* Soft-capping (Gemma 2):  s[r][c] = cap * tanh(s[r][c] / cap)
 *   for 0 <= r < rows, 0 <= c < cols, in place (row stride lds),
 * except that -INFINITY (masked) stays -INFINITY.  NaN stays NaN, +inf ->
 * cap.  cap is expected positive and finite (the result for other caps is
 * whatever the formula gives).
 * Every family: u = s / cap, then
 *   |u| < 0.625 : cap * (u + u^3 P(u^2)) evaluated as s + s * u^2 P(u^2),
 *                 degree-4 minimax P (Cephes tanhf coefficients): no
 *                 cancellation for small |u|, tiny / subnormal s returned
 *                 unchanged, -0.0 kept;
 *   |u| >= 0.625: cap * (1 - 2 / (exp(2|u|) + 1)) with the kernel's exp
 *                 (|u| clamped to 9.5, where tanh already rounds to 1),
 *                 sign of s restored.
 * Measured max error (vs. tanh in double): 1.33 ulp for cap = 1 over every
 * positive float; 2.7 ulp for cap = 50; 2.7 ulp for random caps in
 * [e^-10, e^10] (AVX2; the other families use the same formula).  Vectors
 * whose lanes all have |u| < 0.625 skip the exp. */
void sdpa_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds,
                       float cap);

/* ALiBi on a score tile in place (row stride lds), d = first + r - c (the
 * distance of key c from the diagonal in row r, exact as a float below
 * 2^24):
 *   s[r][c] = -INFINITY                      if causal and d < 0,
 *   s[r][c] = s[r][c] - slope * |d|          otherwise,
 * the product rounded to float, then the difference (never one fused
 * operation): the bits of `score - slope * |d|` in float32 arithmetic. */
void sdpa_alibi_tile(int rows, int cols, float *s, ptrdiff_t lds, float slope, ptrdiff_t first, int causal);

/* ---------------------------------------------------------------------- */
/* Backward pass (FlashAttention-2): per key tile, P is recomputed from the */
/* scores and the forward's log-sum-exp, then dV += P^T dO, dP = dO V^T,    */
/* dS = P o (dP - D) with D = rowsum(dO o O), dQ += scale dS K and          */
/* dK += scale dS^T Q.                                                      */
/* ---------------------------------------------------------------------- */

/* General tile product:
 *   C = alpha op(A) B        (accumulate == 0)
 *   C += alpha op(A) B       (accumulate != 0; one FMA per element of C)
 * for C m x n (row stride ldc), B k x n (row stride ldb), and
 *   op(A) = A    : a is m x k, row stride lda        (transposeA == 0)
 *   op(A) = A^T  : a is k x m, row stride lda        (transposeA != 0)
 * The transposed A is read in place through its strides (the micro-kernel
 * broadcasts one element of A at a time), so in float32 dV += P^T dO and
 * dK += dS^T Q need no transposed copy of P or dS.  B must be contiguous
 * along n.  `layout` is one sdpa_layout_for gave on this family (another
 * is read as float32):
 *  - SDPA_LAYOUT_F32: a and b hold floats (strides in floats); the register
 *    tile and accuracy of sdpa_qk_tile: each element is a float32 dot
 *    product of length k;
 *  - SDPA_LAYOUT_BF16_PAIRS: the depth k runs in bfloat16 pairs, and a and
 *    b hold 32-bit pair words (strides in words): A's rows as
 *    sdpa_prepare_query lays them out ([m][pairs of k]; transposed, as
 *    sdpa_pack_values does, [pairs of k][m]), B as sdpa_pack_values
 *    ([pairs of k][n]); an odd k's last pair padded with 0.  Float32
 *    sources are rounded to bfloat16 by those calls (kind
 *    SDPA_ELEMENT_F32), as PyTorch and FlashAttention round P and dS for
 *    the backward's products; the products are exact, the sums float32.
 * k = 0: C = 0, or C unchanged. */
void sdpa_gemm_tile(sdpa_operand_layout layout, int transposeA, int accumulate, int m, int n,
                    int k, float alpha, const void *a, ptrdiff_t lda, const void *b,
                    ptrdiff_t ldb, float *c, ptrdiff_t ldc);

/* The attention weights from the scores and the forward's log-sum-exp:
 *   s[r][c] = exp(s[r][c] - lse[r])   in place (row stride lds),
 * the natural exp of sdpa_exp_f32 (about 1 ulp): -INFINITY scores give
 * exactly 0, NaN stays NaN, and a row whose lse[r] is -INFINITY (it saw no
 * key in the forward) becomes 0, never NaN. */
void sdpa_probabilities_tile(int rows, int cols, float *s, ptrdiff_t lds, const float *lse);

/* d[r] = sum_{c < cols} a[r][c] * b[r][c]: FlashAttention-2's D =
 * rowsum(dO o O) (a = dO, b = O, cols = Ev).  float32 partial sums. */
void sdpa_row_dot(int rows, int cols, const float *a, ptrdiff_t lda, const float *b,
                  ptrdiff_t ldb, float *d);

/* The gradient of the (scaled, biased) scores:
 *   dp[r][c] = p[r][c] * (dp[r][c] - d[r])   in place (row stride lddp),
 * and exactly 0 wherever p[r][c] == 0, whatever dp holds: a masked key (or
 * one whose weight underflowed) contributes nothing, and a NaN in its value
 * row does not reach the gradients (as it does not reach the forward's
 * output).  p: the weights before dropout; dp: dO V^T with the dropout
 * tile applied (dropout scales dP as it scaled P). */
void sdpa_score_gradient_tile(int rows, int cols, const float *p, ptrdiff_t ldp, float *dp,
                              ptrdiff_t lddp, const float *d);

/* Through soft-capping (y = cap * tanh(x / cap), sdpa_softcap_tile):
 *   g[r][c] *= 1 - (y[r][c] / cap)^2,  evaluated as (1 - u)(1 + u), u = y / cap,
 * from the CAPPED scores y (what the forward's tile holds after the bias),
 * so no copy of the scores before the cap is needed.  y = -INFINITY (masked)
 * gives g = 0; NaN propagates.  The factor is within a few float32 ulps of
 * 1 in absolute terms (u carries the rounding of y). */
void sdpa_softcap_gradient_tile(int rows, int cols, float *g, ptrdiff_t ldg, const float *y,
                                ptrdiff_t ldy, float cap);

/* ALiBi's slope gradient over a tile of score gradients g (row stride ldg):
 *   sum_r sum_c g[r][c] * |first + r - c|
 * each row summed in float32 vectors, the rows in double. */
double sdpa_distance_weighted_sum(int rows, int cols, const float *g, ptrdiff_t ldg, ptrdiff_t first);

/* Dropout on a tile of attention weights, or of their gradient dP, in place:
 *   p[r][c] = 0                               if dropped,
 *   p[r][c] = p[r][c] * (float)(1 / (1 - dropoutP))   otherwise,
 * for 0 <= r < rows, 0 <= c < cols (row stride ldp).  Element (r, c) is
 * decided by counter n = counter + r * counterRowStride + c: dropped when
 * (bits(n) >> 11) * 2^-53 < dropoutP, bits(n) the SplitMix64 finalizer of
 * seed + (n + 1) * 0x9E3779B97F4A7C15 -- the Swift library's counter-based
 * generator bit for bit, so the fused and the math paths, forward and
 * backward, at any thread count drop the same weights.  The library numbers
 * position (b, h, i, j) of [B, H, L, S] as ((b H + h) L + i) S + j: a tile
 * at query row i0, key j0 passes counter = ((b H + h) L + i0) S + j0 and
 * counterRowStride = S.  dropoutP in [0, 1]: 0 keeps every weight (times 1),
 * 1 drops every one.  Dropped weights are exactly 0, even NaN ones. */
void sdpa_dropout_tile(int rows, int cols, float *p, ptrdiff_t ldp, float dropoutP, uint64_t seed,
                       uint64_t counter, uint64_t counterRowStride);

/* ---------------------------------------------------------------------- */
/* Machine peak                                                            */
/* ---------------------------------------------------------------------- */

/* The FP32 FMA peak of ONE thread running the FMA loop of the kernel family
 * `family` (NULL: the family in use on this thread, sdpa_kernels_isa()), in
 * GFLOP/s: independent multiply-add chains in the family's vectors (written
 * once over the vector layer, like its kernels: zmm FMA for avx512*, ymm
 * for avx2, fmla for neon, the baseline target's mul + add for portable),
 * 2 FLOP per lane and multiply-add.  Returns -1 when this build has no
 * family of that name or this CPU cannot run it.  Measured once per loop and process (the fastest of a
 * few runs, about 5 ms in all) and cached; thread-safe.  Multi-core peaks
 * are this figure times the threads used (FMA units are per core). */
double sdpa_kernels_fma_peak_gflops(const char *family);

/* The sum of the whole vectors of floats in `bytes` bytes from p (the rest
 * ignored; any alignment), read in the vectors of the family in use on this
 * thread: the read pass a memory-bandwidth figure times, so that memory-bound
 * kernels (decoding) are set against reading as many bytes with the loads
 * they use.  Summing, not discarding, so that no compiler drops the loads. */
double sdpa_read_sum(const void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* CSDPA_KERNELS_H */
