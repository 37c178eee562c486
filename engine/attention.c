/* attention.c — the tile loop with its online softmax, operand packing, the
 * portable products and the choice of kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention-kernels.h"
#include "numeric-inline.h"

#define ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))
#define ROW_BLOCK 6             /* query rows the register blocks of the kernels take */

/* ---- portable products -------------------------------------------------- */

ROW_KERNEL static void
portable_scores (const void *a_, const void *bt_, float *s, int rows, int nk, int dp)
{
  const float *a = a_, *bt = bt_;

  for (int r = 0; r < rows; r++) {
    float *row = s + (size_t) r * ATTENTION_TILE_K;

    memset (row, 0, nk * sizeof *row);
    for (int c = 0; c < dp; c++) {
      float x = a[(size_t) r * dp + c];
      const float *b = bt + (size_t) c * ATTENTION_TILE_K;

#pragma omp simd
      for (int j = 0; j < nk; j++)
        row[j] += x * b[j];
    }
  }
}

ROW_KERNEL static void
portable_accumulate (const void *p_, const void *v_, float *o, int rows, int nk, int dp)
{
  const float *p = p_, *v = v_;

  for (int r = 0; r < rows; r++) {
    float *orow = o + (size_t) r * dp;

    for (int j = 0; j < nk; j++) {
      float x = p[(size_t) r * ATTENTION_TILE_K + j];
      const float *vrow = v + (size_t) j * dp;

#pragma omp simd
      for (int c = 0; c < dp; c++)
        orow[c] += x * vrow[c];
    }
  }
}

ROW_KERNEL static float
portable_softmax_row (float *s, guint16 *p, int nv, float scale, const float *bias, float *m,
    float *l)
{
  float mx = *m, corr, sum = 0.0f;

  (void) p;
#pragma omp simd
  for (int j = 0; j < ATTENTION_TILE_K; j++)
    s[j] = j < nv ? s[j] * scale + (bias ? bias[j] : 0.0f) : -INFINITY;
#pragma omp simd reduction(max:mx)
  for (int j = 0; j < ATTENTION_TILE_K; j++)
    mx = s[j] > mx ? s[j] : mx;
#pragma omp simd reduction(+:sum)
  for (int j = 0; j < ATTENTION_TILE_K; j++) {
    float e = exp_inline (s[j] - mx);

    s[j] = j < nv ? e : 0.0f;
    sum += s[j];
  }
  corr = *m == -INFINITY ? 0.0f : exp_inline (*m - mx);
  *m = mx;
  *l = *l * corr + sum;
  return corr;
}

static const struct attention_tile_ops portable_ops = {
  FALSE, portable_scores, portable_accumulate, portable_softmax_row,
};

/* ---- choice of kernel --------------------------------------------------- */

static const char *const kernel_names[] = {
  [ATTENTION_KERNEL_PORTABLE] = "portable",
  [ATTENTION_KERNEL_AVX512] = "avx512",
  [ATTENTION_KERNEL_AVX512_BF16] = "avx512-bf16",
};

const char *
attention_kernel_name (enum attention_kernel kernel)
{
  return kernel_names[kernel];
}

gboolean
attention_kernel_runs (enum attention_kernel kernel)
{
  switch (kernel) {
    case ATTENTION_KERNEL_PORTABLE:
      return TRUE;
#ifdef HAVE_ATTENTION_AVX512
    case ATTENTION_KERNEL_AVX512:
      return __builtin_cpu_supports ("avx512f");
    case ATTENTION_KERNEL_AVX512_BF16:
      return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bf16");
#endif
    default:
      return FALSE;
  }
}

enum attention_kernel
attention_kernel_for (enum clipseg_precision precision)
{
  const char *off = g_getenv ("CLIPSEG_DISABLE_AVX512");

  if (off && *off && strcmp (off, "0") != 0)
    return ATTENTION_KERNEL_PORTABLE;
  if (precision == CLIPSEG_PRECISION_BF16 && attention_kernel_runs (ATTENTION_KERNEL_AVX512_BF16))
    return ATTENTION_KERNEL_AVX512_BF16;
  if (attention_kernel_runs (ATTENTION_KERNEL_AVX512))
    return ATTENTION_KERNEL_AVX512;
  return ATTENTION_KERNEL_PORTABLE;
}

static const struct attention_tile_ops *
ops_for (enum attention_kernel kernel)
{
  g_assert (attention_kernel_runs (kernel));
#ifdef HAVE_ATTENTION_AVX512
  if (kernel == ATTENTION_KERNEL_AVX512)
    return &attention_avx512_ops;
  if (kernel == ATTENTION_KERNEL_AVX512_BF16)
    return &attention_avx512_bf16_ops;
#endif
  return &portable_ops;
}

/* ---- scratch and packing ------------------------------------------------ */

/* Where each part of one head's scratch lives. */
struct layout
{
  int dp, Lq, Lk;               /* padded width, query rows, keys */
  void *a, *bt, *v;             /* packed operands (A, every key tile, V) */
  float *s;                     /* [TILE_Q, TILE_K] scores, then probabilities */
  guint16 *p;                   /* [TILE_Q, TILE_K] probabilities in bf16 */
  float *o;                     /* [TILE_Q, dp] accumulators */
  float *m, *l;                 /* [TILE_Q] running max and sum */
  float *bias;                  /* [TILE_K] one row's score bias */
  guint16 *rows;                /* [2, dp] rows rounded to bf16 on their way into a layout */
};

/* Lays out @base (NULL: only sizes) and returns the bytes it spans. */
static size_t
layout_carve (struct layout *lo, int L, int d, char *base)
{
  size_t at = 0;
  void **parts[] = { &lo->a, &lo->bt, &lo->v, (void **) &lo->s, (void **) &lo->p, (void **) &lo->o,
    (void **) &lo->m, (void **) &lo->l, (void **) &lo->bias, (void **) &lo->rows
  };
  size_t bytes[G_N_ELEMENTS (parts)];

  lo->dp = ROUND_UP (d, ATTENTION_PAD);
  lo->Lq = ROUND_UP (L, ATTENTION_TILE_Q);
  lo->Lk = ROUND_UP (L, ATTENTION_TILE_K);
  /* operands sized for float, the larger element */
  bytes[0] = (size_t) lo->Lq * lo->dp * sizeof (float);
  bytes[1] = bytes[2] = (size_t) lo->Lk * lo->dp * sizeof (float);
  bytes[3] = ATTENTION_TILE_Q * ATTENTION_TILE_K * sizeof (float);
  bytes[4] = ATTENTION_TILE_Q * ATTENTION_TILE_K * sizeof (guint16);
  bytes[5] = (size_t) ATTENTION_TILE_Q *lo->dp * sizeof (float);
  bytes[6] = bytes[7] = ATTENTION_TILE_Q * sizeof (float);
  bytes[8] = ATTENTION_TILE_K * sizeof (float);
  bytes[9] = 2 * (size_t) lo->dp * sizeof (guint16);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++) {
    *parts[i] = base ? base + at : NULL;
    at += ROUND_UP (bytes[i], 64);      /* every part starts on a cache line */
  }
  return at;
}

size_t
attention_scratch_size (int L, int d)
{
  struct layout lo;

  return layout_carve (&lo, L, d, NULL) + 64;   /* for aligning the start */
}

/* dst[0, dp) = src[0, d) rounded to bfloat16, zero past d */
ROW_KERNEL static void
round_row (const float *src, int d, int dp, guint16 *dst)
{
#pragma omp simd
  for (int c = 0; c < d; c++)
    dst[c] = bf16_round (src[c]);
  memset (dst + d, 0, (dp - d) * sizeof *dst);
}

/* A: [n_rows, dp], the rows of src (width d, stride ld), zero past L rows and d columns */
static void
pack_rows (const float *src, int ld, int L, int d, int n_rows, int dp, gboolean bf16, void *dst)
{
  float *f = dst;
  guint16 *h = dst;

  memset (dst, 0, (size_t) n_rows * dp * (bf16 ? sizeof *h : sizeof *f));
  for (int i = 0; i < L; i++) {
    if (bf16)
      round_row (src + (size_t) i * ld, d, dp, h + (size_t) i * dp);
    else
      memcpy (f + (size_t) i * dp, src + (size_t) i * ld, d * sizeof *f);
  }
}

/* Key tiles transposed: fp32 [dp, TILE_K] (float at c·TILE_K + j), bf16
 * [dp/2, TILE_K, 2] (pairs of columns side by side, moved as 32-bit units);
 * zero past L and d. */
static void
pack_keys (const float *src, int ld, int L, int d, const struct layout *lo, gboolean bf16)
{
  int dp = lo->dp;
  float *f = lo->bt;
  guint32 *pairs = lo->bt, row_pairs;

  memset (lo->bt, 0, (size_t) lo->Lk * dp * (bf16 ? sizeof (guint16) : sizeof (float)));
  for (int j = 0; j < L; j++) {
    size_t tile = (size_t) (j / ATTENTION_TILE_K) * ATTENTION_TILE_K * dp;
    int jj = j % ATTENTION_TILE_K;

    if (!bf16) {
      for (int c = 0; c < d; c++)
        f[tile + (size_t) c * ATTENTION_TILE_K + jj] = src[(size_t) j * ld + c];
      continue;
    }
    round_row (src + (size_t) j * ld, d, dp, lo->rows);
    for (int c = 0; c < dp / 2; c++) {
      memcpy (&row_pairs, lo->rows + 2 * c, sizeof row_pairs);
      pairs[tile / 2 + (size_t) c * ATTENTION_TILE_K + jj] = row_pairs;
    }
  }
}

/* dst[c] = the bf16 pair (a[c], b[c]), a in the low half as in memory */
ROW_KERNEL static void
interleave_rows (const guint16 *a, const guint16 *b, int dp, guint32 *dst)
{
#pragma omp simd
  for (int c = 0; c < dp; c++)
    dst[c] = (guint32) a[c] | (guint32) b[c] << 16;
}

/* Values: fp32 [Lk, dp] as rows; bf16 [Lk/2, dp, 2] (pairs of keys side by side). */
static void
pack_values (const float *src, int ld, int L, int d, const struct layout *lo, gboolean bf16)
{
  int dp = lo->dp;

  if (!bf16) {
    pack_rows (src, ld, L, d, lo->Lk, dp, FALSE, lo->v);
    return;
  }
  memset (lo->v, 0, (size_t) lo->Lk * dp * sizeof (guint16));
  for (int j = 0; j < L; j += 2) {
    round_row (src + (size_t) j * ld, d, dp, lo->rows);
    if (j + 1 < L)
      round_row (src + (size_t) (j + 1) * ld, d, dp, lo->rows + dp);
    else
      memset (lo->rows + dp, 0, dp * sizeof *lo->rows);
    interleave_rows (lo->rows, lo->rows + dp, dp, (guint32 *) lo->v + (size_t) (j / 2) * dp);
  }
}

/* ---- the tile loop ------------------------------------------------------ */

/* Keys j0.. a query row i sees in a tile of @nk keys: all of them, or, when
 * causal, those up to i (a prefix either way). */
static inline int
visible_keys (const struct attention_head *h, int i, int j0, int nk)
{
  if (i >= h->L)
    return 0;
  return h->causal ? CLAMP (i - j0 + 1, 0, nk) : nk;
}

/* s[0, nv) += the bias between query token i and key tokens j0.. */
static void
add_grid_bias (const struct attention_grid_bias *b, int i, int j0, int nv, float *s)
{
  int yi = (i - 1) / b->gw, xi = (i - 1) % b->gw, j = 0, y, x;

  if (i == 0)
    return;
  if (j0 == 0)
    j = 1;                      /* the class token */
  y = (j0 + j - 1) / b->gw, x = (j0 + j - 1) % b->gw;
  for (; j < nv; j++) {
    s[j] += b->gy[ABS (yi - y)] * b->gx[ABS (xi - x)];
    if (++x == b->gw)
      x = 0, y++;
  }
}

ROW_KERNEL static void
scale_row (float *o, int n, float by)
{
#pragma omp simd
  for (int c = 0; c < n; c++)
    o[c] *= by;
}

/* Folds the scores of keys j0..j0+nk into the running max, sum and
 * accumulators of rows i0..i0+rows and turns them into the probabilities the
 * accumulation reads (zero for keys a row does not see). */
static void
softmax_tile (const struct attention_tile_ops *ops, const struct attention_head *h, int i0,
    int rows, int j0, int nk, const struct layout *lo)
{
  for (int r = 0; r < rows; r++) {
    float *s = lo->s + (size_t) r * ATTENTION_TILE_K, *o = lo->o + (size_t) r *lo->dp;
    guint16 *p = ops->bf16 ? lo->p + (size_t) r * ATTENTION_TILE_K : NULL;
    int nv = visible_keys (h, i0 + r, j0, nk);
    float corr;

    if (nv == 0) {
      memset (s, 0, ATTENTION_TILE_K * sizeof *s);
      if (p)
        memset (p, 0, ATTENTION_TILE_K * sizeof *p);
      continue;
    }
    if (h->bias) {
      memset (lo->bias, 0, ATTENTION_TILE_K * sizeof *lo->bias);
      add_grid_bias (h->bias, i0 + r, j0, nv, lo->bias);
    }
    corr = ops->softmax_row (s, p, nv, h->scale, h->bias ? lo->bias : NULL, &lo->m[r], &lo->l[r]);
    if (corr != 1.0f)
      scale_row (o, lo->dp, corr);
  }
}

/* out rows i0..i0+nr (=|+=) o / l */
ROW_KERNEL static void
write_rows (const struct attention_head *h, const struct layout *lo, int i0, int nr)
{
  for (int r = 0; r < nr; r++) {
    const float *o = lo->o + (size_t) r * lo->dp;
    float *out = h->out + (size_t) (i0 + r) * h->ld_out, inv = 1.0f / lo->l[r];

    if (!h->accumulate)
      memset (out, 0, h->d * sizeof *out);
#pragma omp simd
    for (int c = 0; c < h->d; c++)
      out[c] += o[c] * inv;
  }
}

void
attention_run (enum attention_kernel kernel, const struct attention_head *h, void *scratch)
{
  const struct attention_tile_ops *ops = ops_for (kernel);
  size_t es = ops->bf16 ? sizeof (guint16) : sizeof (float);
  struct layout lo;

  layout_carve (&lo, h->L, h->d, (char *) ROUND_UP ((guintptr) scratch, 64));
  pack_rows (h->a, h->ld, h->L, h->d, lo.Lq, lo.dp, ops->bf16, lo.a);
  pack_keys (h->b, h->ld, h->L, h->d, &lo, ops->bf16);
  pack_values (h->v, h->ld, h->L, h->d, &lo, ops->bf16);
  for (int i0 = 0; i0 < h->L; i0 += ATTENTION_TILE_Q) {
    int nr = MIN (ATTENTION_TILE_Q, h->L - i0), rows = ROUND_UP (nr, ROW_BLOCK);
    int keys = h->causal ? i0 + nr : h->L;

    for (int r = 0; r < rows; r++)
      lo.m[r] = -INFINITY, lo.l[r] = 0.0f;
    memset (lo.o, 0, (size_t) rows * lo.dp * sizeof *lo.o);
    for (int j0 = 0; j0 < keys; j0 += ATTENTION_TILE_K) {
      int nk = MIN (ATTENTION_TILE_K, h->L - j0), nk16 = ROUND_UP (nk, 16);
      size_t at = (size_t) j0 * lo.dp * es;

      ops->scores ((char *) lo.a + (size_t) i0 * lo.dp * es, (char *) lo.bt + at, lo.s, rows,
          nk16, lo.dp);
      softmax_tile (ops, h, i0, rows, j0, nk, &lo);
      ops->accumulate (ops->bf16 ? (void *) lo.p : (void *) lo.s, (char *) lo.v + at, lo.o,
          rows, nk16, lo.dp);
    }
    write_rows (h, &lo, i0, nr);
  }
}
