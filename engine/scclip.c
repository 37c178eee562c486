/* scclip.c — SC-CLIP's anomaly fixing, similarity aggregation and fused last block.
 *
 * Choices where SC-CLIP's description is open, all as its code (clip/model.py)
 * does unless said otherwise:
 *  - LOF on squared Euclidean distances of the raw (pre-ln_1) patch tokens,
 *    CLS excluded, with the reach distance taken as the point's own
 *    k-distance, which makes LOF(p) the mean of kd(p)/kd(o) over its k
 *    nearest o; k = min(30, N - 1);
 *  - "top 5%": torch.quantile(0.95) with a strict '>', i.e. the
 *    ceil((N - 1)/20) highest scores; an exact tie goes to the lower index;
 *  - an anomaly's 3x3 mean takes only the neighbours inside the grid that are
 *    not anomalies themselves; with none it keeps its value. Grid positions
 *    are row-major on the real grid (the code divides by the row count, which
 *    misplaces anomalies on non-square grids);
 *  - the block-9 tokens get the same fix before their similarities;
 *  - the softmax mask keeps the entries with 3·(S - mean) >= 0, the mean over
 *    all N² entries; a row left empty keeps its diagonal (the code would give
 *    NaN; a cosine matrix never has one);
 *  - aggregation rows are divided by their sum + 1e-6;
 *  - the fusion branch gets the same block-4 aggregation as the main one.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "scclip.h"

#define SCCLIP_LOF_K 30
#define SCCLIP_COSINE_THRESHOLD 0.4f
#define SCCLIP_PRIOR_SCALE 3.0f
#define SCCLIP_CLS_WEIGHT 0.3f
#define SCCLIP_ROW_EPS 1e-6f

G_STATIC_ASSERT (sizeof (int) == sizeof (float));

/* ViT-B/16's block b (1-based, of 12) at depth n, as a 0-based index before
 * the last block; -1 is the tokens after ln_pre. */
static int
scaled_block (int b, int n)
{
  return CLAMP ((b * n + 6) / 12 - 1, -1, n - 2);
}

void
scclip_layers_for (int n_layers, struct scclip_layers *ly)
{
  ly->aggregate = scaled_block (4, n_layers);
  ly->attend = scaled_block (9, n_layers);
  ly->fuse_first = scaled_block (4, n_layers);
  ly->fuse_last = scaled_block (10, n_layers);
}

/* The kept block outputs of B windows, then one window's work space. */
struct kept
{
  float *aggregate;             /* [B·N, D] patch rows */
  float *attend;                /* [B·N, D] patch rows */
  float *fuse;                  /* [B·(N+1), D] summed, class token included */
};

struct work
{
  float *sim;                   /* [N, N] block-9 cosines, then the attention prior */
  float *agg;                   /* [N, N] aggregation weights */
  float *a, *b;                 /* [N, D] each */
  float *kd, *lof, *row, *anomalous;    /* [N] each */
  int *neighbours;              /* [N, k] */
};

static float *
carve_kept (float *scratch, int B, int N, int D, struct kept *k)
{
  k->aggregate = scratch;
  k->attend = k->aggregate + (size_t) B *N * D;
  k->fuse = k->attend + (size_t) B *N * D;
  return k->fuse + (size_t) B *(N + 1) * D;
}

static void
carve_work (float *mem, int N, int D, struct work *w)
{
  w->sim = mem;
  w->agg = w->sim + (size_t) N *N;
  w->a = w->agg + (size_t) N *N;
  w->b = w->a + (size_t) N *D;
  w->kd = w->b + (size_t) N *D;
  w->lof = w->kd + N;
  w->row = w->lof + N;
  w->anomalous = w->row + N;
  w->neighbours = (int *) (w->anomalous + N);
}

size_t
scclip_scratch_size (int B, int N, int D)
{
  return (size_t) B *(3 * N + 1) * D + 2 * (size_t) N *N + 2 * (size_t) N *D
      + (size_t) N *(4 + SCCLIP_LOF_K);
}

void
scclip_keep (const struct scclip_layers *ly, int layer, const float *x, int B, int N, int D,
    float *scratch)
{
  struct kept k;
  size_t L = N + 1, rows = (size_t) B * L * D;

  carve_kept (scratch, B, N, D, &k);
  for (int b = 0; b < B; b++) {
    const float *patches = x + ((size_t) b * L + 1) * D;

    if (layer == ly->aggregate)
      memcpy (k.aggregate + (size_t) b * N * D, patches, (size_t) N * D * sizeof (float));
    if (layer == ly->attend)
      memcpy (k.attend + (size_t) b * N * D, patches, (size_t) N * D * sizeof (float));
  }
  if (layer == ly->fuse_first)
    memcpy (k.fuse, x, rows * sizeof (float));
  else if (layer > ly->fuse_first && layer <= ly->fuse_last)
    for (size_t i = 0; i < rows; i++)
      k.fuse[i] += x[i];
}

/* ---- anomalies ------------------------------------------------------------ */

/* The @k-th smallest (0-based) of @a [n], which it reorders. */
static float
kth_smallest (float *a, int n, int k)
{
  int lo = 0, hi = n - 1;

  while (lo < hi) {
    float pivot = a[(lo + hi) / 2];
    int i = lo, j = hi;

    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        float t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      break;
  }
  return a[k];
}

/* Squared distances [N, N] between the rows of @X from their Gram matrix. */
static void
squared_distances (const float *X, int N, int D, float *dist, float *diag)
{
  matmul_nt (X, D, X, D, dist, N, N, N, D, 1.0f);
  for (int i = 0; i < N; i++)
    diag[i] = dist[(size_t) i * N + i];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      dist[(size_t) i * N + j] = i == j ? 0.0f
          : MAX (diag[i] + diag[j] - 2.0f * dist[(size_t) i * N + j], 0.0f);
}

/* Each token's k-distance and its k nearest others (nearer first by
 * distance, equal distances by index). */
static void
nearest_neighbours (const float *dist, int N, int k, struct work *w)
{
  for (int i = 0; i < N; i++) {
    const float *d = dist + (size_t) i * N;
    int *nb = w->neighbours + (size_t) i * k, n = 0;
    float kd;

    for (int j = 0, m = 0; j < N; j++)
      if (j != i)
        w->row[m++] = d[j];
    kd = kth_smallest (w->row, N - 1, k - 1);
    for (int j = 0; j < N && n < k; j++)
      if (j != i && d[j] < kd)
        nb[n++] = j;
    for (int j = 0; j < N && n < k; j++)
      if (j != i && d[j] == kd)
        nb[n++] = j;
    w->kd[i] = kd;
  }
}

/* w->anomalous[i] = 1 for the ceil((N - 1)/20) patches of @X [N, D] with the
 * highest local outlier factor, else 0. */
static void
find_anomalies (const float *X, int N, int D, struct work *w)
{
  int k = MIN (SCCLIP_LOF_K, N - 1), n_out = (N - 1 + 19) / 20;

  memset (w->anomalous, 0, N * sizeof (float));
  if (k < 1)
    return;
  squared_distances (X, N, D, w->sim, w->row);
  nearest_neighbours (w->sim, N, k, w);
  for (int i = 0; i < N; i++) {
    double sum = 0.0;

    for (int n = 0; n < k; n++)
      sum += (double) w->kd[i] / MAX (w->kd[w->neighbours[(size_t) i * k + n]], FLT_MIN);
    w->lof[i] = (float) (sum / k);
  }
  for (int a = 0; a < n_out; a++) {
    int best = -1;

    for (int i = 0; i < N; i++)
      if (w->anomalous[i] == 0.0f && (best < 0 || w->lof[i] > w->lof[best]))
        best = i;
    w->anomalous[best] = 1.0f;
  }
}

/* Each anomaly of @X [gh·gw, D] becomes the mean of its non-anomalous 3x3
 * neighbours on the grid (which this never changes, so it works in place). */
static void
fix_anomalies (float *X, int gh, int gw, int D, const float *anomalous)
{
  for (int i = 0; i < gh * gw; i++) {
    int r = i / gw, c = i % gw, n = 0;
    float *dst = X + (size_t) i * D;

    if (anomalous[i] == 0.0f)
      continue;
    for (int y = MAX (r - 1, 0); y <= MIN (r + 1, gh - 1); y++)
      for (int x = MAX (c - 1, 0); x <= MIN (c + 1, gw - 1); x++)
        n += anomalous[y * gw + x] == 0.0f;
    if (n == 0)
      continue;
    memset (dst, 0, D * sizeof (float));
    for (int y = MAX (r - 1, 0); y <= MIN (r + 1, gh - 1); y++) {
      for (int x = MAX (c - 1, 0); x <= MIN (c + 1, gw - 1); x++) {
        const float *src = X + (size_t) (y * gw + x) * D;

        if (anomalous[y * gw + x] != 0.0f)
          continue;
        for (int j = 0; j < D; j++)
          dst[j] += src[j] / (float) n;
      }
    }
  }
}

/* ---- similarities --------------------------------------------------------- */

/* @sim [N, N] = cosines of the rows of @F [N, D] (normalised in place). */
static void
cosines (float *F, int N, int D, float *sim)
{
  l2_normalize_rows (F, D, N, D);
  matmul_nt (F, D, F, D, sim, N, N, N, D, 1.0f);
}

/* @agg = @sim with the entries below 0.4 zeroed, each row divided by its
 * sum + 1e-6 (@agg may be @sim). */
static void
aggregation_weights (const float *sim, int N, float *agg)
{
  for (int i = 0; i < N; i++) {
    const float *s = sim + (size_t) i * N;
    float *a = agg + (size_t) i * N;
    double sum = 0.0;
    float inv;

    for (int j = 0; j < N; j++) {
      a[j] = s[j] < SCCLIP_COSINE_THRESHOLD ? 0.0f : s[j];
      sum += a[j];
    }
    inv = (float) (1.0 / (sum + SCCLIP_ROW_EPS));
    for (int j = 0; j < N; j++)
      a[j] *= inv;
  }
}

/* In place, @sim [N, N] -> ½·softmax(3·(sim - mean)) per row over the
 * entries where that is not negative (the others weigh 0). The ½ is the
 * average with the key-key attention. */
static void
attention_prior (float *sim, int N)
{
  double mean = 0.0;

  for (size_t i = 0; i < (size_t) N * N; i++)
    mean += sim[i];
  mean /= (double) N *N;
  for (int i = 0; i < N; i++) {
    float *s = sim + (size_t) i * N, top = 0.0f;
    double sum = 0.0;

    for (int j = 0; j < N; j++) {
      s[j] = SCCLIP_PRIOR_SCALE * (float) (s[j] - mean);
      top = MAX (top, s[j]);
    }
    for (int j = 0; j < N; j++) {
      s[j] = s[j] < 0.0f ? 0.0f : expf (s[j] - top);
      sum += s[j];
    }
    if (!(sum > 0.0)) {
      s[i] = 1.0f;
      sum = 1.0;
    }
    for (int j = 0; j < N; j++)
      s[j] = (float) (0.5 * s[j] / sum);
  }
}

/* ---- the last block ------------------------------------------------------- */

static const struct mixing key_key = { ATTENTION_KK_BIASED, FALSE, NULL };

/* @y [N, D] <- out_proj(½[softmax(P) + softmax(s·K Kᵀ)] V) + 0.3·@cls, with
 * K, V from ln_1(@y) and @prior = ½·softmax(P). Since both halves' rows sum
 * to ½, that is ½·out_proj(softmax(s·K Kᵀ) V) + prior·out_proj(V), which
 * the stock block machinery computes (out_proj(V) in @tmp [N, D]). */
static void
last_attention (const struct clip_tower *tw, float eps, float *y, int N, const float *prior,
    const float *cls, struct block_scratch *s, float *tmp)
{
  const struct clip_block *blk = &tw->blocks[tw->layers - 1];
  int D = tw->width;

  transformer_block (blk, tw, eps, &key_key, y, 1, N, s);
  packed_linear_run (blk->out, s->qkv + 2 * D, 3 * D, tmp, D, N, FALSE);
  matmul_nn (prior, N, tmp, D, y, D, N, D, N, 0.5f);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++)
      y[(size_t) i * D + j] += SCCLIP_CLS_WEIGHT * cls[j];
}

/* One window: @x [1 + N, D], class token first. */
static void
window_last_block (const struct clip_tower *tw, float eps, int gh, int gw, float *x,
    const float *aggregate, const float *attend, const float *fuse, struct block_scratch *s,
    struct work *w)
{
  int D = tw->width, N = gh * gw;
  float *X = x + D;

  find_anomalies (X, N, D, w);
  fix_anomalies (X, gh, gw, D, w->anomalous);
  /* block-9 similarities aggregate the fixed tokens */
  memcpy (w->b, attend, (size_t) N * D * sizeof (float));
  fix_anomalies (w->b, gh, gw, D, w->anomalous);
  cosines (w->b, N, D, w->sim);
  aggregation_weights (w->sim, N, w->agg);
  matmul_nn (w->agg, N, X, D, w->a, D, N, D, N, 0.0f);
  /* and are the attention prior of the last block */
  attention_prior (w->sim, N);
  last_attention (tw, eps, w->a, N, w->sim, x, s, w->b);
  /* block-4 similarities aggregate its output */
  memcpy (w->b, aggregate, (size_t) N * D * sizeof (float));
  cosines (w->b, N, D, w->agg);
  aggregation_weights (w->agg, N, w->agg);
  matmul_nn (w->agg, N, w->a, D, X, D, N, D, N, 0.0f);
  /* multi-level fusion: the summed blocks through the same attention and aggregation */
  memcpy (w->a, fuse + D, (size_t) N * D * sizeof (float));
  last_attention (tw, eps, w->a, N, w->sim, fuse, s, w->b);
  matmul_nn (w->agg, N, w->a, D, X, D, N, D, N, 1.0f);
}

void
scclip_last_block (const struct clip_tower *tw, float eps, int gh, int gw, float *x, int B,
    struct block_scratch *s, float *scratch)
{
  int D = tw->width, N = gh * gw;
  size_t L = N + 1;
  struct kept k;
  struct work w;

  carve_work (carve_kept (scratch, B, N, D, &k), N, D, &w);
  for (int b = 0; b < B; b++)
    window_last_block (tw, eps, gh, gw, x + (size_t) b * L * D,
        k.aggregate + (size_t) b * N * D, k.attend + (size_t) b * N * D,
        k.fuse + (size_t) b * L * D, s, &w);
}
