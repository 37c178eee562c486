/* pamr.h — internal: PAMR, pixel-adaptive mask refinement (Araslanov & Roth's
 * pamr.py, as SCLIP and NACLIP run it on their logits).
 *
 * Each pixel's affinity to its 8 neighbours at each dilation (8 and 16, so 16
 * neighbours; coordinates clamped to the image, as replicate padding) is
 * -|I(p) - I(n)| / (1e-8 + 0.1·σ), σ the unbiased standard deviation of the
 * 18 samples (the 3x3 pattern with its centre, at both dilations), per image
 * channel; averaged over the 3 channels and softmaxed over the neighbours.
 * One step replaces every pixel's logits by the affinity-weighted sum of its
 * neighbours' (the pixel itself not included).
 */
#ifndef PAMR_H
#define PAMR_H

#include <stddef.h>

#define PAMR_NEIGHBOURS 16

/* Fills @affinity [H·W, PAMR_NEIGHBOURS] from @image, planar [3, H, W]. */
void pamr_affinity (const float *image, int H, int W, float *affinity);

/* One refinement step: @out [H·W, Q] from @in [H·W, Q] (pixel-major, distinct
 * buffers). */
void pamr_step (const float *affinity, int H, int W, const float *in, float *out, int Q);

#endif
