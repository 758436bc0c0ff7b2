/* Tile layer: AMX-TILE + AMX-BF16 (Sapphire Rapids on).  One product,
 *   C (+)= A B,  float32 C (M x N), A as bfloat16 rows (M x KP pairs), B as
 *   bfloat16 pairs [KP][N] (the SDPA_LAYOUT_BF16_PAIRS keys and values, whose
 *   columns are padded with zeros to whole vectors of 16),
 * in blocks of 2 x 2 tiles of 16 x 16 floats: 4 accumulator tiles, 2 of A,
 * 2 of B (8 tile registers), all configured 16 x 64 bytes once per thread:
 * loading a configuration costs ~150 ns and zeroes the tiles, so edges are
 * staged instead.  An edge tile of C (fewer than 16 rows or columns left)
 * goes through a local tile, an A tile with fewer rows or a depth that is not
 * a multiple of 16 pairs through zero-padded copies, so nothing past the
 * operands is read or written.
 * The process must have asked for the tile state (dispatch.c does, before
 * the family is chosen); each thread loads its tile configuration itself. */
#ifndef SDPA_AMX_BF16_H
#define SDPA_AMX_BF16_H

#include <immintrin.h>

#define SDPA_AMX_BF16 1
/* Rows of one row of tile blocks (2 tiles of 16): the products' pass, whose
 * scores (or P) the vector code takes while they are in L1. */
#define SDPA_TILE_PASS_ROWS 32

/* Rounds P to bfloat16 for P.V in one instruction (vcvtneps2bf16: nearest
 * even, denormals to zero, which TDPBF16PS would read as zero anyway). */
SDPA_INLINE void vstore_bf16_operand(uint16_t *p, vf v) { _mm256_storeu_si256((__m256i *)(void *)p, (__m256i)_mm512_cvtneps_pbh(v)); }

/* LDTILECFG's 64-byte operand (palette 1). */
typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* Whether this thread's tiles hold the configuration a product loaded: a
 * library such as oneDNN releases the tiles after its work (XINUSE's bit
 * 17 then reads 0), and a product loads it again.  Another AMX user that
 * loads a different configuration and leaves it loaded between two
 * products of one thread is not seen. */
static _Thread_local int amx_configured_here = 0;

SDPA_INLINE void amx_configure(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1)); /* XINUSE */
    (void)hi;
    if (amx_configured_here && (lo >> 17 & 1)) return;
    amx_config c;
    __builtin_memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) { c.rows[t] = 16; c.colsb[t] = 64; }
    _tile_loadconfig(&c);
    amx_configured_here = 1;
}

/* Tiles: C[i][j] = 2 i + j, A[i] = 4 + i, B[j] = 6 + j. */

/* C tile T (rows m, columns n at cp) into its register: loaded (ACC) or
 * zeroed; an edge tile through `stage`, zero padded. */
#define AMX_C_IN(T, cp, m, n, stage)                                                          \
    do {                                                                                      \
        if (!ACC) _tile_zero(T);                                                              \
        else if ((m) == 16 && (n) == 16) _tile_loadd(T, cp, ldcb);                            \
        else {                                                                                \
            __builtin_memset(stage, 0, sizeof(float) * 256);                                  \
            for (int r_ = 0; r_ < (m); r_++) __builtin_memcpy((stage) + 16 * r_, (cp) + r_ * ldc, 4 * (size_t)(n)); \
            _tile_loadd(T, stage, 64);                                                        \
        }                                                                                     \
    } while (0)
#define AMX_C_OUT(T, cp, m, n, stage)                                                         \
    do {                                                                                      \
        if ((m) == 16 && (n) == 16) _tile_stored(T, cp, ldcb);                                \
        else {                                                                                \
            _tile_stored(T, stage, 64);                                                       \
            for (int r_ = 0; r_ < (m); r_++) __builtin_memcpy((cp) + r_ * ldc, (stage) + 16 * r_, 4 * (size_t)(n)); \
        }                                                                                     \
    } while (0)
/* A tile T: rows m of 16 pairs from ap (lda bytes apart); fewer rows through
 * `stage`, whose rows past m stay zero. */
#define AMX_A(T, ap, m, stage)                                                                \
    do {                                                                                      \
        if ((m) == 16) _tile_loadd(T, ap, lda);                                               \
        else {                                                                                \
            for (int r_ = 0; r_ < (m); r_++) __builtin_memcpy((stage) + 16 * r_, (ap) + r_ * lda, 64); \
            _tile_loadd(T, stage, 64);                                                        \
        }                                                                                     \
    } while (0)

/* One block: R (1 or 2) row tiles of m0, m1 rows, CN (1 or 2) column tiles of
 * n0, n1 columns.  a: the block's first row, lda bytes apart; b: its first
 * column's pairs, ldb bytes per pair row (16 columns readable per tile);
 * c: float32, ldc floats per row. */
SDPA_INLINE void amx_block(const int R, const int CN, const int ACC, int m0, int m1, int n0, int n1, int KP,
                           const uint8_t *a, ptrdiff_t lda, const uint8_t *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    const ptrdiff_t ldcb = 4 * ldc;
    const uint8_t *a1 = a + 16 * lda;
    float *c1 = c + 16 * ldc;
    _Alignas(64) float cs[4][256];
    _Alignas(64) uint32_t as[2][256];
    AMX_C_IN(0, c, m0, n0, cs[0]);
    if (CN == 2) AMX_C_IN(1, c + 16, m0, n1, cs[1]);
    if (R == 2) AMX_C_IN(2, c1, m1, n0, cs[2]);
    if (R == 2 && CN == 2) AMX_C_IN(3, c1 + 16, m1, n1, cs[3]);
    if (m0 < 16 || (R == 2 && m1 < 16)) __builtin_memset(as, 0, sizeof as);
    const int whole = KP / 16;
    for (int k = 0; k < whole; k++) {
        const uint8_t *bk = b + 16 * k * ldb;
        AMX_A(4, a + 64 * k, m0, as[0]);
        _tile_loadd(6, bk, ldb);
        if (R == 2) AMX_A(5, a1 + 64 * k, m1, as[1]);
        if (CN == 2) _tile_loadd(7, bk + 64, ldb);
        _tile_dpbf16ps(0, 4, 6);
        if (CN == 2) _tile_dpbf16ps(1, 4, 7);
        if (R == 2) _tile_dpbf16ps(2, 5, 6);
        if (R == 2 && CN == 2) _tile_dpbf16ps(3, 5, 7);
    }
    const int kr = KP - 16 * whole;
    if (kr) {
        /* the last kr pairs of each A row and the last kr pair rows of B,
         * zero padded to a whole step */
        _Alignas(64) uint32_t bs[16][32];
        __builtin_memset(as, 0, sizeof as);
        __builtin_memset(bs, 0, sizeof bs);
        const int rows = R == 2 ? 16 + m1 : m0;
        for (int i = 0; i < rows; i++) __builtin_memcpy(as[i / 16] + 16 * (i % 16), a + i * lda + 64 * whole, 4 * (size_t)kr);
        for (int p = 0; p < kr; p++) __builtin_memcpy(bs[p], b + (16 * whole + p) * ldb, 4 * (size_t)(16 * CN));
        _tile_loadd(4, as[0], 64);
        _tile_loadd(6, bs[0], 128);
        if (R == 2) _tile_loadd(5, as[1], 64);
        if (CN == 2) _tile_loadd(7, &bs[0][16], 128);
        _tile_dpbf16ps(0, 4, 6);
        if (CN == 2) _tile_dpbf16ps(1, 4, 7);
        if (R == 2) _tile_dpbf16ps(2, 5, 6);
        if (R == 2 && CN == 2) _tile_dpbf16ps(3, 5, 7);
    }
    AMX_C_OUT(0, c, m0, n0, cs[0]);
    if (CN == 2) AMX_C_OUT(1, c + 16, m0, n1, cs[1]);
    if (R == 2) AMX_C_OUT(2, c1, m1, n0, cs[2]);
    if (R == 2 && CN == 2) AMX_C_OUT(3, c1 + 16, m1, n1, cs[3]);
}
#undef AMX_C_IN
#undef AMX_C_OUT
#undef AMX_A

/* C = A B (ACC = 0) or C += A B (ACC = 1) for M x N, depth KP pairs.
 * Row blocks outside, column blocks inside: a block of A rows stays in L1
 * while B streams past. */
SDPA_INLINE void amx_product(const int ACC, int M, int N, int KP, const void *A, ptrdiff_t lda, const void *B,
                             ptrdiff_t ldb, float *C, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (KP < 0) KP = 0;
    amx_configure();
    for (int i = 0; i < M; i += SDPA_TILE_PASS_ROWS) {
        const int m0 = M - i < 16 ? M - i : 16, m1 = M - i - 16 <= 0 ? 0 : M - i - 16 < 16 ? M - i - 16 : 16;
        const uint8_t *a = (const uint8_t *)A + i * lda;
        for (int j = 0; j < N; j += 32) {
            const int n0 = N - j < 16 ? N - j : 16, n1 = N - j - 16 <= 0 ? 0 : N - j - 16 < 16 ? N - j - 16 : 16;
            const uint8_t *b = (const uint8_t *)B + 4 * (ptrdiff_t)j;
            float *c = C + i * ldc + j;
            if (m1 && n1) amx_block(2, 2, ACC, m0, m1, n0, n1, KP, a, lda, b, ldb, c, ldc);
            else if (m1) amx_block(2, 1, ACC, m0, m1, n0, 0, KP, a, lda, b, ldb, c, ldc);
            else if (n1) amx_block(1, 2, ACC, m0, 0, n0, n1, KP, a, lda, b, ldb, c, ldc);
            else amx_block(1, 1, ACC, m0, 0, n0, 0, KP, a, lda, b, ldb, c, ldc);
        }
    }
}

#endif
