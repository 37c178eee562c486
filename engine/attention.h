/* attention.h — internal: fused, tiled attention of one head.
 *
 * out = softmax(scale · A Bᵀ + bias) V, row by row, without any [L, L] matrix
 * (scores or bias): queries go in tiles of ATTENTION_TILE_Q rows and keys in tiles of
 * ATTENTION_TILE_K; each query row keeps the running max and sum of its
 * exponentials (online softmax) and rescales its fp32 accumulator when the max
 * grows. A is the query side and B the key side: q and k for CLIP's own
 * attention, q and q (ClearCLIP, SCLIP's first softmax) or k and k (SCLIP's
 * second, NACLIP). A head's A, B and V are first copied into the kernel's
 * layout (zero-padded to whole tiles and to a width of ATTENTION_PAD), which
 * costs O(L·d) against the O(L²·d) of the products.
 *
 * Kernels: portable C in fp32 (any CPU), AVX-512F in fp32 and AVX512-BF16 with
 * A, B, V and the probabilities rounded to bfloat16 for the products, fp32
 * accumulation, max, exponentials and sums. Chosen at run time.
 */
#ifndef ATTENTION_H
#define ATTENTION_H

#include "clipseg-engine.h"

#define ATTENTION_TILE_Q 48    /* query rows per tile: 8 register blocks of 6 */
#define ATTENTION_TILE_K 64    /* keys per tile: 4 AVX-512 vectors */
#define ATTENTION_PAD 32       /* head widths are padded to this: bf16 pairs of 16 lanes */

enum attention_kernel {
  ATTENTION_KERNEL_PORTABLE,   /* plain C, fp32 */
  ATTENTION_KERNEL_AVX512,     /* AVX-512F, fp32 */
  ATTENTION_KERNEL_AVX512_BF16,  /* AVX512-BF16 vdpbf16ps, bf16 products */
};

/* A score bias that depends on where two tokens sit on a patch grid (NACLIP's
 * Gaussian neighbourhood), never stored token by token: token 0 is the class
 * token (no bias), token 1 + y·gw + x the patch at row y, column x, and
 * patches (y, x) and (y', x') get gy[|y - y'|] · gx[|x - x'|]. */
struct attention_grid_bias {
  int gw;                      /* grid columns */
  const float *gy, *gx;        /* [grid rows], [gw] */
};

/* One head. */
struct attention_head {
  const float *a, *b, *v;      /* [L, d] each, row stride ld */
  int ld;
  float *out;                  /* [L, d], row stride ld_out */
  int ld_out;
  int L, d;
  float scale;                 /* on A Bᵀ, before the bias */
  const struct attention_grid_bias *bias;  /* added to the scaled scores, or NULL */
  gboolean causal;             /* row i attends to keys 0..i only */
  gboolean accumulate;         /* out += the result, else out = the result */
};

/* The fastest kernel this CPU runs for linears in @precision (FP32 or BF16).
 * CLIPSEG_DISABLE_AVX512=1 in the environment selects the portable one. */
enum attention_kernel attention_kernel_for (enum clipseg_precision precision);
/* "portable", "avx512", "avx512-bf16" */
const char *attention_kernel_name (enum attention_kernel kernel);
/* Whether this build and CPU can run @kernel. */
gboolean attention_kernel_runs (enum attention_kernel kernel);

/* Bytes of scratch one head of @L tokens and width @d needs, any kernel. */
size_t attention_scratch_size (int L, int d);

/* Computes @h with @kernel (one that runs) in @scratch
 * (attention_scratch_size bytes, any alignment), on the calling thread. */
void attention_run (enum attention_kernel kernel, const struct attention_head *h, void *scratch);

#endif
