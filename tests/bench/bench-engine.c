/* bench-engine — times the engine's dense forward and segmentation, the GEMM
 * peak of the library that runs its linears and of OpenBLAS, and the vision
 * tower's linears alone, printing one line per case:
 *
 *   case=<name> median_ms=<m> min_ms=<m> max_ms=<m> runs=<n> gflop=<work> gflops=<rate>
 *
 * after a line "# linears: <precision> <library> <isa>" saying what runs the
 * linears. Cases: sgemm2048 (OpenBLAS cblas_sgemm, 2048³), gemm2048 (2048³
 * through the engine's own packed linear, in the model's precision: the large-GEMM
 * rate its linears can reach), linears224, linears448 (every linear of the
 * vision tower at that size through packed linears, distinct weights per layer:
 * the GEMM share of dense224/dense448), dense224, dense448, segment336x448
 * (SCLIP's defaults), segment336x448-pamr10 (the same with 10 PAMR steps, as
 * NACLIP), segment336x448-maskclip and segment336x448-maskclip-ks1-pd0.5
 * (MaskCLIP's value path, then with its key smoothing and prompt denoising),
 * segment336x448-scclip (SC-CLIP's last block).
 * tests/bench/run-bench.py runs it beside the PyTorch baseline and prints the
 * comparison; tests/bench/bench_refine.py times the refinements. Usage:
 *   bench-engine MODEL [--threads N] [--runs N] [--cases a,b] [--precision auto|fp32|bf16]
 * CLIPSEG_DISABLE_DNNL=1 in the environment times the OpenBLAS linears.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "clipseg-engine.h"
#include "gemm.h"               /* internal: the packed linears, for the GEMM cases */

static int n_threads = 2;
static int n_runs = 7;
static char *cases_opt = NULL;
static char *precision_opt = NULL;

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static void
report (const char *name, double *ms, int n, double gflop)
{
  qsort (ms, n, sizeof *ms, compare_double);
  printf ("case=%s median_ms=%.2f min_ms=%.2f max_ms=%.2f runs=%d gflop=%.3f gflops=%.1f\n",
      name, ms[n / 2], ms[0], ms[n - 1], n, gflop, gflop / (ms[n / 2] / 1000.0));
  fflush (stdout);
}

static gboolean
wanted (const char *name)
{
  char **names;
  gboolean found;

  if (!cases_opt)
    return TRUE;
  names = g_strsplit (cases_opt, ",", -1);
  found = g_strv_contains ((const char *const *) names, name);
  g_strfreev (names);
  return found;
}

/* FLOPs of one forward of the vision tower on an h x w image, SCLIP last block
 * (two extra N² products), counting a multiply-add as 2. */
static double
dense_gflop (const struct clipseg_model_info *i, int h, int w, int n_windows)
{
  double D = i->vision_width, M = i->vision_mlp, E = i->embed_dim, p = i->patch_size;
  double P = floor (h / p) * floor (w / p), N = P + 1;
  double patch = 2 * P * D * 3 * p * p;
  double linears = i->vision_layers * 2 * N * (4 * D * D + 2 * D * M);
  double attention = (i->vision_layers - 1) * 4 * N * N * D + 6 * N * N * D;
  double head = 2 * P * D * E;

  return n_windows * (patch + linears + attention + head) / 1e9;
}

static void
bench_sgemm (void)
{
  int n = 2048;
  float *a = g_new (float, (size_t) n * n), *b = g_new (float, (size_t) n * n);
  float *c = g_new (float, (size_t) n * n);
  double ms[5];

  for (size_t i = 0; i < (size_t) n * n; i++)
    a[i] = (float) (i % 7) * 0.1f, b[i] = (float) (i % 5) * 0.1f;
  omp_set_num_threads (n_threads);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
  for (int r = 0; r < 5; r++) {
    gint64 t0 = g_get_monotonic_time ();

    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  report ("sgemm2048", ms, 5, 2.0 * n * n * (double) n / 1e9);
  g_free (a), g_free (b), g_free (c);
}

static float *
random_floats (size_t n, guint32 seed)
{
  GRand *rng = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -0.05, 0.05);
  g_rand_free (rng);
  return x;
}

/* y[M,N] = x[M,K] · W[N,K]ᵀ with M = N = K = 2048 through one packed linear of
 * the library and precision the model's linears use. */
static void
bench_gemm (const struct gemm_config *cfg)
{
  int n = 2048;
  float *w = random_floats ((size_t) n * n, 1), *x = random_floats ((size_t) n * n, 2);
  float *y = g_new (float, (size_t) n * n);
  struct linear_rows rows = { w, NULL, n };
  struct packed_linear *pl;
  GError *error = NULL;
  double ms[5];

  if (!(pl = packed_linear_new (cfg, &rows, 1, n, GEMM_EPILOGUE_NONE, &error)))
    g_error ("%s", error->message);
  omp_set_num_threads (n_threads);
  packed_linear_run (pl, x, n, y, n, n, FALSE);
  for (int r = 0; r < 5; r++) {
    gint64 t0 = g_get_monotonic_time ();

    packed_linear_run (pl, x, n, y, n, n, FALSE);
    ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  report ("gemm2048", ms, 5, 2.0 * n * n * (double) n / 1e9);
  packed_linear_free (pl);
  g_free (w), g_free (x), g_free (y);
}

/* The linears of one dense forward at side x side, as the engine runs them
 * (fused qkv; out-proj and fc2 summed into the residual; fc1 with its
 * activation), each layer with weights of its own, so that they stream from
 * memory as a real model's do. Layer norms, attention and the rest are left out. */
static void
bench_linears (const struct clipseg_model_info *i, const struct gemm_config *cfg, int side)
{
  int D = i->vision_width, M = i->vision_mlp, L = i->vision_layers;
  int T = (side / i->patch_size) * (side / i->patch_size) + 1;
  struct packed_linear **pl = g_new0 (struct packed_linear *, 4 * L);
  float **weights = g_new0 (float *, 8 * L);
  float *x = random_floats ((size_t) T * M, 3), *qkv = g_new0 (float, (size_t) T * 3 * D);
  float *h = g_new0 (float, (size_t) T * M), *res = g_new0 (float, (size_t) T * D);
  double *ms = g_new (double, n_runs);
  GError *error = NULL;
  char name[32];

  for (int l = 0; l < L; l++) {
    int n[4] = { 3 * D, D, M, D }, k[4] = { D, D, D, M };
    enum gemm_epilogue ep[4] = { GEMM_EPILOGUE_NONE, GEMM_EPILOGUE_NONE,
      GEMM_EPILOGUE_QUICK_GELU, GEMM_EPILOGUE_NONE
    };

    for (int j = 0; j < 4; j++) {
      float *w = random_floats ((size_t) n[j] * k[j], 10 + 4 * l + j);
      float *b = random_floats (n[j], 100 + 4 * l + j);
      struct linear_rows rows = { w, b, n[j] };

      if (!(pl[4 * l + j] = packed_linear_new (cfg, &rows, 1, k[j], ep[j], &error)))
        g_error ("%s", error->message);
      if (gemm_borrows_weights (cfg))
        weights[8 * l + 2 * j] = w, weights[8 * l + 2 * j + 1] = b;
      else
        g_free (w), g_free (b);
    }
  }
  omp_set_num_threads (n_threads);
  for (int r = -1; r < n_runs; r++) {
    gint64 t0 = g_get_monotonic_time ();

    for (int l = 0; l < L; l++) {
      packed_linear_run (pl[4 * l + 0], x, D, qkv, 3 * D, T, FALSE);
      packed_linear_run (pl[4 * l + 1], x, D, res, D, T, TRUE);
      packed_linear_run (pl[4 * l + 2], x, D, h, M, T, FALSE);
      packed_linear_run (pl[4 * l + 3], h, M, res, D, T, TRUE);
    }
    if (r >= 0)
      ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  g_snprintf (name, sizeof name, "linears%d", side);
  report (name, ms, n_runs, L * 2.0 * T * (4.0 * D * D + 2.0 * D * M) / 1e9);
  for (int j = 0; j < 4 * L; j++)
    packed_linear_free (pl[j]);
  for (int j = 0; j < 8 * L; j++)
    g_free (weights[j]);
  g_free (pl), g_free (weights), g_free (ms);
  g_free (x), g_free (qkv), g_free (h), g_free (res);
}

static float *
random_pixels (int h, int w)
{
  GRand *rng = g_rand_new_with_seed (7);
  float *x = g_new (float, (size_t) 3 * h * w);

  for (size_t i = 0; i < (size_t) 3 * h * w; i++)
    x[i] = (float) g_rand_double_range (rng, -2, 2);
  g_rand_free (rng);
  return x;
}

static void
bench_dense (struct clipseg_model *model, struct clipseg_state *st, int side)
{
  const struct clipseg_model_info *info = clipseg_model_get_info (model);
  int N = (side / info->patch_size) * (side / info->patch_size);
  float *x = random_pixels (side, side), *f = g_new (float, (size_t) N * info->embed_dim);
  double *ms = g_new (double, n_runs);
  char name[32];
  GError *error = NULL;

  g_snprintf (name, sizeof name, "dense%d", side);
  if (!clipseg_state_encode_dense (st, x, side, side, CLIPSEG_MODE_SCLIP, f, &error))
    g_error ("%s", error->message);
  for (int r = 0; r < n_runs; r++) {
    gint64 t0 = g_get_monotonic_time ();

    clipseg_state_encode_dense (st, x, side, side, CLIPSEG_MODE_SCLIP, f, NULL);
    ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  report (name, ms, n_runs, dense_gflop (info, side, side, 1));
  g_free (ms), g_free (x), g_free (f);
}

/* 336 x 448 with @sp's mode and refinements: the 224-pixel windows with
 * stride 112 make 2 x 3 = 6 windows; 8 labels, 10 names. */
static void
bench_segment (struct clipseg_model *model, struct clipseg_state *st, const char *name,
    struct clipseg_segment_params sp)
{
  const struct clipseg_model_info *info = clipseg_model_get_info (model);
  int H = 336, W = 448;
  GError *error = NULL;
  struct clipseg_labels *labels =
      clipseg_labels_parse_list ("sky, person|man|woman, car, dog, tree, road, building, bicycle",
      &error);
  char **templates = clipseg_templates_load ("single", &error);
  struct clipseg_queries *q = clipseg_queries_new (model, labels, (const char *const *) templates,
      n_threads, &error);
  float *x = random_pixels (H, W), *probs = g_new (float, (size_t) 8 * H * W);
  int32_t *labels_out = g_new (int32_t, (size_t) H * W);
  double *ms = g_new (double, n_runs);

  if (!q || !clipseg_state_segment (st, x, H, W, q, &sp, H, W, probs, labels_out, &error))
    g_error ("%s", error->message);
  for (int r = 0; r < n_runs; r++) {
    gint64 t0 = g_get_monotonic_time ();

    clipseg_state_segment (st, x, H, W, q, &sp, H, W, probs, labels_out, NULL);
    ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  report (name, ms, n_runs, dense_gflop (info, 224, 224, 6));
  g_free (ms), g_free (x), g_free (probs), g_free (labels_out);
  clipseg_queries_free (q);
  g_strfreev (templates);
  clipseg_labels_free (labels);
}

static void
bench_segments (struct clipseg_model *model, struct clipseg_state *st)
{
  struct clipseg_segment_params sclip = clipseg_segment_default_params (), sp;

  if (wanted ("segment336x448"))
    bench_segment (model, st, "segment336x448", sclip);
  sp = sclip, sp.pamr_steps = 10;
  if (wanted ("segment336x448-pamr10"))
    bench_segment (model, st, "segment336x448-pamr10", sp);
  sp = sclip, sp.mode = CLIPSEG_MODE_MASKCLIP;
  if (wanted ("segment336x448-maskclip"))
    bench_segment (model, st, "segment336x448-maskclip", sp);
  sp.ks_thresh = 1.0f, sp.pd_thresh = 0.5f;
  if (wanted ("segment336x448-maskclip-ks1-pd0.5"))
    bench_segment (model, st, "segment336x448-maskclip-ks1-pd0.5", sp);
  sp = sclip, sp.mode = CLIPSEG_MODE_SCCLIP;
  if (wanted ("segment336x448-scclip"))
    bench_segment (model, st, "segment336x448-scclip", sp);
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    {"threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "Threads (default 2)", "N"},
    {"runs", 0, 0, G_OPTION_ARG_INT, &n_runs, "Timed runs per case (default 7)", "N"},
    {"cases", 0, 0, G_OPTION_ARG_STRING, &cases_opt, "Comma-separated cases to run", "LIST"},
    {"precision", 0, 0, G_OPTION_ARG_STRING, &precision_opt,
        "Linears in auto (default), fp32 or bf16", "P"},
    {NULL}
  };
  struct clipseg_model_params params = clipseg_model_default_params ();
  const struct clipseg_model_info *info;
  struct gemm_config gemm;
  GOptionContext *ctx = g_option_context_new ("MODEL");
  GError *error = NULL;
  struct clipseg_model *model;
  struct clipseg_state *st;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc != 2 || n_runs < 1
      || (precision_opt && !clipseg_precision_from_name (precision_opt, &params.precision))) {
    fprintf (stderr, "usage: bench-engine MODEL [--threads N] [--runs N] [--cases a,b] "
        "[--precision auto|fp32|bf16]\n");
    return 2;
  }
  g_option_context_free (ctx);
  if (!(model = clipseg_model_load (argv[1], params, &error))) {
    fprintf (stderr, "bench-engine: %s\n", error->message);
    return 1;
  }
  info = clipseg_model_get_info (model);
  printf ("# linears: %s %s %s\n", clipseg_precision_name (info->precision), info->gemm_library,
      info->gemm_isa);
  st = clipseg_state_new (model, n_threads);
  gemm_resolve (info->precision, &gemm);
  if (wanted ("sgemm2048"))
    bench_sgemm ();
  if (wanted ("gemm2048"))
    bench_gemm (&gemm);
  if (wanted ("linears224"))
    bench_linears (info, &gemm, 224);
  if (wanted ("linears448"))
    bench_linears (info, &gemm, 448);
  if (wanted ("dense224"))
    bench_dense (model, st, 224);
  if (wanted ("dense448"))
    bench_dense (model, st, 448);
  bench_segments (model, st);
  clipseg_state_free (st);
  clipseg_model_unref (model);
  return 0;
}
