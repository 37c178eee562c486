/* state.h — internal: the scratch of the vision pass and segmentation.
 *
 * Buffers grow to the largest size asked for and are then reused, so frames of
 * a steady size allocate nothing.
 */
#ifndef STATE_H
#define STATE_H

#include "attention.h"
#include "clipseg-engine.h"

struct buffer {
  float *data;
  size_t capacity;             /* in floats */
};

/* FALSE with an INVALID error naming the first NaN or infinite value of the
 * [3, height, width] pixels: they would poison every cosine of their window. */
gboolean engine_check_pixels (const float *pixels, int height, int width, GError **error);

/* TRUE, with a CANCELLED error, once @st's abort callback asks to stop. */
gboolean engine_aborted (const struct clipseg_state *st, GError **error);

/* @b's data with room for at least @n floats (contents not kept when it grows). */
float *buffer_reserve (struct buffer *b, size_t n);
/* The same for sizes that come from the input (frame size, label count): NULL,
 * with an INVALID error naming @what and the size, when the memory cannot be had. */
float *buffer_try_reserve (struct buffer *b, size_t n, const char *what, GError **error);

/* Activations of one vision forward over B windows of L tokens. */
struct vision_scratch {
  struct buffer tokens;        /* [B·L, D] residual stream */
  struct buffer block;         /* block_scratch_size() */
  struct buffer patches;       /* [B·N, 3·p·p] */
  struct buffer scclip;        /* scclip_scratch_size(), mode scclip only */
};

struct clipseg_state {
  struct clipseg_model *model;
  int n_threads;
  clipseg_abort_func abort;    /* NULL: never stop */
  void *abort_data;

  /* vision pass */
  struct vision_scratch *scratch;  /* [n_threads]: one per thread running its own windows */
  struct buffer features;      /* [B·N, E] */
  struct buffer positions;     /* [1 + gh·gw, D] interpolated position embedding */
  int pos_gh, pos_gw;          /* grid the positions are for; 0 = none yet */
  struct buffer neighbourhood; /* [gh + gw] NACLIP's Gaussian per grid axis */
  struct attention_grid_bias nb_bias;  /* on it */
  int nb_gh, nb_gw;            /* grid it is for; 0 = none yet */

  /* segmentation */
  struct buffer logits;        /* [B·N, Q] */
  struct buffer sum;           /* [H, W, Q] summed window cosines */
  struct buffer resized;       /* [oh, ow, Q] */
  struct buffer probs;         /* [C, oh, ow] when the caller wants labels only */
  struct buffer labels;        /* [oh, ow] as floats-sized storage for int32 */

  /* MaskCLIP's refinements and PAMR (maskclip-refine.h, pamr.h) */
  struct buffer keys;          /* [B·N, D] the last block's out_proj(K) */
  struct buffer refine;        /* key smoothing's, then PAMR's scratch */
};

#endif
