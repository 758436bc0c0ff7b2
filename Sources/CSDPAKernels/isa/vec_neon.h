/* Vector layer: arm64 Advanced SIMD (NEON), 4 float lanes in a q register.
 * The contract every vector layer meets is in tiles/vector_contract.h.
 * NEON has no masked loads: partial vectors go through a small buffer. */
#ifndef SDPA_VEC_NEON_H
#define SDPA_VEC_NEON_H

#include <arm_neon.h>

#ifndef SDPA_BF16_DOT
#define SDPA_BF16_DOT 0 /* no bfloat16 dot product */
#endif
#define SDPA_HAS_FMA 1  /* vfma and friends round once */
#define SDPA_PEAK_CHAINS 24 /* independent FMA chains that keep every pipe busy */
#define SDPA_VL 4
#define SDPA_MR 6          /* GEMM register tile: 6 rows x 4 vectors (24 accumulators of 32) */
#define SDPA_NV 4
#define SDPA_PV_ROW_VECS 24 /* one output row's columns held in registers: 96 */
#define SDPA_VREGS 32     /* vector registers */
#define SDPA_DIRECT_ACC 16 /* the direct reader's partial sums: rows x keys of a block */
#define SDPA_BF16_EVEN_ODD 0 /* vshll widens bfloat16 in one instruction a vector already */

typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vm;
typedef struct { uint8x16x2_t bytes; } vtab8;

SDPA_INLINE vf vzero(void) { return vdupq_n_f32(0.0f); }
SDPA_INLINE vf vset1(float x) { return vdupq_n_f32(x); }
SDPA_INLINE vf vload(const float *p) { return vld1q_f32(p); }
SDPA_INLINE void vstore(float *p, vf v) { vst1q_f32(p, v); }
SDPA_INLINE vf vbroadcast(const float *p) { return vld1q_dup_f32(p); }
SDPA_INLINE vm vmask_first(int n) {
    const uint32_t lanes[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lanes), vdupq_n_u32((uint32_t)n));
}
SDPA_INLINE vf vload_first(const float *p, int n, vm m) {
    (void)m;
    float t[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vld1q_f32(t);
}
SDPA_INLINE void vstore_first(float *p, int n, vm m, vf v) {
    (void)m;
    float t[4];
    vst1q_f32(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}

SDPA_INLINE vf vadd(vf a, vf b) { return vaddq_f32(a, b); }
SDPA_INLINE vf vsub(vf a, vf b) { return vsubq_f32(a, b); }
SDPA_INLINE vf vmul(vf a, vf b) { return vmulq_f32(a, b); }
SDPA_INLINE vf vdiv(vf a, vf b) { return vdivq_f32(a, b); }
SDPA_INLINE vf vfma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
SDPA_INLINE vf vfnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
SDPA_INLINE vf vfms(vf a, vf b, vf c) { return vnegq_f32(vfmsq_f32(c, a, b)); }
/* x86's rule: the second operand wins when either is NaN. */
SDPA_INLINE vf vmax(vf a, vf b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
SDPA_INLINE vf vmin(vf a, vf b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
SDPA_INLINE vm vcmp_eq(vf a, vf b) { return vceqq_f32(a, b); }
SDPA_INLINE vm vcmp_lt(vf a, vf b) { return vcltq_f32(a, b); }
SDPA_INLINE vm vcmp_le(vf a, vf b) { return vcleq_f32(a, b); }
SDPA_INLINE vm vcmp_gt(vf a, vf b) { return vcgtq_f32(a, b); }
SDPA_INLINE vm vmask_and(vm a, vm b) { return vandq_u32(a, b); }
SDPA_INLINE vm vmask_or(vm a, vm b) { return vorrq_u32(a, b); }
SDPA_INLINE vf vblend(vm m, vf a, vf b) { return vbslq_f32(m, b, a); }
SDPA_INLINE vf vand(vf a, vf b) { return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b))); }
SDPA_INLINE vf vandnot(vf a, vf b) { return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(b), vreinterpretq_u32_f32(a))); }
SDPA_INLINE vf vor(vf a, vf b) { return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b))); }
SDPA_INLINE vf vzero_where(vm m, vf a) { return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(a), m)); }
SDPA_INLINE int vmask_bits(vm m) {
    const int32_t w[4] = {1, 2, 4, 8};
    return (int)vaddvq_u32(vandq_u32(m, vreinterpretq_u32_s32(vld1q_s32(w))));
}

/* Inputs hold no NaN (they come from vmax, which skips them). */
SDPA_INLINE float vhmax(vf v) { return vmaxvq_f32(v); }
SDPA_INLINE float vhsum(vf v) { return vaddvq_f32(v); }
SDPA_INLINE vf vhsum_lanes(const vf v[4]) {
    return vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]));
}

SDPA_INLINE vi vbits(vf v) { return vreinterpretq_s32_f32(v); }
SDPA_INLINE vf vfloat(vi v) { return vreinterpretq_f32_s32(v); }
SDPA_INLINE vi vi_set1(int32_t x) { return vdupq_n_s32(x); }
SDPA_INLINE vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
SDPA_INLINE vi vi_sub(vi a, vi b) { return vsubq_s32(a, b); }
SDPA_INLINE vi vi_and(vi a, vi b) { return vandq_s32(a, b); }
SDPA_INLINE vi vi_or(vi a, vi b) { return vorrq_s32(a, b); }
#define vi_slli(a, n) vshlq_n_s32((a), (n))
#define vi_srli(a, n) vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), (n)))
#define vi_srai(a, n) vshrq_n_s32((a), (n))
SDPA_INLINE vm vi_cmpgt(vi a, vi b) { return vcgtq_s32(a, b); }
SDPA_INLINE vtab8 vtab8_load(const float e[8]) {
    vtab8 t;
    t.bytes.val[0] = vreinterpretq_u8_f32(vld1q_f32(e));
    t.bytes.val[1] = vreinterpretq_u8_f32(vld1q_f32(e + 4));
    return t;
}
/* Lane i: entry (idx[i] & 7) of the table, by a byte table lookup. */
SDPA_INLINE vi vtab8_lookup(vtab8 t, vi idx) {
    uint32x4_t j = vandq_u32(vreinterpretq_u32_s32(idx), vdupq_n_u32(7));
    /* byte b of lane i reads table byte 4*j + b */
    uint32x4_t bytes = vaddq_u32(vmulq_n_u32(j, 0x04040404u), vdupq_n_u32(0x03020100u));
    return vreinterpretq_s32_u8(vqtbl2q_u8(t.bytes, vreinterpretq_u8_u32(bytes)));
}

SDPA_INLINE vf vload_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
SDPA_INLINE vf vload_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
SDPA_INLINE void vstore_f16(uint16_t *p, vf v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
SDPA_INLINE void vstore_low16(uint16_t *p, vi v) { vst1_u16(p, vmovn_u32(vreinterpretq_u32_s32(v))); }

SDPA_INLINE vm vmask_zero_bytes(const uint8_t *p, int n) {
    uint32_t z[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) z[i] = p[i] == 0 ? 0xFFFFFFFFu : 0u;
    return vld1q_u32(z);
}

/* Whether n bytes at p hold a zero byte / a nonzero byte (16 at a time). */
SDPA_INLINE void vscan_bytes(const uint8_t *p, int n, int *anyZero, int *anyNonzero) {
    int c = 0;
    uint8x16_t az = vdupq_n_u8(0), allz = vdupq_n_u8(0xFF);
    for (; c + 16 <= n; c += 16) {
        uint8x16_t z = vceqzq_u8(vld1q_u8(p + c));
        az = vorrq_u8(az, z);
        allz = vandq_u8(allz, z);
    }
    if (c > 0) {
        if (vmaxvq_u8(az)) *anyZero = 1;
        if (vminvq_u8(allz) == 0) *anyNonzero = 1;
    }
    for (; c < n; c++) {
        if (p[c] == 0) *anyZero = 1; else *anyNonzero = 1;
    }
}

#if SDPA_BF16_DOT
/* bfloat16 dot products (FEAT_BF16's BFDOT): 4 lanes of bfloat16 pairs. */
typedef bfloat16x8_t vp;
SDPA_INLINE vp vload_pairs(const uint32_t *p) { return vreinterpretq_bf16_u32(vld1q_u32(p)); }
SDPA_INLINE vp vload_pairs_first(const uint32_t *p, int n, vm m) {
    (void)m;
    uint32_t t[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vreinterpretq_bf16_u32(vld1q_u32(t));
}
SDPA_INLINE vp vbroadcast_pair(const uint32_t *p) { return vreinterpretq_bf16_u32(vld1q_dup_u32(p)); }
SDPA_INLINE vp vload_bf16_pairs(const uint16_t *p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
/* acc + a.lo * b.lo + a.hi * b.hi per lane */
SDPA_INLINE vf vdot_pairs(vf acc, vp a, vp b) { return vbfdotq_f32(acc, a, b); }
#endif

SDPA_INLINE void vtranspose(vf r[4]) {
    float32x4x2_t a = vtrnq_f32(r[0], r[1]), b = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
}

#endif
