/* test-segment-args.c — clipseg_state_encode_dense, clipseg_state_segment and
 * the parameter checks against out-of-range sizes, modes, windows and
 * thresholds: errors naming the value, never a crash or a silent answer. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "test-util.h"

static struct clipseg_model *shared_model;
static struct clipseg_queries *shared_queries;

static gboolean
have_model (void)
{
  if (!have_bases ())
    return FALSE;
  if (!shared_model) {
    char *path = base_path (HF);
    GError *error = NULL;
    struct clipseg_labels *labels = clipseg_labels_parse_list ("sky, person|man, car", &error);
    char **templates = clipseg_templates_load ("single", &error);

    shared_model = load_ok (path);
    shared_queries = clipseg_queries_new (shared_model, labels,
        (const char *const *) templates, 1, &error);
    g_assert_no_error (error);
    g_strfreev (templates);
    clipseg_labels_free (labels);
    g_free (path);
  }
  return TRUE;
}

static void
expect_dense_error (int h, int w, int mode, const char *what)
{
  struct clipseg_state *state = clipseg_state_new (shared_model, 1);
  float *pixels = random_pixels (MAX (h, 1), MAX (w, 1), 3);
  float *features = g_new0 (float, 64 * EMBED);
  GError *error = NULL;
  char *desc = g_strdup_printf ("encode_dense %dx%d mode %d", h, w, mode);

  if (clipseg_state_encode_dense (state, pixels, h, w, (enum clipseg_mode) mode, features, &error))
    check_failed ("%s succeeded but should have failed", desc);
  else
    check_error (desc, error, INVALID, what, NULL);
  g_clear_error (&error);
  g_free (desc);
  g_free (features);
  g_free (pixels);
  clipseg_state_free (state);
}

/* What an error names for the first value past the last mode. */
static const char *
past_last_mode (void)
{
  static char text[32];

  g_snprintf (text, sizeof text, "mode %d", (int) CLIPSEG_MODE_COUNT);
  return text;
}

static void
test_dense_args (void)
{
  if (!have_model ())
    return;
  expect_dense_error (33, 32, CLIPSEG_MODE_SCLIP, "33x32");
  expect_dense_error (32, 20, CLIPSEG_MODE_SCLIP, "32x20");
  expect_dense_error (4, 4, CLIPSEG_MODE_SCLIP, "4x4");
  expect_dense_error (0, 32, CLIPSEG_MODE_SCLIP, "0x32");
  expect_dense_error (-8, 32, CLIPSEG_MODE_SCLIP, "-8x32");
  expect_dense_error (32, 32, CLIPSEG_MODE_COUNT, past_last_mode ());
  expect_dense_error (32, 32, -1, "mode -1");
  expect_dense_error (32, 32, 1000, "mode 1000");
}

static void
expect_segment_error (int h, int w, struct clipseg_segment_params sp, int out_h, int out_w,
    const char *what)
{
  struct clipseg_state *state = clipseg_state_new (shared_model, 1);
  float *pixels = random_pixels (MAX (h, 1), MAX (w, 1), 5);
  int32_t *labels = g_new0 (int32_t, MAX (out_h, 1) * MAX (out_w, 1));
  GError *error = NULL;
  char *desc = g_strdup_printf ("segment %dx%d mode %d crop %d stride %d scale %g prob %g area %g "
      "out %dx%d", h, w, sp.mode, sp.crop, sp.stride, sp.logit_scale, sp.prob_thd, sp.area_thd,
      out_h, out_w);

  if (clipseg_state_segment (state, pixels, h, w, shared_queries, &sp, out_h, out_w, NULL, labels,
          &error))
    check_failed ("%s succeeded but should have failed", desc);
  else
    check_error (desc, error, INVALID, what, NULL);
  g_clear_error (&error);
  g_free (desc);
  g_free (labels);
  g_free (pixels);
  clipseg_state_free (state);
}

static void
test_segment_args (void)
{
  struct clipseg_segment_params d = clipseg_segment_default_params (), sp;

  if (!have_model ())
    return;
  d.crop = 16, d.stride = 8;
  expect_segment_error (4, 32, d, 4, 32, "4x32");
  expect_segment_error (32, 7, d, 32, 7, "32x7");
  expect_segment_error (0, 0, d, 1, 1, "0x0");
  sp = d, sp.crop = -16;
  expect_segment_error (32, 32, sp, 32, 32, "window -16");
  sp = d, sp.crop = 4;
  expect_segment_error (32, 32, sp, 32, 32, "window 4");
  sp = d, sp.stride = 0;
  expect_segment_error (32, 32, sp, 32, 32, "stride 0");
  sp = d, sp.stride = -8;
  expect_segment_error (32, 32, sp, 32, 32, "stride -8");
  sp = d, sp.mode = CLIPSEG_MODE_COUNT;
  expect_segment_error (32, 32, sp, 32, 32, past_last_mode ());
  sp = d, sp.mode = (enum clipseg_mode) -1;
  expect_segment_error (32, 32, sp, 32, 32, "mode -1");
  sp = d, sp.logit_scale = NAN;
  expect_segment_error (32, 32, sp, 32, 32, "logit scale nan");
  sp = d, sp.logit_scale = 0;
  expect_segment_error (32, 32, sp, 32, 32, "logit scale 0");
  sp = d, sp.logit_scale = -40;
  expect_segment_error (32, 32, sp, 32, 32, "logit scale -40");
  sp = d, sp.logit_scale = INFINITY;
  expect_segment_error (32, 32, sp, 32, 32, "logit scale inf");
  sp = d, sp.prob_thd = -0.1f;
  expect_segment_error (32, 32, sp, 32, 32, "probability threshold");
  sp = d, sp.prob_thd = 1.5f;
  expect_segment_error (32, 32, sp, 32, 32, "probability threshold 1.5");
  sp = d, sp.prob_thd = NAN;
  expect_segment_error (32, 32, sp, 32, 32, "probability threshold nan");
  sp = d, sp.area_thd = 1.0f;
  expect_segment_error (32, 32, sp, 32, 32, "area threshold 1");
  sp = d, sp.area_thd = -0.5f;
  expect_segment_error (32, 32, sp, 32, 32, "area threshold -0.5");
  sp = d, sp.area_thd = NAN;
  expect_segment_error (32, 32, sp, 32, 32, "area threshold nan");
  expect_segment_error (32, 32, d, 0, 32, "output size 0x32");
  expect_segment_error (32, 32, d, 32, -1, "output size 32x-1");
}

/* Sizes whose counts overflow int or whose attention scratch cannot be had
 * fail before anything is allocated. */
/* @sp fails the image-independent checks with an error naming @names. */
static void
expect_params_rejected (const struct clipseg_segment_params *sp, const char *what,
    const char *names)
{
  GError *error = NULL;

  if (clipseg_segment_params_check (shared_model, sp, &error))
    check_failed ("%s passed", what);
  else
    check_error (what, error, INVALID, names, NULL);
  g_clear_error (&error);
}

static void
check_error_names_mode (const struct clipseg_segment_params *sp, const char *mode)
{
  GError *error = NULL;

  g_assert_false (clipseg_segment_params_check (shared_model, sp, &error));
  check_error ("refinement with another mode", error, INVALID, "mode maskclip", mode, NULL);
  g_clear_error (&error);
}

/* MaskCLIP's refinements in range and with mode maskclip only; PAMR's steps
 * from 0 to CLIPSEG_MAX_PAMR_STEPS with every mode. */
static void
test_refinement_params_check (const struct clipseg_segment_params *defaults)
{
  struct clipseg_segment_params sp = *defaults;
  GError *error = NULL;

  sp.mode = CLIPSEG_MODE_MASKCLIP, sp.ks_thresh = 1.0f, sp.pd_thresh = 0.5f;
  sp.pamr_steps = CLIPSEG_MAX_PAMR_STEPS;
  if (!clipseg_segment_params_check (shared_model, &sp, &error))
    check_failed ("MaskCLIP's settings with PAMR rejected: %s", error->message);
  g_clear_error (&error);
  sp = *defaults, sp.pamr_steps = 10;
  if (!clipseg_segment_params_check (shared_model, &sp, &error))
    check_failed ("PAMR with sclip rejected: %s", error->message);
  g_clear_error (&error);
  sp = *defaults, sp.ks_thresh = 1.0f;
  check_error_names_mode (&sp, "sclip");
  sp = *defaults, sp.mode = CLIPSEG_MODE_NACLIP, sp.pd_thresh = 0.5f;
  check_error_names_mode (&sp, "naclip");
  sp = *defaults, sp.mode = CLIPSEG_MODE_MASKCLIP;
  sp.ks_thresh = 1.5f;
  expect_params_rejected (&sp, "key smoothing 1.5", "key smoothing threshold 1.5");
  sp.ks_thresh = NAN;
  expect_params_rejected (&sp, "key smoothing nan", "key smoothing threshold nan");
  sp.ks_thresh = 0.0f, sp.pd_thresh = -0.5f;
  expect_params_rejected (&sp, "prompt denoising -0.5", "prompt denoising threshold -0.5");
  sp.pd_thresh = 0.0f, sp.pamr_steps = -1;
  expect_params_rejected (&sp, "PAMR steps -1", "PAMR steps -1");
  sp.pamr_steps = CLIPSEG_MAX_PAMR_STEPS + 1;
  expect_params_rejected (&sp, "PAMR steps 101", "PAMR steps 101");
}

/* The image-independent checks, callable ahead of segmenting: the defaults
 * pass, and each bad setting fails naming itself. */
static void
test_segment_params_check (void)
{
  struct clipseg_segment_params defaults = clipseg_segment_default_params (), sp;
  GError *error = NULL;

  if (!have_model ())
    return;
  if (!clipseg_segment_params_check (shared_model, &defaults, &error))
    check_failed ("defaults rejected: %s", error->message);
  g_clear_error (&error);
  sp = defaults, sp.crop = PATCH - 1;
  expect_params_rejected (&sp, "a window below the patch size", "window");
  sp = defaults, sp.stride = sp.crop + 1;
  expect_params_rejected (&sp, "a stride beyond the window", "stride");
  sp = defaults, sp.logit_scale = 0.0f;
  expect_params_rejected (&sp, "logit scale 0", "logit scale");
  test_refinement_params_check (&defaults);
}

static void
test_segment_limits (void)
{
  struct clipseg_segment_params sp = clipseg_segment_default_params ();
  struct clipseg_state *state;
  float *pixels;
  GError *error = NULL;
  int H = 120 * PATCH;          /* 14401 tokens: 1024 threads need 5.7e9 bytes of attention scratch */

  if (!have_model ())
    return;
  pixels = random_pixels (H, H, 3);
  state = clipseg_state_new (shared_model, 1);
  sp.crop = 16, sp.stride = 8;
  if (clipseg_state_segment (state, pixels, 32, 32, shared_queries, &sp, 65536, 32768, NULL, NULL,
          &error))
    check_failed ("segment to 65536x32768 succeeded");
  else
    check_error ("segment to 65536x32768", error, INVALID, "65536x32768", NULL);
  g_clear_error (&error);
  clipseg_state_free (state);

  /* more threads than the cap are capped, and the cap still sizes the scratch */
  state = clipseg_state_new (shared_model, CLIPSEG_MAX_THREADS * 4);
  sp.crop = 0;
  if (clipseg_state_segment (state, pixels, H, H, shared_queries, &sp, H, H, NULL, NULL, &error))
    check_failed ("whole-image segment on %d threads succeeded", CLIPSEG_MAX_THREADS);
  else
    check_error ("whole-image segment", error, INVALID, "14401 tokens", "1024 threads",
        "sliding windows", NULL);
  g_clear_error (&error);
  clipseg_state_free (state);
  g_free (pixels);
}

/* Valid extremes: sizes not a multiple of the patch (segment accepts them),
 * a window larger than the image, and a stride larger than the image. */
static void
segment_ok (int h, int w, struct clipseg_segment_params sp)
{
  struct clipseg_state *state = clipseg_state_new (shared_model, 1);
  float *pixels = random_pixels (h, w, 9);
  int32_t *labels = g_new0 (int32_t, h * w);
  float *probs = g_new0 (float, 3 * h * w);
  GError *error = NULL;

  g_assert_true (clipseg_state_segment (state, pixels, h, w, shared_queries, &sp, h, w, probs,
          labels, &error));
  g_assert_no_error (error);
  for (int i = 0; i < h * w; i++)
    g_assert_true (labels[i] >= 0 && labels[i] < 3);
  g_free (probs);
  g_free (labels);
  g_free (pixels);
  clipseg_state_free (state);
}

static void
test_segment_extremes (void)
{
  struct clipseg_segment_params sp = clipseg_segment_default_params ();

  if (!have_model ())
    return;
  sp.crop = 16, sp.stride = 8;
  segment_ok (37, 29, sp);
  sp.crop = 224, sp.stride = 112;
  segment_ok (32, 40, sp);
  sp.crop = 0;
  segment_ok (8, 8, sp);
  sp.crop = 16, sp.stride = 16;
  segment_ok (40, 24, sp);
}

/* Segments @h x @w with @crop/@stride: either refused as INVALID naming the
 * stride, or every probability finite. */
static void
segment_refused_or_finite (int h, int w, int crop, int stride)
{
  struct clipseg_segment_params sp = clipseg_segment_default_params ();
  struct clipseg_state *state;
  float *pixels = random_pixels (h, w, 9), *probs = g_new0 (float, 3 * h * w);
  GError *error = NULL;
  char *desc = g_strdup_printf ("segment %dx%d crop %d stride %d", h, w, crop, stride);

  g_assert_true (have_model ());
  state = clipseg_state_new (shared_model, 1);
  sp.crop = crop, sp.stride = stride;
  if (clipseg_state_segment (state, pixels, h, w, shared_queries, &sp, h, w, probs, NULL, &error)) {
    for (int i = 0; i < 3 * h * w; i++)
      if (!isfinite (probs[i]))
        g_error ("%s: probability %d is %g", desc, i, probs[i]);
  } else {
    check_error (desc, error, INVALID, "stride", NULL);
    g_clear_error (&error);
  }
  g_free (desc);
  g_free (probs);
  g_free (pixels);
  clipseg_state_free (state);
}

/* A stride larger than the window leaves pixels no window covers (mmseg's
 * slide_inference asserts full coverage): the engine must refuse it or cover
 * every pixel, never average over zero windows (0/0 -> NaN probabilities, then
 * UB converting NaN to int in exp_inline). Subprocess: UBSan halts. */
static void
test_segment_stride_beyond_crop (void)
{
  if (g_test_subprocess ()) {
    segment_refused_or_finite (40, 24, 16, 24);
    return;
  }
  if (!have_model ())
    return;
  run_in_subprocess ("-");
}

/* A stride near INT_MAX: window_count computes size - crop + stride - 1 and
 * window_start index * stride + crop in int (signed overflow). */
static void
test_segment_huge_stride (void)
{
  if (g_test_subprocess ()) {
    segment_refused_or_finite (32, 32, 16, INT_MAX);
    return;
  }
  if (!have_model ())
    return;
  run_in_subprocess ("-");
}

/* The empty-class labels bug end to end: labels "," must fail somewhere
 * (parse, queries) with an error; today they parse as two classes with no
 * names, the queries have zero rows and segmenting reads a NULL buffer. */
static void
test_segment_empty_labels (void)
{
  if (g_test_subprocess ()) {
    GError *error = NULL;
    struct clipseg_labels *labels = clipseg_labels_parse_list (",", &error);
    char **templates = clipseg_templates_load ("single", NULL);
    struct clipseg_queries *queries = NULL;

    g_assert_true (have_model ());
    if (labels) {
      queries = clipseg_queries_new (shared_model, labels, (const char *const *) templates, 1,
          &error);
      if (queries && clipseg_queries_n_queries (queries) == 0)
        g_test_message ("labels \",\" made queries with no rows");
    }
    if (queries) {
      struct clipseg_state *state = clipseg_state_new (shared_model, 1);
      struct clipseg_segment_params sp = clipseg_segment_default_params ();
      float *pixels = random_pixels (32, 32, 1), *probs = g_new0 (float, 2 * 32 * 32);

      sp.crop = 16, sp.stride = 8;
      if (clipseg_state_segment (state, pixels, 32, 32, queries, &sp, 32, 32, probs, NULL, &error))
        check_failed ("labels \",\" segmented without an error");
      g_free (probs);
      g_free (pixels);
      clipseg_state_free (state);
      clipseg_queries_free (queries);
    }
    if (!error)
      check_failed ("labels \",\": no error from parse, queries or segment");
    else
      check_error ("labels \",\"", error, INVALID, NULL);
    g_clear_error (&error);
    clipseg_labels_free (labels);
    g_strfreev (templates);
    return;
  }
  if (!have_model ())
    return;
  run_in_subprocess ("-");
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add_func ("/segment-args/" path, func)
  ADD ("dense-args", test_dense_args);
  ADD ("segment-args", test_segment_args);
  ADD ("segment-params-check", test_segment_params_check);
  ADD ("segment-limits", test_segment_limits);
  ADD ("segment-extremes", test_segment_extremes);
  ADD ("segment-huge-stride", test_segment_huge_stride);
  ADD ("segment-stride-beyond-crop", test_segment_stride_beyond_crop);
  ADD ("segment-empty-labels", test_segment_empty_labels);
#undef ADD

  ret = g_test_run ();
  clipseg_queries_free (shared_queries);
  clipseg_model_unref (shared_model);
  return ret;
}
