/* Vector layer: x86-64 AVX2 + FMA + F16C, 8 float lanes in a ymm register.
 * The contract every vector layer meets is in tiles/vector_contract.h. */
#ifndef SDPA_VEC_AVX2_H
#define SDPA_VEC_AVX2_H

#include <immintrin.h>

#define SDPA_BF16_DOT 0 /* no bfloat16 dot product */
#define SDPA_HAS_FMA 1  /* vfma and friends round once */
#define SDPA_PEAK_CHAINS 12 /* independent FMA chains that keep every pipe busy */
#define SDPA_VL 8
#define SDPA_MR 6          /* GEMM register tile: 6 rows x 2 vectors (12 accumulators of 16) */
#define SDPA_NV 2
#define SDPA_PV_ROW_VECS 12 /* one output row's columns held in registers: 96 */
#define SDPA_VREGS 16     /* vector registers */
#define SDPA_DIRECT_ACC 8  /* the direct reader's partial sums: rows x keys of a block */
#define SDPA_BF16_EVEN_ODD 1 /* bfloat16 values widen 2 * SDPA_VL a load (a zero-extension + a shift each vector else) */

typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;      /* all-ones lanes */
typedef __m256i vtab8;

/* Lane mask with the first n (0..8) lanes active. */
static const int32_t sdpa_avx2_first_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                  0,  0,  0,  0,  0,  0,  0,  0};

SDPA_INLINE vf vzero(void) { return _mm256_setzero_ps(); }
SDPA_INLINE vf vset1(float x) { return _mm256_set1_ps(x); }
SDPA_INLINE vf vload(const float *p) { return _mm256_loadu_ps(p); }
SDPA_INLINE void vstore(float *p, vf v) { _mm256_storeu_ps(p, v); }
SDPA_INLINE vf vbroadcast(const float *p) { return _mm256_broadcast_ss(p); }
SDPA_INLINE vm vmask_first(int n) {
    return _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(sdpa_avx2_first_lanes + 8 - n)));
}
SDPA_INLINE vf vload_first(const float *p, int n, vm m) {
    (void)n;
    return _mm256_maskload_ps(p, _mm256_castps_si256(m));
}
SDPA_INLINE void vstore_first(float *p, int n, vm m, vf v) {
    (void)n;
    _mm256_maskstore_ps(p, _mm256_castps_si256(m), v);
}

SDPA_INLINE vi vload_words(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
SDPA_INLINE void vzip(vf a, vf b, vf *lo, vf *hi) {
    const vf l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b); /* a0 b0 a1 b1 | a4 b4 a5 b5, a2 .. | a6 .. */
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}
SDPA_INLINE vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
SDPA_INLINE vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
SDPA_INLINE vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
SDPA_INLINE vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
SDPA_INLINE vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
SDPA_INLINE vf vfnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
SDPA_INLINE vf vfms(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); }
SDPA_INLINE vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
SDPA_INLINE vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
SDPA_INLINE vm vcmp_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
SDPA_INLINE vm vcmp_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
SDPA_INLINE vm vcmp_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
SDPA_INLINE vm vcmp_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
SDPA_INLINE vm vmask_and(vm a, vm b) { return _mm256_and_ps(a, b); }
SDPA_INLINE vm vmask_or(vm a, vm b) { return _mm256_or_ps(a, b); }
SDPA_INLINE vf vblend(vm m, vf a, vf b) { return _mm256_blendv_ps(a, b, m); }
SDPA_INLINE vf vand(vf a, vf b) { return _mm256_and_ps(a, b); }
SDPA_INLINE vf vandnot(vf a, vf b) { return _mm256_andnot_ps(a, b); }
SDPA_INLINE vf vor(vf a, vf b) { return _mm256_or_ps(a, b); }
SDPA_INLINE vf vzero_where(vm m, vf a) { return _mm256_andnot_ps(m, a); }
SDPA_INLINE int vmask_bits(vm m) { return _mm256_movemask_ps(m); }

SDPA_INLINE float vhmax(vf v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
SDPA_INLINE float vhsum(vf v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
/* Lane i of the result is the sum of the lanes of v[i]. */
SDPA_INLINE vf vhsum_lanes(const vf v[8]) {
    __m256 a0 = _mm256_hadd_ps(v[0], v[1]);
    __m256 a1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 a2 = _mm256_hadd_ps(v[4], v[5]);
    __m256 a3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 b0 = _mm256_hadd_ps(a0, a1); /* rows 0-3: low half | high half */
    __m256 b1 = _mm256_hadd_ps(a2, a3); /* rows 4-7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20),
                         _mm256_permute2f128_ps(b0, b1, 0x31));
}

SDPA_INLINE vi vbits(vf v) { return _mm256_castps_si256(v); }
SDPA_INLINE vf vfloat(vi v) { return _mm256_castsi256_ps(v); }
SDPA_INLINE vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
SDPA_INLINE vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
SDPA_INLINE vi vi_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
SDPA_INLINE vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
SDPA_INLINE vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
SDPA_INLINE vi vi_slli(vi a, const int n) { return _mm256_slli_epi32(a, n); }
SDPA_INLINE vi vi_srli(vi a, const int n) { return _mm256_srli_epi32(a, n); }
SDPA_INLINE vi vi_srai(vi a, const int n) { return _mm256_srai_epi32(a, n); }
SDPA_INLINE vm vi_cmpgt(vi a, vi b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)); }
SDPA_INLINE vtab8 vtab8_load(const float t[8]) { return _mm256_castps_si256(_mm256_loadu_ps(t)); }
/* Lane i: the table entry the low 3 bits of idx[i] name (vpermd reads only those). */
SDPA_INLINE vi vtab8_lookup(vtab8 t, vi idx) { return _mm256_permutevar8x32_epi32(t, idx); }

SDPA_INLINE vf vload_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
SDPA_INLINE vf vload_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
SDPA_INLINE void vstore_f16(uint16_t *p, vf v) {
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* The low 16 bits of each lane, stored as 8 consecutive uint16. */
SDPA_INLINE void vstore_low16(uint16_t *p, vi v) {
    __m256i packed = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)),
                                         _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)));
    packed = _mm256_permute4x64_epi64(packed, 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(packed));
}

/* Lanes < n whose mask byte is 0; reads exactly n (0..8) bytes. */
SDPA_INLINE vm vmask_zero_bytes(const uint8_t *p, int n) {
    __m128i b;
    if (n == 8) {
        b = _mm_loadl_epi64((const __m128i *)p);
    } else {
        uint64_t bits = ~(uint64_t)0; /* lanes >= n: nonzero, so not masked */
        __builtin_memcpy(&bits, p, (size_t)n);
        b = _mm_cvtsi64_si128((long long)bits);
    }
    return _mm256_castsi256_ps(_mm256_cvtepi8_epi32(_mm_cmpeq_epi8(b, _mm_setzero_si128())));
}

/* Whether n bytes at p hold a zero byte / a nonzero byte (32 at a time). */
SDPA_INLINE void vscan_bytes(const uint8_t *p, int n, int *anyZero, int *anyNonzero) {
    int c = 0;
    __m256i az = _mm256_setzero_si256(), allz = _mm256_set1_epi8(-1);
    for (; c + 32 <= n; c += 32) {
        __m256i z = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + c)), _mm256_setzero_si256());
        az = _mm256_or_si256(az, z);
        allz = _mm256_and_si256(allz, z);
    }
    if (c > 0) {
        if (!_mm256_testz_si256(az, az)) *anyZero = 1;
        if (!_mm256_testc_si256(allz, _mm256_set1_epi8(-1))) *anyNonzero = 1;
    }
    for (; c < n; c++) {
        if (p[c] == 0) *anyZero = 1; else *anyNonzero = 1;
    }
}

/* 8x8 transpose in registers. */
SDPA_INLINE void vtranspose(vf r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
    __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);
    __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);
    __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);
    __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
    __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

#endif
