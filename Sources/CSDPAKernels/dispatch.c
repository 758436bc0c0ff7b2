/* The public entry points: each forwards to the family in use, chosen once
 * (and by name for tests and benchmarks).  Resolver stubs and forwarders are
 * generated from SDPA_KERNEL_LIST. */
#include "CSDPAKernels.h"
#include "sdpa_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif


/* Every family this build has, best first (sdpa_ranked_family puts them in
 * this CPU's order); sdpa_family_runs leaves out those the CPU cannot run. */
static const sdpa_kernel_table *const sdpa_families[] = {
#if defined(__x86_64__) || defined(_M_X64)
    &sdpa_amx_table,
    &sdpa_avx512bf16_table,
    &sdpa_avx512_table,
    &sdpa_avx2_table,
#endif
#if defined(__aarch64__)
    &sdpa_neonbf16_table,
    &sdpa_neon_table,
#endif
    &sdpa_portable_table,
};
enum { SDPA_FAMILY_COUNT = (int)(sizeof sdpa_families / sizeof sdpa_families[0]) };

#if defined(__aarch64__)
#if defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(__linux__)
#include <sys/auxv.h>
#endif
/* Whether the CPU has FEAT_BF16 (BFDOT, BFMMLA, BFCVT). */
static int sdpa_arm_has_bf16(void) {
#if defined(__APPLE__)
    int has = 0;
    size_t size = sizeof has;
    return sysctlbyname("hw.optional.arm.FEAT_BF16", &has, &size, NULL, 0) == 0 && has;
#elif defined(__linux__)
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1UL << 14)
#endif
    return (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#else
    return 0;
#endif
}
#endif

#if defined(__x86_64__) || defined(_M_X64)
/* Whether this process may use the AMX tiles: the CPU has AMX-TILE and
 * AMX-BF16, the OS saves the tile state (XCR0 bits 17 and 18) and, on
 * Linux, grants it to the process (without the grant the first tile
 * instruction kills the process).  Asked once. */
static int sdpa_amx_usable(void) {
    static _Atomic int known = 0; /* 1 usable, -1 not, 0 not asked yet */
    int state = atomic_load_explicit(&known, memory_order_relaxed);
    if (state) return state > 0;
    unsigned a = 0, b = 0, c = 0, d = 0;
    int usable = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 22 & 1);
    if (usable && __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1)) { /* OSXSAVE: xgetbv may run */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        /* and XGETBV reads XINUSE (whether a thread's tiles are configured) */
        usable = (lo >> 17 & 3) == 3 && __get_cpuid_count(0xd, 1, &a, &b, &c, &d) && (a >> 2 & 1);
    } else {
        usable = 0;
    }
#if defined(__linux__)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (usable) usable = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    usable = 0; /* no AMX on the other systems we build for */
#endif
    atomic_store_explicit(&known, usable ? 1 : -1, memory_order_relaxed);
    return usable;
}
#endif

static int sdpa_family_runs(const sdpa_kernel_table *t) {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                     __builtin_cpu_supports("f16c");
    if (t == &sdpa_avx2_table) return avx2;
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (t == &sdpa_avx512_table) return avx512;
    const int bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    if (t == &sdpa_avx512bf16_table) return bf16;
    if (t == &sdpa_amx_table) return bf16 && sdpa_amx_usable();
#endif
#if defined(__aarch64__)
    if (t == &sdpa_neon_table) return 1;
    if (t == &sdpa_neonbf16_table) return sdpa_arm_has_bf16();
#endif
    return t == &sdpa_portable_table;
}

#if defined(__x86_64__) || defined(_M_X64)
/* Whether this is an Intel core (CPUID leaf 0's vendor), asked once: the
 * family ranking and the decoding prefetch choice below both follow it. */
static int sdpa_cpu_is_intel(void) {
    static _Atomic int intel = 0; /* 1 Intel, -1 not, 0 not asked yet */
    int known = atomic_load_explicit(&intel, memory_order_relaxed);
    if (!known) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        known = __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e ? 1 : -1; /* "GenuineIntel" */
        atomic_store_explicit(&intel, known, memory_order_relaxed);
    }
    return known > 0;
}
#endif

int sdpa_prefetches_next_tile(void) {
    static _Atomic int known = 0; /* 1 yes, -1 no, 0 not asked yet */
    int state = atomic_load_explicit(&known, memory_order_relaxed);
    if (state) return state > 0;
    const char *wanted = getenv("SDPA_PREFETCH_NEXT_TILE");
    int yes = 1;
    if (wanted && (wanted[0] == '0' || wanted[0] == '1') && !wanted[1])
        yes = wanted[0] == '1';
#if defined(__x86_64__) || defined(_M_X64)
    else
        yes = !sdpa_cpu_is_intel();
#endif
    atomic_store_explicit(&known, yes ? 1 : -1, memory_order_relaxed);
    return yes;
}

/* Family i in this CPU's order of preference: sdpa_families' order, except
 * that an Intel core ranks avx512 above avx512bf16 (where AMX is refused,
 * avx512 then runs bfloat16).  An Intel core's VDPBF16PS does not outrun the
 * float32 FMA (one a cycle, on one port, against two FMAs): with P's rounding
 * and the pairs' packing on top, bfloat16 widened to float32 ran 1.6-1.8x
 * faster there (models 167 and 207; RFC.md, families); AMD's cores run it
 * faster than the FMA. */
static const sdpa_kernel_table *sdpa_ranked_family(int i) {
    const sdpa_kernel_table *t = sdpa_families[i];
#if defined(__x86_64__) || defined(_M_X64)
    if (sdpa_cpu_is_intel()) {
        if (t == &sdpa_avx512bf16_table) return &sdpa_avx512_table;
        if (t == &sdpa_avx512_table) return &sdpa_avx512bf16_table;
    }
#endif
    return t;
}

static int sdpa_names_equal(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

/* The family called `name` if this CPU runs it, else NULL. */
static const sdpa_kernel_table *sdpa_family_named(const char *name) {
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++)
        if (sdpa_names_equal(sdpa_families[i]->family, name))
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
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++) {
        const sdpa_kernel_table *t = sdpa_ranked_family(i);
        if (sdpa_family_runs(t)) return t;
    }
    return &sdpa_portable_table;
}

static const sdpa_kernel_table sdpa_resolver_table;

/* Starts out pointing at a table of resolver stubs: the first call through
 * any entry selects the real table and forwards.  Afterwards each public
 * call is: load the thread's override (usually NULL), load the table, load
 * the entry, jump. */
static _Atomic(const sdpa_kernel_table *) g_table = &sdpa_resolver_table;
/* A test's own choice for the calls made on its thread (NULL: the process's). */
static _Thread_local const sdpa_kernel_table *t_table = NULL;

/* Slow path, taken once (or a few times if threads race: every racer
 * computes the same answer). */
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

#define SDPA_RESOLVER(ret, name, params, args) \
    static ret r_##name params { SDPA_RETURN_##ret sdpa_init_table()->name args; }
SDPA_KERNEL_LIST(SDPA_RESOLVER)
#undef SDPA_RESOLVER

#define SDPA_RESOLVER_ENTRY(ret, name, params, args) .name = r_##name,
static const sdpa_kernel_table sdpa_resolver_table = {
    .family = "unresolved",
    SDPA_KERNEL_LIST(SDPA_RESOLVER_ENTRY)
};
#undef SDPA_RESOLVER_ENTRY

#define SDPA_FORWARDER(ret, name, params, args) \
    ret sdpa_##name params { SDPA_RETURN_##ret T()->name args; }
SDPA_KERNEL_LIST(SDPA_FORWARDER)
#undef SDPA_FORWARDER

const char *sdpa_kernels_isa(void) {
    const sdpa_kernel_table *t = T();
    if (t == &sdpa_resolver_table) t = sdpa_init_table();
    return t->family;
}

int sdpa_kernels_family_count(void) {
    int n = 0;
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++) n += sdpa_family_runs(sdpa_families[i]);
    return n;
}

const char *sdpa_kernels_family_name(int index) {
    for (int i = 0; i < SDPA_FAMILY_COUNT; i++) {
        const sdpa_kernel_table *t = sdpa_ranked_family(i);
        if (sdpa_family_runs(t) && index-- == 0) return t->family;
    }
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

static double sdpa_peak_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The best of several short runs of a family's FMA loop: the fastest is the
 * one least disturbed by other processes, interrupts and the clock ramping up. */
static double sdpa_peak_measure(const sdpa_kernel_table *t) {
    enum { RUNS = 8 };
    const double run_seconds = 4e-4;
    long iterations = 1024;
    for (;;) { /* grow the run until it lasts run_seconds (also warms up) */
        double start = sdpa_peak_seconds();
        t->fma_flops(iterations);
        double elapsed = sdpa_peak_seconds() - start;
        if (elapsed >= run_seconds || iterations >= (1L << 40)) break;
        iterations *= elapsed > run_seconds / 64 ? 2 : 8;
    }
    double best = 0;
    for (int r = 0; r < RUNS; r++) {
        double start = sdpa_peak_seconds();
        double flop = t->fma_flops(iterations);
        double elapsed = sdpa_peak_seconds() - start;
        if (elapsed > 0 && flop / elapsed > best) best = flop / elapsed;
    }
    return best / 1e9;
}

/* Per family, 0 until measured. */
static _Atomic double sdpa_peak_cache[SDPA_FAMILY_COUNT];

double sdpa_kernels_fma_peak_gflops(const char *family) {
    const sdpa_kernel_table *t = family ? sdpa_family_named(family) : T();
    if (t == &sdpa_resolver_table) t = sdpa_init_table();
    if (!t) return -1;
    int slot = 0;
    while (sdpa_families[slot] != t) slot++;
    double cached = atomic_load_explicit(&sdpa_peak_cache[slot], memory_order_relaxed);
    if (cached > 0) return cached;
    /* Racing first callers each measure; either figure is a fair one. */
    double measured = sdpa_peak_measure(t);
    atomic_store_explicit(&sdpa_peak_cache[slot], measured, memory_order_relaxed);
    return measured;
}
