/* transformer.c — the residual block and its token-mixing variants. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "eva02.h"
#include "kernels.h"
#include "transformer.h"

size_t
block_scratch_size (int T, int L, int D, int H, int M, int n_threads)
{
  size_t attn = (attention_scratch_size (L, D / H) + sizeof (float) - 1) / sizeof (float);

  return (size_t) T *D * 5 + (size_t) T *M + (size_t) n_threads *attn;
}

void
block_scratch_init (struct block_scratch *s, float *mem, int T, int L, int D, int H, int M,
    int n_threads, enum attention_kernel kernel)
{
  s->y = mem;
  s->qkv = s->y + (size_t) T *D;
  s->o = s->qkv + (size_t) T *3 * D;
  s->h = s->o + (size_t) T *D;
  s->attn = s->h + (size_t) T *M;
  s->attn_floats = (attention_scratch_size (L, D / H) + sizeof (float) - 1) / sizeof (float);
  s->n_threads = n_threads;
  s->kernel = kernel;
  s->rope = NULL;
}

const struct mixing mixing_stock = { ATTENTION_STANDARD, TRUE, NULL };
const struct mixing mixing_causal = { ATTENTION_CAUSAL, TRUE, NULL };

/* MaskCLIP: each token keeps its own value. */
static void
copy_values (const struct attention_head *h)
{
  for (int i = 0; i < h->L; i++)
    memcpy (h->out + (size_t) i * h->ld_out, h->v + (size_t) i * h->ld, h->d * sizeof (float));
}

/* One head of one sequence: @h holds its q as A, k as B and v, each mode
 * picks what it attends with. */
static void
mix_head (const struct mixing *mix, struct attention_head *h, enum attention_kernel kernel,
    void *scratch)
{
  const float *q = h->a, *k = h->b;

  switch (mix->kind) {
    case ATTENTION_STANDARD:   /* softmax(Q Kᵀ/√d) V */
      break;
    case ATTENTION_CAUSAL:     /* the text tower's */
      h->causal = TRUE;
      break;
    case ATTENTION_CSA:        /* SCLIP: the two softmaxes summed, rows sum to 2 */
      h->b = q;
      attention_run (kernel, h, scratch);
      h->a = h->b = k;
      h->accumulate = TRUE;
      break;
    case ATTENTION_QQ:         /* ClearCLIP */
      h->b = q;
      break;
    case ATTENTION_KK_BIASED:  /* NACLIP: the bias added after the 1/√d scaling */
      h->a = k;
      h->bias = mix->score_bias;
      break;
    case ATTENTION_VALUE:      /* MaskCLIP */
      copy_values (h);
      return;
  }
  attention_run (kernel, h, scratch);
}

/* Every (sequence, head) pair is one task on one thread: the heads are too
 * small to split further. */
static void
mix_tokens (const struct clip_tower *tw, const struct mixing *mix, int B, int L,
    struct block_scratch *s)
{
  int D = tw->width, H = tw->heads, d = D / H;
  float scale = 1.0f / sqrtf ((float) d);

#pragma omp parallel for schedule(dynamic) num_threads(s->n_threads)
  for (int task = 0; task < B * H; task++) {
    int b = task / H, hd = task % H;
    const float *base = s->qkv + (size_t) b * L * 3 * D + (size_t) hd * d;
    struct attention_head h = {
      .a = base,.b = base + D,.v = base + 2 * D,.ld = 3 * D,
      .out = s->o + (size_t) b * L * D + (size_t) hd * d,.ld_out = D,
      .L = L,.d = d,.scale = scale,
    };

    mix_head (mix, &h, s->kernel, s->attn + (size_t) omp_get_thread_num () * s->attn_floats);
  }
}

void
transformer_block (const struct clip_block *blk, const struct clip_tower *tw, float eps,
    const struct mixing *mix, float *x, int B, int L, struct block_scratch *s)
{
  int T = B * L, D = tw->width, M = tw->mlp;

  /* attention input: y = ln_1(x) */
  layer_norm (x, D, blk->ln1_w, blk->ln1_b, eps, s->y, D, T, D);
  /* q | k | v = y · [Wq; Wk; Wv]ᵀ + b, one GEMM (MaskCLIP's last block reads v alone) */
  packed_linear_run (blk->qkv, s->y, D, s->qkv, 3 * D, T, FALSE);
  if (s->rope && mix->kind != ATTENTION_VALUE)
    rope_rotate (s->rope, s->qkv, B, L, D, tw->heads, s->n_threads);
  /* per-head token mixing */
  mix_tokens (tw, mix, B, L, s);
  if (blk->inner_ln_w)
    layer_norm (s->o, D, blk->inner_ln_w, blk->inner_ln_b, eps, s->o, D, T, D);
  /* x = out_proj(o) alone (ClearCLIP, NACLIP), or x += out_proj(o) */
  packed_linear_run (blk->out, s->o, D, x, D, T, mix->residual_and_mlp);
  if (!mix->residual_and_mlp)
    return;
  layer_norm (x, D, blk->ln2_w, blk->ln2_b, eps, s->y, D, T, D);
  if (tw->swiglu) {
    /* x += w3(ffn_ln(silu(w1 y) · w2 y)), every matrix dense for the GEMMs */
    float *gate = s->h + (size_t) T * M;

    packed_linear_run (blk->fc1, s->y, D, s->h, M, T, FALSE);
    packed_linear_run (blk->gate, s->y, D, gate, M, T, FALSE);
    swiglu (s->h, gate, T, M);
    layer_norm (s->h, M, blk->ffn_ln_w, blk->ffn_ln_b, eps, s->h, M, T, M);
    packed_linear_run (blk->fc2, s->h, M, x, D, T, TRUE);
    return;
  }
  /* x += c_proj(act(c_fc(ln_2(x)))), the activation fused into c_fc */
  packed_linear_run (blk->fc1, s->y, D, s->h, M, T, FALSE);
  packed_linear_run (blk->fc2, s->h, M, x, D, T, TRUE);
}
