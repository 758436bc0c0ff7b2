/* Private to the CSDPAKernels target: the per-ISA function table. */
#ifndef CSDPA_INTERNAL_H
#define CSDPA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "include/CSDPAKernels.h"
#include "kernel_list.h"

/* Bodies written over a vector layer are inlined into each family's entry
 * points, so each family specialises them for its registers. */
#define SDPA_INLINE static inline __attribute__((always_inline))

/* One family: its name and an entry for each kernel of SDPA_KERNEL_LIST. */
#define SDPA_TABLE_FIELD(ret, name, params, args) ret(*name) params;
typedef struct sdpa_kernel_table {
    const char *family;
    SDPA_KERNEL_LIST(SDPA_TABLE_FIELD)
} sdpa_kernel_table;
#undef SDPA_TABLE_FIELD

/* The families this build may hold (dispatch.c lists them, best first). */
extern const sdpa_kernel_table sdpa_portable_table;
#if defined(__x86_64__) || defined(_M_X64)
extern const sdpa_kernel_table sdpa_avx2_table;
extern const sdpa_kernel_table sdpa_avx512_table;
extern const sdpa_kernel_table sdpa_avx512bf16_table;
extern const sdpa_kernel_table sdpa_amx_table;
#endif
#if defined(__aarch64__)
extern const sdpa_kernel_table sdpa_neon_table;
extern const sdpa_kernel_table sdpa_neonbf16_table;
#endif

/* Constants of the shared exp approximation (used by both variants so that
 * they agree to the last bit, modulo FMA contraction). */
#define SDPA_EXP_CLAMP (-88.0f)         /* args clamped here: n = -127 -> 0 */
#define SDPA_EXP_HI   (88.72283935f)    /* ln(FLT_MAX): above -> +inf      */
#define SDPA_LOG2E    (1.44269504088896341f)
#define SDPA_LN2_HI   (0.693359375f)          /* exact in 9 bits        */
#define SDPA_LN2_LO   (-2.12194440e-4f)       /* ln2 - LN2_HI           */
#define SDPA_LN2      (0.693147180559945309f)
/* Minimax fit (Lawson/Remez, float-rounded coefficients) of
 * q(r) = (e^r - 1 - r) / r^2 on |r| <= ln2/2; e^r = 1 + r + r^2 q(r) has
 * approximation error 3.6e-9 relative (0.06 ulp) before rounding. */
#define SDPA_EXP_C0   (4.9999994040e-01f)
#define SDPA_EXP_C1   (1.6666521132e-01f)
#define SDPA_EXP_C2   (4.1668388993e-02f)
#define SDPA_EXP_C3   (8.3687454462e-03f)
#define SDPA_EXP_C4   (1.3814539416e-03f)

/* 2^u for the softmax's exp2 form, as 2^n * 2^(j/8) * 2^r with |r| <= 1/16:
 * the table 2^(j/8), j = 0...7 (float-rounded), and 2^r = 1 + r q(r) with
 * q(r) = Q0 + Q1 r + Q2 r^2, a near-minimax fit of the relative error on
 * |r| <= 1/16 (2.5e-8 before rounding; 1.1e-7 = 1.9 ulp measured in float
 * with FMA over [-126, 1.5], table rounding included). */
#define SDPA_EXP2_EIGHTHS                                                      \
    1.0f, 1.0905077326652577f, 1.1892071150027210f, 1.2968395546510096f,       \
        1.4142135623730951f, 1.5422108254079407f, 1.6817928305074290f,         \
        1.8340080864093424f
#define SDPA_EXP2_Q0  (6.931472421e-01f)
#define SDPA_EXP2_Q1  (2.402576357e-01f)
#define SDPA_EXP2_Q2  (5.549622327e-02f)

/* tanh for |u| < SDPA_TANH_SMALL: u + u^3 * P(u^2) (Cephes tanhf minimax
 * coefficients, peak relative error ~1.3e-7 before rounding); above it,
 * 1 - 2/(exp(2|u|) + 1).  Beyond SDPA_TANH_CLAMP tanh(u) rounds to +-1. */
#define SDPA_TANH_SMALL (0.625f)
#define SDPA_TANH_CLAMP (9.5f)
#define SDPA_TANH_P0  (-3.33332819422e-1f)
#define SDPA_TANH_P1  (1.33314422036e-1f)
#define SDPA_TANH_P2  (-5.37397155531e-2f)
#define SDPA_TANH_P3  (2.06390887954e-2f)
#define SDPA_TANH_P4  (-5.70498872745e-3f)

/* ---------------------------------------------------------------------- */
/* Scalar helpers shared by both variants (static inline, header-only).    */
/* ---------------------------------------------------------------------- */

static inline uint32_t sdpa_f2u(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
static inline float sdpa_u2f(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

/* exp(x), branchless so that loops calling it auto-vectorize.
 * Cody-Waite reduction x = n*ln2 + r, |r| <= ~ln2/2, degree-4 minimax
 * polynomial q(r) for (e^r - 1 - r)/r^2, then (1 + y) * 2^n.
 *  n <= -127 (x below about -87.68, and -inf) -> exactly +0
 *  x > SDPA_EXP_HI (ln(FLT_MAX))              -> +inf
 *  NaN                                        -> NaN
 * 2^n is applied as two factors so that n = 128 (x in (88.38, 88.72])
 * does not overflow early.  The AVX2 variant uses the same reduction,
 * constants and zero rule. */
static inline float sdpa_exp_scalar(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: round-to-int trick */
    float xc = x > SDPA_EXP_HI ? SDPA_EXP_HI : x;
    xc = xc < SDPA_EXP_CLAMP ? SDPA_EXP_CLAMP : xc;   /* NaN passes through */
    float t = xc * SDPA_LOG2E + magic;
    float n = t - magic;
    float r = xc - n * SDPA_LN2_HI;
    r = r - n * SDPA_LN2_LO;
    float p = SDPA_EXP_C4;
    p = p * r + SDPA_EXP_C3;
    p = p * r + SDPA_EXP_C2;
    p = p * r + SDPA_EXP_C1;
    p = p * r + SDPA_EXP_C0;
    float y = p * (r * r) + r;                        /* e^r - 1 */
    /* integer n in [-127, 128] (garbage for NaN, harmless: y is NaN) */
    int32_t ni = (int32_t)(sdpa_f2u(t) - sdpa_f2u(magic));
    int32_t n1 = ni >> 1;          /* floor(n/2) */
    int32_t n2 = ni - n1;
    float s1 = sdpa_u2f((uint32_t)(n1 + 127) << 23);
    float s2 = sdpa_u2f((uint32_t)(n2 + 127) << 23);
    y = (y * s1 + s1) * s2;
    y = n <= -127.0f ? 0.0f : y;     /* false for NaN */
    y = x > SDPA_EXP_HI ? __builtin_inff() : y;
    return y;
}

/* IEEE binary16 bits -> float (exact; signaling NaNs are quieted). */
static inline float sdpa_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu;
    uint32_t m = h & 0x3FFu;
    uint32_t bits;
    if (e == 0x1Fu) {
        /* inf, or NaN: payload kept, quiet bit set (like F16C vcvtph2ps) */
        bits = sign | 0x7F800000u | (m << 13) | (m ? 0x00400000u : 0u);
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else {
        /* zero or subnormal: value = m * 2^-24, exact in float */
        float f = (float)m * 5.9604644775390625e-8f;
        bits = sign | sdpa_f2u(f);
    }
    return sdpa_u2f(bits);
}

/* float -> IEEE binary16 bits, round to nearest even.  NaN -> quiet NaN
 * (sign | 0x7E00 | top payload bits, same as the F16C instruction). */
static inline uint16_t sdpa_float_to_half(float f) {
    uint32_t x = sdpa_f2u(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) {
        if (ax == 0x7F800000u) return (uint16_t)(sign | 0x7C00u);
        return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    }
    if (ax >= 0x477FF000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7C00u);
    if (ax >= 0x38800000u) { /* normal half: |f| >= 2^-14 */
        uint32_t r = ax - 0x38000000u;             /* rebias 127 -> 15 */
        r = r + 0xFFFu + ((r >> 13) & 1u);         /* RNE on 13 dropped bits */
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax < 0x33000000u) /* < 2^-25: rounds to 0 (2^-25 exact tie -> 0) */
        return (uint16_t)sign;
    /* subnormal half: result = round(|f| * 2^24) */
    {
        uint32_t e = ax >> 23;                 /* 102 .. 112 */
        uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e;             /* 14 .. 24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
}

static inline float sdpa_bf16_to_float(uint16_t b) {
    return sdpa_u2f((uint32_t)b << 16);
}

static inline uint16_t sdpa_float_to_bf16(float f) {
    uint32_t x = sdpa_f2u(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)       /* NaN: keep sign, quiet */
        return (uint16_t)((x >> 16) | 0x0040u);
    x = x + 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

#endif /* CSDPA_INTERNAL_H */
