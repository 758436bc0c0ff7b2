/* The AVX-512 family with bfloat16 dot products (AVX512-BF16: Cooper Lake,
 * Sapphire Rapids, Zen 4 on): bfloat16 inputs multiply as bfloat16 pairs
 * (vdpbf16ps), accumulating in float32; everything else as in avx512. */
#if defined(__x86_64__) || defined(_M_X64)
#include "sdpa_internal.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c"))), apply_to = function)
#define SDPA_FAMILY_NAME "avx512bf16"
#define SDPA_TABLE sdpa_avx512bf16_table
#define SDPA_BF16_DOT 1
#include "isa/vec_avx512.h"
#include "tiles/family.h"
#pragma clang attribute pop
#endif
