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
};

#ifdef HAVE_ATTENTION_AVX512
extern const struct attention_tile_ops attention_avx512_ops;
extern const struct attention_tile_ops attention_avx512_bf16_ops;
#endif

#endif
