/* transformer.h — internal: one pre-LN residual block, shared by both towers.
 *
 * x holds B sequences of L tokens each, stacked as [B·L, D]. Only the token
 * mixing differs between the variants: the stock attention, its causal form
 * for text, SCLIP's correlative self-attention and MaskCLIP's value path.
 * Residual connections and the MLP are kept in every variant, as SCLIP and
 * MaskCLIP keep them.
 */
#ifndef TRANSFORMER_H
#define TRANSFORMER_H

#include "checkpoint.h"

enum attention_kind {
  ATTENTION_STANDARD,  /* softmax(Q Kᵀ/√d) V */
  ATTENTION_CAUSAL,    /* the same, token i attending to tokens 0..i */
  ATTENTION_CSA,       /* (softmax(Q Qᵀ/√d) + softmax(K Kᵀ/√d)) V */
  ATTENTION_VALUE,     /* V: no mixing between tokens */
};

/* Activations of one block; sized by block_scratch_size(), owned by the caller. */
struct block_scratch {
  float *y;        /* [T, D]   layer-norm output */
  float *qkv;      /* [T, 3D]  q | k | v */
  float *o;        /* [T, D]   attention output, heads concatenated */
  float *h;        /* [T, M]   MLP hidden layer */
  float *attn;     /* [n_threads, 2, L, L] per-thread score matrices */
  int n_threads;
};

/* Floats needed for T = B·L tokens of width D, MLP width M and n_threads. */
size_t block_scratch_size (int T, int L, int D, int M, int n_threads);
/* Carves @mem (block_scratch_size floats) into the fields of @s. */
void block_scratch_init (struct block_scratch *s, float *mem, int T, int L, int D, int M,
    int n_threads);

void transformer_block (const struct clip_block *blk, const struct clip_tower *tw, float eps,
    enum clipseg_activation act, enum attention_kind kind, float *x, int B, int L,
    struct block_scratch *s);

#endif
