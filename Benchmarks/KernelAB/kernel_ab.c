/* Benchmarks/KernelAB: two builds of the C kernels (shared objects), one head's attention with each in
 * turn (run.sh says how to call it); with L <= 4, a decoding step over several heads instead (decode_ab).
 * A call is what the fused driver does for one head with no bias (or a causal one, MASK):
 * blocks of up to 4 query tiles (the driver's work items), each key tile against every query tile of
 * the block in turn, so that the key and value tiles stay in cache while the outputs of the block's
 * tiles come and go (keys and values packed once beforehand).  Rounds
 * alternate A B / B A; the report is each side's fastest call and the median and quartiles of the
 * per-round ratios B / A, which a drift of the host's speed over seconds does not move. */
#include "CSDPAKernels.h"
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct build {
    int (*select)(const char *);
    const char *(*family)(void);
    sdpa_operand_layout (*layout_for)(sdpa_element_kind);
    size_t (*bytes)(sdpa_operand_layout, sdpa_operand_role, int, int);
    void (*pack_keys)(sdpa_operand_layout, sdpa_element_kind, int, int, sdpa_rows, void *);
    sdpa_const_ptr (*pack_values)(sdpa_operand_layout, sdpa_element_kind, int, int, sdpa_rows, void *, ptrdiff_t *);
    sdpa_const_ptr (*prepare_query)(sdpa_operand_layout, sdpa_element_kind, int, int, const void *, ptrdiff_t, float, void *,
                                    ptrdiff_t *);
    void (*attend)(sdpa_operand_layout, int, int, int, int, const void *, ptrdiff_t, const void *, float, sdpa_mask_kind,
                   const void *, ptrdiff_t, const void *, ptrdiff_t, float *, ptrdiff_t, float *, float *, float *, float *,
                   ptrdiff_t);
    void (*scores_direct)(sdpa_operand_layout, int, int, int, const void *, ptrdiff_t, sdpa_element_kind, sdpa_rows, float,
                          float *, ptrdiff_t, float *, sdpa_rows, int);
    void (*softmax_tile)(int, int, float *, ptrdiff_t, const float *, float *, float *, float *, ptrdiff_t, int);
    void (*accumulate_direct)(int, int, int, const float *, ptrdiff_t, sdpa_element_kind, sdpa_rows, float *, ptrdiff_t,
                              const sdpa_next_tile *);
    int prefetches_next_tile; /* the build's sdpa_prefetches_next_tile() (1 where it has none) */
} build;

static void *symbol(void *h, const char *path, const char *name) {
    void *p = dlsym(h, name);
    if (!p) { fprintf(stderr, "kernel_ab: %s has no %s\n", path, name); exit(2); }
    return p;
}

static build load(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "kernel_ab: %s\n", dlerror()); exit(2); }
    build b;
    b.select = symbol(h, path, "sdpa_kernels_select");
    b.family = symbol(h, path, "sdpa_kernels_isa");
    b.layout_for = symbol(h, path, "sdpa_layout_for");
    b.bytes = symbol(h, path, "sdpa_operand_bytes");
    b.pack_keys = symbol(h, path, "sdpa_pack_keys");
    b.pack_values = symbol(h, path, "sdpa_pack_values");
    b.prepare_query = symbol(h, path, "sdpa_prepare_query");
    b.attend = symbol(h, path, "sdpa_attend");
    b.scores_direct = symbol(h, path, "sdpa_scores_direct");
    b.softmax_tile = symbol(h, path, "sdpa_softmax_tile");
    b.accumulate_direct = symbol(h, path, "sdpa_accumulate_direct");
    int (*prefetches)(void) = (int (*)(void))dlsym(h, "sdpa_prefetches_next_tile");
    b.prefetches_next_tile = prefetches ? prefetches() : 1;
    return b;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static uint32_t state = 1;
static float uniform(void) { state = state * 1664525u + 1013904223u; return (float)(state >> 8) / 16777216.0f * 2 - 1; }

/* One head's operands, packed by one build, and its scratch. */
typedef struct head {
    int L, S, E, rows, keys, tiles;
    sdpa_element_kind kind;
    sdpa_operand_layout layout;
    void **k;
    const void **v;
    ptrdiff_t ldv, ldq, lds;
    const void *q;
    float *s, *tileMax, *o[4], *m[4], *l[4];
} head;

static void *aligned(size_t n) { return aligned_alloc(64, (n + 127) / 64 * 64); }

static void store(sdpa_element_kind kind, char *p, size_t i, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (kind == SDPA_ELEMENT_F32) { memcpy(p + 4 * i, &x, 4); return; }
    uint16_t h;
    if (kind == SDPA_ELEMENT_BF16) h = (uint16_t)(u >> 16);
    else { _Float16 f = (_Float16)x; memcpy(&h, &f, 2); }
    memcpy(p + 2 * i, &h, 2);
}

static head prepare(const build *b, int L, int S, int E, sdpa_element_kind kind, int keys, int rows) {
    head h = {.L = L, .S = S, .E = E, .rows = rows, .keys = keys, .tiles = (S + keys - 1) / keys, .kind = kind};
    h.layout = b->layout_for(kind);
    const size_t es = kind == SDPA_ELEMENT_F32 ? 4 : 2;
    char *q = malloc(es * L * E), *k = malloc(es * S * E), *v = malloc(es * S * E);
    state = 1; /* the same inputs for both builds */
    for (size_t i = 0; i < (size_t)L * E; i++) store(kind, q, i, 2 * uniform());
    for (size_t i = 0; i < (size_t)S * E; i++) { store(kind, k, i, 2 * uniform()); store(kind, v, i, uniform()); }
    h.k = malloc(sizeof(void *) * h.tiles);
    h.v = malloc(sizeof(void *) * h.tiles);
    for (int t = 0; t < h.tiles; t++) {
        const int n = S - t * keys < keys ? S - t * keys : keys;
        h.k[t] = aligned(b->bytes(h.layout, SDPA_OPERAND_KEYS, keys, E));
        void *vb = aligned(b->bytes(h.layout, SDPA_OPERAND_VALUES, keys, E));
        const sdpa_rows kr = {k + es * (size_t)t * keys * E, E, NULL}, vr = {v + es * (size_t)t * keys * E, E, NULL};
        b->pack_keys(h.layout, kind, n, E, kr, h.k[t]);
        h.v[t] = b->pack_values(h.layout, kind, n, E, vr, vb, &h.ldv);
    }
    h.q = b->prepare_query(h.layout, kind, L, E, q, E, 1.0f / sqrtf((float)E), aligned(b->bytes(h.layout, SDPA_OPERAND_QUERY, L, E)), &h.ldq);
    h.lds = (keys + 15) / 16 * 16;
    h.s = aligned(4 * (size_t)rows * h.lds);
    h.tileMax = aligned(4 * (size_t)rows);
    for (int i = 0; i < 4; i++) {
        h.o[i] = aligned(4 * (size_t)rows * E);
        h.m[i] = aligned(4 * (size_t)rows);
        h.l[i] = aligned(4 * (size_t)rows);
    }
    free(q); free(k); /* not v: float32 values are read where they are (sdpa_pack_values returns v's own rows) */
    return h;
}

/* MASK=causal (upper-left) or causal-lower-right: the fused driver's handling of a causal bias, which a
 * change to the softmax or the epilogues must also be timed with (masked scores reach exp as -inf).  A key
 * tile a query tile cannot see is skipped, one it sees whole takes no mask, and one the diagonal crosses
 * takes a bool mask read from a strip of ones then zeros with a row stride of -1 (each row sees one more
 * key than the row above), as Sources/SDPA/Kernels/DiagonalMask.swift makes it. */
enum { NO_MASK, CAUSAL_UPPER_LEFT, CAUSAL_LOWER_RIGHT };
static int causal = NO_MASK;
enum { STRIP_HALF = 512, STRIP_MARGIN = 64 };
static uint8_t strip[2 * STRIP_HALF + 2 * STRIP_MARGIN];

/* Whether the query rows [r0, r0 + rows) see any of the keys [c0, c0 + cols); *mask is the diagonal's
 * mask where they see some, NULL where they see all. */
static int tile_visible(const head *h, int r0, int rows, int c0, int cols, const void **mask) {
    *mask = NULL;
    if (causal == NO_MASK) return 1;
    /* the first row's last visible key, relative to c0 */
    const int d = r0 + (causal == CAUSAL_LOWER_RIGHT ? h->S - h->L : 0) - c0;
    if (d + rows - 1 < 0) return 0;
    if (d >= cols - 1) return 1;
    const int start = STRIP_HALF - 1 - d;
    if (start - (rows - 1) < 0 || start + cols > 2 * STRIP_HALF) {
        fprintf(stderr, "kernel_ab: a %d x %d tile is too large for the causal strip\n", rows, cols);
        exit(2);
    }
    *mask = strip + STRIP_MARGIN + start;
    return 1;
}

/* The block of query tiles from row r0 on (up to 4) against every key tile; tile i's state in o[i],
 * m[i], l[i]. */
static void query_block(const build *b, head *h, int r0) {
    int rows[4], tiles = 0;
    for (; tiles < 4 && r0 + tiles * h->rows < h->L; tiles++) {
        const int start = r0 + tiles * h->rows;
        rows[tiles] = h->L - start < h->rows ? h->L - start : h->rows;
        for (int i = 0; i < rows[tiles]; i++) { h->m[tiles][i] = -INFINITY; h->l[tiles][i] = 0; }
        memset(h->o[tiles], 0, 4 * (size_t)rows[tiles] * h->E);
    }
    for (int t = 0; t < h->tiles; t++) {
        const int keys = h->S - t * h->keys < h->keys ? h->S - t * h->keys : h->keys;
        for (int i = 0; i < tiles; i++) {
            const void *q = (const char *)h->q + 4 * (ptrdiff_t)(r0 + i * h->rows) * h->ldq, *mask;
            if (!tile_visible(h, r0 + i * h->rows, rows[i], t * h->keys, keys, &mask)) continue;
            b->attend(h->layout, rows[i], keys, h->E, h->E, q, h->ldq, h->k[t], 1.0f, mask ? SDPA_MASK_BOOL : SDPA_MASK_NONE,
                      mask, mask ? -1 : 0, h->v[t], h->ldv, h->s, h->lds, h->tileMax, h->m[i], h->l[i], h->o[i], h->E);
        }
    }
}

static double time_head(const build *b, head *h) {
    const double t0 = now();
    for (int r0 = 0; r0 < h->L; r0 += 4 * h->rows) query_block(b, h, r0);
    return now() - t0;
}

typedef struct head_pair {
    const build *builds[2];
    head *heads[2];
} head_pair;

static double time_head_side(int side, void *ctx) {
    head_pair *p = ctx;
    return time_head(p->builds[side], p->heads[side]);
}

static int by_value(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Rounds alternating A B / B A (time(side, ctx): side 0 is A, 1 is B): each side's times and the
 * per-round ratios B / A, each sorted. */
typedef struct timings {
    double *a, *b, *ratio;
} timings;

static timings alternate(int rounds, double (*time)(int side, void *ctx), void *ctx) {
    timings t = {malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds)};
    for (int r = 0; r < rounds; r++) {
        const int first = r % 2;
        const double x = time(first, ctx), y = time(!first, ctx);
        t.a[r] = first ? y : x;
        t.b[r] = first ? x : y;
        t.ratio[r] = t.b[r] / t.a[r];
    }
    qsort(t.a, rounds, sizeof(double), by_value);
    qsort(t.b, rounds, sizeof(double), by_value);
    qsort(t.ratio, rounds, sizeof(double), by_value);
    return t;
}

/* Decoding (L <= 4 query rows a key-value head: a GQA group's rows, stacked as the driver stacks them):
 * HEADS key-value heads of S keys and values, contiguous, read as stored with the driver's calls for a key
 * tile with no bias (sdpa_scores_direct, sdpa_softmax_tile, sdpa_accumulate_direct).  Both builds read the
 * same K and V.  COLD=1 reads a buffer larger than the caches before each timed call, so K and V come from
 * memory, as the Decode benchmark's read pass leaves them; otherwise they stay in cache between calls. */
typedef struct decode {
    int L, S, E, heads, keys;
    sdpa_element_kind kind;
    sdpa_operand_layout layout;
    const char *k, *v;
    size_t es;
    const void *q;
    ptrdiff_t ldq, lds;
    float *s, *tileMax, *o, *m, *l;
} decode;

static decode prepare_decode(const build *b, int L, int S, int E, int heads, sdpa_element_kind kind, int keys,
                             const char *k, const char *v, const char *q) {
    decode d = {.L = L, .S = S, .E = E, .heads = heads, .keys = keys, .kind = kind, .k = k, .v = v};
    d.layout = b->layout_for(kind);
    d.es = kind == SDPA_ELEMENT_F32 ? 4 : 2;
    d.q = b->prepare_query(d.layout, kind, L, E, q, E, 1.0f, aligned(b->bytes(d.layout, SDPA_OPERAND_QUERY, L, E)), &d.ldq);
    d.lds = (keys + 15) / 16 * 16;
    d.s = aligned(4 * (size_t)L * d.lds);
    d.tileMax = aligned(4 * (size_t)L);
    d.o = aligned(4 * (size_t)L * E);
    d.m = aligned(4 * (size_t)L);
    d.l = aligned(4 * (size_t)L);
    return d;
}

static double time_decode(const build *b, decode *d) {
    const double t0 = now();
    const float scale = 1.0f / sqrtf((float)d->E);
    for (int h = 0; h < d->heads; h++) {
        for (int i = 0; i < d->L; i++) { d->m[i] = -INFINITY; d->l[i] = 0; }
        memset(d->o, 0, 4 * (size_t)d->L * d->E);
        const size_t head = (size_t)h * d->S * d->E;
        for (int k0 = 0; k0 < d->S; k0 += d->keys) {
            const int n = d->S - k0 < d->keys ? d->S - k0 : d->keys;
            const sdpa_rows kr = {d->k + d->es * (head + (size_t)k0 * d->E), d->E, NULL};
            const sdpa_rows vr = {d->v + d->es * (head + (size_t)k0 * d->E), d->E, NULL};
            b->scores_direct(d->layout, d->L, n, d->E, d->q, d->ldq, d->kind, kr, scale, d->s, d->lds, d->tileMax, vr, d->E);
            b->softmax_tile(d->L, n, d->s, d->lds, d->tileMax, d->m, d->l, d->o, d->E, d->E);
            const int nn = d->S - k0 - n < d->keys ? d->S - k0 - n : d->keys;
            const sdpa_next_tile next = {{(const char *)kr.base + d->es * (size_t)n * d->E, d->E, NULL},
                                         {(const char *)vr.base + d->es * (size_t)n * d->E, d->E, NULL}, nn, d->E};
            b->accumulate_direct(d->L, n, d->E, d->s, d->lds, d->kind, vr, d->o, d->E, nn > 0 && d->L > 1 && b->prefetches_next_tile ? &next : NULL);
        }
    }
    return now() - t0;
}

static volatile float flush_sink;
static void flush_caches(void) {
    static float *big;
    const size_t n = (size_t)128 << 20; /* 512 MiB */
    if (!big) { big = malloc(4 * n); for (size_t i = 0; i < n; i++) big[i] = (float)i; }
    float acc = 0;
    for (size_t i = 0; i < n; i += 16) acc += big[i];
    flush_sink = acc;
}

typedef struct decode_pair {
    const build *builds[2];
    decode *heads[2];
    int cold;
} decode_pair;

static double time_decode_side(int side, void *ctx) {
    decode_pair *p = ctx;
    if (p->cold) flush_caches();
    return time_decode(p->builds[side], p->heads[side]);
}

static int decode_ab(const build *A, const build *B, int E, const char *dtype, sdpa_element_kind kind, int rounds, int keysA, int keysB,
                     int L, int S) {
    const int heads = getenv("HEADS") ? atoi(getenv("HEADS")) : 8, cold = getenv("COLD") && atoi(getenv("COLD"));
    if (heads < 1) { fprintf(stderr, "kernel_ab: bad HEADS %d\n", heads); return 2; }
    const size_t es = kind == SDPA_ELEMENT_F32 ? 4 : 2, n = (size_t)heads * S * E;
    char *k = aligned(es * n), *v = aligned(es * n), *q = malloc(es * (size_t)L * E);
    state = 1;
    for (size_t i = 0; i < (size_t)L * E; i++) store(kind, q, i, 2 * uniform());
    for (size_t i = 0; i < n; i++) { store(kind, k, i, 2 * uniform()); store(kind, v, i, uniform()); }
    decode da = prepare_decode(A, L, S, E, heads, kind, keysA, k, v, q), db = prepare_decode(B, L, S, E, heads, kind, keysB, k, v, q);
    time_decode(A, &da);
    time_decode(B, &db);
    int same = !memcmp(da.o, db.o, 4 * (size_t)L * E);
    decode_pair pair = {{A, B}, {&da, &db}, cold};
    const timings t = alternate(rounds, time_decode_side, &pair);
    const double bytes = 2.0 * es * n;
    printf("family %s (A) / %s (B), %s, decoding: %d kv heads x %d rows, S=%d E=%d, key tiles of %d (A) / %d (B), %s, %d rounds\n",
           A->family(), B->family(), dtype, heads, L, S, E, keysA, keysB, cold ? "K and V from memory" : "K and V in cache", rounds);
    if (L > 1)
        printf("next tile prefetched during P.V: %s (A) / %s (B)\n", A->prefetches_next_tile ? "yes" : "no",
               B->prefetches_next_tile ? "yes" : "no");
    printf("median call: A %.3f ms (%.1f GB/s), B %.3f ms (%.1f GB/s); per-round B/A: median %.3f, quartiles %.3f-%.3f\n",
           t.a[rounds / 2] * 1e3, bytes / t.a[rounds / 2] * 1e-9, t.b[rounds / 2] * 1e3, bytes / t.b[rounds / 2] * 1e-9,
           t.ratio[rounds / 2], t.ratio[rounds / 4], t.ratio[(3 * rounds) / 4]);
    printf("outputs of the last head: %s\n", same ? "the same bits" : "different bits");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: kernel_ab A.so B.so [FAMILY E DTYPE ROUNDS [KEYS_A [KEYS_B]]]\n"); return 2; }
    build A = load(argv[1]), B = load(argv[2]);
    const char *family = argc > 3 ? argv[3] : NULL;
    const int E = argc > 4 ? atoi(argv[4]) : 64;
    const char *dtype = argc > 5 ? argv[5] : "bfloat16";
    const int rounds = argc > 6 ? atoi(argv[6]) : 30;
    const int keysA = argc > 7 ? atoi(argv[7]) : (E <= 64 ? 128 : 64), keysB = argc > 8 ? atoi(argv[8]) : keysA;
    const int L = getenv("L") ? atoi(getenv("L")) : 2048, S = getenv("S") ? atoi(getenv("S")) : 2048;
    const int rows = getenv("QUERY_ROWS") ? atoi(getenv("QUERY_ROWS")) : 96;
    const sdpa_element_kind kind = !strcmp(dtype, "float32") ? SDPA_ELEMENT_F32 : !strcmp(dtype, "float16") ? SDPA_ELEMENT_F16
                                 : !strcmp(dtype, "bfloat16") ? SDPA_ELEMENT_BF16 : (sdpa_element_kind)-1;
    if ((int)kind < 0 || E < 1 || rounds < 1 || rounds > 1000 || keysA < 1 || keysB < 1 || L < 1 || S < 1 || rows < 1) {
        fprintf(stderr, "kernel_ab: bad arguments (E %d, dtype %s, rounds %d, keys %d/%d, L %d, S %d, rows %d)\n", E, dtype, rounds,
                keysA, keysB, L, S, rows);
        return 2;
    }
    const char *maskName = getenv("MASK") ? getenv("MASK") : "none";
    causal = !strcmp(maskName, "causal") ? CAUSAL_UPPER_LEFT : !strcmp(maskName, "causal-lower-right") ? CAUSAL_LOWER_RIGHT
           : !strcmp(maskName, "none") ? NO_MASK : -1;
    if (causal < 0) { fprintf(stderr, "kernel_ab: MASK is none, causal or causal-lower-right, not '%s'\n", maskName); return 2; }
    memset(strip, 1, STRIP_MARGIN + STRIP_HALF);
    memset(strip + STRIP_MARGIN + STRIP_HALF, 0, STRIP_HALF + STRIP_MARGIN);
    if (family && (A.select(family) || B.select(family))) { fprintf(stderr, "kernel_ab: no family '%s' here\n", family); return 2; }
    if (L <= 4 && causal != NO_MASK) { fprintf(stderr, "kernel_ab: MASK times prefill (L > 4), not decoding\n"); return 2; }
    if (L <= 4) return decode_ab(&A, &B, E, dtype, kind, rounds, keysA, keysB, L, S);
    head ha = prepare(&A, L, S, E, kind, keysA, rows), hb = prepare(&B, L, S, E, kind, keysB, rows);

    /* the first query tile's outputs, raw (before normalisation): are the bits the same? */
    query_block(&A, &ha, 0);
    query_block(&B, &hb, 0);
    const int n0 = L < rows ? L : rows;
    double worst = 0;
    int same = 1;
    for (int i = 0; i < n0 * E; i++) {
        if (memcmp(&ha.o[0][i], &hb.o[0][i], 4)) same = 0;
        if (ha.l[0][i / E] == 0 || hb.l[0][i / E] == 0) continue; /* a row that sees no key */
        const float x = ha.o[0][i] / ha.l[0][i / E], y = hb.o[0][i] / hb.l[0][i / E];
        const double d = fabs((double)x - y);
        if (d > worst || d != d) worst = d;
    }

    time_head(&A, &ha);
    time_head(&B, &hb);
    head_pair pair = {{&A, &B}, {&ha, &hb}};
    const timings t = alternate(rounds, time_head_side, &pair);
    printf("family %s (A) / %s (B), %s, L=%d S=%d E=%d, mask %s, query tiles of %d rows, key tiles of %d (A) / %d (B), %d rounds\n",
           A.family(), B.family(), dtype, L, S, E, maskName, rows, keysA, keysB, rounds);
    printf("fastest head: A %.3f ms, B %.3f ms (B/A %.3f); per-round B/A: median %.3f, quartiles %.3f-%.3f\n", t.a[0] * 1e3,
           t.b[0] * 1e3, t.b[0] / t.a[0], t.ratio[rounds / 2], t.ratio[rounds / 4], t.ratio[(3 * rounds) / 4]);
    printf("outputs of the first block of query tiles: %s (largest difference of the normalised outputs %.3g)\n",
           same ? "the same bits" : "different bits", worst);
    return 0;
}
