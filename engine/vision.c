/* vision.c — the vision tower with a dense last block. */
#include <math.h>
#include <string.h>

#include "eva02.h"
#include "kernels.h"
#include "vision.h"

/* PyTorch's cubic convolution kernel (A = -0.75): weights of the taps at
 * floor(src) - 1 .. floor(src) + 2 for fractional offset t. */
static void
cubic_weights (float t, float w[4])
{
  const float A = -0.75f;
  float x;

  x = t + 1.0f;
  w[0] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
  x = t;
  w[1] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
  x = 1.0f - t;
  w[2] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
  x = 2.0f - t;
  w[3] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

/* Source taps along one axis for output index @dst, as F.interpolate(mode=
 * 'bicubic', scale_factor=s, align_corners=False) maps it: the step is 1/s,
 * not in/out, and the tap indices are clamped to the edges. */
static void
cubic_taps (int dst, float inv_scale, int in, int idx[4], float w[4])
{
  float src = ((float) dst + 0.5f) * inv_scale - 0.5f;
  float base = floorf (src);

  cubic_weights (src - base, w);
  for (int k = 0; k < 4; k++)
    idx[k] = CLAMP ((int) base - 1 + k, 0, in - 1);
}

/* The g0 x g0 patch positions resized bicubically to gh x gw; CLS keeps its
 * own. SCLIP's interpolate_pos_encoding (CLIP) passes the scale factor
 * (g + 0.1) / g0 per axis, CLIPSelf's rescale_positional_embedding (EVA02)
 * the size, for a step of g0 / g. */
static void
interpolate_positions (const float *pos, int g0, int gh, int gw, int D, gboolean by_size,
    float *out)
{
  float inv_h = by_size ? (float) g0 / gh : (float) (1.0 / (((double) gh + 0.1) / g0));
  float inv_w = by_size ? (float) g0 / gw : (float) (1.0 / (((double) gw + 0.1) / g0));
  const float *grid = pos + D;

  memcpy (out, pos, D * sizeof (float));
#pragma omp parallel for
  for (int i = 0; i < gh; i++) {
    int iy[4], ix[4];
    float wy[4], wx[4];

    cubic_taps (i, inv_h, g0, iy, wy);
    for (int j = 0; j < gw; j++) {
      float *dst = out + (size_t) (1 + i * gw + j) * D;

      cubic_taps (j, inv_w, g0, ix, wx);
      memset (dst, 0, D * sizeof (float));
      for (int a = 0; a < 4; a++) {
        for (int b = 0; b < 4; b++) {
          const float *src = grid + (size_t) (iy[a] * g0 + ix[b]) * D;
          float wt = wy[a] * wx[b];

          for (int c = 0; c < D; c++)
            dst[c] += wt * src[c];
        }
      }
    }
  }
}

/* The position embedding for a gh x gw grid: the checkpoint's own when the
 * grid matches, else interpolated once and kept until the grid changes. */
static const float *
positions_for (const struct clip_vision *v, struct vision_cache *cache, int gh, int gw)
{
  int D = v->tower.width;
  float *out;

  if (gh == v->grid && gw == v->grid)
    return v->pos_emb;
  if (cache->pos_gh == gh && cache->pos_gw == gw)
    return cache->positions.data;
  out = buffer_reserve (&cache->positions, (size_t) (1 + gh * gw) * D);
  interpolate_positions (v->pos_emb, v->grid, gh, gw, D, v->rope_seq > 0, out);
  cache->pos_gh = gh;
  cache->pos_gw = gw;
  return out;
}

/* Rows of 3·p·p pixels, one per patch, in conv1's (channel, y, x) order. */
static void
im2col (const float *pixels, int H, int W, const struct window *windows, int n_windows, int p,
    int gh, int gw, int n_threads, float *patches)
{
  int K = 3 * p * p;

#pragma omp parallel for collapse(2) num_threads(n_threads)
  for (int b = 0; b < n_windows; b++) {
    for (int gy = 0; gy < gh; gy++) {
      for (int gx = 0; gx < gw; gx++) {
        float *row = patches + ((size_t) (b * gh + gy) * gw + gx) * K;

        for (int c = 0; c < 3; c++)
          for (int ky = 0; ky < p; ky++)
            memcpy (row + (c * p + ky) * p,
                pixels + ((size_t) c * H + windows[b].y + gy * p + ky) * W + windows[b].x + gx * p,
                p * sizeof (float));
      }
    }
  }
}

/* NACLIP's spatial prior: a Gaussian of the distance between two patches on
 * the grid (sigma 5 patches, peak 1, never truncated); the class token gets
 * none. exp(-(dy² + dx²)/2σ²) is kept as its two factors, one per axis, built
 * once per grid. */
#define NACLIP_SIGMA 5.0f

static const struct attention_grid_bias *
neighbourhood_for (struct vision_cache *cache, int gh, int gw)
{
  float *g;

  if (cache->nb_gh == gh && cache->nb_gw == gw)
    return &cache->nb_bias;
  g = buffer_reserve (&cache->neighbourhood, (size_t) gh + gw);
  for (int k = 0; k < gh + gw; k++) {
    float d = (float) (k < gh ? k : k - gh);

    g[k] = expf (-(d * d) / (2.0f * NACLIP_SIGMA * NACLIP_SIGMA));
  }
  cache->nb_bias = (struct attention_grid_bias) { gw, g, g + gh };
  cache->nb_gh = gh;
  cache->nb_gw = gw;
  return &cache->nb_bias;
}

static struct mixing
last_block_mixing (struct vision_cache *cache, enum clipseg_mode mode, int gh, int gw)
{
  struct mixing mix = mixing_stock;

  switch (mode) {
    case CLIPSEG_MODE_MASKCLIP:
      mix.kind = ATTENTION_VALUE;
      break;
    case CLIPSEG_MODE_SCLIP:
      mix.kind = ATTENTION_CSA;
      break;
    case CLIPSEG_MODE_CLEARCLIP:
      mix.kind = ATTENTION_QQ;
      mix.residual_and_mlp = FALSE;
      break;
    case CLIPSEG_MODE_NACLIP:
      mix.kind = ATTENTION_KK_BIASED;
      mix.residual_and_mlp = FALSE;
      mix.score_bias = neighbourhood_for (cache, gh, gw);
      break;
    default:
      break;
  }
  return mix;
}

void
vision_cache_init (struct vision_cache *cache, int n_threads)
{
  *cache = (struct vision_cache) { 0 };
  cache->threads = g_new0 (struct vision_scratch, n_threads);
  cache->n_threads = n_threads;
}

void
vision_cache_clear (struct vision_cache *cache)
{
  for (int t = 0; t < cache->n_threads; t++) {
    buffer_clear (&cache->threads[t].tokens);
    buffer_clear (&cache->threads[t].block);
    buffer_clear (&cache->threads[t].patches);
    buffer_clear (&cache->threads[t].scclip);
  }
  g_clear_pointer (&cache->threads, g_free);
  buffer_clear (&cache->positions);
  buffer_clear (&cache->neighbourhood);
  *cache = (struct vision_cache) { 0 };
}

void
vision_plan (const struct clip_weights *cw, struct vision_cache *cache, int h, int w,
    enum clipseg_mode mode, clipseg_abort_func abort, void *abort_data, struct vision_plan *plan)
{
  int p = cw->vision.patch;

  plan->h = h, plan->w = w;
  plan->gh = h / p, plan->gw = w / p;
  plan->positions = positions_for (&cw->vision, cache, plan->gh, plan->gw);
  plan->last = last_block_mixing (cache, mode, plan->gh, plan->gw);
  plan->scclip = mode == CLIPSEG_MODE_SCCLIP;
  scclip_layers_for (cw->vision.tower.layers, &plan->layers);
  plan->abort = abort;
  plan->abort_data = abort_data;
}

/* out_proj(K) of every patch token from the last block's q|k|v, which the
 * block's MLP leaves in place; EVA02's inner_attn_ln comes first, as on the
 * heads' output (into s->o, free after the block). */
static void
last_block_keys (const struct clip_vision *v, const struct block_scratch *s, int B, int L,
    float *keys)
{
  int D = v->tower.width;
  const struct clip_block *last = &v->tower.blocks[v->tower.layers - 1];

  for (int b = 0; b < B; b++) {
    const float *k = s->qkv + ((size_t) b * L + 1) * 3 * D + D;
    int ld = 3 * D;

    if (last->inner_ln_w) {
      layer_norm (k, ld, last->inner_ln_w, last->inner_ln_b, v->ln_eps, s->o, D, L - 1, D);
      k = s->o, ld = D;
    }
    packed_linear_run (last->out, k, ld, keys + (size_t) b * (L - 1) * D, D, L - 1, FALSE);
  }
}

void
vision_forward (const struct clip_weights *cw, const struct vision_plan *plan,
    struct vision_scratch *vs, int n_threads, const float *pixels, int H, int W,
    const struct window *windows, int n_windows, float *features, float *keys)
{
  const struct clip_vision *v = &cw->vision;
  int D = v->tower.width, E = cw->embed_dim, p = v->patch, gh = plan->gh, gw = plan->gw;
  int N = gh * gw, L = N + 1, B = n_windows, T = B * L;
  float *x = buffer_reserve (&vs->tokens, (size_t) T * D);
  float *patches = buffer_reserve (&vs->patches, (size_t) B * N * 3 * p * p);
  int M = tower_hidden_width (&v->tower), heads = v->tower.heads;
  size_t block_floats = block_scratch_size (T, L, D, heads, M, n_threads);
  float *mem = buffer_reserve (&vs->block, block_floats + rope_grid_floats (gh, gw, D / heads));
  const float *pos = plan->positions;
  float *sc = plan->scclip ? buffer_reserve (&vs->scclip, scclip_scratch_size (B, N, D)) : NULL;
  int last = v->tower.layers - 1;
  struct block_scratch s;
  struct rope_grid rope;

  block_scratch_init (&s, mem, T, L, D, heads, M, n_threads, cw->attention);
  if (v->rope_seq) {
    rope_grid_init (&rope, mem + block_floats, gh, gw, D / heads, v->rope_seq);
    s.rope = &rope;
  }
  /* patch embedding: a stride-p convolution as one GEMM */
  im2col (pixels, H, W, windows, B, p, gh, gw, n_threads, patches);
  packed_linear_run (v->patch_embed, patches, 3 * p * p, s.y, D, B * N, FALSE);
  /* tokens = [class embedding; patches] + positions, then ln_pre (not EVA02's) */
  for (int b = 0; b < B; b++) {
    float *seq = x + (size_t) b * L * D;

    for (int c = 0; c < D; c++)
      seq[c] = v->class_emb[c] + pos[c];
    for (size_t i = 0; i < (size_t) N * D; i++)
      seq[D + i] = s.y[(size_t) b * N * D + i] + pos[D + i];
  }
  if (v->ln_pre_w)
    layer_norm (x, D, v->ln_pre_w, v->ln_pre_b, v->ln_eps, x, D, T, D);
  /* stock blocks (SC-CLIP keeping what it reads), then the last one in the dense mode */
  for (int l = -1; l < last; l++) {
    if (l >= 0)
      transformer_block (&v->tower.blocks[l], &v->tower, v->ln_eps, &mixing_stock, x, B, L, &s);
    if (sc)
      scclip_keep (&plan->layers, l, x, B, N, D, sc);
    if (plan->abort && plan->abort (plan->abort_data))
      return;
  }
  if (sc)
    scclip_last_block (&v->tower, v->ln_eps, gh, gw, x, B, &s, sc);
  else
    transformer_block (&v->tower.blocks[last], &v->tower, v->ln_eps, &plan->last, x, B, L, &s);
  if (keys)
    last_block_keys (v, &s, B, L, keys);
  /* ln_post on every patch token (CLS dropped), projection, unit length */
  for (int b = 0; b < B; b++)
    layer_norm (x + ((size_t) b * L + 1) * D, D, v->ln_post_w, v->ln_post_b, v->ln_eps,
        s.y + (size_t) b * N * D, D, N, D);
  packed_linear_run (v->proj, s.y, D, features, E, B * N, FALSE);
  l2_normalize_rows (features, E, B * N, E);
}
