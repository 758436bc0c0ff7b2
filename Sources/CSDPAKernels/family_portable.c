/* The portable family: plain C over 4-lane vectors, for any CPU. */
#include "sdpa_internal.h"

#define SDPA_FAMILY_NAME "portable"
#define SDPA_TABLE sdpa_portable_table
#include "isa/vec_portable.h"
#include "tiles/family.h"
