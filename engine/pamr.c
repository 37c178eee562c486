/* pamr.c — PAMR's affinities and refinement steps. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "pamr.h"

static const int dilations[] = { 8, 16 };

#define N_DILATIONS G_N_ELEMENTS (dilations)
#define N_SAMPLES (9 * N_DILATIONS)

/* Flat indices of the 16 neighbours of (y, x), edges clamped, in the order
 * the affinities are stored: per dilation, the 3x3 pattern row by row
 * without its centre. */
static void
neighbours (int y, int x, int H, int W, int idx[PAMR_NEIGHBOURS])
{
  int n = 0;

  for (guint k = 0; k < N_DILATIONS; k++) {
    int d = dilations[k];

    for (int dy = -d; dy <= d; dy += d) {
      int yy = CLAMP (y + dy, 0, H - 1);

      for (int dx = -d; dx <= d; dx += d) {
        if (dy != 0 || dx != 0)
          idx[n++] = yy * W + CLAMP (x + dx, 0, W - 1);
      }
    }
  }
}

/* Unbiased standard deviation of one channel over the 3x3 pattern at every
 * dilation, the centre counted once per dilation. */
static float
local_std (const float *plane, int i, const int idx[PAMR_NEIGHBOURS])
{
  float samples[N_SAMPLES], mean = 0.0f, ss = 0.0f;
  int n = 0;

  for (guint k = 0; k < N_DILATIONS; k++) {
    samples[n++] = plane[i];
    for (int j = 0; j < 8; j++)
      samples[n++] = plane[idx[k * 8 + j]];
  }
  for (int j = 0; j < n; j++)
    mean += samples[j];
  mean /= (float) n;
  for (int j = 0; j < n; j++)
    ss += (samples[j] - mean) * (samples[j] - mean);
  return sqrtf (ss / (float) (n - 1));
}

void
pamr_affinity (const float *image, int H, int W, float *affinity)
{
  size_t plane = (size_t) H * W;

#pragma omp parallel for
  for (int y = 0; y < H; y++) {
    for (int x = 0; x < W; x++) {
      int i = y * W + x, idx[PAMR_NEIGHBOURS];
      float *a = affinity + (size_t) i * PAMR_NEIGHBOURS, top = -INFINITY, sum = 0.0f;

      neighbours (y, x, H, W, idx);
      memset (a, 0, PAMR_NEIGHBOURS * sizeof *a);
      for (int c = 0; c < 3; c++) {
        const float *ch = image + c * plane;
        float inv = 1.0f / (3.0f * (1e-8f + 0.1f * local_std (ch, i, idx)));

        for (int n = 0; n < PAMR_NEIGHBOURS; n++)
          a[n] -= fabsf (ch[i] - ch[idx[n]]) * inv;
      }
      for (int n = 0; n < PAMR_NEIGHBOURS; n++)
        top = MAX (top, a[n]);
      for (int n = 0; n < PAMR_NEIGHBOURS; n++)
        sum += a[n] = expf (a[n] - top);
      for (int n = 0; n < PAMR_NEIGHBOURS; n++)
        a[n] /= sum;
    }
  }
}

void
pamr_step (const float *affinity, int H, int W, const float *in, float *out, int Q)
{
#pragma omp parallel for
  for (int y = 0; y < H; y++) {
    for (int x = 0; x < W; x++) {
      int i = y * W + x, idx[PAMR_NEIGHBOURS];
      const float *a = affinity + (size_t) i * PAMR_NEIGHBOURS;
      float *o = out + (size_t) i * Q;

      neighbours (y, x, H, W, idx);
      memset (o, 0, Q * sizeof *o);
      for (int n = 0; n < PAMR_NEIGHBOURS; n++) {
        const float *src = in + (size_t) idx[n] * Q;

        for (int q = 0; q < Q; q++)
          o[q] += a[n] * src[q];
      }
    }
  }
}
