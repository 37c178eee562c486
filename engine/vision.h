/* vision.h — internal: the vision tower over a batch of equal-size windows. */
#ifndef VISION_H
#define VISION_H

#include "checkpoint.h"
#include "scclip.h"
#include "state.h"
#include "transformer.h"

/* Top-left corner of one window inside the image. */
struct window {
  int y, x;
};

/* What every window of one size shares. */
struct vision_plan {
  int h, w;                    /* window size in pixels */
  int gh, gw;                  /* its patch grid: floor(h/p) x floor(w/p), as a stride-p conv takes */
  const float *positions;      /* [1 + gh·gw, D] */
  struct mixing last;          /* the last block's token mixing for the mode */
  gboolean scclip;             /* SC-CLIP's last block instead (scclip.h) */
  struct scclip_layers layers; /* the blocks it reads */
  const struct clipseg_state *st;  /* polled for an abort between layers */
};

/* Fills @plan for @h x @w windows in @mode, computing (and caching in @st)
 * interpolated positions and NACLIP's bias. Call it before any forward that
 * uses the plan, outside parallel regions. */
void vision_plan (struct clipseg_state *st, int h, int w, enum clipseg_mode mode,
    struct vision_plan *plan);

/* Encodes @n_windows windows of @pixels [3, H, W] with the scratch @vs and
 * @n_threads threads for its own loops (1 when the caller runs several
 * forwards in parallel) and writes L2-normalised patch features
 * [n_windows·N, E] to @features, CLS dropped, and when @keys is not NULL the
 * last block's keys after out_proj, [n_windows·N, D], CLS dropped (MaskCLIP's
 * key smoothing). Stops between layers once the state's abort callback asks
 * to (the outputs are then garbage: the caller checks engine_aborted). */
void vision_forward (const struct clip_weights *cw, const struct vision_plan *plan,
    struct vision_scratch *vs, int n_threads, const float *pixels, int H, int W,
    const struct window *windows, int n_windows, float *features, float *keys);

#endif
