/* Public entry points: one-time ISA selection + one indirect call. */
#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

static const sdpa_kernel_table sdpa_resolver_table;

/* Starts out pointing at a table of resolver stubs: the first call through
 * any entry selects the real table and forwards.  Afterwards each public
 * call is: load the thread's override (usually NULL), load pointer, load
 * entry, jump. */
static _Atomic(const sdpa_kernel_table *) g_table = &sdpa_resolver_table;
/* A test's own choice for the calls made on its thread (NULL: the process's). */
static _Thread_local const sdpa_kernel_table *t_table = NULL;

/* Every family this build has, best first; those the CPU cannot run are
 * left out by sdpa_family_runs. */
static const sdpa_kernel_table *const sdpa_families[] = {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    &sdpa_avx2_table,
#endif
    &sdpa_portable_table,
};
enum { SDPA_FAMILY_COUNT = (int)(sizeof sdpa_families / sizeof sdpa_families[0]) };

static int sdpa_family_runs(const sdpa_kernel_table *t) {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    if (t == &sdpa_avx2_table) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    }
#endif
    return t == &sdpa_portable_table;
}

static int sdpa_names_equal(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

/* The family called `name` if this CPU runs it, else NULL. */
static const sdpa_kernel_table *sdpa_family_named(const char *name) {
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++)
        if (sdpa_names_equal(sdpa_families[i]->name, name))
            return sdpa_family_runs(sdpa_families[i]) ? sdpa_families[i] : NULL;
    return NULL;
}

/* The best family this CPU runs, unless SDPA_KERNELS names another it runs. */
static const sdpa_kernel_table *sdpa_best_table(void) {
    const char *wanted = getenv("SDPA_KERNELS");
    if (wanted && *wanted) {
        const sdpa_kernel_table *t = sdpa_family_named(wanted);
        if (t) return t;
    }
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++)
        if (sdpa_family_runs(sdpa_families[i])) return sdpa_families[i];
    return &sdpa_portable_table;
}

/* Slow path, taken once (or a few times if threads race: every racer
 * computes the same answer, so the duplicate store is harmless). */
__attribute__((noinline, cold))
static const sdpa_kernel_table *sdpa_init_table(void) {
    const sdpa_kernel_table *t = sdpa_best_table();
    const sdpa_kernel_table *expected = &sdpa_resolver_table;
    if (!atomic_compare_exchange_strong_explicit(&g_table, &expected, t, memory_order_acq_rel,
                                                 memory_order_acquire))
        t = expected; /* sdpa_kernels_select (or another racer) got there first */
    return t_table ? t_table : t;
}

static inline const sdpa_kernel_table *T(void) {
    const sdpa_kernel_table *own = t_table;
    return own ? own : atomic_load_explicit(&g_table, memory_order_acquire);
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

int sdpa_kernels_family_count(void) {
    int n = 0;
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++) n += sdpa_family_runs(sdpa_families[i]);
    return n;
}

const char *sdpa_kernels_family_name(int index) {
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++)
        if (sdpa_family_runs(sdpa_families[i]) && index-- == 0) return sdpa_families[i]->name;
    return NULL;
}

int sdpa_kernels_select(const char *name) {
    const sdpa_kernel_table *t = name ? sdpa_family_named(name) : sdpa_best_table();
    if (!t) return -1;
    atomic_store_explicit(&g_table, t, memory_order_release);
    return 0;
}

int sdpa_kernels_use_on_this_thread(const char *name) {
    if (!name) { t_table = NULL; return 0; }
    const sdpa_kernel_table *t = sdpa_family_named(name);
    if (!t) return -1;
    t_table = t;
    return 0;
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
