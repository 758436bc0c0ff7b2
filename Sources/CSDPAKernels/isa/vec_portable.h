/* Vector layer: portable C, 4 float lanes as a clang vector type, lowered
 * to whatever the target has (SSE2 on baseline x86-64).  Products are not
 * fused (a baseline target has no FMA instruction, and a vector fmaf would
 * become calls).  The contract every vector layer meets is in
 * tiles/vector_contract.h.  This family is what runs on a CPU with no other
 * family, and the reference the others are tested against. */
#ifndef SDPA_VEC_PORTABLE_H
#define SDPA_VEC_PORTABLE_H

#define SDPA_BF16_DOT 0 /* no bfloat16 dot product */
#define SDPA_HAS_FMA 0  /* vfma and friends round once */
#define SDPA_PEAK_CHAINS 8 /* independent FMA chains that keep every pipe busy */
#define SDPA_VL 4
#define SDPA_MR 4          /* GEMM register tile: 4 rows x 2 vectors (fits 16 registers) */
#define SDPA_NV 2
#define SDPA_PV_ROW_VECS 8  /* one output row's columns held in registers: 32 */
#define SDPA_VREGS 16     /* vector registers */
#define SDPA_DIRECT_ACC 8  /* the direct reader's partial sums: rows x keys of a block */
#define SDPA_BF16_EVEN_ODD 0 /* element by element: nothing to save */

typedef float vf __attribute__((ext_vector_type(4)));
typedef int32_t vi __attribute__((ext_vector_type(4)));
typedef int32_t vm __attribute__((ext_vector_type(4))); /* -1 or 0 per lane */
typedef struct { float e[8]; } vtab8;

SDPA_INLINE vf vzero(void) { return (vf)0.0f; }
SDPA_INLINE vf vset1(float x) { return (vf)x; }
SDPA_INLINE vf vload(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
SDPA_INLINE void vstore(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
SDPA_INLINE vf vbroadcast(const float *p) { return (vf)*p; }
SDPA_INLINE vm vmask_first(int n) { vi lanes = {0, 1, 2, 3}; return lanes < (vi)n; }
SDPA_INLINE vf vload_first(const float *p, int n, vm m) {
    (void)m;
    vf v = 0.0f;
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
}
SDPA_INLINE void vstore_first(float *p, int n, vm m, vf v) {
    (void)m;
    for (int i = 0; i < n; i++) p[i] = v[i];
}

SDPA_INLINE vf vadd(vf a, vf b) { return a + b; }
SDPA_INLINE vf vsub(vf a, vf b) { return a - b; }
SDPA_INLINE vf vmul(vf a, vf b) { return a * b; }
SDPA_INLINE vf vdiv(vf a, vf b) { return a / b; }
SDPA_INLINE vf vfma(vf a, vf b, vf c) { return a * b + c; }
SDPA_INLINE vf vfnma(vf a, vf b, vf c) { return c - a * b; }
SDPA_INLINE vf vfms(vf a, vf b, vf c) { return a * b - c; }
SDPA_INLINE vi vbits(vf v) { return (vi)v; }
SDPA_INLINE vf vfloat(vi v) { return (vf)v; }
SDPA_INLINE vf vblend(vm m, vf a, vf b) { return (vf)((m & (vi)b) | (~m & (vi)a)); }
/* x86's rule: the second operand wins when either is NaN. */
SDPA_INLINE vf vmax(vf a, vf b) { return vblend(a > b, b, a); }
SDPA_INLINE vf vmin(vf a, vf b) { return vblend(a < b, b, a); }
SDPA_INLINE vm vcmp_eq(vf a, vf b) { return a == b; }
SDPA_INLINE vm vcmp_lt(vf a, vf b) { return a < b; }
SDPA_INLINE vm vcmp_le(vf a, vf b) { return a <= b; }
SDPA_INLINE vm vcmp_gt(vf a, vf b) { return a > b; }
SDPA_INLINE vm vmask_and(vm a, vm b) { return a & b; }
SDPA_INLINE vm vmask_or(vm a, vm b) { return a | b; }
SDPA_INLINE vf vand(vf a, vf b) { return (vf)((vi)a & (vi)b); }
SDPA_INLINE vf vandnot(vf a, vf b) { return (vf)(~(vi)a & (vi)b); }
SDPA_INLINE vf vor(vf a, vf b) { return (vf)((vi)a | (vi)b); }
SDPA_INLINE vf vzero_where(vm m, vf a) { return (vf)(~m & (vi)a); }
SDPA_INLINE int vmask_bits(vm m) { return (m[0] & 1) | (m[1] & 2) | (m[2] & 4) | (m[3] & 8); }

/* Inputs hold no NaN (they come from vmax, which skips them). */
SDPA_INLINE float vhmax(vf v) {
    float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
    return a > b ? a : b;
}
SDPA_INLINE float vhsum(vf v) { return (v[0] + v[1]) + (v[2] + v[3]); }
SDPA_INLINE vf vhsum_lanes(const vf v[4]) {
    vf r = {vhsum(v[0]), vhsum(v[1]), vhsum(v[2]), vhsum(v[3])};
    return r;
}

SDPA_INLINE vi vi_set1(int32_t x) { return (vi)x; }
SDPA_INLINE vi vi_add(vi a, vi b) { return (vi)((__attribute__((ext_vector_type(4))) uint32_t)a + (__attribute__((ext_vector_type(4))) uint32_t)b); }
SDPA_INLINE vi vi_sub(vi a, vi b) { return (vi)((__attribute__((ext_vector_type(4))) uint32_t)a - (__attribute__((ext_vector_type(4))) uint32_t)b); }
SDPA_INLINE vi vi_and(vi a, vi b) { return a & b; }
SDPA_INLINE vi vi_or(vi a, vi b) { return a | b; }
SDPA_INLINE vi vi_slli(vi a, const int n) { return (vi)((__attribute__((ext_vector_type(4))) uint32_t)a << n); }
SDPA_INLINE vi vi_srli(vi a, const int n) { return (vi)((__attribute__((ext_vector_type(4))) uint32_t)a >> n); }
SDPA_INLINE vi vi_srai(vi a, const int n) { return a >> n; }
SDPA_INLINE vm vi_cmpgt(vi a, vi b) { return a > b; }
SDPA_INLINE vtab8 vtab8_load(const float t[8]) { vtab8 r; __builtin_memcpy(r.e, t, sizeof r.e); return r; }
SDPA_INLINE vi vtab8_lookup(vtab8 t, vi idx) {
    vi r;
    for (int i = 0; i < 4; i++) r[i] = (int32_t)sdpa_f2u(t.e[idx[i] & 7]);
    return r;
}

SDPA_INLINE vf vload_f16(const uint16_t *p) {
    vf v = {sdpa_half_to_float(p[0]), sdpa_half_to_float(p[1]), sdpa_half_to_float(p[2]), sdpa_half_to_float(p[3])};
    return v;
}
SDPA_INLINE vf vload_bf16(const uint16_t *p) {
    vf v = {sdpa_bf16_to_float(p[0]), sdpa_bf16_to_float(p[1]), sdpa_bf16_to_float(p[2]), sdpa_bf16_to_float(p[3])};
    return v;
}
SDPA_INLINE void vstore_f16(uint16_t *p, vf v) { for (int i = 0; i < 4; i++) p[i] = sdpa_float_to_half(v[i]); }
SDPA_INLINE void vstore_low16(uint16_t *p, vi v) { for (int i = 0; i < 4; i++) p[i] = (uint16_t)v[i]; }

SDPA_INLINE vm vmask_zero_bytes(const uint8_t *p, int n) {
    vm z = 0;
    for (int i = 0; i < n; i++) z[i] = p[i] == 0 ? -1 : 0;
    return z;
}
SDPA_INLINE void vscan_bytes(const uint8_t *p, int n, int *anyZero, int *anyNonzero) {
    for (int c = 0; c < n; c++) {
        if (p[c] == 0) *anyZero = 1; else *anyNonzero = 1;
    }
}
SDPA_INLINE void vtranspose(vf r[4]) {
    vf t[4];
    for (int i = 0; i < 4; i++) t[i] = (vf){r[0][i], r[1][i], r[2][i], r[3][i]};
    for (int i = 0; i < 4; i++) r[i] = t[i];
}

#endif
