/* Public entry points: one-time ISA selection + one indirect call. */
#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#include <stdatomic.h>

static const sdpa_kernel_table sdpa_resolver_table;

/* Starts out pointing at a table of resolver stubs: the first call through
 * any entry selects the real table and forwards.  Afterwards each public
 * call is: load pointer, load entry, tail-jump (no branch). */
static _Atomic(const sdpa_kernel_table *) g_table = &sdpa_resolver_table;
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
    return atomic_load_explicit(&g_table, memory_order_acquire);
}

/* ---- resolver stubs ---- */
static void r_qk_tile(int a, int b, int c, const float *d, ptrdiff_t e,
                      const float *f, ptrdiff_t g, float h, float *i,
                      ptrdiff_t j, float *k) {
    sdpa_init_table()->qk_tile(a, b, c, d, e, f, g, h, i, j, k);
}
static void r_qk_tile_masked(int a, int b, int c, const float *d, ptrdiff_t e,
                             const float *f, ptrdiff_t g, float h, float *i,
                             ptrdiff_t j, int k, const void *l, ptrdiff_t m,
                             float *n) {
    sdpa_init_table()->qk_tile_masked(a, b, c, d, e, f, g, h, i, j, k, l, m, n);
}
static void r_qk_tile_direct(int a, int b, int c, const float *d, ptrdiff_t e,
                             int f, const void *g, ptrdiff_t h, float i,
                             float *j, ptrdiff_t k, float *l) {
    sdpa_init_table()->qk_tile_direct(a, b, c, d, e, f, g, h, i, j, k, l);
}
static void r_pv_tile(int a, int b, int c, const float *d, ptrdiff_t e,
                      const float *f, ptrdiff_t g, float *h, ptrdiff_t i) {
    sdpa_init_table()->pv_tile(a, b, c, d, e, f, g, h, i);
}
static void r_pack_kt_f32(int a, int b, const float *c, ptrdiff_t d, float *e,
                          ptrdiff_t f) {
    sdpa_init_table()->pack_kt_f32(a, b, c, d, e, f);
}
static void r_pack_kt_f16(int a, int b, const uint16_t *c, ptrdiff_t d,
                          float *e, ptrdiff_t f) {
    sdpa_init_table()->pack_kt_f16(a, b, c, d, e, f);
}
static void r_pack_kt_bf16(int a, int b, const uint16_t *c, ptrdiff_t d,
                           float *e, ptrdiff_t f) {
    sdpa_init_table()->pack_kt_bf16(a, b, c, d, e, f);
}
static void r_f16_to_f32(size_t n, const uint16_t *s, float *d) {
    sdpa_init_table()->f16_to_f32(n, s, d);
}
static void r_f32_to_f16(size_t n, const float *s, uint16_t *d) {
    sdpa_init_table()->f32_to_f16(n, s, d);
}
static void r_bf16_to_f32(size_t n, const uint16_t *s, float *d) {
    sdpa_init_table()->bf16_to_f32(n, s, d);
}
static void r_f32_to_bf16(size_t n, const float *s, uint16_t *d) {
    sdpa_init_table()->f32_to_bf16(n, s, d);
}
static void r_softmax_tile(int a, int b, float *c, ptrdiff_t d,
                           const float *e, float *f, float *g, float *h,
                           ptrdiff_t i, int j) {
    sdpa_init_table()->softmax_tile(a, b, c, d, e, f, g, h, i, j);
}
static void r_normalize_tile(int a, int b, float *c, ptrdiff_t d,
                             const float *e) {
    sdpa_init_table()->normalize_tile(a, b, c, d, e);
}
static void r_exp_f32(size_t n, const float *x, float *y) {
    sdpa_init_table()->exp_f32(n, x, y);
}
static void r_mask_tile_bool(int a, int b, float *c, ptrdiff_t d,
                             const uint8_t *e, ptrdiff_t f) {
    sdpa_init_table()->mask_tile_bool(a, b, c, d, e, f);
}
static void r_add_mask_tile_f32(int a, int b, float *c, ptrdiff_t d,
                                const float *e, ptrdiff_t f) {
    sdpa_init_table()->add_mask_tile_f32(a, b, c, d, e, f);
}
static void r_softcap_tile(int a, int b, float *c, ptrdiff_t d, float e) {
    sdpa_init_table()->softcap_tile(a, b, c, d, e);
}
static int r_mask_tile_visibility(int a, int b, int c, const void *d,
                                  ptrdiff_t e, int f) {
    return sdpa_init_table()->mask_tile_visibility(a, b, c, d, e, f);
}

static const sdpa_kernel_table sdpa_resolver_table = {
    "unresolved",
    r_qk_tile, r_qk_tile_masked, r_qk_tile_direct, r_pv_tile,
    r_pack_kt_f32, r_pack_kt_f16, r_pack_kt_bf16,
    r_f16_to_f32, r_f32_to_f16, r_bf16_to_f32, r_f32_to_bf16,
    r_softmax_tile, r_normalize_tile, r_exp_f32,
    r_mask_tile_bool, r_add_mask_tile_f32, r_softcap_tile,
    r_mask_tile_visibility,
};

const char *sdpa_kernels_isa(void) {
    const sdpa_kernel_table *t = T();
    if (t == &sdpa_resolver_table) t = sdpa_init_table();
    return t->name;
}

void sdpa_kernels_force_portable(int on) {
    atomic_store_explicit(&g_force_portable, on ? 1 : 0, memory_order_relaxed);
    (void)sdpa_init_table();
}

void sdpa_qk_tile(int rows, int cols, int depth, const float *q, ptrdiff_t ldq,
                  const float *kt, ptrdiff_t ldkt, float scale, float *s,
                  ptrdiff_t lds, float *tileMax) {
    T()->qk_tile(rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, tileMax);
}

void sdpa_qk_tile_masked(int rows, int cols, int depth, const float *q,
                         ptrdiff_t ldq, const float *kt, ptrdiff_t ldkt,
                         float scale, float *s, ptrdiff_t lds,
                         sdpa_mask_kind kind, const void *mask, ptrdiff_t ldm,
                         float *tileMax) {
    T()->qk_tile_masked(rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds,
                        (int)kind, mask, ldm, tileMax);
}

void sdpa_qk_tile_direct(int rows, int cols, int depth, const float *q,
                         ptrdiff_t ldq, sdpa_element_kind kind, const void *k,
                         ptrdiff_t ldk, float scale, float *s, ptrdiff_t lds,
                         float *tileMax) {
    T()->qk_tile_direct(rows, cols, depth, q, ldq, (int)kind, k, ldk, scale, s,
                        lds, tileMax);
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
                       const float *tileMax, float *rowMax, float *rowSum,
                       float *o, ptrdiff_t ldo, int dv) {
    T()->softmax_tile(rows, cols, s, lds, tileMax, rowMax, rowSum, o, ldo, dv);
}

void sdpa_normalize_tile(int rows, int dv, float *o, ptrdiff_t ldo,
                         const float *rowSum) {
    T()->normalize_tile(rows, dv, o, ldo, rowSum);
}

void sdpa_exp_f32(size_t n, const float *x, float *y) {
    T()->exp_f32(n, x, y);
}

void sdpa_mask_tile_bool(int rows, int cols, float *s, ptrdiff_t lds,
                         const uint8_t *mask, ptrdiff_t ldm) {
    T()->mask_tile_bool(rows, cols, s, lds, mask, ldm);
}

void sdpa_add_mask_tile_f32(int rows, int cols, float *s, ptrdiff_t lds,
                            const float *mask, ptrdiff_t ldm) {
    T()->add_mask_tile_f32(rows, cols, s, lds, mask, ldm);
}

void sdpa_softcap_tile(int rows, int cols, float *s, ptrdiff_t lds,
                       float cap) {
    T()->softcap_tile(rows, cols, s, lds, cap);
}

int sdpa_mask_tile_visibility(sdpa_mask_kind kind, int rows, int cols,
                              const void *mask, ptrdiff_t ldm, int enough) {
    return T()->mask_tile_visibility((int)kind, rows, cols, mask, ldm, enough);
}
