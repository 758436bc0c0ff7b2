/* The AVX-512 family: x86-64 with AVX-512 F, BW, VL and DQ (Skylake-SP,
 * Ice Lake, Sapphire Rapids, Zen 4 on). */
#if defined(__x86_64__) || defined(_M_X64)
#include "sdpa_internal.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#define SDPA_FAMILY_NAME "avx512"
#define SDPA_TABLE sdpa_avx512_table
#include "isa/vec_avx512.h"
#include "tiles/family.h"
#pragma clang attribute pop
#endif
