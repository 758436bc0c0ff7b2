/* Row converters between float32 and the half-precision formats. */
#ifndef SDPA_TILES_CONVERT_H
#define SDPA_TILES_CONVERT_H

SDPA_INLINE void convert_to_f32(const int kind, size_t n, const uint16_t *src, float *dst) {
    size_t i = 0;
    for (; i + SDPA_VL <= n; i += SDPA_VL) vstore(dst + i, vload_kind(kind, src, (ptrdiff_t)i));
    if (i < n) {
        const int k = (int)(n - i);
        vstore_first(dst + i, k, vmask_first(k), vload_half_first(kind, src + i, k));
    }
}

SDPA_INLINE void convert_from_f32(const int kind, size_t n, const float *src, uint16_t *dst) {
    size_t i = 0;
    for (; i + SDPA_VL <= n; i += SDPA_VL) {
        if (kind == SDPA_KIND_F16) vstore_f16(dst + i, vload(src + i)); else vstore_bf16(dst + i, vload(src + i));
    }
    if (i < n) {
        const int k = (int)(n - i);
        vstore_half_first(kind, dst + i, k, vload_first(src + i, k, vmask_first(k)));
    }
}

#if !SDPA_AMX_BF16
/* P rounded to bfloat16 for the pairs product (a tile layer may have its own). */
SDPA_INLINE void vstore_bf16_operand(uint16_t *p, vf v) { vstore_bf16(p, v); }
#endif

static void k_convert_f16_to_f32(size_t n, const uint16_t *src, float *dst) { convert_to_f32(SDPA_KIND_F16, n, src, dst); }
static void k_convert_bf16_to_f32(size_t n, const uint16_t *src, float *dst) { convert_to_f32(SDPA_KIND_BF16, n, src, dst); }
static void k_convert_f32_to_f16(size_t n, const float *src, uint16_t *dst) { convert_from_f32(SDPA_KIND_F16, n, src, dst); }
static void k_convert_f32_to_bf16(size_t n, const float *src, uint16_t *dst) { convert_from_f32(SDPA_KIND_BF16, n, src, dst); }

#endif
