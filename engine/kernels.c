/* kernels.c — layer norm, activations, softmax, normalisation and the GEMM wrappers. */
#include <math.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "kernels.h"
#include "numeric-inline.h"

/* Element loops below ~64k values run faster on one thread than a fork/join. */
#define PARALLEL_MIN_WORK 65536

void
linear (const float *x, int ldx, const float *w, const float *b, float *y, int ldy,
    int M, int N, int K, float beta)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, w, K, beta, y, ldy);
  if (!b)
    return;
#pragma omp parallel for if ((long) M * N >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++) {
    float *row = y + (size_t) i * ldy;

    for (int j = 0; j < N; j++)
      row[j] += b[j];
  }
}

void
matmul_nt (const float *a, int lda, const float *b, int ldb, float *c, int ldc,
    int M, int N, int K, float alpha)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, alpha, a, lda, b, ldb, 0.0f, c,
      ldc);
}

void
matmul_nn (const float *a, int lda, const float *b, int ldb, float *c, int ldc,
    int M, int N, int K, float beta)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, lda, b, ldb, beta, c,
      ldc);
}

float
kernel_expf (float x)
{
  return exp_inline (x);
}

ROW_KERNEL static void
layer_norm_row (const float *x, const float *g, const float *b, float eps, float *y, int D)
{
  float mean = 0.0f, var = 0.0f, inv;

#pragma omp simd reduction(+:mean)
  for (int j = 0; j < D; j++)
    mean += x[j];
  mean /= (float) D;
#pragma omp simd reduction(+:var)
  for (int j = 0; j < D; j++)
    var += (x[j] - mean) * (x[j] - mean);
  inv = 1.0f / sqrtf (var / (float) D + eps);
  for (int j = 0; j < D; j++)
    y[j] = (x[j] - mean) * inv * g[j] + b[j];
}

void
layer_norm (const float *x, int ldx, const float *g, const float *b, float eps, float *y,
    int ldy, int M, int D)
{
#pragma omp parallel for if ((long) M * D >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++)
    layer_norm_row (x + (size_t) i * ldx, g, b, eps, y + (size_t) i * ldy, D);
}

ROW_KERNEL static void
quick_gelu_row (float *x, int n)
{
  for (int j = 0; j < n; j++)
    x[j] = x[j] / (1.0f + exp_inline (-1.702f * x[j]));
}

static void
gelu_row (float *x, int n)
{
  for (int j = 0; j < n; j++)
    x[j] = 0.5f * x[j] * (1.0f + erff (x[j] * (float) M_SQRT1_2));
}

void
activation (float *x, int ldx, int M, int N, enum clipseg_activation act)
{
  g_assert (act == CLIPSEG_ACTIVATION_QUICK_GELU || act == CLIPSEG_ACTIVATION_GELU);
#pragma omp parallel for if ((long) M * N >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++) {
    if (act == CLIPSEG_ACTIVATION_QUICK_GELU)
      quick_gelu_row (x + (size_t) i * ldx, N);
    else
      gelu_row (x + (size_t) i * ldx, N);
  }
}

ROW_KERNEL static void
swiglu_row (float *a, const float *gate, int n)
{
  for (int j = 0; j < n; j++)
    a[j] = a[j] / (1.0f + exp_inline (-a[j])) * gate[j];
}

void
swiglu (float *a, const float *gate, int M, int N)
{
#pragma omp parallel for if ((long) M * N >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++)
    swiglu_row (a + (size_t) i * N, gate + (size_t) i * N, N);
}

ROW_KERNEL static void
softmax_row (float *x, int n, float scale)
{
  float max = x[0], sum = 0.0f, inv;

#pragma omp simd reduction(max:max)
  for (int j = 1; j < n; j++)
    max = x[j] > max ? x[j] : max;
#pragma omp simd reduction(+:sum)
  for (int j = 0; j < n; j++) {
    x[j] = exp_inline (scale * (x[j] - max));
    sum += x[j];
  }
  inv = 1.0f / sum;
  for (int j = 0; j < n; j++)
    x[j] *= inv;
}

void
softmax_rows (float *x, int ldx, int M, int N, float scale)
{
  g_assert (scale > 0.0f);
#pragma omp parallel for if ((long) M * N >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++)
    softmax_row (x + (size_t) i * ldx, N, scale);
}

ROW_KERNEL static void
l2_normalize_row (float *x, int D)
{
  float sum = 0.0f, inv;

#pragma omp simd reduction(+:sum)
  for (int j = 0; j < D; j++)
    sum += x[j] * x[j];
  if (sum == 0.0f)
    return;
  inv = 1.0f / sqrtf (sum);
  for (int j = 0; j < D; j++)
    x[j] *= inv;
}

void
l2_normalize_rows (float *x, int ldx, int M, int D)
{
#pragma omp parallel for if ((long) M * D >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++)
    l2_normalize_row (x + (size_t) i * ldx, D);
}

/* Selects by bit masks, not ?: — GCC turns those into branches here and then
 * cannot vectorise the loop. */
static inline float
half_bits_to_float (guint16 h)
{
  union
  {
    guint32 u;
    float f;
  } subnormal, out;
  guint32 magnitude = h & 0x7fffu;
  guint32 is_special = -(guint32) (magnitude >= 0x7c00u);       /* infinity, NaN */
  guint32 is_subnormal = -(guint32) (magnitude < 0x400u);       /* and zero */
  guint32 normal = (magnitude << 13) + (112u << 23);    /* exponent bias 15 -> 127 */
  guint32 special = (magnitude << 13) | 0x7f800000u;

  subnormal.f = (float) (gint32) magnitude *0x1p-24f;   /* exact */
  out.u = (special & is_special) | (normal & ~is_special);
  out.u = (subnormal.u & is_subnormal) | (out.u & ~is_subnormal);
  out.u |= (guint32) (h & 0x8000u) << 16;
  return out.f;
}

ROW_KERNEL static void
half_to_float_block (const guint8 *src, float *dst, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    guint16 h;

    memcpy (&h, src + 2 * i, sizeof h);
    dst[i] = half_bits_to_float (GUINT16_FROM_LE (h));
  }
}

ROW_KERNEL static void
bf16_to_float_block (const guint8 *src, float *dst, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    guint16 h;
    guint32 bits;

    memcpy (&h, src + 2 * i, sizeof h);
    bits = (guint32) GUINT16_FROM_LE (h) << 16;
    memcpy (&dst[i], &bits, sizeof bits);
  }
}

/* Blocks of 64k values: one per thread at a time, outside parallel regions. */
#define CONVERT_BLOCK 65536

static void
convert_blocks (const guint8 *src, float *dst, size_t n,
    void (*block) (const guint8 *, float *, size_t))
{
  gint64 n_blocks = (gint64) ((n + CONVERT_BLOCK - 1) / CONVERT_BLOCK);

#pragma omp parallel for if (n_blocks > 1 && !omp_in_parallel ())
  for (gint64 b = 0; b < n_blocks; b++) {
    size_t first = (size_t) b * CONVERT_BLOCK;

    block (src + 2 * first, dst + first, MIN (CONVERT_BLOCK, n - first));
  }
}

void
half_to_float_n (const guint8 *src, float *dst, size_t n)
{
  convert_blocks (src, dst, n, half_to_float_block);
}

void
bf16_to_float_n (const guint8 *src, float *dst, size_t n)
{
  convert_blocks (src, dst, n, bf16_to_float_block);
}

ROW_KERNEL static void
float_to_bf16_row (const float *x, guint16 *dst, int n)
{
#pragma omp simd
  for (int j = 0; j < n; j++)
    dst[j] = bf16_round (x[j]);
}

void
float_to_bf16_rows (const float *x, int ldx, guint16 *dst, int M, int K)
{
#pragma omp parallel for if ((long) M * K >= PARALLEL_MIN_WORK && !omp_in_parallel ())
  for (int i = 0; i < M; i++)
    float_to_bf16_row (x + (size_t) i * ldx, dst + (size_t) i * K, K);
}
