/* attention-kernels.h — internal to attention*.c: the products of one tile.
 *
 * Operands are packed by attention.c (element offsets are the same for float
 * and bfloat16 operands, only the element size differs):
 *   A  [rows, dp]                      the tile's query rows
 *   Bt fp32 [dp, TILE_K]; bf16 [dp/2, TILE_K, 2]   one key tile, transposed
 *   V  fp32 [TILE_K, dp]; bf16 [TILE_K/2, dp, 2]   one key tile's values
 *   P  [rows, TILE_K]                  probabilities (float, or bf16 for bf16 kernels)
 * rows is a multiple of 6, dp of ATTENTION_PAD, nk (keys used) of 16.
 */
#ifndef ATTENTION_KERNELS_H
#define ATTENTION_KERNELS_H

#include "attention.h"

struct attention_tile_ops {
  gboolean bf16;               /* operands are bfloat16, else float */
  /* s[rows, TILE_K] = A · Bt over the first nk keys */
  void (*scores) (const void *a, const void *bt, float *s, int rows, int nk, int dp);
  /* o[rows, dp] += P · V over the first nk keys */
  void (*accumulate) (const void *p, const void *v, float *o, int rows, int nk, int dp);
  /* One query row of a tile, 1 <= nv <= TILE_K keys visible: folds
   * t = scale · s[0, nv) (+ bias[0, nv) when not NULL) into the row's running
   * max *m and sum *l, writes exp(t - max) to p[0, TILE_K) (bf16 kernels) or
   * s[0, TILE_K) (zero past nv) and returns exp(old max - new max), the factor
   * the row's accumulators must be scaled by. */
  float (*softmax_row) (float *s, guint16 *p, int nv, float scale, const float *bias, float *m,
      float *l);
};

#ifdef HAVE_ATTENTION_AVX512
extern const struct attention_tile_ops attention_avx512_ops;
extern const struct attention_tile_ops attention_avx512_bf16_ops;
#endif

#endif
