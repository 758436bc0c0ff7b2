/* The AMX family (AMX-TILE + AMX-BF16 with AVX512-BF16: Sapphire Rapids on):
 * the bfloat16 tile products (Q.K^T and P.V on bfloat16 pairs) run on the
 * tile unit, float32 accumulation; everything else as in avx512bf16. */
#if defined(__x86_64__) || defined(_M_X64)
#include "sdpa_internal.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,amx-tile,amx-bf16"))), apply_to = function)
#define SDPA_FAMILY_NAME "amx"
#define SDPA_TABLE sdpa_amx_table
#define SDPA_BF16_DOT 1
#include "isa/vec_avx512.h"
#include "isa/amx_bf16.h"
#include "tiles/family.h"
#pragma clang attribute pop
#endif
