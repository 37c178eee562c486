/* segment.h — internal: the scratch of SCLIP's segmentation procedure.
 *
 * No allocation per frame: every buffer grows to the largest size asked for
 * and is kept, so frames of a steady input size, output size and query count
 * allocate nothing, whatever the thresholds and refinements.
 */
#ifndef SEGMENT_H
#define SEGMENT_H

#include "buffer.h"

/* Owned by one state. */
struct segment_scratch {
  struct buffer features;      /* [B·N, E] patch features of one round of windows */
  struct buffer keys;          /* [B·N, D] the last block's out_proj(K) */
  struct buffer logits;        /* [B·N, Q] */
  struct buffer sum;           /* [H, W, Q] summed window cosines */
  struct buffer resized;       /* [oh, ow, Q] */
  struct buffer refine;        /* key smoothing's, then PAMR's scratch */
  struct buffer probs;         /* [C, oh, ow] when the caller wants labels only */
  struct label_buffer labels;  /* [oh, ow] when the area threshold needs them and the caller does not */
};

void segment_scratch_clear (struct segment_scratch *scratch);

#endif
