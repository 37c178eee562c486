/* test-kernels.c — every kernel against a naive double-precision loop, on
 * random data with leading dimensions larger than the rows (strided views). */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "kernels.h"

static float *
random_floats (GRand * rng, size_t n, double scale)
{
  float *v = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rng, -scale, scale);
  return v;
}

static double
max_abs_diff (const float *a, const double *b, int M, int N, int lda)
{
  double worst = 0;

  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      worst = MAX (worst, fabs ((double) a[(size_t) i * lda + j] - b[(size_t) i * N + j]));
  return worst;
}

static void
test_linear (void)
{
  GRand *rng = g_rand_new_with_seed (1);
  int M = 37, N = 29, K = 53, ldx = K + 3, ldy = N + 5;
  float *x = random_floats (rng, (size_t) M * ldx, 1), *w = random_floats (rng, (size_t) N * K, 1);
  float *b = random_floats (rng, N, 1), *y = random_floats (rng, (size_t) M * ldy, 1);
  double *want = g_new (double, (size_t) M * N);

  for (float beta = 0.0f; beta <= 1.0f; beta += 1.0f) {
    float *y0 = g_memdup2 (y, sizeof (float) * M * ldy);

    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double s = beta * (double) y0[(size_t) i * ldy + j] + b[j];
        for (int k = 0; k < K; k++)
          s += (double) x[(size_t) i * ldx + k] * w[(size_t) j * K + k];
        want[(size_t) i * N + j] = s;
      }
    linear (x, ldx, w, b, y0, ldy, M, N, K, beta);
    g_assert_cmpfloat (max_abs_diff (y0, want, M, N, ldy), <, 1e-4);
    /* the padding past N columns is never written */
    for (int i = 0; i < M; i++)
      for (int j = N; j < ldy; j++)
        g_assert_cmpfloat (y0[(size_t) i * ldy + j], ==, y[(size_t) i * ldy + j]);
    g_free (y0);
  }
  g_free (want);
  g_free (x), g_free (w), g_free (b), g_free (y);
  g_rand_free (rng);
}

static void
test_layer_norm (void)
{
  GRand *rng = g_rand_new_with_seed (3);
  int M = 300, D = 257, ld = D + 7;     /* enough rows for the parallel path */
  float *x = random_floats (rng, (size_t) M * ld, 3), *g = random_floats (rng, D, 2);
  float *b = random_floats (rng, D, 1), *y = g_new0 (float, (size_t) M * ld);
  double *want = g_new (double, (size_t) M * D);

  for (int i = 0; i < M; i++) {
    double mean = 0, var = 0;
    const float *r = x + (size_t) i * ld;

    for (int j = 0; j < D; j++)
      mean += r[j];
    mean /= D;
    for (int j = 0; j < D; j++)
      var += (r[j] - mean) * (r[j] - mean);
    var /= D;
    for (int j = 0; j < D; j++)
      want[(size_t) i * D + j] = (r[j] - mean) / sqrt (var + 1e-5) * g[j] + b[j];
  }
  layer_norm (x, ld, g, b, 1e-5f, y, ld, M, D);
  g_assert_cmpfloat (max_abs_diff (y, want, M, D, ld), <, 5e-5);
  /* in place, as the vision tower uses it for ln_pre */
  layer_norm (x, ld, g, b, 1e-5f, x, ld, M, D);
  g_assert_cmpfloat (max_abs_diff (x, want, M, D, ld), <, 5e-5);
  g_free (want);
  g_free (x), g_free (g), g_free (b), g_free (y);
  g_rand_free (rng);
}

static void
check_activation (enum clipseg_activation act)
{
  GRand *rng = g_rand_new_with_seed (4);
  int M = 64, N = 1100, ld = N + 2;
  float *x = random_floats (rng, (size_t) M * ld, 12);
  double *want = g_new (double, (size_t) M * N);

  x[0] = -200.0f, x[1] = 200.0f, x[2] = 0.0f;   /* saturation and zero */
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double v = x[(size_t) i * ld + j];
      want[(size_t) i * N + j] = act == CLIPSEG_ACTIVATION_QUICK_GELU
          ? v / (1.0 + exp (-1.702 * v)) : 0.5 * v * (1.0 + erf (v / sqrt (2.0)));
    }
  activation (x, ld, M, N, act);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double got = x[(size_t) i * ld + j], w = want[(size_t) i * N + j];
      g_assert_cmpfloat (fabs (got - w), <=, 1e-6 + 2e-6 * fabs (w));
    }
  g_free (want);
  g_free (x);
  g_rand_free (rng);
}

static void
test_quick_gelu (void)
{
  check_activation (CLIPSEG_ACTIVATION_QUICK_GELU);
}

static void
test_gelu (void)
{
  check_activation (CLIPSEG_ACTIVATION_GELU);
}

static void
test_softmax (void)
{
  GRand *rng = g_rand_new_with_seed (5);
  int M = 80, N = 77, ld = 90;
  float scale = 0.125f;
  float *x = random_floats (rng, (size_t) M * ld, 40);
  double *want = g_new (double, (size_t) M * N);

  for (int i = 0; i < M; i++) {
    double max = -INFINITY, sum = 0;
    const float *r = x + (size_t) i * ld;

    for (int j = 0; j < N; j++)
      max = MAX (max, (double) r[j]);
    for (int j = 0; j < N; j++)
      sum += exp (scale * (r[j] - max));
    for (int j = 0; j < N; j++)
      want[(size_t) i * N + j] = exp (scale * (r[j] - max)) / sum;
  }
  softmax_rows (x, ld, M, N, scale);
  g_assert_cmpfloat (max_abs_diff (x, want, M, N, ld), <, 1e-6);
  g_free (want);
  g_free (x);
  g_rand_free (rng);
}

static void
test_l2_normalize (void)
{
  GRand *rng = g_rand_new_with_seed (6);
  int M = 50, D = 33, ld = 40;
  float *x = random_floats (rng, (size_t) M * ld, 5);
  double *want = g_new (double, (size_t) M * D);

  memset (x + 7 * ld, 0, D * sizeof (float));   /* a zero row stays zero */
  for (int i = 0; i < M; i++) {
    double n = 0;
    for (int j = 0; j < D; j++)
      n += (double) x[(size_t) i * ld + j] * x[(size_t) i * ld + j];
    n = sqrt (n);
    for (int j = 0; j < D; j++)
      want[(size_t) i * D + j] = n > 0 ? x[(size_t) i * ld + j] / n : 0.0;
  }
  l2_normalize_rows (x, ld, M, D);
  g_assert_cmpfloat (max_abs_diff (x, want, M, D, ld), <, 1e-6);
  g_free (want);
  g_free (x);
  g_rand_free (rng);
}

/* the vectorisable exp: relative error of a few ulp over the range softmax and
 * QuickGELU use, and clean saturation beyond it */
static void
test_expf (void)
{
  double worst = 0;

  for (double v = -87.0; v <= 88.0; v += 0.001) {
    double want = exp ((float) v);
    worst = MAX (worst, fabs (kernel_expf ((float) v) - want) / want);
  }
  g_assert_cmpfloat (worst, <, 5e-7);
  g_assert_cmpfloat (kernel_expf (-1000.0f), <, 1e-37);
  g_assert_cmpfloat (kernel_expf (-1000.0f), >=, 0.0f);
  g_assert_true (isfinite (kernel_expf (1000.0f)));
  g_assert_cmpfloat (kernel_expf (0.0f), ==, 1.0f);
}

/* Every one of the 65536 half and bfloat16 bit patterns, at an odd address,
 * against the definitions: sign · 2^(e-15) · (1 + m/1024), subnormals
 * sign · m · 2^-24, exponent 31 infinity or NaN; bfloat16 is a float's top half. */
static void
test_half_and_bf16 (void)
{
  guint8 *bytes = g_malloc (2 * 65536 + 1);
  float *got = g_new (float, 65536);

  for (guint32 h = 0; h < 65536; h++) {
    bytes[1 + 2 * h] = h & 0xff;
    bytes[2 + 2 * h] = h >> 8;
  }
  half_to_float_n (bytes + 1, got, 65536);
  for (guint32 h = 0; h < 65536; h++) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double sign = (h & 0x8000) ? -1.0 : 1.0;

    if (e == 31 && m != 0) {
      g_assert_true (isnan (got[h]));
      g_assert_cmpint (!!signbit (got[h]), ==, !!(h & 0x8000));
    } else if (e == 31)
      g_assert_cmpfloat (got[h], ==, sign * INFINITY);
    else {
      double want = sign * (e == 0 ? ldexp (m, -24) : ldexp (1024 + m, e - 25));

      g_assert_cmpfloat (got[h], ==, want);
      g_assert_cmpint (!!signbit (got[h]), ==, !!(h & 0x8000));
    }
  }
  bf16_to_float_n (bytes + 1, got, 65536);
  for (guint32 h = 0; h < 65536; h++) {
    guint32 bits;

    memcpy (&bits, &got[h], sizeof bits);
    g_assert_cmpuint (bits, ==, h << 16);
  }
  g_free (got);
  g_free (bytes);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kernels/linear", test_linear);
  g_test_add_func ("/kernels/layer-norm", test_layer_norm);
  g_test_add_func ("/kernels/quick-gelu", test_quick_gelu);
  g_test_add_func ("/kernels/gelu", test_gelu);
  g_test_add_func ("/kernels/softmax", test_softmax);
  g_test_add_func ("/kernels/l2-normalize", test_l2_normalize);
  g_test_add_func ("/kernels/expf", test_expf);
  g_test_add_func ("/kernels/half-and-bf16", test_half_and_bf16);
  return g_test_run ();
}
