/* Every entry point of a kernel family, once: X(return type, name, (params),
 * (args)).  The table type (sdpa_internal.h), the resolver stubs and public
 * forwarders (dispatch.c) and each family's table (tiles/family.h) are
 * generated from this list; each public function `sdpa_<name>` is declared,
 * with its contract, in include/CSDPAKernels.h, and the forwarder's
 * definition checks that declaration against this list. */
#ifndef SDPA_KERNEL_LIST_H
#define SDPA_KERNEL_LIST_H

#define SDPA_KERNEL_LIST(X)                                                                        \
    X(void, kernels_info, (sdpa_kernel_info *info), (info))                                        \
    X(double, fma_flops, (long iterations), (iterations))                                              \
    X(double, read_sum, (const void *p, size_t bytes), (p, bytes))                                     \
    X(void, qk_tile,                                                                               \
      (int rows, int cols, int depth, const float *q, ptrdiff_t ldq, const float *kt,              \
       ptrdiff_t ldkt, float scale, float *s, ptrdiff_t lds, float *tileMax),                      \
      (rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, tileMax))                               \
    X(void, qk_tile_masked,                                                                        \
      (int rows, int cols, int depth, const float *q, ptrdiff_t ldq, const float *kt,              \
       ptrdiff_t ldkt, float scale, float *s, ptrdiff_t lds, sdpa_mask_kind kind,                  \
       const void *mask, ptrdiff_t ldm, float *tileMax),                                           \
      (rows, cols, depth, q, ldq, kt, ldkt, scale, s, lds, kind, mask, ldm, tileMax))              \
    X(void, qk_tile_direct,                                                                        \
      (int rows, int cols, int depth, const float *q, ptrdiff_t ldq, sdpa_element_kind kind,       \
       const void *k, ptrdiff_t ldk, float scale, float *s, ptrdiff_t lds, float *tileMax),        \
      (rows, cols, depth, q, ldq, kind, k, ldk, scale, s, lds, tileMax))                           \
    X(void, pv_tile,                                                                               \
      (int rows, int cols, int dv, const float *p, ptrdiff_t ldp, const float *v, ptrdiff_t ldv,    \
       float *o, ptrdiff_t ldo),                                                                   \
      (rows, cols, dv, p, ldp, v, ldv, o, ldo))                                                    \
    X(void, pack_kt_f32,                                                                           \
      (int cols, int depth, const float *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt),             \
      (cols, depth, k, ldk, kt, ldkt))                                                             \
    X(void, pack_kt_f16,                                                                           \
      (int cols, int depth, const uint16_t *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt),          \
      (cols, depth, k, ldk, kt, ldkt))                                                             \
    X(void, pack_kt_bf16,                                                                          \
      (int cols, int depth, const uint16_t *k, ptrdiff_t ldk, float *kt, ptrdiff_t ldkt),          \
      (cols, depth, k, ldk, kt, ldkt))                                                             \
    X(void, convert_f16_to_f32, (size_t n, const uint16_t *src, float *dst), (n, src, dst))                \
    X(void, convert_f32_to_f16, (size_t n, const float *src, uint16_t *dst), (n, src, dst))                \
    X(void, convert_bf16_to_f32, (size_t n, const uint16_t *src, float *dst), (n, src, dst))               \
    X(void, convert_f32_to_bf16, (size_t n, const float *src, uint16_t *dst), (n, src, dst))               \
    X(void, softmax_tile,                                                                          \
      (int rows, int cols, float *s, ptrdiff_t lds, const float *tileMax, float *rowMax,           \
       float *rowSum, float *o, ptrdiff_t ldo, int dv),                                            \
      (rows, cols, s, lds, tileMax, rowMax, rowSum, o, ldo, dv))                                   \
    X(void, normalize_tile,                                                                        \
      (int rows, int dv, const float *o, ptrdiff_t ldo, const float *rowSum,                       \
       sdpa_element_kind kind, void *dst, ptrdiff_t ldd),                                          \
      (rows, dv, o, ldo, rowSum, kind, dst, ldd))                                                  \
    X(void, row_logsumexp, (int rows, const float *rowMax, const float *rowSum, float *lse),       \
      (rows, rowMax, rowSum, lse))                                                                 \
    X(void, merge_rows,                                                                            \
      (int rows, int dv, float *o, ptrdiff_t ldo, float *rowMax, float *rowSum, const float *o2,   \
       ptrdiff_t ldo2, const float *rowMax2, const float *rowSum2),                                \
      (rows, dv, o, ldo, rowMax, rowSum, o2, ldo2, rowMax2, rowSum2))                              \
    X(void, exp_f32, (size_t n, const float *x, float *y), (n, x, y))                              \
    X(void, gelu_f32, (size_t n, const float *x, float *y), (n, x, y))                             \
    X(void, mask_tile_bool,                                                                        \
      (int rows, int cols, float *s, ptrdiff_t lds, const uint8_t *mask, ptrdiff_t ldm),           \
      (rows, cols, s, lds, mask, ldm))                                                             \
    X(void, add_mask_tile_f32,                                                                     \
      (int rows, int cols, float *s, ptrdiff_t lds, const float *mask, ptrdiff_t ldm),             \
      (rows, cols, s, lds, mask, ldm))                                                             \
    X(void, softcap_tile, (int rows, int cols, float *s, ptrdiff_t lds, float cap),                \
      (rows, cols, s, lds, cap))                                                                   \
    X(void, alibi_tile,                                                                            \
      (int rows, int cols, float *s, ptrdiff_t lds, float slope, ptrdiff_t first, int causal),     \
      (rows, cols, s, lds, slope, first, causal))                                                  \
    X(sdpa_operand_layout, layout_for, (sdpa_element_kind kind), (kind))                           \
    X(size_t, operand_bytes,                                                                       \
      (sdpa_operand_layout layout, sdpa_operand_role role, int count, int width),                  \
      (layout, role, count, width))                                                                \
    X(sdpa_const_ptr, prepare_query,                                                               \
      (sdpa_operand_layout layout, sdpa_element_kind kind, int rows, int depth, const void *q,     \
       ptrdiff_t ldq, float scale, void *dst, ptrdiff_t *ld),                                      \
      (layout, kind, rows, depth, q, ldq, scale, dst, ld))                                         \
    X(void, pack_keys,                                                                             \
      (sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int depth, sdpa_rows k,       \
       void *dst),                                                                                 \
      (layout, kind, cols, depth, k, dst))                                                         \
    X(sdpa_const_ptr, pack_values,                                                                 \
      (sdpa_operand_layout layout, sdpa_element_kind kind, int cols, int dv, sdpa_rows v,          \
       void *dst, ptrdiff_t *ld),                                                                  \
      (layout, kind, cols, dv, v, dst, ld))                                                        \
    X(void, scores_direct,                                                                         \
      (sdpa_operand_layout layout, int rows, int cols, int depth, const void *q, ptrdiff_t ldq,    \
       sdpa_element_kind kind, sdpa_rows k, float scale, float *s, ptrdiff_t lds, float *tileMax,  \
       sdpa_rows v, int dv),                                                                       \
      (layout, rows, cols, depth, q, ldq, kind, k, scale, s, lds, tileMax, v, dv))                 \
    X(void, accumulate_direct,                                                                     \
      (int rows, int cols, int dv, const float *p, ptrdiff_t ldp, sdpa_element_kind kind,          \
       sdpa_rows v, float *o, ptrdiff_t ldo, const sdpa_next_tile *next),                          \
      (rows, cols, dv, p, ldp, kind, v, o, ldo, next))                                             \
    X(void, scores,                                                                                \
      (sdpa_operand_layout layout, int rows, int cols, int depth, const void *query, ptrdiff_t ldq, \
       const void *keys, float scale, float *s, ptrdiff_t lds, sdpa_mask_kind maskKind,            \
       const void *mask, ptrdiff_t ldm, float *tileMax),                                           \
      (layout, rows, cols, depth, query, ldq, keys, scale, s, lds, maskKind, mask, ldm, tileMax))  \
    X(void, accumulate,                                                                            \
      (sdpa_operand_layout layout, int rows, int cols, int dv, float *p, ptrdiff_t ldp,            \
       const void *values, ptrdiff_t ldv, float *o, ptrdiff_t ldo),                                \
      (layout, rows, cols, dv, p, ldp, values, ldv, o, ldo))                                       \
    X(void, attend,                                                                                \
      (sdpa_operand_layout layout, int rows, int cols, int depth, int dv, const void *query,       \
       ptrdiff_t ldq, const void *keys, float scale, sdpa_mask_kind maskKind, const void *mask,    \
       ptrdiff_t ldm, const void *values, ptrdiff_t ldv, float *s, ptrdiff_t lds, float *tileMax,  \
       float *rowMax, float *rowSum, float *o, ptrdiff_t ldo),                                     \
      (layout, rows, cols, depth, dv, query, ldq, keys, scale, maskKind, mask, ldm, values, ldv,   \
       s, lds, tileMax, rowMax, rowSum, o, ldo))                                                   \
    X(int, mask_tile_visibility,                                                                   \
      (sdpa_mask_kind kind, int rows, int cols, const void *mask, ptrdiff_t ldm, int enough),      \
      (kind, rows, cols, mask, ldm, enough))                                                       \
    X(void, gemm_tile,                                                                             \
      (sdpa_operand_layout layout, int transposeA, int accumulate, int m, int n, int k,            \
       float alpha, const void *a, ptrdiff_t lda, const void *b, ptrdiff_t ldb, float *c,          \
       ptrdiff_t ldc),                                                                             \
      (layout, transposeA, accumulate, m, n, k, alpha, a, lda, b, ldb, c, ldc))                    \
    X(void, probabilities_tile, (int rows, int cols, float *s, ptrdiff_t lds, const float *lse),   \
      (rows, cols, s, lds, lse))                                                                   \
    X(void, row_dot,                                                                               \
      (int rows, int cols, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *d), \
      (rows, cols, a, lda, b, ldb, d))                                                             \
    X(void, score_gradient_tile,                                                                   \
      (int rows, int cols, const float *p, ptrdiff_t ldp, float *dp, ptrdiff_t lddp,               \
       const float *d),                                                                            \
      (rows, cols, p, ldp, dp, lddp, d))                                                           \
    X(double, distance_weighted_sum,                                                               \
      (int rows, int cols, const float *g, ptrdiff_t ldg, ptrdiff_t first),                       \
      (rows, cols, g, ldg, first))                                                                 \
    X(void, softcap_gradient_tile,                                                                 \
      (int rows, int cols, float *g, ptrdiff_t ldg, const float *y, ptrdiff_t ldy, float cap),     \
      (rows, cols, g, ldg, y, ldy, cap))                                                           \
    X(void, dropout_tile,                                                                          \
      (int rows, int cols, float *p, ptrdiff_t ldp, float dropoutP, uint64_t seed,                 \
       uint64_t counter, uint64_t counterRowStride),                                               \
      (rows, cols, p, ldp, dropoutP, seed, counter, counterRowStride))

/* `return` before a forwarded call, except for a void one. */
#define SDPA_RETURN_void
#define SDPA_RETURN_int return
#define SDPA_RETURN_size_t return
#define SDPA_RETURN_double return
#define SDPA_RETURN_sdpa_const_ptr return
#define SDPA_RETURN_sdpa_operand_layout return

#endif
