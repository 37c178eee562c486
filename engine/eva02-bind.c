/* eva02-bind.c — EVA02's vision tower bound from the EVA-CLIP "CustomCLIP"
 * names into the CLIP layout (names and shapes: algorithms.md section 3). */
#include <math.h>
#include <string.h>

#include "engine-log.h"
#include "eva02.h"


/* A [1, n, D] tensor (cls_token, pos_embed) as [n, D]. */
static const float *
bind_row_stack (struct binder *b, const char *name, int64_t n, int D)
{
  return bind_shape (b, name, 3, (int64_t[]) { 1, n, D });
}

/* A bias-free linear "<part>.weight" [rows, cols] of block @layer. */
static const float *
bind_weight (struct binder *b, int layer, const char *part, int rows, int cols)
{
  char *name = block_key (EVA02_BLOCK, layer, part, ".weight");
  const float *w = bind2 (b, name, rows, cols);

  g_free (name);
  return w;
}

static const float *
bind_vector (struct binder *b, int layer, const char *part, int n)
{
  char *name = block_key (EVA02_BLOCK, layer, part, "");
  const float *v = bind1 (b, name, n);

  g_free (name);
  return v;
}

/* Layer scale (gamma_1/gamma_2, EVA02-CLIP-E and larger) is not implemented:
 * refused rather than silently left out. */
static gboolean
refuse_layer_scale (struct binder *b, int layer)
{
  char *name = block_key (EVA02_BLOCK, layer, "gamma_1", "");
  gboolean present = safetensors_find (b->st, name) != NULL;

  if (present)
    engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source, "tensor '%s': EVA02 layer "
        "scale is not supported (only EVA02-CLIP-B/L towers without it)", name);
  g_free (name);
  return !present;
}

static gboolean
bind_eva_block (struct binder *b, int layer, int D, int M, struct clip_block *blk)
{
  /* EVA02 has no k bias: zeros, one buffer per block as the packing frees it */
  float *zeros = g_new0 (float, D);

  g_ptr_array_add (b->owned, zeros);
  blk->k_b = zeros;
  return refuse_layer_scale (b, layer)
      && bind_pair (b, EVA02_BLOCK, layer, "norm1", D, 0, &blk->ln1_w, &blk->ln1_b)
      && (blk->q_w = bind_weight (b, layer, "attn.q_proj", D, D))
      && (blk->k_w = bind_weight (b, layer, "attn.k_proj", D, D))
      && (blk->v_w = bind_weight (b, layer, "attn.v_proj", D, D))
      && (blk->q_b = bind_vector (b, layer, "attn.q_bias", D))
      && (blk->v_b = bind_vector (b, layer, "attn.v_bias", D))
      && bind_pair (b, EVA02_BLOCK, layer, "attn.inner_attn_ln", D, 0, &blk->inner_ln_w,
      &blk->inner_ln_b)
      && bind_pair (b, EVA02_BLOCK, layer, "attn.proj", D, D, &blk->out_w, &blk->out_b)
      && bind_pair (b, EVA02_BLOCK, layer, "norm2", D, 0, &blk->ln2_w, &blk->ln2_b)
      && bind_pair (b, EVA02_BLOCK, layer, "mlp.w1", M, D, &blk->fc1_w, &blk->fc1_b)
      && bind_pair (b, EVA02_BLOCK, layer, "mlp.w2", M, D, &blk->gate_w, &blk->gate_b)
      && bind_pair (b, EVA02_BLOCK, layer, "mlp.ffn_ln", M, 0, &blk->ffn_ln_w, &blk->ffn_ln_b)
      && bind_pair (b, EVA02_BLOCK, layer, "mlp.w3", D, M, &blk->fc2_w, &blk->fc2_b);
}

/* A stored RoPE table [g0², d] (EVA-CLIP's freqs_cos or freqs_sin buffer,
 * saved with the weights) must be the one the engine computes for the
 * native grid: else the checkpoint was made with other RoPE settings. Its
 * entry (row, col, 2j or 2j+1) is the row angle j in the first d/2 values,
 * the column angle j in the others. */
static gboolean
check_rope_table (struct binder *b, const char *name, const struct rope_grid *r, int d,
    int seq, gboolean is_sin)
{
  const struct st_tensor *t = safetensors_find (b->st, name);
  int g = r->gh, n = r->n_freq;
  const float *v;

  if (!t)
    return TRUE;
  if (!check_shape (b, t, 2, (int64_t[]) { (int64_t) g * g, d }) || !(v = tensor_floats (b, t)))
    return FALSE;
  for (int p = 0; p < g * g; p++) {
    for (int c = 0; c < d; c++) {
      int j = (c % (d / 2)) / 2, axis_index = c < d / 2 ? p / g : g + p % g;
      const float *want = is_sin ? r->sin : r->cos;
      float expected = want[axis_index * n + j];

      /* 1e-2: tables saved in half precision still pass */
      if (fabsf (v[(size_t) p * d + c] - expected) > 1e-2f)
        return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path, "tensor '%s' holds %g "
            "at [%d, %d] where RoPE with pt_hw_seq_len %d on a %dx%d grid gives %g: it was "
            "made with other RoPE settings (config.json's vision_config.rope_pt_hw_seq_len "
            "sets pt_hw_seq_len)", name, v[(size_t) p * d + c], p, c, seq, g, g, expected);
    }
  }
  return TRUE;
}

static gboolean
check_rope_tables (struct binder *b, const struct clip_vision *v)
{
  int d = v->tower.width / v->tower.heads;
  float *mem = g_new (float, rope_grid_floats (v->grid, v->grid, d));
  struct rope_grid r;
  gboolean ok = TRUE;

  rope_grid_init (&r, mem, v->grid, v->grid, d, v->rope_seq);
  for (int l = -1; l < v->tower.layers && ok; l++) {
    char *prefix = l < 0 ? g_strdup ("visual.rope.") : block_key (EVA02_BLOCK, l, "attn.rope.", "");
    char *cos_name = g_strconcat (prefix, "freqs_cos", NULL), *sin_name =
        g_strconcat (prefix, "freqs_sin", NULL);

    ok = check_rope_table (b, cos_name, &r, d, v->rope_seq, FALSE)
        && check_rope_table (b, sin_name, &r, d, v->rope_seq, TRUE);
    g_free (prefix);
    g_free (cos_name);
    g_free (sin_name);
  }
  g_free (mem);
  return ok;
}

static gboolean
infer_shapes (struct binder *b, int rope_seq, struct clip_weights *w)
{
  struct clip_vision *v = &w->vision;
  int64_t width = bind_dim (b, EVA02_KEY, 4, 0), patch = bind_dim (b, EVA02_KEY, 4, 3);
  int64_t n_pos = width > 0 ? bind_dim (b, "visual.pos_embed", 3, 1) : -1;
  int64_t mlp = n_pos > 0 ? bind_dim (b, "visual.blocks.0.mlp.w1.weight", 2, 0) : -1;
  int64_t embed = mlp > 0 ? bind_dim (b, "visual.head.weight", 2, 0) : -1;

  if (width <= 0 || patch <= 0 || n_pos <= 0 || mlp <= 0 || embed <= 0)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "EVA02 vision tower: empty or missing shapes");
  v->tower.width = (int) width;
  v->tower.mlp = (int) mlp;
  v->tower.swiglu = TRUE;
  v->patch = (int) patch;
  v->rope_seq = rope_seq;
  v->ln_eps = EVA02_LN_EPS;
  w->embed_dim = (int) embed;
  if (!count_layers (b, EVA02_BLOCK, "norm1", &v->tower.layers)
      || !bind_grid (b, "visual.pos_embed", n_pos, &v->grid)
      || !bind_heads (b, "vision", v->tower.width, 0, 0, NULL, &v->tower.heads))
    return FALSE;
  if ((v->tower.width / v->tower.heads) % 4 != 0)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "EVA02 head width %d is not " "a multiple of 4, which its 2D RoPE needs",
        v->tower.width / v->tower.heads);
  return TRUE;
}

gboolean
eva02_bind_vision (struct binder *b, int rope_seq, struct clip_weights *w)
{
  struct clip_vision *v = &w->vision;
  int D, E, p;

  if (!infer_shapes (b, rope_seq, w))
    return FALSE;
  D = v->tower.width, E = w->embed_dim, p = v->patch;
  if (!(v->patch_w = bind_shape (b, EVA02_KEY, 4, (int64_t[]) { D, 3, p, p }))
      || !(v->patch_b = bind1 (b, "visual.patch_embed.proj.bias", D))
      || !(v->class_emb = bind_row_stack (b, "visual.cls_token", 1, D))
      || !(v->pos_emb = bind_row_stack (b, "visual.pos_embed", 1 + (int64_t) v->grid * v->grid, D))
      || !(v->ln_post_w = bind_ln (b, "visual.norm", D, &v->ln_post_b))
      || !(v->proj_w = bind2 (b, "visual.head.weight", E, D))
      || !(v->proj_b = bind1 (b, "visual.head.bias", E)))
    return FALSE;
  v->tower.blocks = g_new0 (struct clip_block, v->tower.layers);
  for (int l = 0; l < v->tower.layers; l++)
    if (!bind_eva_block (b, l, D, v->tower.mlp, &v->tower.blocks[l]))
      return FALSE;
  return check_rope_tables (b, v);
}
