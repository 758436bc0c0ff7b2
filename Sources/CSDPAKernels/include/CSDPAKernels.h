/*
 * CSDPAKernels — innermost CPU micro-kernels for scaled-dot-product
 * (flash) attention.  The tiling / flash-attention driver lives in Swift;
 * this target only provides the per-tile hot loops.
 *
 * Conventions shared by every function below
 * ------------------------------------------
 *  - All matrices are row-major.  `ld*` is the row stride in ELEMENTS (not
 *    bytes) and must be >= the number of columns actually touched.
 *  - Any size >= 0 is accepted (rows/cols/depth need not be multiples of the
 *    register tile).  A size of 0 is a no-op.  Edges are handled with masked
 *    vector loads/stores or scalar tails: no function ever reads or writes an
 *    element outside the described rows x cols windows.
 *  - No alignment is required (unaligned loads, masked edges).  64-byte
 *    aligned scratch buffers and strides that are multiples of 8 floats are
 *    slightly faster.  Row strides that are multiples of 512 bytes (128
 *    floats) make long column panels (K^T with large E, V with E >= 128 and
 *    Bc > 64) collide in a few L1 sets; see the tiling notes below.
 *  - Output buffers must not overlap input buffers (except where a function
 *    explicitly works in place).
 *  - Every function is reentrant and thread-safe (no global mutable state
 *    besides the one-time ISA selection, which is done with an atomic).
 *  - The implementation (ISA variant) is chosen once, at the first call of
 *    any function: AVX2+FMA(+F16C) on x86-64 CPUs that support it, otherwise
 *    a portable C implementation (auto-vectorized by the compiler; this is
 *    also what runs on arm64).  Per call the dispatch costs one atomic load
 *    and one indirect call.
 *
 * Recommended tiling for a flash-attention driver (AVX2, measured on a Zen
 * core with 48 KiB L1D / 1 MiB L2):
 *    head dim E <= 64 : Br = 96 query rows, Bc = 128 key columns
 *    head dim E  > 64 : Br = 96 query rows, Bc = 64  key columns (E=128, 256)
 *  The optimum is flat: Br 72..192 and Bc 64..256 are all within ~5%.
 *  - Br a multiple of 6 and Bc, E multiples of 16 use the full 6x16 register
 *    tile everywhere; other sizes work but the edge tiles are slower.
 *  - K^T scratch: E x ldkt floats, ldkt = Bc rounded up to a multiple of 8
 *    (padding to Bc + 16 measured no difference for these tile sizes; it
 *    only speeds up the pack itself when E and Bc are both >= 128).
 *    Packing K^T once per (batch, head) for all key tiles (layout
 *    [S/Bc][E][ldkt]) and reusing it for every query tile saves the repeated
 *    pack; packing per (query tile, key tile) costs ~2-4%.
 *  - Score scratch: Br x lds floats, lds = Bc.  Row state: Br floats each
 *    for rowMax / rowSum.  O accumulator: Br x dv floats (may be the f32
 *    output itself; for f16/bf16 outputs use a scratch tile, then
 *    sdpa_normalize_tile + sdpa_convert_f32_to_*).
 *  - Per (query tile, key tile): pack (or reuse) K^T -> sdpa_qk_tile ->
 *    (driver adds bias / mask, -INFINITY = masked) -> sdpa_softmax_tile ->
 *    sdpa_pv_tile.  After the last key tile: sdpa_normalize_tile.
 *  - Scratch buffers are per thread; nothing else is shared.
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

/* Name of the kernel family in use on this thread: "avx2" or "portable".
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

/* Selects the family called `name` for the whole process (NULL: the best
 * again).  Returns 0, or -1 (nothing changed) when this build has no such
 * family or the CPU cannot run it.  Calls in flight on other threads finish
 * with the family they started with: for tests and benchmarks, not hot
 * paths. */
int sdpa_kernels_select(const char *name);

/* Selects `name` for the calls made on the calling thread only (NULL: the
 * process's choice again); returns 0, or -1 as sdpa_kernels_select.  Lets a
 * test check every family in one process: a fused call on one thread
 * (withSDPAThreads(1)) runs entirely on its caller's thread. */
int sdpa_kernels_use_on_this_thread(const char *name);

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
 * element and multiplies it with contiguous vectors of keys: the AVX2
 * variant uses a 6x16 register tile (12 ymm accumulators).
 * ldkt: see the tiling notes at the top (padding columns are never read or
 * written). */
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
 * dv is the value head dimension (1..256 typical).  Same 6x16 register tile
 * as sdpa_qk_tile, the reduction runs over the key index c; V is used in
 * place because its rows are already contiguous along d.  Call it AFTER
 * sdpa_softmax_tile for the same tile (softmax rescales O by alpha first). */
void sdpa_pv_tile(int rows, int cols, int dv,
                  const float *p, ptrdiff_t ldp,
                  const float *v, ptrdiff_t ldv,
                  float *o, ptrdiff_t ldo);

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
 * For each row r:
 *   mOld = rowMax[r];  mNew = max(mOld, max_c s[r][c])   (NaN ignored)
 *   mUse = (mNew == -inf) ? 0 : mNew
 *   s[r][c] = exp(s[r][c] - mUse)   (exp(-inf) is exactly 0, NaN stays NaN)
 *   alpha = exp(mOld - mUse)        (0 if mOld == -inf, never NaN)
 *   rowSum[r] = rowSum[r]*alpha + sum_c s[r][c]
 *   o[r][0..dv) *= alpha            (skipped when alpha == 1, and when
 *                                    mOld == -inf: no key has contributed
 *                                    yet, o holds the zeros it started as)
 *   rowMax[r] = mNew
 * NaN scores do not take part in the max but do propagate (p = NaN, so the
 * row sum and, through sdpa_pv_tile, the output row become NaN).  A +inf
 * score yields NaN for that row (inf - inf), like the reference formula.
 * exp: Cody-Waite range reduction + degree-4 minimax polynomial, max
 * relative error measured ~1 ulp for results >= FLT_MIN (sdpa_exp_f32, the
 * portable softmax).  The AVX2 softmax instead takes exp(s - m) as
 * 2^(s*log2e - M), M = m*log2e rounded once per row and tile (one FMA, then
 * 2^(j/8) from an 8-entry table times a cubic for 2^r, |r| <= 1/16: 1.9 ulp);
 * the rounding of M scales the whole row alike (alpha uses the same M) and
 * cancels in the final normalization.  Arguments below about -87.68
 * (reduced exponent n <= -127), including -inf, give exactly +0.0 (masked
 * keys contribute exactly nothing); just above, the tiny subnormal true value
 * is returned by sdpa_exp_f32, while the AVX2 softmax flushes results
 * below about FLT_MIN (2^-126) to +0.0.
 * Softmax arguments are always <= 0; sdpa_exp_f32 also handles positive
 * ones (> ln(FLT_MAX) ~ 88.72 -> +inf). */
void sdpa_softmax_tile(int rows, int cols,
                       float *s, ptrdiff_t lds,
                       const float *tileMax,
                       float *rowMax, float *rowSum,
                       float *o, ptrdiff_t ldo, int dv);

/* Final normalization of a flash-attention output tile (after the last key
 * tile; softmax denominators are applied once at the end, not per tile):
 *   o[r][d] *= 1 / rowSum[r]   for 0 <= r < rows, 0 <= d < dv.
 * Rows with rowSum[r] == 0 (every key masked) are set to 0 (not NaN);
 * a driver that wants NaN for fully masked rows must check rowSum itself. */
void sdpa_normalize_tile(int rows, int dv, float *o, ptrdiff_t ldo,
                         const float *rowSum);

/* y[i] = exp(x[i]) for i < n with the same vectorized exp as
 * sdpa_softmax_tile (same accuracy and special-value rules; +inf -> +inf,
 * NaN -> NaN, values in (88.72, +inf] -> +inf).  Exposed for tests and for
 * drivers that need the kernel's exp elsewhere.  x and y may be equal. */
void sdpa_exp_f32(size_t n, const float *x, float *y);

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
 * AVX2 variant: u = s / cap, then
 *   |u| < 0.625 : cap * (u + u^3 P(u^2)) evaluated as s + s * u^2 P(u^2),
 *                 degree-4 minimax P (Cephes tanhf coefficients): no
 *                 cancellation for small |u|, tiny / subnormal s returned
 *                 unchanged, -0.0 kept;
 *   |u| >= 0.625: cap * (1 - 2 / (exp(2|u|) + 1)) with the kernel's exp
 *                 (|u| clamped to 9.5, where tanh already rounds to 1),
 *                 sign of s restored.
 * Measured max error (vs. tanh in double): 1.33 ulp for cap = 1 over every
 * positive float; 2.7 ulp for cap = 50; 2.7 ulp for random caps in
 * [e^-10, e^10].  The portable variant uses the C library's tanhf (returns
 * s itself when |s / cap| < 2^-12); measured max 2.2 ulp (cap = 1), 3.5 ulp
 * (cap = 50).  Vectors whose lanes all have |u| < 0.625 skip the exp. */
void sdpa_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds,
                       float cap);

/* ---------------------------------------------------------------------- */
/* Machine peak (peak.c)                                                   */
/* ---------------------------------------------------------------------- */

/* The FP32 FMA peak of ONE thread running the FMA loop of the kernel family
 * `family` (NULL: the family in use on this thread, sdpa_kernels_isa()), in
 * GFLOP/s: independent multiply-add chains in the family's widest vectors
 * (avx512*: zmm FMA; avx2: ymm FMA; neon: q-register fmla; portable: plain
 * C as the compiler vectorizes it for the baseline target), 2 FLOP per
 * lane and multiply-add.  The family is matched by prefix ("avx512bf16"
 * runs the avx512 loop).  Returns -1 when no loop matches the name or this
 * CPU cannot run it.  Measured once per loop and process (the fastest of a
 * few runs, about 5 ms in all) and cached; thread-safe.  Multi-core peaks
 * are this figure times the threads used (FMA units are per core). */
double sdpa_kernels_fma_peak_gflops(const char *family);

#ifdef __cplusplus
}
#endif

#endif /* CSDPA_KERNELS_H */
