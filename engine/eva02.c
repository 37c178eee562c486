/* eva02.c — EVA02's rotary position embedding and SwiGLU. */
#include <math.h>

#include <omp.h>

#include "eva02.h"

size_t
rope_grid_floats (int gh, int gw, int head_dim)
{
  return (size_t) 2 *(gh + gw) * (head_dim / 4);
}

/* Angles in double, rounded once: EVA-CLIP computes them in float32, which
 * differs by a few ulp of angles below rope_seq. */
static void
axis_angles (int g, int n_freq, int seq, float *cos_out, float *sin_out)
{
  for (int i = 0; i < g; i++) {
    double t = (double) i * seq / g;

    for (int j = 0; j < n_freq; j++) {
      double a = t * pow (10000.0, -(double) j / n_freq);

      cos_out[i * n_freq + j] = (float) cos (a);
      sin_out[i * n_freq + j] = (float) sin (a);
    }
  }
}

void
rope_grid_init (struct rope_grid *r, float *mem, int gh, int gw, int head_dim, int seq)
{
  int n = head_dim / 4;

  r->gh = gh, r->gw = gw, r->n_freq = n;
  r->cos = mem;
  r->sin = mem + (size_t) (gh + gw) * n;
  axis_angles (gh, n, seq, r->cos, r->sin);
  axis_angles (gw, n, seq, r->cos + (size_t) gh * n, r->sin + (size_t) gh * n);
}

/* (x2j, x2j+1) ← (x2j cos − x2j+1 sin, x2j+1 cos + x2j sin) for n pairs. */
static inline void
rotate_pairs (float *x, const float *c, const float *s, int n)
{
  for (int j = 0; j < n; j++) {
    float a = x[2 * j], b = x[2 * j + 1];

    x[2 * j] = a * c[j] - b * s[j];
    x[2 * j + 1] = b * c[j] + a * s[j];
  }
}

void
rope_rotate (const struct rope_grid *r, float *qkv, int B, int L, int D, int H, int n_threads)
{
  int d = D / H, n = r->n_freq, N = L - 1;

#pragma omp parallel for collapse(2) num_threads(n_threads) if (!omp_in_parallel ())
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < N; i++) {
      const float *cy = r->cos + (size_t) (i / r->gw) * n, *sy = r->sin + (size_t) (i / r->gw) * n;
      const float *cx = r->cos + (size_t) (r->gh + i % r->gw) * n;
      const float *sx = r->sin + (size_t) (r->gh + i % r->gw) * n;
      float *row = qkv + ((size_t) b * L + 1 + i) * 3 * D;

      for (int part = 0; part < 2; part++) {    /* q, then k */
        for (int h = 0; h < H; h++) {
          float *x = row + (size_t) part * D + (size_t) h * d;

          rotate_pairs (x, cy, sy, n);
          rotate_pairs (x + d / 2, cx, sx, n);
        }
      }
    }
  }
}
