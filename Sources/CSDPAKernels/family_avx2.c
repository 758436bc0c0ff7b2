/* The AVX2 family: x86-64 with AVX2, FMA and F16C (Haswell, Zen 1 on). */
#if defined(__x86_64__) || defined(_M_X64)
#include "sdpa_internal.h"

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define SDPA_FAMILY_NAME "avx2"
#define SDPA_TABLE sdpa_avx2_table
#include "isa/vec_avx2.h"
#include "tiles/family.h"
#pragma clang attribute pop
#endif
