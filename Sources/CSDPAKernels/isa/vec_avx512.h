/* Vector layer: x86-64 AVX-512 (F, BW, VL, DQ) + FMA + F16C, 16 float lanes in
 * a zmm register, lane masks in k registers.  The contract every vector layer
 * meets is in tiles/vector_contract.h. */
#ifndef SDPA_VEC_AVX512_H
#define SDPA_VEC_AVX512_H

#include <immintrin.h>

#ifndef SDPA_BF16_DOT
#define SDPA_BF16_DOT 0
#endif
#define SDPA_HAS_FMA 1  /* vfma and friends round once */
#define SDPA_PEAK_CHAINS 16 /* independent FMA chains that keep every pipe busy */
#define SDPA_VL 16
#define SDPA_MR 6          /* GEMM register tile: 6 rows x 4 vectors (24 accumulators of 32) */
#define SDPA_NV 4
#define SDPA_PV_ROW_VECS 16 /* one output row's columns held in registers: 256 */
#define SDPA_VREGS 32     /* vector registers */
#define SDPA_DIRECT_ACC 16 /* the direct reader's partial sums: rows x keys of a block */
#define SDPA_BF16_EVEN_ODD 1 /* bfloat16 values widen 2 * SDPA_VL a load (a zero-extension + a shift each vector else) */

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;
typedef __m512i vtab8;

SDPA_INLINE vf vzero(void) { return _mm512_setzero_ps(); }
SDPA_INLINE vf vset1(float x) { return _mm512_set1_ps(x); }
SDPA_INLINE vf vload(const float *p) { return _mm512_loadu_ps(p); }
SDPA_INLINE void vstore(float *p, vf v) { _mm512_storeu_ps(p, v); }
SDPA_INLINE vf vbroadcast(const float *p) { return _mm512_set1_ps(*p); }
SDPA_INLINE vm vmask_first(int n) { return (__mmask16)((1u << n) - 1u); }
SDPA_INLINE vf vload_first(const float *p, int n, vm m) { (void)n; return _mm512_maskz_loadu_ps(m, p); }
SDPA_INLINE void vstore_first(float *p, int n, vm m, vf v) { (void)n; _mm512_mask_storeu_ps(p, m, v); }

SDPA_INLINE vi vload_words(const void *p) { return _mm512_loadu_si512(p); }
SDPA_INLINE void vzip(vf a, vf b, vf *lo, vf *hi) {
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    *lo = _mm512_permutex2var_ps(a, il, b);
    *hi = _mm512_permutex2var_ps(a, ih, b);
}
SDPA_INLINE vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
SDPA_INLINE vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
SDPA_INLINE vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
SDPA_INLINE vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
SDPA_INLINE vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
SDPA_INLINE vf vfnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
SDPA_INLINE vf vfms(vf a, vf b, vf c) { return _mm512_fmsub_ps(a, b, c); }
SDPA_INLINE vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
SDPA_INLINE vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
SDPA_INLINE vm vcmp_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
SDPA_INLINE vm vcmp_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
SDPA_INLINE vm vcmp_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
SDPA_INLINE vm vcmp_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
SDPA_INLINE vm vmask_and(vm a, vm b) { return (vm)(a & b); }
SDPA_INLINE vm vmask_or(vm a, vm b) { return (vm)(a | b); }
SDPA_INLINE vf vblend(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, a, b); }
SDPA_INLINE vf vand(vf a, vf b) { return _mm512_and_ps(a, b); }
SDPA_INLINE vf vandnot(vf a, vf b) { return _mm512_andnot_ps(a, b); }
SDPA_INLINE vf vor(vf a, vf b) { return _mm512_or_ps(a, b); }
SDPA_INLINE vf vzero_where(vm m, vf a) { return _mm512_maskz_mov_ps((__mmask16)~m, a); }
SDPA_INLINE int vmask_bits(vm m) { return (int)m; }

SDPA_INLINE float vhmax(vf v) {
    __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
SDPA_INLINE float vhsum(vf v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
/* Pairwise sums within each 128-bit lane, as vhaddps does on ymm. */
SDPA_INLINE vf sdpa_avx512_hadd(vf a, vf b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD));
}
/* Lane i of the result is the sum of the lanes of v[i]. */
SDPA_INLINE vf vhsum_lanes(const vf v[16]) {
    vf b[4];
    for (int g = 0; g < 4; g++) {
        /* rows 4g..4g+3: within each 128-bit lane L, element j = row 4g+j's
         * partial sum of lane L's four elements */
        vf a0 = sdpa_avx512_hadd(v[4 * g + 0], v[4 * g + 1]);
        vf a1 = sdpa_avx512_hadd(v[4 * g + 2], v[4 * g + 3]);
        b[g] = sdpa_avx512_hadd(a0, a1);
    }
    /* b[g] holds, in 128-bit lane L, rows 4g..4g+3's lane-L sums: transpose the
     * 4x4 grid of 128-bit lanes and add, so lane block g holds rows 4g..4g+3. */
    vf c0 = _mm512_shuffle_f32x4(b[0], b[1], 0x44); /* b0.L0 b0.L1 b1.L0 b1.L1 */
    vf c1 = _mm512_shuffle_f32x4(b[0], b[1], 0xEE); /* b0.L2 b0.L3 b1.L2 b1.L3 */
    vf c2 = _mm512_shuffle_f32x4(b[2], b[3], 0x44);
    vf c3 = _mm512_shuffle_f32x4(b[2], b[3], 0xEE);
    vf d0 = _mm512_add_ps(c0, c1); /* b0.(L0+L2) b0.(L1+L3) b1.(..) b1.(..) */
    vf d1 = _mm512_add_ps(c2, c3);
    vf e0 = _mm512_shuffle_f32x4(d0, d1, 0x88); /* d0.0 d0.2 d1.0 d1.2 */
    vf e1 = _mm512_shuffle_f32x4(d0, d1, 0xDD); /* d0.1 d0.3 d1.1 d1.3 */
    return _mm512_add_ps(e0, e1);
}

SDPA_INLINE vi vbits(vf v) { return _mm512_castps_si512(v); }
SDPA_INLINE vf vfloat(vi v) { return _mm512_castsi512_ps(v); }
SDPA_INLINE vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
SDPA_INLINE vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
SDPA_INLINE vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
SDPA_INLINE vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
SDPA_INLINE vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
SDPA_INLINE vi vi_slli(vi a, const int n) { return _mm512_slli_epi32(a, n); }
SDPA_INLINE vi vi_srli(vi a, const int n) { return _mm512_srli_epi32(a, n); }
SDPA_INLINE vi vi_srai(vi a, const int n) { return _mm512_srai_epi32(a, n); }
SDPA_INLINE vm vi_cmpgt(vi a, vi b) { return _mm512_cmpgt_epi32_mask(a, b); }
/* vpermd on zmm reads the low 4 bits of each index: the table is held twice. */
SDPA_INLINE vtab8 vtab8_load(const float t[8]) {
    __m256i h = _mm256_castps_si256(_mm256_loadu_ps(t));
    return _mm512_inserti64x4(_mm512_castsi256_si512(h), h, 1);
}
SDPA_INLINE vi vtab8_lookup(vtab8 t, vi idx) { return _mm512_permutexvar_epi32(idx, t); }

SDPA_INLINE vf vload_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
SDPA_INLINE vf vload_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
SDPA_INLINE void vstore_f16(uint16_t *p, vf v) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
SDPA_INLINE void vstore_low16(uint16_t *p, vi v) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(v));
}

/* Lanes < n whose mask byte is 0; reads exactly n (0..16) bytes (a masked
 * byte load suppresses faults past them). */
SDPA_INLINE vm vmask_zero_bytes(const uint8_t *p, int n) {
    __mmask16 in = (__mmask16)((1u << n) - 1u);
    __m128i b = _mm_maskz_loadu_epi8(in, p);
    return (vm)(_mm_cmpeq_epi8_mask(b, _mm_setzero_si128()) & in);
}

/* Whether n bytes at p hold a zero byte / a nonzero byte (64 at a time). */
SDPA_INLINE void vscan_bytes(const uint8_t *p, int n, int *anyZero, int *anyNonzero) {
    int c = 0;
    for (; c < n; c += 64) {
        const int k = n - c < 64 ? n - c : 64;
        const __mmask64 in = k == 64 ? ~(__mmask64)0 : (((__mmask64)1 << k) - 1);
        __m512i b = _mm512_maskz_loadu_epi8(in, p + c);
        __mmask64 z = _mm512_cmpeq_epi8_mask(b, _mm512_setzero_si512()) & in;
        if (z) *anyZero = 1;
        if (z != in) *anyNonzero = 1;
        if (*anyZero && *anyNonzero) return;
    }
}

/* 16x16 transpose in registers. */
SDPA_INLINE void vtranspose(vf r[16]) {
    vf t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* u[4i + j]: rows 4i..4i+3, column j of each 128-bit lane (4 lanes) */
    for (int j = 0; j < 4; j++) {
        vf a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);      /* lanes 0,2 of u_j, u_4+j */
        vf b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);      /* lanes 1,3 */
        vf c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        vf d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        r[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
}

#if SDPA_BF16_DOT
/* bfloat16 dot products (AVX512-BF16): 16 lanes of bfloat16 pairs. */
typedef __m512i vp;
SDPA_INLINE vp vload_pairs(const uint32_t *p) { return _mm512_loadu_si512(p); }
SDPA_INLINE vp vload_pairs_first(const uint32_t *p, int n, vm m) { (void)n; return _mm512_maskz_loadu_epi32(m, p); }
SDPA_INLINE vp vbroadcast_pair(const uint32_t *p) { return _mm512_set1_epi32((int)*p); }
SDPA_INLINE vp vload_bf16_pairs(const uint16_t *p) { return _mm512_loadu_si512(p); }
/* acc + a.lo * b.lo + a.hi * b.hi per lane */
SDPA_INLINE vf vdot_pairs(vf acc, vp a, vp b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
#endif

#endif
