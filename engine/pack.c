/* pack.c — every linear of a bound checkpoint packed once for the GEMM
 * library, and the F32 copies it no longer needs freed. */
#include "checkpoint.h"

struct packer
{
  const struct gemm_config *config;
  GPtrArray *owned;
  GError **error;
};

/* A converted or transposed buffer the packed copy replaces is freed; a
 * pointer into the mapped file, or into the middle of a fused buffer (k and
 * v of OpenAI's in_proj), is not in @owned and stays. */
static void
release (struct packer *p, const float **ptr)
{
  if (gemm_borrows_weights (p->config))
    return;
  g_ptr_array_remove_fast (p->owned, (gpointer) *ptr);
  *ptr = NULL;
}

static gboolean
pack (struct packer *p, struct packed_linear **out, const struct linear_rows *parts,
    int n_parts, int K, enum gemm_epilogue epilogue)
{
  *out = packed_linear_new (p->config, parts, n_parts, K, epilogue, p->error);
  return *out != NULL;
}

static gboolean
pack_block (struct packer *p, struct clip_block *blk, int D, int M, enum gemm_epilogue act)
{
  struct linear_rows qkv[3] = { {blk->q_w, blk->q_b, D}, {blk->k_w, blk->k_b, D},
  {blk->v_w, blk->v_b, D}
  };
  /* SwiGLU's gate is its own linear: fused with fc1 into one [T, 2M] output,
   * fc2 would read its product with a row stride of 2M, which oneDNN runs on
   * its slow reference path */
  gboolean gated = blk->gate_w != NULL;

  if (!pack (p, &blk->qkv, qkv, 3, D, GEMM_EPILOGUE_NONE)
      || !pack (p, &blk->out, &(struct linear_rows) { blk->out_w, blk->out_b, D }, 1, D,
          GEMM_EPILOGUE_NONE)
      || !pack (p, &blk->fc1, &(struct linear_rows) { blk->fc1_w, blk->fc1_b, M }, 1, D,
          gated ? GEMM_EPILOGUE_NONE : act)
      || (gated && !pack (p, &blk->gate, &(struct linear_rows) { blk->gate_w, blk->gate_b, M }, 1,
              D, GEMM_EPILOGUE_NONE))
      || !pack (p, &blk->fc2, &(struct linear_rows) { blk->fc2_w, blk->fc2_b, D }, 1, M,
          GEMM_EPILOGUE_NONE))
    return FALSE;
  {
    const float **raw[] = { &blk->q_w, &blk->k_w, &blk->v_w, &blk->q_b, &blk->k_b, &blk->v_b,
      &blk->out_w, &blk->out_b, &blk->fc1_w, &blk->fc1_b, &blk->fc2_w, &blk->fc2_b,
      &blk->gate_w, &blk->gate_b
    };

    for (guint i = 0; i < G_N_ELEMENTS (raw); i++)
      release (p, raw[i]);
  }
  return TRUE;
}

static gboolean
pack_tower (struct packer *p, struct clip_tower *tw, enum gemm_epilogue act)
{
  for (int l = 0; l < tw->layers; l++)
    if (!pack_block (p, &tw->blocks[l], tw->width, tw->mlp, act))
      return FALSE;
  return TRUE;
}

gboolean
checkpoint_pack_linears (struct clip_weights *w, const struct gemm_config *config,
    GPtrArray *owned, GError **error)
{
  struct packer p = { config, owned, error };
  struct clip_vision *v = &w->vision;
  struct clip_text *t = &w->text;
  int D = v->tower.width, E = w->embed_dim, K = 3 * v->patch * v->patch;
  enum gemm_epilogue act = w->activation == CLIPSEG_ACTIVATION_GELU
      ? GEMM_EPILOGUE_GELU : GEMM_EPILOGUE_QUICK_GELU;

  if (!pack (&p, &v->patch_embed, &(struct linear_rows) { v->patch_w, v->patch_b, D }, 1, K,
          GEMM_EPILOGUE_NONE)
      || !pack (&p, &v->proj, &(struct linear_rows) { v->proj_w, v->proj_b, E }, 1, D,
          GEMM_EPILOGUE_NONE)
      || !pack (&p, &t->proj, &(struct linear_rows) { t->proj_w, NULL, E }, 1, t->tower.width,
          GEMM_EPILOGUE_NONE))
    return FALSE;
  release (&p, &v->patch_w);
  release (&p, &v->proj_w);
  release (&p, &v->patch_b);
  release (&p, &v->proj_b);
  release (&p, &t->proj_w);
  return pack_tower (&p, &v->tower, act) && pack_tower (&p, &t->tower, act);
}

static void
free_tower (struct clip_tower *tw)
{
  for (int l = 0; tw->blocks && l < tw->layers; l++) {
    struct packed_linear **linears[] = { &tw->blocks[l].qkv, &tw->blocks[l].out,
      &tw->blocks[l].fc1, &tw->blocks[l].gate, &tw->blocks[l].fc2
    };

    for (guint i = 0; i < G_N_ELEMENTS (linears); i++)
      g_clear_pointer (linears[i], packed_linear_free);
  }
}

void
checkpoint_free_linears (struct clip_weights *w)
{
  g_clear_pointer (&w->vision.patch_embed, packed_linear_free);
  g_clear_pointer (&w->vision.proj, packed_linear_free);
  g_clear_pointer (&w->text.proj, packed_linear_free);
  free_tower (&w->vision.tower);
  free_tower (&w->text.tower);
}
