/* The NEON family: arm64 Advanced SIMD (every arm64 CPU). */
#if defined(__aarch64__)
#include "sdpa_internal.h"

#define SDPA_FAMILY_NAME "neon"
#define SDPA_TABLE sdpa_neon_table
#include "isa/vec_neon.h"
#include "tiles/family.h"
#endif
