/* maskclip-refine.h — internal: MaskCLIP's prompt denoising and key smoothing
 * (maskclip_head.py refine_output), on one window's patch-grid cosines.
 *
 * The settings and their meaning are those of clipseg_segment_params
 * (pd_thresh, ks_thresh): prompt denoising first, then key smoothing, both on
 * softmax(100·cosine) over the queries whatever the segmentation's own logit
 * scale, as MaskCLIP's code fixes it. Probabilities are compared with the
 * thresholds exactly (in the log domain, in double), so at threshold 1 every
 * patch is below it: MaskCLIP's float32 code rounds the most confident ones
 * to 1 and leaves them out.
 */
#ifndef MASKCLIP_REFINE_H
#define MASKCLIP_REFINE_H

#include <stddef.h>

/* Floats of scratch maskclip_refine needs for @N patches and @Q queries. */
size_t maskclip_refine_scratch_size (int N, int Q);

/* Refines @logits [N, Q] (cosines of N patches with Q queries) in place.
 * @keys [N, D]: the window's last-block keys after out_proj, one row per
 * patch; overwritten (each channel normalised over the patches). @keys may
 * be NULL when @ks_thresh is 0. Outside parallel regions: the products use
 * every BLAS thread. */
void maskclip_refine (float *logits, float *keys, int N, int Q, int D, float pd_thresh,
    float ks_thresh, float *scratch);

#endif
