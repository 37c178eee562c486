/* kernels.h — internal: the small numeric kernels the forward passes are made of,
 * and the weight conversions at load time.
 *
 * Matrices are row-major with explicit leading dimensions (ld*), so a kernel can
 * read one head's columns out of a fused [L, 3D] q|k|v buffer without copying.
 * The matrix products are the only callers of BLAS. Row kernels parallelise
 * over rows with OpenMP when called outside a parallel region.
 */
#ifndef KERNELS_H
#define KERNELS_H

#include "clipseg-engine.h"

/* y[M,N] = beta·y + x[M,K] · w[N,K]ᵀ + b[N]  (PyTorch Linear; b may be NULL) */
void linear (const float *x, int ldx, const float *w, const float *b, float *y, int ldy,
    int M, int N, int K, float beta);

/* c[M,N] = alpha · a[M,K] · b[N,K]ᵀ  (e.g. MaskCLIP's key affinities) */
void matmul_nt (const float *a, int lda, const float *b, int ldb, float *c, int ldc,
    int M, int N, int K, float alpha);

/* c[M,N] = beta·c + a[M,K] · b[K,N] */
void matmul_nn (const float *a, int lda, const float *b, int ldb, float *c, int ldc,
    int M, int N, int K, float beta);

/* y = (x - mean) / sqrt(var + eps) · g + b, per row of D values */
void layer_norm (const float *x, int ldx, const float *g, const float *b, float eps, float *y,
    int ldy, int M, int D);

/* In place, elementwise over [M, N]: QuickGELU x·σ(1.702x) or exact erf GELU. */
void activation (float *x, int ldx, int M, int N, enum clipseg_activation act);

/* In place over [M, N] (contiguous): a ← silu(a) · gate (EVA02's SwiGLU,
 * silu(x) = x·σ(x)). */
void swiglu (float *a, const float *gate, int M, int N);

/* In place per row of N values: x ← softmax(scale · x). (Attention has its
 * own, fused softmax: attention.h.) */
void softmax_rows (float *x, int ldx, int M, int N, float scale);

/* In place: each row of D values scaled to unit L2 norm (zero rows stay zero). */
void l2_normalize_rows (float *x, int ldx, int M, int D);

/* exp() accurate to a few ulp for x <= 88, vectorisable; exposed for the tests. */
float kernel_expf (float x);

/* dst[i] = the i-th little-endian IEEE half (F16) or bfloat16 (BF16) value of
 * @src as float, exactly: subnormals, infinities and NaN payloads included.
 * @src needs no alignment. Used once per tensor when a checkpoint loads. */
void half_to_float_n (const guint8 *src, float *dst, size_t n);
void bf16_to_float_n (const guint8 *src, float *dst, size_t n);

/* dst[M,K] (contiguous) = x[M,K] (row stride ldx) rounded to the nearest
 * bfloat16, ties to even; NaN stays NaN. The input of a bf16 GEMM. */
void float_to_bf16_rows (const float *x, int ldx, guint16 *dst, int M, int K);

#endif
