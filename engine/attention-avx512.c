/* attention-avx512.c — the products of one attention tile in AVX-512F (fp32)
 * and AVX512-BF16 (vdpbf16ps), in register blocks of 6 query rows by 64 keys
 * or 64 value columns: 24 accumulators, 4 operand vectors and a broadcast.
 * Compiled with AVX-512 flags; attention.c calls it only on CPUs that have
 * them. Layouts: attention-kernels.h. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention-kernels.h"
#include "numeric-inline.h"

#define ROWS 6
#define ALWAYS_INLINE static inline __attribute__ ((always_inline))

/* s[6, 16·nv] = a[6, dp] · bt[dp, TILE_K] */
ALWAYS_INLINE void
scores_f32_block (const float *a, const float *bt, float *s, int dp, const int nv)
{
  __m512 acc[ROWS][4];

#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      acc[r][v] = _mm512_setzero_ps ();
  for (int c = 0; c < dp; c++) {
    __m512 b[4];

#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      b[v] = _mm512_load_ps (bt + (size_t) c * ATTENTION_TILE_K + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
      __m512 x = _mm512_set1_ps (a[(size_t) r * dp + c]);

#pragma GCC unroll 4
      for (int v = 0; v < nv; v++)
        acc[r][v] = _mm512_fmadd_ps (x, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      _mm512_store_ps (s + (size_t) r * ATTENTION_TILE_K + 16 * v, acc[r][v]);
}

/* s[6, 16·nv] = a[6, dp] · bt[dp/2, TILE_K, 2], bf16 pairs */
ALWAYS_INLINE void
scores_bf16_block (const guint16 *a, const guint16 *bt, float *s, int dp, const int nv)
{
  __m512 acc[ROWS][4];

#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      acc[r][v] = _mm512_setzero_ps ();
  for (int c = 0; c < dp / 2; c++) {
    __m512i b[4];

#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      b[v] = _mm512_load_si512 (bt + ((size_t) c * ATTENTION_TILE_K + 16 * v) * 2);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
      guint32 pair;
      __m512i x;

      memcpy (&pair, a + (size_t) r * dp + 2 * c, sizeof pair);
      x = _mm512_set1_epi32 ((int) pair);
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++)
        acc[r][v] = _mm512_dpbf16_ps (acc[r][v], (__m512bh) x, (__m512bh) b[v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
      _mm512_store_ps (s + (size_t) r * ATTENTION_TILE_K + 16 * v, acc[r][v]);
}

/* o[6, c0..c0+16·nv] += p[6, nk] · v[nk, dp] */
ALWAYS_INLINE void
accumulate_f32_block (const float *p, const float *v, float *o, int nk, int dp, int c0,
    const int nv)
{
  __m512 acc[ROWS][4];

#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      acc[r][k] = _mm512_load_ps (o + (size_t) r * dp + c0 + 16 * k);
  for (int j = 0; j < nk; j++) {
    __m512 w[4];

#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      w[k] = _mm512_load_ps (v + (size_t) j * dp + c0 + 16 * k);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
      __m512 x = _mm512_set1_ps (p[(size_t) r * ATTENTION_TILE_K + j]);

#pragma GCC unroll 4
      for (int k = 0; k < nv; k++)
        acc[r][k] = _mm512_fmadd_ps (x, w[k], acc[r][k]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      _mm512_store_ps (o + (size_t) r * dp + c0 + 16 * k, acc[r][k]);
}

/* o[6, c0..c0+16·nv] += p[6, nk] · v[nk/2, dp, 2], bf16 pairs of keys */
ALWAYS_INLINE void
accumulate_bf16_block (const guint16 *p, const guint16 *v, float *o, int nk, int dp, int c0,
    const int nv)
{
  __m512 acc[ROWS][4];

#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      acc[r][k] = _mm512_load_ps (o + (size_t) r * dp + c0 + 16 * k);
  for (int j = 0; j < nk / 2; j++) {
    __m512i w[4];

#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      w[k] = _mm512_load_si512 (v + ((size_t) j * dp + c0 + 16 * k) * 2);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
      guint32 pair;
      __m512i x;

      memcpy (&pair, p + (size_t) r * ATTENTION_TILE_K + 2 * j, sizeof pair);
      x = _mm512_set1_epi32 ((int) pair);
#pragma GCC unroll 4
      for (int k = 0; k < nv; k++)
        acc[r][k] = _mm512_dpbf16_ps (acc[r][k], (__m512bh) x, (__m512bh) w[k]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int k = 0; k < nv; k++)
      _mm512_store_ps (o + (size_t) r * dp + c0 + 16 * k, acc[r][k]);
}

/* The block functions want their vector counts as constants, to keep the
 * accumulators in registers: one call per count. */
#define BY_COUNT(n, call) \
  switch (n) { \
    case 1: call (1); break; \
    case 2: call (2); break; \
    case 3: call (3); break; \
    default: call (4); break; \
  }

static void
scores_f32 (const void *a, const void *bt, float *s, int rows, int nk, int dp)
{
  for (int r0 = 0; r0 < rows; r0 += ROWS) {
    const float *ar = (const float *) a + (size_t) r0 * dp;
    float *sr = s + (size_t) r0 * ATTENTION_TILE_K;
#define CALL(nv) scores_f32_block (ar, bt, sr, dp, nv)
    BY_COUNT (nk / 16, CALL);
#undef CALL
  }
}

static void
scores_bf16 (const void *a, const void *bt, float *s, int rows, int nk, int dp)
{
  for (int r0 = 0; r0 < rows; r0 += ROWS) {
    const guint16 *ar = (const guint16 *) a + (size_t) r0 * dp;
    float *sr = s + (size_t) r0 * ATTENTION_TILE_K;
#define CALL(nv) scores_bf16_block (ar, bt, sr, dp, nv)
    BY_COUNT (nk / 16, CALL);
#undef CALL
  }
}

/* Columns in chunks of 64 (dp is a multiple of 32: the last may be 32). */
static void
accumulate_f32 (const void *p, const void *v, float *o, int rows, int nk, int dp)
{
  for (int r0 = 0; r0 < rows; r0 += ROWS)
    for (int c0 = 0; c0 < dp; c0 += 64) {
      const float *pr = (const float *) p + (size_t) r0 * ATTENTION_TILE_K;
      float *orow = o + (size_t) r0 * dp;
#define CALL(nv) accumulate_f32_block (pr, v, orow, nk, dp, c0, nv)
      BY_COUNT (MIN (dp - c0, 64) / 16, CALL);
#undef CALL
    }
}

static void
accumulate_bf16 (const void *p, const void *v, float *o, int rows, int nk, int dp)
{
  for (int r0 = 0; r0 < rows; r0 += ROWS)
    for (int c0 = 0; c0 < dp; c0 += 64) {
      const guint16 *pr = (const guint16 *) p + (size_t) r0 * ATTENTION_TILE_K;
      float *orow = o + (size_t) r0 * dp;
#define CALL(nv) accumulate_bf16_block (pr, v, orow, nk, dp, c0, nv)
      BY_COUNT (MIN (dp - c0, 64) / 16, CALL);
#undef CALL
    }
}

/* exp(x) for x <= 0 as exp_inline computes it (the same polynomial), with
 * the power of two applied by vscalefps, which also takes x below -87 to 0
 * without a clamp on the exponent. */
ALWAYS_INLINE __m512
exp_nonpositive (__m512 x)
{
  __m512 n, r, r2, p;

  x = _mm512_max_ps (x, _mm512_set1_ps (-104.0f));
  n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (EXP_LOG2E)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm512_fnmadd_ps (n, _mm512_set1_ps (EXP_LN2_HI), x);
  r = _mm512_fmadd_ps (n, _mm512_set1_ps (EXP_LN2_LO), r);
  r2 = _mm512_mul_ps (r, r);
  p = _mm512_set1_ps (exp_poly[0]);
#pragma GCC unroll 5
  for (int i = 1; i < 6; i++)
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (exp_poly[i]));
  p = _mm512_add_ps (_mm512_fmadd_ps (p, r2, r), _mm512_set1_ps (1.0f));
  return _mm512_scalef_ps (p, n);
}

/* The row in registers, 4 vectors of 16 keys; lanes past nv are masked out
 * of the max and written as zero. */
static float
softmax_row (float *s, guint16 *p, int nv, float scale, const float *bias, float *m, float *l)
{
  __m512 t[4], mx = _mm512_set1_ps (*m), sum = _mm512_setzero_ps ();
  __mmask16 k[4];
  float top, corr;

#pragma GCC unroll 4
  for (int v = 0; v < 4; v++) {
    int left = CLAMP (nv - 16 * v, 0, 16);

    k[v] = (__mmask16) ((1u << left) - 1);
    t[v] = _mm512_mul_ps (_mm512_load_ps (s + 16 * v), _mm512_set1_ps (scale));
    if (bias)
      t[v] = _mm512_add_ps (t[v], _mm512_loadu_ps (bias + 16 * v));
    mx = _mm512_mask_max_ps (mx, k[v], mx, t[v]);
  }
  top = _mm512_reduce_max_ps (mx);
#pragma GCC unroll 4
  for (int v = 0; v < 4; v++) {
    __m512 e = _mm512_maskz_mov_ps (k[v],
        exp_nonpositive (_mm512_sub_ps (t[v], _mm512_set1_ps (top))));

    sum = _mm512_add_ps (sum, e);
    if (p)
      _mm256_storeu_si256 ((__m256i *) (p + 16 * v), (__m256i) _mm512_cvtneps_pbh (e));
    else
      _mm512_store_ps (s + 16 * v, e);
  }
  corr = *m == -INFINITY ? 0.0f : exp_inline (*m - top);
  *m = top;
  *l = *l * corr + _mm512_reduce_add_ps (sum);
  return corr;
}

const struct attention_tile_ops attention_avx512_ops = {
  FALSE, scores_f32, accumulate_f32, softmax_row,
};

const struct attention_tile_ops attention_avx512_bf16_ops = {
  TRUE, scores_bf16, accumulate_bf16, softmax_row,
};
