/* attention-avx512.c — the products of one attention tile in AVX-512F (fp32)
 * and AVX512-BF16 (vdpbf16ps), in register blocks of 6 query rows by 64 keys
 * or 64 value columns: 24 accumulators, 4 operand vectors and a broadcast.
 * Compiled with AVX-512 flags; attention.c calls it only on CPUs that have
 * them. Layouts: attention-kernels.h. */
#include <immintrin.h>
#include <string.h>

#include "attention-kernels.h"

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

const struct attention_tile_ops attention_avx512_ops = {
  FALSE, scores_f32, accumulate_f32,
};

const struct attention_tile_ops attention_avx512_bf16_ops = {
  TRUE, scores_bf16, accumulate_bf16,
};
