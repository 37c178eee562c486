/* scclip.h — internal: SC-CLIP's last block (Bai et al., arXiv 2411.15869).
 *
 * Training-free, CLIP alone. For ViT-B/16 (12 blocks), per window:
 *  1. anomalies: at the last block's input, the 5% of patch tokens with the
 *     highest local outlier factor (k = 30) are replaced by the mean of
 *     their 3x3 grid neighbours; the block-9 tokens at the same places too;
 *  2. S9 = cosine similarities of the block-9 patch tokens; the tokens are
 *     re-aggregated by S9 with entries below 0.4 zeroed, rows normalised;
 *  3. the last block becomes ½[softmax(P) + softmax(s·K Kᵀ)] V, then
 *     out_proj, with P = 3·(S9 - mean(S9)) and its negative entries -inf,
 *     over the patch tokens only; no residual, no MLP; + 0.3·CLS (the
 *     block's input class token);
 *  4. the result is re-aggregated by the block-4 similarities (thresholded
 *     at 0.4 and row-normalised as in 2);
 *  5. multi-level fusion: the sum of the block 4..10 outputs goes through
 *     the same attention (+ 0.3 times its own class-token row) and the
 *     same block-4 aggregation, and is added.
 * The output replaces the window's patch rows; ln_post and the projection
 * follow as for every mode. Details the method's description leaves open
 * follow SC-CLIP's code (clip/model.py) unless scclip.c says otherwise.
 */
#ifndef SCCLIP_H
#define SCCLIP_H

#include "checkpoint.h"
#include "transformer.h"

/* Which block outputs SC-CLIP reads, as 0-based block indices (-1: the
 * tokens after ln_pre, before any block). */
struct scclip_layers {
  int aggregate;               /* block 4 of 12: the final aggregation */
  int attend;                  /* block 9 of 12: the attention prior and first aggregation */
  int fuse_first, fuse_last;   /* blocks 4..10 of 12: summed for multi-level fusion */
};

/* The blocks for a tower of @n_layers: ViT-B/16's 4, 9 and 4..10 (1-based)
 * of 12 scaled to the depth, so ViT-L/14 reads 8, 18 and 8..20 of 24;
 * all before the last block. */
void scclip_layers_for (int n_layers, struct scclip_layers *ly);

/* Floats of scratch scclip_keep and scclip_last_block need for @B windows
 * of @N patches of width @D. */
size_t scclip_scratch_size (int B, int N, int D);

/* Called with the tokens @x [B·(N+1), D] after ln_pre (@layer -1) and after
 * every block but the last (@layer its index): keeps in @scratch what the
 * last block will read. */
void scclip_keep (const struct scclip_layers *ly, int layer, const float *x, int B, int N, int D,
    float *scratch);

/* Runs SC-CLIP's last block on the @B windows of @x (each gh x gw patches
 * and a class token, [B·(1 + gh·gw), D]): the patch rows are replaced by
 * SC-CLIP's output, the class-token rows left as they were. @s is the
 * forward's block scratch (for B·(1 + gh·gw) tokens), whose threads run
 * the attention; the rest runs on the calling thread (and BLAS's). */
void scclip_last_block (const struct clip_tower *tw, float eps, int gh, int gw, float *x, int B,
    struct block_scratch *s, float *scratch);

#endif
