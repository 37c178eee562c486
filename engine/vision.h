/* vision.h — internal: the vision tower over a batch of equal-size windows. */
#ifndef VISION_H
#define VISION_H

#include "state.h"

/* Top-left corner of one window inside the image. */
struct window {
  int y, x;
};

/* Encodes @n_windows windows of @h x @w pixels cut from @pixels [3, H, W]
 * (the patch grid takes floor(h/p) x floor(w/p), as a stride-p convolution
 * does) and writes L2-normalised patch features [n_windows·N, E] to @features,
 * CLS dropped. The last block runs in @mode. */
void vision_forward (struct clipseg_state *st, const float *pixels, int H, int W,
    const struct window *windows, int n_windows, int h, int w, enum clipseg_mode mode,
    float *features);

#endif
