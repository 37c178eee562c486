/* Fused attention against a naive loop in double: every kernel this CPU runs,
 * every variant (plain, causal, biased, accumulating), sequence lengths
 * around the tile sizes and head widths that are and are not multiples of
 * the padding. */
#include <math.h>

#include <glib.h>

#include "attention.h"

/* fp32 kernels reorder sums; bf16 rounds A, B, V and the probabilities to 8
 * significant bits */
#define TOLERANCE_FP32 2e-5
#define TOLERANCE_BF16 3e-2

struct variant
{
  gboolean causal, bias, accumulate;
};

static float *
random_floats (GRand * rng, size_t n, double amplitude)
{
  float *x = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -amplitude, amplitude);
  return x;
}

/* The grid bias of tokens i and j, from the definition in attention.h. */
static double
naive_bias (const struct attention_grid_bias *b, int i, int j)
{
  if (!b || i == 0 || j == 0)
    return 0.0;
  return (double) b->gy[ABS ((i - 1) / b->gw - (j - 1) / b->gw)]
      * b->gx[ABS ((i - 1) % b->gw - (j - 1) % b->gw)];
}

/* out (+)= softmax(scale · A Bᵀ + bias) V, in double */
static void
naive_attention (const struct attention_head *h, double *out)
{
  double *s = g_new (double, h->L);

  for (int i = 0; i < h->L; i++) {
    int n = h->causal ? i + 1 : h->L;
    double mx = -INFINITY, sum = 0;

    for (int j = 0; j < n; j++) {
      double dot = 0;

      for (int c = 0; c < h->d; c++)
        dot += (double) h->a[(size_t) i * h->ld + c] * h->b[(size_t) j * h->ld + c];
      s[j] = dot * h->scale + naive_bias (h->bias, i, j);
      mx = MAX (mx, s[j]);
    }
    for (int j = 0; j < n; j++)
      sum += s[j] = exp (s[j] - mx);
    for (int c = 0; c < h->d; c++) {
      double acc = h->accumulate ? h->out[(size_t) i * h->ld_out + c] : 0.0;

      for (int j = 0; j < n; j++)
        acc += s[j] / sum * h->v[(size_t) j * h->ld + c];
      out[(size_t) i * h->d + c] = acc;
    }
  }
  g_free (s);
}

/* Largest difference between @kernel's result and the naive one. */
static double
run_case (enum attention_kernel kernel, int L, int d, const struct variant *var, GRand * rng)
{
  int ld = 3 * d + 5, ld_out = d + 3;
  float *qkv = random_floats (rng, (size_t) L * ld, 2.0);
  int gw = 7, gh = L / gw + 1;  /* a last grid row may be partial */
  float *tables = random_floats (rng, gh + gw, 1.5);
  struct attention_grid_bias grid = { gw, tables, tables + gh };
  float *out = random_floats (rng, (size_t) L * ld_out, 1.0);
  double *want = g_new (double, (size_t) L * d), err = 0;
  void *scratch = g_malloc (attention_scratch_size (L, d));
  struct attention_head h = {
    .a = qkv,.b = qkv + d,.v = qkv + 2 * d,.ld = ld,.out = out,.ld_out = ld_out,
    .L = L,.d = d,.scale = 1.0f / sqrtf ((float) d),.bias = var->bias ? &grid : NULL,.causal =
        var->causal,
    .accumulate = var->accumulate,
  };

  naive_attention (&h, want);
  /* the scratch's alignment is the kernel's business */
  attention_run (kernel, &h, (char *) scratch + 4);
  for (int i = 0; i < L; i++)
    for (int c = 0; c < d; c++)
      err = MAX (err, fabs (out[(size_t) i * ld_out + c] - want[(size_t) i * d + c]));
  g_free (scratch), g_free (want), g_free (out), g_free (tables), g_free (qkv);
  return err;
}

static void
test_kernel (gconstpointer data)
{
  enum attention_kernel kernel = GPOINTER_TO_INT (data);
  static const int lengths[] = { 1, 5, 47, 48, 49, 77, 130, 197 };
  static const int widths[] = { 64, 8, 40, 96 };
  static const struct variant variants[] = {
    {FALSE, FALSE, FALSE}, {TRUE, FALSE, FALSE}, {FALSE, TRUE, FALSE}, {FALSE, FALSE, TRUE},
  };
  double tolerance = kernel == ATTENTION_KERNEL_AVX512_BF16 ? TOLERANCE_BF16 : TOLERANCE_FP32;
  double worst = 0;
  GRand *rng = g_rand_new_with_seed (11);

  if (!attention_kernel_runs (kernel)) {
    g_test_skip ("this CPU or build does not run the kernel");
    g_rand_free (rng);
    return;
  }
  for (guint l = 0; l < G_N_ELEMENTS (lengths); l++)
    for (guint w = 0; w < G_N_ELEMENTS (widths); w++)
      for (guint v = 0; v < G_N_ELEMENTS (variants); v++) {
        double err = run_case (kernel, lengths[l], widths[w], &variants[v], rng);

        if (err > tolerance)
          g_error ("%s: L %d, d %d, causal %d, bias %d, accumulate %d: error %g > %g",
              attention_kernel_name (kernel), lengths[l], widths[w], variants[v].causal,
              variants[v].bias, variants[v].accumulate, err, tolerance);
        worst = MAX (worst, err);
      }
  g_test_message ("%s: largest error %.3g", attention_kernel_name (kernel), worst);
  g_rand_free (rng);
}

/* Large scores: the running max moves by far more than exp's range between
 * key tiles, and must rescale what came before instead of overflowing. */
static void
test_large_scores (void)
{
  enum attention_kernel kernel = attention_kernel_for (CLIPSEG_PRECISION_FP32);
  int L = 200, d = 64;
  float *qkv = g_new0 (float, (size_t) L * 3 * d), *out = g_new (float, (size_t) L * d);
  void *scratch = g_malloc (attention_scratch_size (L, d));
  struct attention_head h = {
    .a = qkv,.b = qkv + d,.v = qkv + 2 * d,.ld = 3 * d,.out = out,.ld_out = d,
    .L = L,.d = d,.scale = 1.0f,
  };

  /* q = 1 everywhere; key j scores 10·j, so the last key takes all weight */
  for (int i = 0; i < L; i++) {
    qkv[(size_t) i * 3 * d] = 1.0f;
    qkv[(size_t) i * 3 * d + d] = 10.0f * i;
    qkv[(size_t) i * 3 * d + 2 * d] = (float) i;
  }
  attention_run (kernel, &h, scratch);
  for (int i = 0; i < L; i++)
    g_assert_cmpfloat_with_epsilon (out[(size_t) i * d], L - 1, 1e-3);
  g_free (scratch), g_free (out), g_free (qkv);
}

/* CLIPSEG_DISABLE_AVX512 selects the portable kernel for either precision. */
static void
test_disable_avx512 (void)
{
  g_setenv ("CLIPSEG_DISABLE_AVX512", "1", TRUE);
  g_assert_cmpint (attention_kernel_for (CLIPSEG_PRECISION_BF16), ==, ATTENTION_KERNEL_PORTABLE);
  g_assert_cmpint (attention_kernel_for (CLIPSEG_PRECISION_FP32), ==, ATTENTION_KERNEL_PORTABLE);
  g_unsetenv ("CLIPSEG_DISABLE_AVX512");
  if (attention_kernel_runs (ATTENTION_KERNEL_AVX512))
    g_assert_cmpint (attention_kernel_for (CLIPSEG_PRECISION_FP32), ==, ATTENTION_KERNEL_AVX512);
}

int
main (int argc, char **argv)
{
  static const enum attention_kernel kernels[] = {
    ATTENTION_KERNEL_PORTABLE, ATTENTION_KERNEL_AVX512, ATTENTION_KERNEL_AVX512_BF16,
  };

  g_test_init (&argc, &argv, NULL);
  for (guint k = 0; k < G_N_ELEMENTS (kernels); k++) {
    char *path = g_strdup_printf ("/attention/%s", attention_kernel_name (kernels[k]));

    g_test_add_data_func (path, GINT_TO_POINTER (kernels[k]), test_kernel);
    g_free (path);
  }
  g_test_add_func ("/attention/large-scores", test_large_scores);
  g_test_add_func ("/attention/disable-avx512", test_disable_avx512);
  return g_test_run ();
}
