/* maskclip-refine.c — MaskCLIP's refinements of one window's cosines. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "maskclip-refine.h"

/* MaskCLIP applies CLIP's own logit scale before both refinements. */
#define MASKCLIP_SCALE 100.0f
/* The cosine a denoised prompt gets everywhere in the window. */
#define MASKCLIP_DROPPED -100.0f

size_t
maskclip_refine_scratch_size (int N, int Q)
{
  /* two doubles per patch, key similarities, probabilities */
  return (size_t) N *N + (size_t) N *Q + (size_t) 4 *N;
}

/* The thresholds are compared in the log domain, in double: log P(i, q) =
 * 100·(x[i,q] - top[i]) - log1p(tail[i]), where tail[i] = Σ exp(100·(x[i,j]
 * - top[i])) over every query but the first best. A best probability is
 * below 1 as long as tail > 0, however close to 1 float rounding would put
 * it (MaskCLIP's float32 code counts a patch with a cosine lead of 0.17 as
 * probability 1 and leaves it out at threshold 1), and a dropped prompt's
 * -100 weighs exactly 0. */
struct patch_norm
{
  double top, log_norm;
};

static void
patch_norms (const float *logits, int N, int Q, struct patch_norm *norms)
{
  for (int i = 0; i < N; i++) {
    const float *x = logits + (size_t) i * Q;
    int best = 0;
    double tail = 0.0;

    for (int q = 1; q < Q; q++)
      if (x[q] > x[best])
        best = q;
    for (int q = 0; q < Q; q++)
      if (q != best)
        tail += exp ((double) MASKCLIP_SCALE * ((double) x[q] - x[best]));
    norms[i].top = x[best];
    norms[i].log_norm = log1p (tail);
  }
}

/* Queries no patch gives a probability of at least @thresh are dropped. */
static void
denoise_prompts (float *logits, int N, int Q, float thresh, struct patch_norm *norms)
{
  double log_thresh = log ((double) thresh);

  patch_norms (logits, N, Q, norms);
  for (int q = 0; q < Q; q++) {
    double best = -INFINITY;

    for (int i = 0; i < N; i++)
      best = MAX (best, (double) MASKCLIP_SCALE * ((double) logits[(size_t) i * Q + q]
              - norms[i].top) - norms[i].log_norm);
    if (best < log_thresh)
      for (int i = 0; i < N; i++)
        logits[(size_t) i * Q + q] = MASKCLIP_DROPPED;
  }
}

/* F.normalize(k, p=2) on [N, D] keys: dim 1 is the patch axis there, so each
 * channel (column) becomes unit length over the patches. */
static void
normalise_key_channels (float *keys, int N, int D)
{
#pragma omp parallel for
  for (int c = 0; c < D; c++) {
    double ss = 0.0;
    float inv;

    for (int i = 0; i < N; i++)
      ss += (double) keys[(size_t) i * D + c] * keys[(size_t) i * D + c];
    inv = (float) (1.0 / MAX (sqrt (ss), 1e-12));
    for (int i = 0; i < N; i++)
      keys[(size_t) i * D + c] *= inv;
  }
}

/* @logits become P = softmax(100·logits), or Kn Knᵀ P on the patches whose
 * best P is below @thresh. */
static void
smooth_keys (float *logits, float *keys, int N, int Q, int D, float thresh, float *weights,
    float *probs, struct patch_norm *norms)
{
  double log_thresh = log ((double) thresh);

  patch_norms (logits, N, Q, norms);
  memcpy (probs, logits, (size_t) N * Q * sizeof *probs);
  softmax_rows (probs, Q, N, Q, MASKCLIP_SCALE);
  normalise_key_channels (keys, N, D);
  matmul_nt (keys, D, keys, D, weights, N, N, N, D, 1.0f);
  matmul_nn (weights, N, probs, Q, logits, Q, N, Q, N, 0.0f);
  for (int i = 0; i < N; i++)
    if (!(-norms[i].log_norm < log_thresh))
      memcpy (logits + (size_t) i * Q, probs + (size_t) i * Q, Q * sizeof *probs);
}

void
maskclip_refine (float *logits, float *keys, int N, int Q, int D, float pd_thresh,
    float ks_thresh, float *scratch)
{
  /* the doubles first, where the allocation's alignment holds */
  struct patch_norm *norms = (struct patch_norm *) scratch;
  float *weights = scratch + (size_t) 4 * N, *probs = weights + (size_t) N *N;

  if (pd_thresh > 0.0f)
    denoise_prompts (logits, N, Q, pd_thresh, norms);
  if (ks_thresh > 0.0f)
    smooth_keys (logits, keys, N, Q, D, ks_thresh, weights, probs, norms);
}
