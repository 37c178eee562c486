/* transformer.h — internal: one pre-LN residual block, shared by both towers.
 *
 * x holds B sequences of L tokens each, stacked as [B·L, D]. Only the token
 * mixing differs between the variants (enum attention_kind): the stock
 * attention, its causal form for text, and the dense modes' last blocks
 * (SCLIP's correlative self-attention, MaskCLIP's value path, ClearCLIP's
 * query-query and NACLIP's biased key-key attention; SC-CLIP's key-key half,
 * scclip.c). Whether a block keeps the residual connection and the MLP is
 * struct mixing's residual_and_mlp (vision.c says which modes drop them).
 * EVA02's block (eva02.h) is the same with a layer norm after the heads,
 * RoPE on q and k before the mixing (MaskCLIP's value path skips it: q and k
 * go unused) and a SwiGLU MLP.
 */
#ifndef TRANSFORMER_H
#define TRANSFORMER_H

#include "attention.h"
#include "checkpoint.h"

enum attention_kind {
  ATTENTION_STANDARD,  /* softmax(Q Kᵀ/√d) V */
  ATTENTION_CAUSAL,    /* the same, token i attending to tokens 0..i */
  ATTENTION_CSA,       /* (softmax(Q Qᵀ/√d) + softmax(K Kᵀ/√d)) V */
  ATTENTION_VALUE,     /* V: no mixing between tokens */
  ATTENTION_QQ,        /* softmax(Q Qᵀ/√d) V */
  ATTENTION_KK_BIASED, /* softmax(K Kᵀ/√d + bias) V */
};

/* What one block does with its tokens. */
struct mixing {
  enum attention_kind kind;
  gboolean residual_and_mlp;   /* FALSE: the block's output is out_proj(mixing) alone */
  const struct attention_grid_bias *score_bias;  /* for ATTENTION_KK_BIASED, else NULL */
};

struct rope_grid;

extern const struct mixing mixing_stock;   /* CLIP's own block */
extern const struct mixing mixing_causal;  /* the text tower's */

/* Activations of one block; sized by block_scratch_size(), owned by the caller. */
struct block_scratch {
  float *y;        /* [T, D]   layer-norm output */
  float *qkv;      /* [T, 3D]  q | k | v */
  float *o;        /* [T, D]   attention output, heads concatenated */
  float *h;        /* [T, M]   MLP hidden layer (SwiGLU: then its gate, [T, M]) */
  float *attn;     /* [n_threads] attention scratch, attn_floats each */
  size_t attn_floats;
  int n_threads;
  enum attention_kernel kernel;  /* what runs the attention */
  const struct rope_grid *rope;  /* EVA02's rotary embedding, else NULL */
};

/* Floats per token of @tw's MLP hidden layer: M, or 2M for SwiGLU's two inputs. */
static inline int
tower_hidden_width (const struct clip_tower *tw)
{
  return tw->swiglu ? 2 * tw->mlp : tw->mlp;
}

/* Floats needed for T = B·L tokens of width D in H heads, MLP hidden width M
 * (tower_hidden_width) and
 * n_threads: linear in L (attention keeps no score matrix). */
size_t block_scratch_size (int T, int L, int D, int H, int M, int n_threads);
/* Carves @mem (block_scratch_size floats) into the fields of @s; no RoPE. */
void block_scratch_init (struct block_scratch *s, float *mem, int T, int L, int D, int H, int M,
    int n_threads, enum attention_kernel kernel);

/* The activation is the one fused into blk->fc1 when it was packed. */
void transformer_block (const struct clip_block *blk, const struct clip_tower *tw, float eps,
    const struct mixing *mix, float *x, int B, int L, struct block_scratch *s);

#endif
