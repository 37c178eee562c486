/* state.c — per-thread state, thread control and mode names. */
#include <string.h>

#include <omp.h>

#include "model.h"
#include "state.h"
#include "threads.h"

static const char *const mode_names[CLIPSEG_MODE_COUNT] = {
  [CLIPSEG_MODE_VANILLA] = "vanilla",
  [CLIPSEG_MODE_MASKCLIP] = "maskclip",
  [CLIPSEG_MODE_SCLIP] = "sclip",
  [CLIPSEG_MODE_CLEARCLIP] = "clearclip",
  [CLIPSEG_MODE_NACLIP] = "naclip",
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

struct clipseg_state *
clipseg_state_new (struct clipseg_model *model, int n_threads)
{
  struct clipseg_state *st = g_new0 (struct clipseg_state, 1);

  st->model = clipseg_model_ref (model);
  st->n_threads = engine_resolve_threads (n_threads);
  vision_cache_init (&st->vision, st->n_threads);
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
  if (!state)
    return;
  vision_cache_clear (&state->vision);
  segment_scratch_clear (&state->segment);
  clipseg_model_unref (state->model);
  g_free (state);
}
