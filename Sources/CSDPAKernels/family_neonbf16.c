/* The NEON family with bfloat16 dot products (FEAT_BF16: Apple M2 on,
 * Graviton 3 on, Neoverse V1/N2 on): bfloat16 inputs multiply as bfloat16
 * pairs (BFDOT), accumulating in float32; everything else as in neon. */
#if defined(__aarch64__)
#include "sdpa_internal.h"

#pragma clang attribute push(__attribute__((target("bf16"))), apply_to = function)
#define SDPA_FAMILY_NAME "neonbf16"
#define SDPA_TABLE sdpa_neonbf16_table
#define SDPA_BF16_DOT 1
#include "isa/vec_neon.h"
#include "tiles/family.h"
#pragma clang attribute pop
#endif
