/* gemm-backend.h — internal to gemm*.c: what each GEMM library provides. */
#ifndef GEMM_BACKEND_H
#define GEMM_BACKEND_H

#include "gemm.h"

struct packed_linear {
  void (*run) (const struct packed_linear *pl, const float *x, int ldx, float *y, int ldy,
      int M, gboolean accumulate);
  void (*free) (struct packed_linear *pl);
  int N, K;
  enum gemm_epilogue epilogue;
};

struct packed_linear *gemm_openblas_pack (const struct linear_rows *parts, int n_parts, int N,
    int K, enum gemm_epilogue epilogue);
/* "OpenBLAS 0.3.21" and its kernel family ("cooperlake"), static strings. */
void gemm_openblas_describe (const char **library, const char **isa);

#ifdef HAVE_DNNL
/* @w: [N, K], contiguous; @b: [N] or NULL. Copies both. */
struct packed_linear *gemm_dnnl_pack (const float *w, const float *b, int N, int K,
    enum gemm_epilogue epilogue, gboolean bf16, GError **error);
/* "oneDNN 2.6.3" and its ISA ("avx512_core_bf16"), static strings; whether
 * that ISA has native bf16 dot products. */
gboolean gemm_dnnl_describe (const char **library, const char **isa);
#endif

#endif
