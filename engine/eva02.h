/* eva02.h — internal: what EVA02-CLIP's vision tower (CLIPSelf's released
 * weights) adds to CLIP's: EVA-CLIP key names, a 2D rotary position embedding
 * on the patch tokens' q and k, and the SwiGLU MLP.
 *
 * The tower is chosen from the checkpoint's keys (visual.patch_embed.proj.weight)
 * and bound into the CLIP layout (checkpoint.h): norm is ln_post, head the
 * projection (with a bias), no ln_pre, layer norms with eps 1e-6. The text
 * tower is OpenAI's under "text.".
 *
 * RoPE (EVA-CLIP's VisionRotaryEmbeddingFast with intp_freq): a head of
 * width d rotates its first d/2 values by the patch's row and the others by
 * its column, pairs (x2j, x2j+1) by the angle t·f_j with
 * f_j = 10000^(-4j/d), j < d/4, and t = i · rope_seq / g for index i of an
 * axis of g patches. Each axis is scaled by its own length: EVA-CLIP derives
 * one g = int(sqrt(gh·gw)) for both, which is wrong for non-square grids.
 */
#ifndef EVA02_H
#define EVA02_H

#include "binder.h"

#define EVA02_KEY "visual.patch_embed.proj.weight"
#define EVA02_BLOCK "visual.blocks.%d."
#define EVA02_ROPE_SEQ 16      /* pt_hw_seq_len of EVA02-CLIP-B-16 and -L-14-336, the default */
#define EVA02_LN_EPS 1e-6f

/* Binds the vision tower and w->embed_dim from the EVA-CLIP names for RoPE
 * positions spanning @rope_seq steps, checking any RoPE tables the
 * checkpoint carries against the ones computed. */
gboolean eva02_bind_vision (struct binder *b, int rope_seq, struct clip_weights *w);

/* The angles of one patch grid, per axis. */
struct rope_grid {
  int gh, gw;
  int n_freq;                  /* d / 4 */
  float *cos, *sin;            /* [gh + gw, n_freq]: the rows' angles, then the columns' */
};

size_t rope_grid_floats (int gh, int gw, int head_dim);
/* Fills @r in @mem (rope_grid_floats floats) for positions spanning @seq steps. */
void rope_grid_init (struct rope_grid *r, float *mem, int gh, int gw, int head_dim, int seq);

/* Rotates q and k of the patch tokens (not token 0, the class token) of B
 * sequences of L = 1 + gh·gw tokens in a [B·L, 3D] q|k|v buffer, H heads. */
void rope_rotate (const struct rope_grid *r, float *qkv, int B, int L, int D, int H,
    int n_threads);

#endif
