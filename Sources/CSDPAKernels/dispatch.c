/* Public entry points: one-time ISA selection + one indirect call. */
#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#include <stdatomic.h>

static _Atomic(const sdpa_kernel_table *) g_table = NULL;
static atomic_int g_force_portable = 0;

static const sdpa_kernel_table *sdpa_best_table(void) {
    if (atomic_load_explicit(&g_force_portable, memory_order_relaxed))
        return &sdpa_portable_table;
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return &sdpa_avx2_table;
#endif
    return &sdpa_portable_table;
}

/* Slow path, taken once (or a few times if threads race: every racer
 * computes the same answer, so the duplicate store is harmless). */
__attribute__((noinline, cold))
static const sdpa_kernel_table *sdpa_init_table(void) {
    const sdpa_kernel_table *t = sdpa_best_table();
    atomic_store_explicit(&g_table, t, memory_order_release);
    return t;
}

static inline const sdpa_kernel_table *T(void) {
    const sdpa_kernel_table *t =
        atomic_load_explicit(&g_table, memory_order_acquire);
    if (__builtin_expect(t == NULL, 0)) t = sdpa_init_table();
    return t;
}

const char *sdpa_kernels_isa(void) { return T()->name; }

void sdpa_kernels_force_portable(int on) {
    atomic_store_explicit(&g_force_portable, on ? 1 : 0, memory_order_relaxed);
    (void)sdpa_init_table();
}

void sdpa_qk_tile(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                  const float *kt, ptrdiff_t ldkt, float scale, float *s,
                  ptrdiff_t lds) {
    T()->qk_tile(rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds);
}

void sdpa_pv_tile(int rows, int cols, int dv, const float *p, ptrdiff_t ldp,
                  const float *v, ptrdiff_t ldv, float *o, ptrdiff_t ldo) {
    T()->pv_tile(rows, cols, dv, p, ldp, v, ldv, o, ldo);
}

void sdpa_pack_kt_f32(int cols, int depth, const float *k, ptrdiff_t ldk,
                      float *kt, ptrdiff_t ldkt) {
    T()->pack_kt_f32(cols, depth, k, ldk, kt, ldkt);
}

void sdpa_pack_kt_f16(int cols, int depth, const uint16_t *k, ptrdiff_t ldk,
                      float *kt, ptrdiff_t ldkt) {
    T()->pack_kt_f16(cols, depth, k, ldk, kt, ldkt);
}

void sdpa_pack_kt_bf16(int cols, int depth, const uint16_t *k, ptrdiff_t ldk,
                       float *kt, ptrdiff_t ldkt) {
    T()->pack_kt_bf16(cols, depth, k, ldk, kt, ldkt);
}

void sdpa_convert_f16_to_f32(size_t n, const uint16_t *src, float *dst) {
    T()->f16_to_f32(n, src, dst);
}
void sdpa_convert_f32_to_f16(size_t n, const float *src, uint16_t *dst) {
    T()->f32_to_f16(n, src, dst);
}
void sdpa_convert_bf16_to_f32(size_t n, const uint16_t *src, float *dst) {
    T()->bf16_to_f32(n, src, dst);
}
void sdpa_convert_f32_to_bf16(size_t n, const float *src, uint16_t *dst) {
    T()->f32_to_bf16(n, src, dst);
}

void sdpa_softmax_tile(int rows, int cols, float *s, ptrdiff_t lds,
                       float *rowMax, float *rowSum, float *o, ptrdiff_t ldo,
                       int dv) {
    T()->softmax_tile(rows, cols, s, lds, rowMax, rowSum, o, ldo, dv);
}

void sdpa_normalize_tile(int rows, int dv, float *o, ptrdiff_t ldo,
                         const float *rowSum) {
    T()->normalize_tile(rows, dv, o, ldo, rowSum);
}

void sdpa_exp_f32(size_t n, const float *x, float *y) {
    T()->exp_f32(n, x, y);
}
