/* state.c — per-thread state, thread control and the dense-feature entry point. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "engine-log.h"
#include "model.h"
#include "threads.h"
#include "vision.h"

static const char *const mode_names[CLIPSEG_MODE_COUNT] = {
  [CLIPSEG_MODE_VANILLA] = "vanilla",
  [CLIPSEG_MODE_MASKCLIP] = "maskclip",
  [CLIPSEG_MODE_SCLIP] = "sclip",
  [CLIPSEG_MODE_CLEARCLIP] = "clearclip",
  [CLIPSEG_MODE_NACLIP] = "naclip",
  [CLIPSEG_MODE_SCCLIP] = "scclip",
};

const char *
clipseg_mode_name (enum clipseg_mode mode)
{
  return (unsigned) mode < CLIPSEG_MODE_COUNT ? mode_names[mode] : NULL;
}

gboolean
clipseg_mode_from_name (const char *name, enum clipseg_mode *mode)
{
  for (int i = 0; i < CLIPSEG_MODE_COUNT; i++) {
    if (name && strcmp (name, mode_names[i]) == 0) {
      *mode = (enum clipseg_mode) i;
      return TRUE;
    }
  }
  return FALSE;
}

int
engine_resolve_threads (int n_threads)
{
  if (n_threads <= 0)
    n_threads = omp_get_num_procs ();
  /* OpenBLAS waits forever for threads its parallel region did not get */
  return MIN (MIN (n_threads, CLIPSEG_MAX_THREADS), omp_get_thread_limit ());
}

int
engine_use_threads (int n_threads)
{
  n_threads = engine_resolve_threads (n_threads);
  /* with OMP_DYNAMIC a team may be smaller than asked for, which hangs
   * OpenBLAS (0.3.21) */
  omp_set_dynamic (0);
  omp_set_num_threads (n_threads);
  return n_threads;
}

gboolean
engine_check_pixels (const float *pixels, int height, int width, GError **error)
{
  size_t n = (size_t) 3 * height * width, bad = n;

#pragma omp parallel for reduction(min:bad)
  for (size_t i = 0; i < n; i++)
    if (!isfinite (pixels[i]) && i < bad)
      bad = i;
  if (bad == n)
    return TRUE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
      "pixel (channel %zu, row %zu, column %zu) is %g, not a finite number", bad / ((size_t) height * width),
      bad / width % height, bad % width, pixels[bad]);
  return FALSE;
}

float *
buffer_try_reserve (struct buffer *b, size_t n, const char *what, GError **error)
{
  if (n > b->capacity) {
    g_free (b->data);
    b->data = g_try_new (float, n);
    b->capacity = b->data ? n : 0;
    if (!b->data)
      engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL, "out of memory: the %s would take %.0f MB", what, n * (double) sizeof (float) / 1e6);
  }
  return b->data;
}

float *
buffer_reserve (struct buffer *b, size_t n)
{
  float *data = buffer_try_reserve (b, n, "scratch", NULL);

  if (!data && n)
    g_error ("out of memory: %zu bytes of scratch", n * sizeof (float));
  return data;
}

struct clipseg_state *
clipseg_state_new (struct clipseg_model *model, int n_threads)
{
  struct clipseg_state *st = g_new0 (struct clipseg_state, 1);

  st->model = clipseg_model_ref (model);
  st->n_threads = engine_resolve_threads (n_threads);
  st->scratch = g_new0 (struct vision_scratch, st->n_threads);
  return st;
}

void
clipseg_state_set_abort (struct clipseg_state *state, clipseg_abort_func abort, void *user_data)
{
  state->abort = abort;
  state->abort_data = user_data;
}

gboolean
engine_aborted (const struct clipseg_state *st, GError **error)
{
  if (!st->abort || !st->abort (st->abort_data))
    return FALSE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_CANCELLED, "cancelled");
  return TRUE;
}

void
clipseg_state_free (struct clipseg_state *state)
{
  struct buffer *buffers[] = {
    &state->features, &state->positions, &state->neighbourhood, &state->logits, &state->sum,
    &state->resized, &state->probs, &state->labels, &state->keys, &state->refine,
  };

  if (!state)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
    g_free (buffers[i]->data);
  for (int t = 0; t < state->n_threads; t++) {
    g_free (state->scratch[t].tokens.data);
    g_free (state->scratch[t].block.data);
    g_free (state->scratch[t].patches.data);
    g_free (state->scratch[t].scclip.data);
  }
  g_free (state->scratch);
  clipseg_model_unref (state->model);
  g_free (state);
}

gboolean
clipseg_state_encode_dense (struct clipseg_state *state, const float *pixels, int height,
    int width, enum clipseg_mode mode, float *features, GError **error)
{
  int p = state->model->w.vision.patch;
  struct clipseg_segment_params whole_image = clipseg_segment_default_params ();
  struct window whole = {0, 0};
  struct vision_plan plan;

  whole_image.mode = mode;
  whole_image.crop = 0;
  if (!clipseg_segment_size_check (state->model, state->n_threads, height, width, &whole_image, error))
    return FALSE;
  if (height % p || width % p) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "image size %dx%d (height x width) is not a positive multiple of the patch size %d",
        height, width, p);
    return FALSE;
  }
  if (!engine_check_pixels (pixels, height, width, error))
    return FALSE;
  engine_use_threads (state->n_threads);
  vision_plan (state, height, width, mode, &plan);
  vision_forward (&state->model->w, &plan, &state->scratch[0], state->n_threads, pixels, height,
      width, &whole, 1, features, NULL);
  return !engine_aborted (state, error);
}
