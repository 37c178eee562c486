/* transformer.c — the residual block and its token-mixing variants. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "kernels.h"
#include "transformer.h"

size_t
block_scratch_size (int T, int L, int D, int M, int n_threads)
{
  return (size_t) T * D * 5 + (size_t) T * M + (size_t) n_threads * 2 * L * L;
}

void
block_scratch_init (struct block_scratch *s, float *mem, int T, int L, int D, int M, int n_threads)
{
  s->y = mem;
  s->qkv = s->y + (size_t) T * D;
  s->o = s->qkv + (size_t) T * 3 * D;
  s->h = s->o + (size_t) T * D;
  s->attn = s->h + (size_t) T * M;
  s->n_threads = n_threads;
}

const struct mixing mixing_stock = {ATTENTION_STANDARD, TRUE, NULL};
const struct mixing mixing_causal = {ATTENTION_CAUSAL, TRUE, NULL};

/* One head of one sequence: q, k, v are [L, d] views with row stride ld. */
struct head {
  const float *q, *k, *v;
  float *out;                  /* [L, d] view into o, row stride ld_out */
  int ld, ld_out, L, d;
  float scale;                 /* 1/√d */
  const float *bias;           /* [L, L] score bias or NULL */
  float *s1, *s2;              /* [L, L] scratch each */
};

typedef void (*head_fn) (const struct head *h);

static void
head_attention (const struct head *h, gboolean causal)
{
  matmul_nt (h->q, h->ld, h->k, h->ld, h->s1, h->L, h->L, h->L, h->d, 1.0f);
  softmax_rows (h->s1, h->L, h->L, h->L, h->scale, causal);
  matmul_nn (h->s1, h->L, h->v, h->ld, h->out, h->ld_out, h->L, h->d, h->L, 0.0f);
}

/* stock CLIP */
static void
head_standard (const struct head *h)
{
  head_attention (h, FALSE);
}

/* text tower */
static void
head_causal (const struct head *h)
{
  head_attention (h, TRUE);
}

/* SCLIP: the two softmaxes are summed, not averaged, so rows sum to 2. */
static void
head_csa (const struct head *h)
{
  size_t n = (size_t) h->L * h->L;

  matmul_nt (h->q, h->ld, h->q, h->ld, h->s1, h->L, h->L, h->L, h->d, 1.0f);
  softmax_rows (h->s1, h->L, h->L, h->L, h->scale, FALSE);
  matmul_nt (h->k, h->ld, h->k, h->ld, h->s2, h->L, h->L, h->L, h->d, 1.0f);
  softmax_rows (h->s2, h->L, h->L, h->L, h->scale, FALSE);
  for (size_t i = 0; i < n; i++)
    h->s1[i] += h->s2[i];
  matmul_nn (h->s1, h->L, h->v, h->ld, h->out, h->ld_out, h->L, h->d, h->L, 0.0f);
}

/* ClearCLIP: query-query attention */
static void
head_qq (const struct head *h)
{
  matmul_nt (h->q, h->ld, h->q, h->ld, h->s1, h->L, h->L, h->L, h->d, 1.0f);
  softmax_rows (h->s1, h->L, h->L, h->L, h->scale, FALSE);
  matmul_nn (h->s1, h->L, h->v, h->ld, h->out, h->ld_out, h->L, h->d, h->L, 0.0f);
}

/* NACLIP: key-key attention plus a spatial bias added after the 1/√d scaling */
static void
head_kk_biased (const struct head *h)
{
  size_t n = (size_t) h->L * h->L;

  matmul_nt (h->k, h->ld, h->k, h->ld, h->s1, h->L, h->L, h->L, h->d, h->scale);
  for (size_t i = 0; i < n; i++)
    h->s1[i] += h->bias[i];
  softmax_rows (h->s1, h->L, h->L, h->L, 1.0f, FALSE);
  matmul_nn (h->s1, h->L, h->v, h->ld, h->out, h->ld_out, h->L, h->d, h->L, 0.0f);
}

/* MaskCLIP: each token keeps its own value. */
static void
head_value (const struct head *h)
{
  for (int i = 0; i < h->L; i++)
    memcpy (h->out + (size_t) i * h->ld_out, h->v + (size_t) i * h->ld, h->d * sizeof (float));
}

static const head_fn head_fns[] = {
  [ATTENTION_STANDARD] = head_standard,
  [ATTENTION_CAUSAL] = head_causal,
  [ATTENTION_CSA] = head_csa,
  [ATTENTION_VALUE] = head_value,
  [ATTENTION_QQ] = head_qq,
  [ATTENTION_KK_BIASED] = head_kk_biased,
};

/* Every (sequence, head) pair is one task on one thread, each with its own
 * single-threaded GEMMs: the products are too small to split further. */
static void
mix_tokens (const struct clip_tower *tw, const struct mixing *mix, int B, int L,
    struct block_scratch *s)
{
  int D = tw->width, H = tw->heads, d = D / H;
  float scale = 1.0f / sqrtf ((float) d);

#pragma omp parallel for schedule(dynamic) num_threads(s->n_threads)
  for (int task = 0; task < B * H; task++) {
    int b = task / H, hd = task % H;
    float *scratch = s->attn + (size_t) omp_get_thread_num () * 2 * L * L;
    const float *base = s->qkv + (size_t) b * L * 3 * D + (size_t) hd * d;
    struct head h = {
      .q = base, .k = base + D, .v = base + 2 * D,
      .out = s->o + (size_t) b * L * D + (size_t) hd * d,
      .ld = 3 * D, .ld_out = D, .L = L, .d = d, .scale = scale, .bias = mix->score_bias,
      .s1 = scratch, .s2 = scratch + (size_t) L * L,
    };

    head_fns[mix->kind] (&h);
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
  /* per-head token mixing */
  mix_tokens (tw, mix, B, L, s);
  /* x = out_proj(o) alone (ClearCLIP, NACLIP), or x += out_proj(o) */
  packed_linear_run (blk->out, s->o, D, x, D, T, mix->residual_and_mlp);
  if (!mix->residual_and_mlp)
    return;
  /* x += c_proj(act(c_fc(ln_2(x)))), the activation fused into c_fc */
  layer_norm (x, D, blk->ln2_w, blk->ln2_b, eps, s->y, D, T, D);
  packed_linear_run (blk->fc1, s->y, D, s->h, M, T, FALSE);
  packed_linear_run (blk->fc2, s->h, M, x, D, T, TRUE);
}
