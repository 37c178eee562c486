/* test-gemm.c — packed linears of every backend this build has against a
 * naive double-precision loop, concurrent runs against a lone one, and the
 * precision choice on machines that cannot run bf16. */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <omp.h>

#include "gemm.h"

/* One linear to check: M rows through N outputs stacked from n_parts parts. */
struct shape
{
  int M, K, ldx, ldy, n_parts, part_n;
  gboolean accumulate, biased;
  enum gemm_epilogue epilogue;
};

static const struct shape shapes[] = {
  {197, 768, 768, 2304, 3, 768, FALSE, TRUE, GEMM_EPILOGUE_NONE},       /* ViT-B q|k|v */
  {7, 64, 80, 100, 1, 96, TRUE, TRUE, GEMM_EPILOGUE_NONE},      /* strided, residual */
  {33, 96, 96, 384, 1, 384, FALSE, TRUE, GEMM_EPILOGUE_QUICK_GELU},
  {1, 48, 48, 200, 1, 200, FALSE, TRUE, GEMM_EPILOGUE_GELU},
  {64, 192, 192, 24, 2, 12, FALSE, FALSE, GEMM_EPILOGUE_NONE},  /* no bias */
};

static float
bf16_round (float v)
{
  guint32 u;

  memcpy (&u, &v, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy (&v, &u, sizeof v);
  return v;
}

static double
apply_epilogue (double v, enum gemm_epilogue e)
{
  if (e == GEMM_EPILOGUE_QUICK_GELU)
    return v / (1.0 + exp (-1.702 * v));
  if (e == GEMM_EPILOGUE_GELU)
    return 0.5 * v * (1.0 + erf (v / sqrt (2.0)));
  return v;
}

static float *
random_floats (GRand * rng, size_t n, double range)
{
  float *v = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rng, -range, range);
  return v;
}

/* Runs @s through a packed linear of @config and compares with the double
 * loop over the same inputs (rounded to bf16 first when @config is bf16).
 * Each output may be off by @tol times the sum of its terms' magnitudes: the
 * fp32 accumulation's error bound, whatever the order of the sum. */
static void
check_shape (const struct gemm_config *config, const struct shape *s, double tol)
{
  GRand *rng = g_rand_new_with_seed (s->M * 131 + s->K);
  int N = s->n_parts * s->part_n, K = s->K;
  gboolean bf16 = config->precision == CLIPSEG_PRECISION_BF16;
  float *x = random_floats (rng, (size_t) s->M * s->ldx, 1.0);
  float *y = random_floats (rng, (size_t) s->M * s->ldy, 1.0);
  float *y0 = g_memdup2 (y, (size_t) s->M * s->ldy * sizeof *y);
  float *w[3], *b[3];
  struct linear_rows parts[3];
  struct packed_linear *pl;
  GError *error = NULL;
  double worst = 0.0;

  /* separate buffers: the parts are never adjacent, so oneDNN stacks them */
  for (int p = 0; p < s->n_parts; p++) {
    w[p] = random_floats (rng, (size_t) s->part_n * K, 0.1);
    b[p] = s->biased ? random_floats (rng, s->part_n, 0.5) : NULL;
    parts[p] = (struct linear_rows) { w[p], b[p], s->part_n };
  }
  pl = packed_linear_new (config, parts, s->n_parts, K, s->epilogue, &error);
  g_assert_no_error (error);
  packed_linear_run (pl, x, s->ldx, y, s->ldy, s->M, s->accumulate);
  for (int i = 0; i < s->M; i++) {
    for (int j = 0; j < N; j++) {
      const float *wr = w[j / s->part_n] + (size_t) (j % s->part_n) * K;
      double sum = s->biased ? b[j / s->part_n][j % s->part_n] : 0.0, magnitude = fabs (sum);
      double want, got = y[(size_t) i * s->ldy + j];

      for (int k = 0; k < K; k++) {
        double xv = x[(size_t) i * s->ldx + k], wv = wr[k];

        if (bf16)
          xv = bf16_round ((float) xv), wv = bf16_round ((float) wv);
        sum += xv * wv;
        magnitude += fabs (xv * wv);
      }
      want =
          apply_epilogue (sum, s->epilogue) + (s->accumulate ? y0[(size_t) i * s->ldy + j] : 0.0);
      worst = MAX (worst, fabs (got - want) / (magnitude + fabs (want)));
    }
    /* columns past N belong to someone else */
    for (int j = N; j < s->ldy; j++)
      g_assert_cmpfloat (y[(size_t) i * s->ldy + j], ==, y0[(size_t) i * s->ldy + j]);
  }
  g_test_message ("%s %s M=%d N=%d K=%d: worst error %.2e of the term magnitudes",
      config->library, bf16 ? "bf16" : "fp32", s->M, N, K, worst);
  g_assert_cmpfloat (worst, <=, tol);
  packed_linear_free (pl);
  for (int p = 0; p < s->n_parts; p++)
    g_free (w[p]), g_free (b[p]);
  g_free (x), g_free (y), g_free (y0);
  g_rand_free (rng);
}

static void
check_all_shapes (const struct gemm_config *config)
{
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    check_shape (config, &shapes[i], 1e-5);
}

static void
test_fp32_matches_naive_loop (gconstpointer data)
{
  struct gemm_config config;

  g_setenv ("CLIPSEG_DISABLE_DNNL", data ? "1" : "0", TRUE);
  gemm_resolve (CLIPSEG_PRECISION_FP32, &config);
  g_unsetenv ("CLIPSEG_DISABLE_DNNL");
  check_all_shapes (&config);
}

static void
test_bf16_matches_naive_loop_on_rounded_inputs (void)
{
  struct gemm_config config;

  /* AUTO is bf16 exactly where it can run, and says nothing where it cannot */
  gemm_resolve (CLIPSEG_PRECISION_AUTO, &config);
  if (config.precision != CLIPSEG_PRECISION_BF16) {
    g_test_skip ("no bf16 GEMM on this build or CPU");
    return;
  }
  check_all_shapes (&config);
}

/* One window per thread: every thread runs the same packed linear at once
 * and must get what a lone run gets, up to the summation order a
 * single-threaded GEMM may choose (oneDNN's shared scratchpad once broke
 * this in bf16, by errors of 1e-3). */
static void
test_concurrent_runs_match_a_lone_run (gconstpointer data)
{
  struct gemm_config config;
  GRand *rng = g_rand_new_with_seed (5);
  int M = 197, K = 256, N = 768;
  float *w = random_floats (rng, (size_t) N * K, 0.1), *b = random_floats (rng, N, 0.5);
  float *x = random_floats (rng, (size_t) M * K, 1.0);
  float *lone = g_new (float, (size_t) M * N), *each = g_new (float, (size_t) 4 * M * N);
  struct packed_linear *pl;
  GError *error = NULL;

  gemm_resolve (GPOINTER_TO_INT (data), &config);
  pl = packed_linear_new (&config, &(struct linear_rows) { w, b, N }, 1, K,
      GEMM_EPILOGUE_QUICK_GELU, &error);
  g_assert_no_error (error);
  packed_linear_run (pl, x, K, lone, N, M, FALSE);
#pragma omp parallel for num_threads(4)
  for (int t = 0; t < 4; t++)
    for (int r = 0; r < 5; r++)
      packed_linear_run (pl, x, K, each + (size_t) t * M * N, N, M, FALSE);
  for (int t = 0; t < 4; t++)
    for (size_t i = 0; i < (size_t) M * N; i++)
      g_assert_cmpfloat_with_epsilon (each[(size_t) t * M * N + i], lone[i],
          1e-5 * (1.0 + fabs (lone[i])));
  packed_linear_free (pl);
  g_free (w), g_free (b), g_free (x), g_free (lone), g_free (each);
  g_rand_free (rng);
}

static void
count_warning (enum clipseg_log_level level, const char *message, void *user_data)
{
  if (level == CLIPSEG_LOG_LEVEL_WARNING && strstr (message, "bf16"))
    (*(int *) user_data)++;
}

/* A CPU without bf16 (simulated by CLIPSEG_DISABLE_BF16) runs fp32 with no
 * user action; asking for bf16 there warns and runs fp32 all the same. */
static void
test_without_bf16_auto_and_bf16_fall_back_to_fp32 (void)
{
  struct gemm_config config;
  int warnings = 0;

  clipseg_log_set (count_warning, &warnings);
  g_setenv ("CLIPSEG_DISABLE_BF16", "1", TRUE);
  gemm_resolve (CLIPSEG_PRECISION_AUTO, &config);
  g_assert_cmpint (config.precision, ==, CLIPSEG_PRECISION_FP32);
  g_assert_cmpint (warnings, ==, 0);
  gemm_resolve (CLIPSEG_PRECISION_BF16, &config);
  g_assert_cmpint (config.precision, ==, CLIPSEG_PRECISION_FP32);
  g_assert_cmpint (warnings, ==, 1);
  g_unsetenv ("CLIPSEG_DISABLE_BF16");
  g_setenv ("CLIPSEG_DISABLE_DNNL", "1", TRUE);
  gemm_resolve (CLIPSEG_PRECISION_AUTO, &config);
  g_assert_cmpint (config.precision, ==, CLIPSEG_PRECISION_FP32);
  g_assert_false (config.dnnl);
  g_assert_true (g_str_has_prefix (config.library, "OpenBLAS"));
  g_unsetenv ("CLIPSEG_DISABLE_DNNL");
  clipseg_log_set (NULL, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("CLIPSEG_DISABLE_BF16");
  g_test_add_data_func ("/gemm/openblas-fp32-matches-naive-loop", GINT_TO_POINTER (1),
      test_fp32_matches_naive_loop);
#ifdef HAVE_DNNL
  g_test_add_data_func ("/gemm/dnnl-fp32-matches-naive-loop", NULL, test_fp32_matches_naive_loop);
#endif
  g_test_add_func ("/gemm/bf16-matches-naive-loop-on-rounded-inputs",
      test_bf16_matches_naive_loop_on_rounded_inputs);
  g_test_add_data_func ("/gemm/fp32-concurrent-runs-match-a-lone-run",
      GINT_TO_POINTER (CLIPSEG_PRECISION_FP32), test_concurrent_runs_match_a_lone_run);
  g_test_add_data_func ("/gemm/auto-concurrent-runs-match-a-lone-run",
      GINT_TO_POINTER (CLIPSEG_PRECISION_AUTO), test_concurrent_runs_match_a_lone_run);
  g_test_add_func ("/gemm/without-bf16-auto-and-bf16-fall-back-to-fp32",
      test_without_bf16_auto_and_bf16_fall_back_to_fp32);
  return g_test_run ();
}
