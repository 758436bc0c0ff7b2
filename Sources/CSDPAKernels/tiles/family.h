/* A kernel family: every kernel body compiled over the vector layer the
 * including family file chose, and the table of its entry points.  The
 * family file defines SDPA_FAMILY_NAME and SDPA_TABLE, includes its vector
 * layer (and a tile layer, if any), then this. */
#include <math.h>

#ifndef SDPA_AMX_BF16
#define SDPA_AMX_BF16 0 /* isa/amx_bf16.h sets it: the bfloat16 tile products on AMX */
#define SDPA_TILE_PASS_ROWS 0 /* no tile layer: a product takes all its rows at once */
#endif

#include "vector_contract.h"
#include "convert.h"
#include "gemm.h"
#include "decode.h"
#include "pack.h"
#include "softmax.h"
#include "activation.h"
#include "masks.h"
#include "operands.h"
#include "attend.h"
#include "peak.h"
#include "backward.h"
#include "dropout.h"

static void k_kernels_info(sdpa_kernel_info *info) {
    info->vector_floats = SDPA_VL;
    info->tile_rows = SDPA_MR;
    info->tile_columns = SDPA_VL * SDPA_NV;
    info->softmax_exact_from = SDPA_SOFTMAX_FAST_BELOW;
}

#define SDPA_TABLE_ENTRY(ret, name, params, args) .name = k_##name,
const sdpa_kernel_table SDPA_TABLE = {
    .family = SDPA_FAMILY_NAME,
    SDPA_KERNEL_LIST(SDPA_TABLE_ENTRY)
};
#undef SDPA_TABLE_ENTRY
