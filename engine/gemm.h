/* gemm.h — internal: the linear layers, packed once per model for the GEMM
 * library that runs them.
 *
 * A packed linear computes y[M,N] = epilogue(x[M,K] · W[N,K]ᵀ + b[N]), plus y
 * when asked to accumulate (a residual). Two backends:
 *   oneDNN   (HAVE_DNNL) W reordered once into the matmul primitive's own
 *            layout, in fp32 or bf16; bias, activation and the residual sum
 *            fused into the primitive; primitives cached per (M, accumulate,
 *            thread count); the caller's weight buffers are not referenced
 *            after packing.
 *   OpenBLAS W used in place in PyTorch layout through cblas_sgemm, fp32
 *            only; the caller's weight buffers must outlive the packed linear.
 * A packed linear is immutable once made apart from its internal primitive
 * cache, which is locked: runs may come from any number of threads at once,
 * including from inside OpenMP parallel regions, where oneDNN runs on the
 * calling thread alone.
 */
#ifndef GEMM_H
#define GEMM_H

#include "clipseg-engine.h"

/* What the linear applies to its output before the optional residual sum. */
enum gemm_epilogue {
  GEMM_EPILOGUE_NONE,
  GEMM_EPILOGUE_QUICK_GELU,    /* x·σ(1.702x) */
  GEMM_EPILOGUE_GELU,          /* exact erf GELU */
};

/* What runs the linears of one model, resolved once at load. */
struct gemm_config {
  enum clipseg_precision precision;  /* FP32 or BF16, never AUTO */
  gboolean dnnl;               /* oneDNN, else OpenBLAS */
  const char *library;         /* "oneDNN 2.6.3", "OpenBLAS 0.3.21" (static strings) */
  const char *isa;             /* what the library dispatches to */
};

/* Resolves @asked against the build, the CPU and the environment
 * (CLIPSEG_DISABLE_BF16, CLIPSEG_DISABLE_DNNL; see clipseg_model_params).
 * A BF16 request that cannot run becomes FP32 with a logged warning naming
 * the reason. */
void gemm_resolve (enum clipseg_precision asked, struct gemm_config *config);

/* @n rows of a weight [n, K] and their bias [n] (NULL: none). Several parts
 * stack into one linear of N = Σn outputs, e.g. q, k and v. */
struct linear_rows {
  const float *w;
  const float *b;
  int n;
};

struct packed_linear;

/* Packs the @n_parts parts of one linear with K inputs. NULL with @error set
 * when the library refuses the shape or memory runs out. */
struct packed_linear *packed_linear_new (const struct gemm_config *config,
    const struct linear_rows *parts, int n_parts, int K, enum gemm_epilogue epilogue,
    GError **error);
void packed_linear_free (struct packed_linear *pl);

/* y[M,N] (row stride ldy) = epilogue(x[M,K] (row stride ldx) · Wᵀ + b),
 * or y + that when @accumulate. */
void packed_linear_run (const struct packed_linear *pl, const float *x, int ldx, float *y,
    int ldy, int M, gboolean accumulate);

/* Whether the packed linears keep references to the weights they were made
 * from (OpenBLAS) or own copies (oneDNN), after which those may be freed. */
gboolean gemm_borrows_weights (const struct gemm_config *config);

#endif
