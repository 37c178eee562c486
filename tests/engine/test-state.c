/* test-state.c — the per-thread state contract: frames of a steady size
 * allocate nothing, states of one shared model in concurrent threads give the
 * results a lone state gives, and a size change re-sizes scratch correctly. */
#define _GNU_SOURCE
#include <string.h>

#include <glib.h>
#include <omp.h>

#include "clipseg-engine.h"

#ifndef MODEL_DIR
#error "MODEL_DIR must name the generated test checkpoint"
#endif

/* Allocations are counted while `counting` is set; glibc's own entry points do
 * the work. OpenBLAS's threaded GEMM mallocs its job table on every call, and
 * oneDNN its execution arguments (the engine's memory-object wrappers for
 * them included): neither is ours to change, so calls from inside libopenblas
 * and libdnnl are left out, and C++'s operator new, which only oneDNN uses
 * here. (ASan replaces malloc itself: skipped there.) */
#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCATIONS 1
#include <dlfcn.h>

extern void *__libc_malloc (size_t size);
extern void *__libc_calloc (size_t n, size_t size);
extern void *__libc_realloc (void *p, size_t size);
extern void *__libc_memalign (size_t alignment, size_t size);

static gint counting;
static gint n_allocations;

static void
note_allocation (void *caller)
{
  Dl_info info;

  if (!g_atomic_int_get (&counting))
    return;
  if (dladdr (caller, &info) && info.dli_fname
      && (strstr (info.dli_fname, "libopenblas") || strstr (info.dli_fname, "libdnnl")
          || strstr (info.dli_fname, "libstdc++")))
    return;
  g_atomic_int_inc (&n_allocations);
}

void *
malloc (size_t size)
{
  note_allocation (__builtin_return_address (0));
  return __libc_malloc (size);
}

void *
calloc (size_t n, size_t size)
{
  note_allocation (__builtin_return_address (0));
  return __libc_calloc (n, size);
}

void *
realloc (void *p, size_t size)
{
  note_allocation (__builtin_return_address (0));
  return __libc_realloc (p, size);
}

int
posix_memalign (void **p, size_t alignment, size_t size)
{
  note_allocation (__builtin_return_address (0));
  *p = __libc_memalign (alignment, size);
  return *p ? 0 : 12 /* ENOMEM */ ;
}
#endif

struct fixture
{
  struct clipseg_model *model;
  struct clipseg_queries *queries;
  struct clipseg_segment_params sp;
  float *pixels;
  int H, W, C;
};

static float *
random_pixels (int seed, int n)
{
  GRand *rng = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (int i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -2, 2);
  g_rand_free (rng);
  return x;
}

static void
fixture_setup (struct fixture *f, gconstpointer data)
{
  GError *error = NULL;
  struct clipseg_labels *labels = clipseg_labels_parse_list ("sky, dog|puppy, car", &error);
  char **templates = clipseg_templates_load ("single", &error);

  f->model = clipseg_model_load (MODEL_DIR, clipseg_model_default_params (), &error);
  g_assert_no_error (error);
  f->queries = clipseg_queries_new (f->model, labels, (const char *const *) templates, 1, &error);
  g_assert_no_error (error);
  f->sp = clipseg_segment_default_params ();
  f->sp.crop = 32, f->sp.stride = 16;
  f->H = 48, f->W = 80, f->C = 3;
  f->pixels = random_pixels (1, 3 * f->H * f->W);
  g_strfreev (templates);
  clipseg_labels_free (labels);
}

static void
fixture_teardown (struct fixture *f, gconstpointer data)
{
  g_free (f->pixels);
  clipseg_queries_free (f->queries);
  clipseg_model_unref (f->model);
}

static void
segment (struct fixture *f, struct clipseg_state *st, const float *pixels, int H, int W,
    float *probs, int32_t *labels)
{
  GError *error = NULL;

  g_assert_true (clipseg_state_segment (st, pixels, H, W, f->queries, &f->sp, H, W, probs, labels,
          &error));
  g_assert_no_error (error);
}

#ifdef COUNT_ALLOCATIONS
/* Counts the allocations of three frames after a first one that sizes the
 * scratch (and warms up the thread pool and BLAS). */
static int
steady_frame_allocations (struct fixture *f, struct clipseg_state *st, float *probs,
    int32_t *labels)
{
  segment (f, st, f->pixels, f->H, f->W, probs, labels);
  g_atomic_int_set (&n_allocations, 0);
  g_atomic_int_set (&counting, 1);
  for (int i = 0; i < 3; i++)
    segment (f, st, f->pixels, f->H, f->W, probs, labels);
  g_atomic_int_set (&counting, 0);
  return g_atomic_int_get (&n_allocations);
}
#endif

/* Each module's promise (vision.h, segment.h, clipseg_probs_to_labels): the
 * vision cache's interpolated positions (a whole-image grid other than the
 * checkpoint's) and NACLIP's bias, SC-CLIP's kept block outputs and
 * similarities, the segmentation scratch with the area threshold and the
 * label map it then needs when the caller wants none. */
static void
test_steady_size_allocates_nothing (struct fixture *f, gconstpointer data)
{
#ifdef COUNT_ALLOCATIONS
  static const struct
  {
    enum clipseg_mode mode;
    int crop;
    float area_thd;
    gboolean want_probs, want_labels;
  } cases[] = {
    {CLIPSEG_MODE_SCLIP, 32, 0.0f, TRUE, TRUE},
    {CLIPSEG_MODE_SCLIP, 32, 0.3f, TRUE, FALSE},
    {CLIPSEG_MODE_SCLIP, 32, 0.3f, FALSE, TRUE},
    {CLIPSEG_MODE_NACLIP, 0, 0.3f, TRUE, TRUE},
    {CLIPSEG_MODE_CLEARCLIP, 0, 0.0f, FALSE, TRUE},
    {CLIPSEG_MODE_SCCLIP, 32, 0.0f, TRUE, TRUE},
    {CLIPSEG_MODE_SCCLIP, 0, 0.0f, FALSE, TRUE},
  };
  size_t n = (size_t) f->H * f->W;
  float *probs = g_new (float, f->C * n);
  int32_t *labels = g_new (int32_t, n);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    struct clipseg_state *st = clipseg_state_new (f->model, 2);

    f->sp.mode = cases[i].mode, f->sp.area_thd = cases[i].area_thd;
    f->sp.crop = cases[i].crop, f->sp.stride = cases[i].crop / 2;
    g_test_message ("mode %s, crop %d, area threshold %g", clipseg_mode_name (f->sp.mode),
        f->sp.crop, f->sp.area_thd);
    g_assert_cmpint (steady_frame_allocations (f, st, cases[i].want_probs ? probs : NULL,
            cases[i].want_labels ? labels : NULL), ==, 0);
    clipseg_state_free (st);
  }
  /* the caller's own decision on probabilities, as the element makes it */
  g_atomic_int_set (&n_allocations, 0);
  g_atomic_int_set (&counting, 1);
  clipseg_probs_to_labels (probs, f->C, (int) n, 0.2f, 0.3f, labels);
  g_atomic_int_set (&counting, 0);
  g_assert_cmpint (g_atomic_int_get (&n_allocations), ==, 0);
  g_free (probs);
  g_free (labels);
#else
  g_test_skip ("allocation counting is not possible under AddressSanitizer");
#endif
}

/* MaskCLIP's refinements and PAMR keep their scratch in the state too, PAMR
 * at an output size other than the input's (the pixels resized for it). */
static void
test_refinements_allocate_nothing (struct fixture *f, gconstpointer data)
{
#ifdef COUNT_ALLOCATIONS
  struct clipseg_state *st = clipseg_state_new (f->model, 2);
  int oh = f->H + 8, ow = f->W - 16;
  float *probs = g_new (float, (size_t) f->C * oh * ow);
  GError *error = NULL;

  f->sp.mode = CLIPSEG_MODE_MASKCLIP;
  f->sp.ks_thresh = 1.0f, f->sp.pd_thresh = 0.5f, f->sp.pamr_steps = 3;
  for (int i = 0; i < 4; i++) {
    if (i == 1) {
      g_atomic_int_set (&n_allocations, 0);
      g_atomic_int_set (&counting, 1);
    }
    g_assert_true (clipseg_state_segment (st, f->pixels, f->H, f->W, f->queries, &f->sp, oh, ow,
            probs, NULL, &error));
    g_assert_no_error (error);
  }
  g_atomic_int_set (&counting, 0);
  g_assert_cmpint (g_atomic_int_get (&n_allocations), ==, 0);
  g_free (probs);
  clipseg_state_free (st);
#else
  g_test_skip ("allocation counting is not possible under AddressSanitizer");
#endif
}

struct worker
{
  struct fixture *f;
  float *probs;
};

static gpointer
run_worker (gpointer data)
{
  struct worker *w = data;
  struct clipseg_state *st = clipseg_state_new (w->f->model, 1);

  for (int i = 0; i < 4; i++)
    segment (w->f, st, w->f->pixels, w->f->H, w->f->W, w->probs, NULL);
  clipseg_state_free (st);
  return NULL;
}

static void
test_states_share_a_model_across_threads (struct fixture *f, gconstpointer data)
{
  size_t n = (size_t) f->C * f->H * f->W;
  struct worker workers[3];
  GThread *threads[3];
  struct clipseg_state *st = clipseg_state_new (f->model, 1);
  float *expected = g_new (float, n);

  segment (f, st, f->pixels, f->H, f->W, expected, NULL);
  clipseg_state_free (st);
  for (int i = 0; i < 3; i++) {
    workers[i].f = f;
    workers[i].probs = g_new (float, n);
    threads[i] = g_thread_new ("segment", run_worker, &workers[i]);
  }
  for (int i = 0; i < 3; i++) {
    g_thread_join (threads[i]);
    g_assert_cmpmem (workers[i].probs, n * sizeof (float), expected, n * sizeof (float));
    g_free (workers[i].probs);
  }
  g_free (expected);
}

static void
test_size_change_matches_a_fresh_state (struct fixture *f, gconstpointer data)
{
  int H2 = 40, W2 = 40;
  size_t n2 = (size_t) f->C * H2 * W2;
  float *small = random_pixels (2, 3 * H2 * W2);
  float *big_probs = g_new (float, (size_t) f->C * f->H * f->W);
  float *reused = g_new (float, n2), *fresh = g_new (float, n2);
  struct clipseg_state *st = clipseg_state_new (f->model, 1), *st2 =
      clipseg_state_new (f->model, 1);

  segment (f, st, f->pixels, f->H, f->W, big_probs, NULL);
  segment (f, st, small, H2, W2, reused, NULL);
  segment (f, st2, small, H2, W2, fresh, NULL);
  g_assert_cmpmem (reused, n2 * sizeof (float), fresh, n2 * sizeof (float));
  clipseg_state_free (st);
  clipseg_state_free (st2);
  g_free (small), g_free (big_probs), g_free (reused), g_free (fresh);
}

static void
assert_close (const float *a, const float *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (a[i], b[i], 1e-5);
}

/* Inside a parallel region without nesting the state gets a team of one
 * instead of its two threads; that one thread must still encode every window. */
static void
test_inside_a_parallel_region (struct fixture *f, gconstpointer data)
{
  size_t n = (size_t) f->C * f->H * f->W;
  float *outside = g_new (float, n), *inside = g_new0 (float, n);
  struct clipseg_state *st = clipseg_state_new (f->model, 2);
  int max_levels = omp_get_max_active_levels ();

  segment (f, st, f->pixels, f->H, f->W, outside, NULL);
  omp_set_max_active_levels (1);
#pragma omp parallel num_threads(2)
  {
    if (omp_get_thread_num () == 0) {
      struct clipseg_state *inner = clipseg_state_new (f->model, 2);

      segment (f, inner, f->pixels, f->H, f->W, inside, NULL);
      clipseg_state_free (inner);
    }
  }
  omp_set_max_active_levels (max_levels);
  assert_close (inside, outside, n);
  clipseg_state_free (st);
  g_free (outside), g_free (inside);
}

/* More windows in one round than fit one forward's window list: 72 one-patch
 * windows on 80 threads go through the shared-team path in pieces. */
static void
test_more_windows_than_one_forward (struct fixture *f, gconstpointer data)
{
  int H = 8 * 16, W = 9 * 16;
  size_t n = (size_t) f->C * H * W;
  float *pixels = random_pixels (3, 3 * H * W);
  float *many = g_new (float, n), *one = g_new (float, n);
  struct clipseg_state *st80 = clipseg_state_new (f->model, 80), *st1 =
      clipseg_state_new (f->model, 1);

  f->sp.crop = 16, f->sp.stride = 16;
  segment (f, st80, pixels, H, W, many, NULL);
  segment (f, st1, pixels, H, W, one, NULL);
  assert_close (many, one, n);
  clipseg_state_free (st80);
  clipseg_state_free (st1);
  g_free (pixels), g_free (many), g_free (one);
}

/* Empty inputs touch no memory; a class count too large for a stack array
 * still works. */
static void
test_probs_to_labels_extremes (void)
{
  int C = 1 << 21;
  float *probs = g_new0 (float, C);
  int32_t label = -1;

  clipseg_probs_to_labels (NULL, 0, 5, 0.0f, 0.5f, NULL);
  clipseg_probs_to_labels (NULL, 3, 0, 0.0f, 0.5f, NULL);
  clipseg_probs_to_labels (NULL, -1, 5, 0.0f, 0.5f, NULL);
  probs[C - 1] = 1.0f;
  clipseg_probs_to_labels (probs, C, 1, 0.0f, 0.5f, &label);
  g_assert_cmpint (label, ==, C - 1);
  g_free (probs);
}

/* Queries encoded a few prompts at a time: the first step gives every name
 * its first template; after whole templates they equal queries made at once
 * from those templates, and they are complete after the last step. */
static void
test_queries_step_by_step (struct fixture *f, gconstpointer data)
{
  GError *error = NULL;
  struct clipseg_labels *labels = clipseg_labels_parse_list ("sky, dog|puppy, car", &error);
  char **templates = clipseg_templates_load ("imagenet80", &error);
  int n_templates = (int) g_strv_length (templates), Q = 4;
  /* 1 asked, a whole template given; 3 more (not a whole one), 37 (11 whole
   * templates then), and the rest */
  const int budgets[] = { 1, 3, 37, G_MAXINT }, whole[] = { 1, 0, 11, 80 };
  struct clipseg_queries *q =
      clipseg_queries_new_deferred (f->model, labels, (const char *const *) templates, &error);
  int left = Q * n_templates;

  g_assert_no_error (error);
  g_assert_cmpint (clipseg_queries_n_pending (q), ==, left);
  for (int step = 0; step < 4; step++) {
    int now = clipseg_queries_encode_step (q, budgets[step], 2);
    char *saved = templates[whole[step]];
    struct clipseg_queries *at_once;
    const float *a, *b;

    g_assert_cmpint (now, ==, MAX (0, left - MAX (budgets[step], step == 0 ? Q : 0)));
    g_assert_cmpint (now, ==, clipseg_queries_n_pending (q));
    left = now;
    if (!whole[step])
      continue;
    templates[whole[step]] = NULL;
    at_once = clipseg_queries_new (f->model, labels, (const char *const *) templates, 1, &error);
    templates[whole[step]] = saved;
    g_assert_no_error (error);
    a = clipseg_queries_embeddings (q);
    b = clipseg_queries_embeddings (at_once);
    for (int i = 0; i < Q * clipseg_queries_embed_dim (q); i++)
      g_assert_cmpfloat_with_epsilon (a[i], b[i], 1e-6);
    clipseg_queries_free (at_once);
  }
  g_assert_cmpint (clipseg_queries_encode_step (q, 100, 1), ==, 0);
  clipseg_queries_free (q);
  g_strfreev (templates);
  clipseg_labels_free (labels);
}

/* An abort callback that says stop on its @abort_at-th poll. */
static gint abort_polls, abort_at;

static gboolean
abort_on_poll (void *user_data)
{
  return g_atomic_int_add (&abort_polls, 1) + 1 >= g_atomic_int_get (&abort_at);
}

static int
polls_of_segment (struct fixture *f, struct clipseg_state *st, int stop_at, float *probs,
    GError **error)
{
  g_atomic_int_set (&abort_polls, 0);
  g_atomic_int_set (&abort_at, stop_at);
  if (clipseg_state_segment (st, f->pixels, f->H, f->W, f->queries, &f->sp, f->H, f->W, probs,
          NULL, error))
    g_assert_no_error (*error);
  return g_atomic_int_get (&abort_polls);
}

/* The abort callback is polled before every layer: told to stop on its first
 * poll, a one-thread segmentation polls it once more (the check that ends the
 * call) instead of once per layer and round, and fails CANCELLED; so does a
 * two-thread one; the state then segments as a fresh one does. The same for a
 * dense forward on a whole image. */
static void
test_abort_stops_between_layers (struct fixture *f, gconstpointer data)
{
  size_t n = (size_t) f->C * f->H * f->W;
  float *after = g_new (float, n), *fresh = g_new (float, n);
  float *features = g_new (float, 3 * 5 * 1024);
  struct clipseg_state *st1 = clipseg_state_new (f->model, 1);
  struct clipseg_state *st = clipseg_state_new (f->model, 2);
  struct clipseg_state *lone = clipseg_state_new (f->model, 2);
  GError *error = NULL;
  int whole;

  clipseg_state_set_abort (st1, abort_on_poll, NULL);
  whole = polls_of_segment (f, st1, G_MAXINT, after, &error);
  g_assert_cmpint (whole, >=, 3);
  g_assert_cmpint (polls_of_segment (f, st1, 1, after, &error), ==, 2);
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_CANCELLED);
  g_clear_error (&error);
  clipseg_state_free (st1);

  clipseg_state_set_abort (st, abort_on_poll, NULL);
  polls_of_segment (f, st, 2, after, &error);
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_CANCELLED);
  g_clear_error (&error);
  polls_of_segment (f, st, G_MAXINT, after, &error);
  segment (f, lone, f->pixels, f->H, f->W, fresh, NULL);
  assert_close (after, fresh, n);

  g_atomic_int_set (&abort_at, 1);
  g_assert_false (clipseg_state_encode_dense (st, f->pixels, 48, 80, CLIPSEG_MODE_SCLIP, features,
          &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_CANCELLED);
  g_clear_error (&error);
  clipseg_state_free (st);
  clipseg_state_free (lone);
  g_free (after), g_free (fresh), g_free (features);
}

/* The size check callers make ahead: sliding windows of any image pass, a
 * whole-image pass over a large one fails naming its tokens, the limit and
 * the remedy (the limit is 127x128 patches of 8 pixels and a class token),
 * and so does clipseg_state_encode_dense on it. */
static void
test_size_check (struct fixture *f, gconstpointer data)
{
  struct clipseg_segment_params sp = f->sp;
  struct clipseg_state *state;
  GError *error = NULL;
  float *big;

  g_assert_true (clipseg_segment_size_check (f->model, 2, 4096, 5456, &sp, &error));
  g_assert_no_error (error);
  sp.crop = 0;
  g_assert_true (clipseg_segment_size_check (f->model, 2, 160, 160, &sp, &error));
  g_assert_false (clipseg_segment_size_check (f->model, 2, 4096, 5456, &sp, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "349185 tokens (at most 16384"));
  g_assert_nonnull (strstr (error->message, "sliding windows"));
  g_clear_error (&error);
  g_assert_true (clipseg_segment_size_check (f->model, 1, 1016, 1024, &sp, &error));
  g_assert_no_error (error);
  g_assert_false (clipseg_segment_size_check (f->model, 1, 1024, 1024, &sp, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_clear_error (&error);
  big = g_new0 (float, 3 * 1024 * 1024);
  state = clipseg_state_new (f->model, 1);
  g_assert_false (clipseg_state_encode_dense (state, big, 1024, 1024, CLIPSEG_MODE_SCLIP, big,
          &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_clear_error (&error);
  clipseg_state_free (state);
  g_free (big);
  g_assert_false (clipseg_segment_size_check (f->model, 2, 7, 160, &sp, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_clear_error (&error);
}

/* Whether an allocation larger than the machine's memory fails, as the
 * kernel's default heuristic overcommit makes it (mode 1 grants any size). */
static gboolean
huge_allocations_fail (void)
{
  g_autofree char *mode = NULL;

  if (g_file_get_contents ("/proc/sys/vm/overcommit_memory", &mode, NULL, NULL)
      && mode[0] == '1') {
    g_test_skip ("vm.overcommit_memory is 1: the kernel grants any allocation");
    return FALSE;
  }
  return TRUE;
}

/* Names "n0, n1, ..." as labels. */
static struct clipseg_labels *
many_labels (int n)
{
  GString *list = g_string_new (NULL);
  struct clipseg_labels *labels;
  GError *error = NULL;

  for (int i = 0; i < n; i++)
    g_string_append_printf (list, "%sn%d", i ? ", " : "", i);
  labels = clipseg_labels_parse_list (list->str, &error);
  g_assert_no_error (error);
  g_string_free (list, TRUE);
  return labels;
}

/* An output size whose scratch (24 queries x 2.1 G pixels: 200 GB) cannot be
 * had ends in an error saying so, not an abort, and the state still works. */
static void
test_output_too_large_for_memory (struct fixture *f, gconstpointer data)
{
  struct clipseg_labels *labels = many_labels (24);
  const char *none[] = { "{}", NULL };
  struct clipseg_state *state = clipseg_state_new (f->model, 1);
  struct clipseg_queries *queries;
  GError *error = NULL;
  int32_t *map = g_new (int32_t, f->H * f->W);

  if (!huge_allocations_fail ())
    goto out;
  queries = clipseg_queries_new (f->model, labels, none, 1, &error);
  g_assert_no_error (error);
  g_assert_false (clipseg_state_segment (state, f->pixels, f->H, f->W, queries, &f->sp, 46000,
          46000, NULL, NULL, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "out of memory"));
  g_clear_error (&error);
  g_assert_true (clipseg_state_segment (state, f->pixels, f->H, f->W, queries, &f->sp, f->H, f->W,
          NULL, map, &error));
  g_assert_no_error (error);
  clipseg_queries_free (queries);
out:
  g_free (map);
  clipseg_state_free (state);
  clipseg_labels_free (labels);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/state/steady-size-allocates-nothing", struct fixture, NULL, fixture_setup,
      test_steady_size_allocates_nothing, fixture_teardown);
  g_test_add ("/state/refinements-allocate-nothing", struct fixture, NULL, fixture_setup,
      test_refinements_allocate_nothing, fixture_teardown);
  g_test_add ("/state/states-share-a-model-across-threads", struct fixture, NULL, fixture_setup,
      test_states_share_a_model_across_threads, fixture_teardown);
  g_test_add ("/state/size-change-matches-a-fresh-state", struct fixture, NULL, fixture_setup,
      test_size_change_matches_a_fresh_state, fixture_teardown);
  g_test_add ("/state/inside-a-parallel-region", struct fixture, NULL, fixture_setup,
      test_inside_a_parallel_region, fixture_teardown);
  g_test_add ("/state/more-windows-than-one-forward", struct fixture, NULL, fixture_setup,
      test_more_windows_than_one_forward, fixture_teardown);
  g_test_add ("/state/queries-step-by-step", struct fixture, NULL, fixture_setup,
      test_queries_step_by_step, fixture_teardown);
  g_test_add ("/state/abort-stops-between-layers", struct fixture, NULL, fixture_setup,
      test_abort_stops_between_layers, fixture_teardown);
  g_test_add ("/state/size-check", struct fixture, NULL, fixture_setup, test_size_check,
      fixture_teardown);
  g_test_add ("/state/output-too-large-for-memory", struct fixture, NULL, fixture_setup,
      test_output_too_large_for_memory, fixture_teardown);
  g_test_add_func ("/state/probs-to-labels-extremes", test_probs_to_labels_extremes);
  return g_test_run ();
}
