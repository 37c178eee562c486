/* vision.h — internal: the vision tower over a batch of equal-size windows.
 *
 * No allocation per frame: a vision_cache keeps what depends only on the
 * window grid (interpolated positions, NACLIP's bias) until the grid changes,
 * and its per-thread scratch grows to the largest batch asked for; planning
 * and encoding windows of one size again allocate nothing.
 */
#ifndef VISION_H
#define VISION_H

#include "buffer.h"
#include "checkpoint.h"
#include "clipseg-engine.h"
#include "transformer.h"

/* Top-left corner of one window inside the image. */
struct window {
  int y, x;
};

/* Activations of one vision forward over B windows of L tokens. */
struct vision_scratch {
  struct buffer tokens;        /* [B·L, D] residual stream */
  struct buffer block;         /* block_scratch_size() */
  struct buffer patches;       /* [B·N, 3·p·p] */
};

/* What the vision tower keeps between frames, owned by one state. */
struct vision_cache {
  struct vision_scratch *threads;  /* [n_threads]: one per thread running its own windows */
  int n_threads;
  struct buffer positions;     /* [1 + gh·gw, D] interpolated position embedding */
  int pos_gh, pos_gw;          /* grid the positions are for; 0 = none yet */
  struct buffer neighbourhood; /* [gh + gw] NACLIP's Gaussian per grid axis */
  struct attention_grid_bias nb_bias;  /* on it */
  int nb_gh, nb_gw;            /* grid it is for; 0 = none yet */
};

void vision_cache_init (struct vision_cache *cache, int n_threads);
void vision_cache_clear (struct vision_cache *cache);

/* What every window of one size shares. */
struct vision_plan {
  int h, w;                    /* window size in pixels */
  int gh, gw;                  /* its patch grid: floor(h/p) x floor(w/p), as a stride-p conv takes */
  const float *positions;      /* [1 + gh·gw, D] */
  struct mixing last;          /* the last block's token mixing for the mode */
  clipseg_abort_func abort;    /* polled between layers; NULL: never stop */
  void *abort_data;
};

/* Fills @plan for @h x @w windows of @cw's vision tower in @mode, computing
 * (and keeping in @cache) interpolated positions and NACLIP's bias; @abort
 * and @abort_data are polled by the forwards. Call it before any forward
 * that uses the plan, outside parallel regions. */
void vision_plan (const struct clip_weights *cw, struct vision_cache *cache, int h, int w,
    enum clipseg_mode mode, clipseg_abort_func abort, void *abort_data, struct vision_plan *plan);

/* Encodes @n_windows windows of @pixels [3, H, W] with the scratch @vs and
 * @n_threads threads for its own loops (1 when the caller runs several
 * forwards in parallel) and writes L2-normalised patch features
 * [n_windows·N, E] to @features, CLS dropped, and when @keys is not NULL the
 * last block's keys after out_proj, [n_windows·N, D], CLS dropped (MaskCLIP's
 * key smoothing). Stops between layers once the plan's abort callback asks
 * to (the outputs are then garbage: the caller polls the callback too). */
void vision_forward (const struct clip_weights *cw, const struct vision_plan *plan,
    struct vision_scratch *vs, int n_threads, const float *pixels, int H, int W,
    const struct window *windows, int n_windows, float *features, float *keys);

#endif
