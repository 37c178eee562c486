/* checkpoint.c — binds safetensors tensors to the CLIP weight layout, for both
 * key namings, checking every shape against the hyperparameters. */
#include <math.h>
#include <string.h>

#include "binder.h"
#include "checkpoint.h"
#include "engine-log.h"
#include "eva02.h"
#include "finite.h"
#include "json-file.h"
#include "kernels.h"

/* ---- config.json ---------------------------------------------------------- */

/* Reads an optional positive integer field; absent or null leaves *out alone. */
static gboolean
read_int (JsonObject *obj, const char *section, const char *field, int *out, const char *path,
    GError **error)
{
  JsonNode *node = json_object_get_member (obj, field);
  int64_t v;

  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64
      || (v = json_node_get_int (node)) <= 0 || v > G_MAXINT / 4)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "%s.%s is not a positive integer",
        section, field);
  *out = (int) v;
  return TRUE;
}

static gboolean
read_activation (JsonObject *obj, const char *section, enum clipseg_activation *act,
    const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (obj, "hidden_act");
  enum clipseg_activation found;
  const char *name;

  if (!node || JSON_NODE_HOLDS_NULL (node))
    found = CLIPSEG_ACTIVATION_QUICK_GELU;      /* transformers' CLIP default */
  else if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "%s.hidden_act is not a string",
        section);
  else if (strcmp (name = json_node_get_string (node), "quick_gelu") == 0)
    found = CLIPSEG_ACTIVATION_QUICK_GELU;
  else if (strcmp (name, "gelu") == 0)
    found = CLIPSEG_ACTIVATION_GELU;
  else
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "%s.hidden_act '%s' is not supported (quick_gelu or gelu)", section, name);
  if (*act != CLIPSEG_ACTIVATION_AUTO && *act != found)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "text and vision towers use different activations");
  *act = found;
  return TRUE;
}

static gboolean
read_eps (JsonObject *obj, const char *section, float *eps, const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (obj, "layer_norm_eps");
  double v;

  if (!node || JSON_NODE_HOLDS_NULL (node))
    v = 1e-5;
  else if (!JSON_NODE_HOLDS_VALUE (node)
      || (json_node_get_value_type (node) != G_TYPE_DOUBLE
          && json_node_get_value_type (node) != G_TYPE_INT64)
      || !((v = json_node_get_double (node)) > 0 && v < 1))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "%s.layer_norm_eps is not a number in (0, 1)", section);
  if (*eps != 0 && *eps != (float) v)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "text and vision towers use different layer_norm_eps");
  *eps = (float) v;
  return TRUE;
}

/* transformers accepts both "text_config" and the older "text_config_dict". */
static JsonObject *
tower_section (JsonObject *root, const char *name)
{
  char *legacy = g_strconcat (name, "_dict", NULL);
  JsonNode *node = json_object_get_member (root, name);

  if (!node || !JSON_NODE_HOLDS_OBJECT (node))
    node = json_object_get_member (root, legacy);
  g_free (legacy);
  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* "clip" (or none), or "eva02-clip" as scripts/convert-checkpoint.py writes
 * for EVA02-CLIP and CLIPSelf weights. */
static gboolean
check_model_type (JsonObject *root, struct clip_hf_config *c, const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (root, "model_type");
  const char *type;

  if (!node)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "model_type is not a string");
  type = json_node_get_string (node);
  c->eva02 = strcmp (type, "eva02-clip") == 0;
  if (strcmp (type, "clip") != 0 && !c->eva02) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
        "%s: unknown architecture: model_type is '%s', expected 'clip' or 'eva02-clip'", path,
        type);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_sections (JsonObject *root, struct clip_hf_config *c, const char *path, GError **error)
{
  JsonObject *vision = tower_section (root, "vision_config");
  JsonObject *text = tower_section (root, "text_config");

  if (!vision || !text)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "missing object '%s'",
        vision ? "text_config" : "vision_config");
  return read_int (vision, "vision_config", "hidden_size", &c->vision_width, path, error)
      && read_int (vision, "vision_config", "intermediate_size", &c->vision_mlp, path, error)
      && read_int (vision, "vision_config", "num_attention_heads", &c->vision_heads, path, error)
      && read_int (vision, "vision_config", "num_hidden_layers", &c->vision_layers, path, error)
      && read_int (vision, "vision_config", "image_size", &c->image_size, path, error)
      && read_int (vision, "vision_config", "patch_size", &c->patch_size, path, error)
      && read_int (vision, "vision_config", "rope_pt_hw_seq_len", &c->rope_seq, path, error)
      && read_int (text, "text_config", "hidden_size", &c->text_width, path, error)
      && read_int (text, "text_config", "intermediate_size", &c->text_mlp, path, error)
      && read_int (text, "text_config", "num_attention_heads", &c->text_heads, path, error)
      && read_int (text, "text_config", "num_hidden_layers", &c->text_layers, path, error)
      && read_int (text, "text_config", "max_position_embeddings", &c->context, path, error)
      && read_int (text, "text_config", "vocab_size", &c->vocab, path, error)
      && read_int (root, "config", "projection_dim", &c->embed_dim, path, error)
      /* EVA02's vision tower has its own eps and no activation to choose */
      && (c->eva02 || read_activation (vision, "vision_config", &c->activation, path, error))
      && read_activation (text, "text_config", &c->activation, path, error)
      && (c->eva02 || read_eps (vision, "vision_config", &c->ln_eps, path, error))
      && read_eps (text, "text_config", &c->ln_eps, path, error);
}

gboolean
checkpoint_read_hf_config (const char *path, struct clip_hf_config *config, GError **error)
{
  JsonParser *parser = json_parser_new_immutable ();
  JsonObject *root;
  gboolean ok;

  memset (config, 0, sizeof *config);
  config->path = path;
  root = json_load_object (parser, path, error);
  ok = root && check_model_type (root, config, path, error)
      && read_sections (root, config, path, error);
  g_object_unref (parser);
  return ok;
}

/* ---- binding tensors ----------------------------------------------------- */

const struct st_tensor *
bind_require (struct binder *b, const char *name)
{
  const struct st_tensor *t = safetensors_find (b->st, name);

  if (!t)
    engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source, "missing tensor '%s'", name);
  return t;
}

static char *
shape_string (int n_dims, const int64_t *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

gboolean
check_shape (struct binder *b, const struct st_tensor *t, int n_dims, const int64_t *shape)
{
  gboolean same = t->n_dims == n_dims;
  char *have, *want;

  for (int i = 0; same && i < n_dims; i++)
    same = t->shape[i] == shape[i];
  if (same)
    return TRUE;
  have = shape_string (t->n_dims, t->shape);
  want = shape_string (n_dims, shape);
  engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path,
      "tensor '%s' has shape %s, expected %s", t->name, have, want);
  g_free (have);
  g_free (want);
  return FALSE;
}

/* NaN or infinity in a weight makes every answer NaN (a label map of zeros
 * without a word): the first bad tensor is named at load instead. */
static const float *
check_finite (struct binder *b, const struct st_tensor *t, const float *v)
{
  size_t bad = floats_find_nonfinite (v, (size_t) t->n_elements);

  if (bad == (size_t) t->n_elements)
    return v;
  engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path,
      "tensor '%s' holds %g at element %zu: " "weights must be finite numbers", t->name, v[bad],
      bad);
  return NULL;
}

/* F32 data aligned in the mapping is used in place; anything else is converted
 * into an owned buffer once. */
const float *
tensor_floats (struct binder *b, const struct st_tensor *t)
{
  const guint8 *src = t->data;
  float *dst;

  b->dtypes_seen |= 1u << t->dtype;
  b->n_params += t->n_elements;
  if (t->dtype == ST_DTYPE_F32 && ((uintptr_t) src % sizeof (float)) == 0)
    return check_finite (b, t, (const float *) src);
  if (t->dtype != ST_DTYPE_F32 && t->dtype != ST_DTYPE_F16 && t->dtype != ST_DTYPE_BF16) {
    engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path,
        "tensor '%s' has dtype %s, expected F32, F16 or BF16", t->name, st_dtype_name (t->dtype));
    return NULL;
  }
  dst = g_new (float, MAX (t->n_elements, 1));
  g_ptr_array_add (b->owned, dst);
  if (t->dtype == ST_DTYPE_F32)
    memcpy (dst, src, (size_t) t->n_elements * sizeof (float));
  else if (t->dtype == ST_DTYPE_F16)
    half_to_float_n (src, dst, (size_t) t->n_elements);
  else
    bf16_to_float_n (src, dst, (size_t) t->n_elements);
  st_tensor_release_pages (t);
  return check_finite (b, t, dst);
}

/* The [d0, d1] tensor @name as stored when it is F16 or BF16 (the largest,
 * the token embedding, is looked up a few rows at a time), else as floats. */
static const guint8 *
bind_stored (struct binder *b, const char *name, int64_t d0, int64_t d1, enum st_dtype *dtype)
{
  const struct st_tensor *t = bind_require (b, name);

  if (!t || !check_shape (b, t, 2, (int64_t[]) { d0, d1 }))
    return NULL;
  if (t->dtype == ST_DTYPE_F16 || t->dtype == ST_DTYPE_BF16) {
    uint16_t mask = t->dtype == ST_DTYPE_F16 ? 0x7c00 : 0x7f80;
    size_t bad = halves_find_nonfinite (t->data, (size_t) t->n_elements, mask);

    if (bad != (size_t) t->n_elements) {
      engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path, "tensor '%s' holds a NaN or "
          "infinity at element %zu: weights must be finite numbers", t->name, bad);
      return NULL;
    }
    b->dtypes_seen |= 1u << t->dtype;
    b->n_params += t->n_elements;
    *dtype = t->dtype;
    return t->data;
  }
  *dtype = ST_DTYPE_F32;
  return (const guint8 *) tensor_floats (b, t);
}

/* The tensor @name with exactly @n_dims dimensions of sizes @shape. */
const float *
bind_shape (struct binder *b, const char *name, int n_dims, const int64_t *shape)
{
  const struct st_tensor *t = bind_require (b, name);

  if (!t || !check_shape (b, t, n_dims, shape))
    return NULL;
  return tensor_floats (b, t);
}

const float *
bind1 (struct binder *b, const char *name, int64_t d0)
{
  return bind_shape (b, name, 1, (int64_t[]) { d0 });
}

const float *
bind2 (struct binder *b, const char *name, int64_t d0, int64_t d1)
{
  return bind_shape (b, name, 2, (int64_t[]) { d0, d1 });
}

/* An x @ P matrix [rows, cols] stored transposed as a Linear weight [cols, rows]. */
static const float *
bind_transposed (struct binder *b, const char *name, int64_t rows, int64_t cols)
{
  const float *p = bind2 (b, name, rows, cols);
  float *t;

  if (!p)
    return NULL;
  t = g_new (float, rows * cols);
  g_ptr_array_add (b->owned, t);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      t[c * rows + r] = p[r * cols + c];
  return t;
}

/* ---- the two namings ------------------------------------------------------- */

struct naming
{
  const char *name;
  /* printf formats with %s = tower prefix and %d = layer */
  const char *ln1, *ln2, *fc1, *fc2, *out;
  gboolean fused_qkv;           /* OpenAI: in_proj_weight [3D, D] + in_proj_bias */
  const char *vision_block, *text_block;
};

static const struct naming openclip_naming = {
  .name = "openclip",
  .ln1 = "ln_1",.ln2 = "ln_2",.fc1 = "mlp.c_fc",.fc2 = "mlp.c_proj",.out = "attn.out_proj",
  .fused_qkv = TRUE,
  .vision_block = "visual.transformer.resblocks.%d.",.text_block = "transformer.resblocks.%d.",
};

static const struct naming hf_naming = {
  .name = "huggingface",
  .ln1 = "layer_norm1",.ln2 = "layer_norm2",.fc1 = "mlp.fc1",.fc2 = "mlp.fc2",
  .out = "self_attn.out_proj",
  .fused_qkv = FALSE,
  .vision_block = "vision_model.encoder.layers.%d.",.text_block = "text_model.encoder.layers.%d.",
};

/* EVA-CLIP keeps OpenAI's text tower under "text." (its vision tower: eva02.h). */
static const struct naming eva02_naming = {
  .name = "eva02",
  .ln1 = "ln_1",.ln2 = "ln_2",.fc1 = "mlp.c_fc",.fc2 = "mlp.c_proj",.out = "attn.out_proj",
  .fused_qkv = TRUE,
  .vision_block = EVA02_BLOCK,.text_block = "text.transformer.resblocks.%d.",
};

char *
block_key (const char *block_format, int layer, const char *part, const char *suffix)
{
  char *prefix = g_strdup_printf (block_format, layer);
  char *name = g_strconcat (prefix, part, suffix, NULL);

  g_free (prefix);
  return name;
}

static gboolean
bind_qkv (struct binder *b, const struct naming *n, const char *fmt, int layer, int D,
    struct clip_block *blk)
{
  char *w_name, *b_name;
  const float *w, *bias;

  if (n->fused_qkv) {
    w_name = block_key (fmt, layer, "attn.in_proj_weight", "");
    b_name = block_key (fmt, layer, "attn.in_proj_bias", "");
    w = bind2 (b, w_name, 3 * (int64_t) D, D);
    bias = w ? bind1 (b, b_name, 3 * (int64_t) D) : NULL;
    g_free (w_name);
    g_free (b_name);
    if (!bias)
      return FALSE;
    blk->q_w = w, blk->k_w = w + (size_t) D *D, blk->v_w = w + 2 * (size_t) D * D;
    blk->q_b = bias, blk->k_b = bias + D, blk->v_b = bias + 2 * D;
    return TRUE;
  }
  {
    const char *parts[3] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" };
    const float **ws[3] = { &blk->q_w, &blk->k_w, &blk->v_w };
    const float **bs[3] = { &blk->q_b, &blk->k_b, &blk->v_b };

    for (int i = 0; i < 3; i++) {
      w_name = block_key (fmt, layer, parts[i], ".weight");
      b_name = block_key (fmt, layer, parts[i], ".bias");
      *ws[i] = bind2 (b, w_name, D, D);
      *bs[i] = *ws[i] ? bind1 (b, b_name, D) : NULL;
      g_free (w_name);
      g_free (b_name);
      if (!*bs[i])
        return FALSE;
    }
  }
  return TRUE;
}

/* Binds a weight/bias pair "<part>.weight" [rows(, cols)] and "<part>.bias" [rows]. */
gboolean
bind_pair (struct binder *b, const char *fmt, int layer, const char *part, int rows, int cols,
    const float **w, const float **bias)
{
  char *w_name = block_key (fmt, layer, part, ".weight");
  char *b_name = block_key (fmt, layer, part, ".bias");

  *w = cols ? bind2 (b, w_name, rows, cols) : bind1 (b, w_name, rows);
  *bias = *w ? bind1 (b, b_name, rows) : NULL;
  g_free (w_name);
  g_free (b_name);
  return *bias != NULL;
}

static gboolean
bind_block (struct binder *b, const struct naming *n, const char *fmt, int layer,
    const struct clip_tower *tw, struct clip_block *blk)
{
  int D = tw->width, M = tw->mlp;

  return bind_pair (b, fmt, layer, n->ln1, D, 0, &blk->ln1_w, &blk->ln1_b)
      && bind_qkv (b, n, fmt, layer, D, blk)
      && bind_pair (b, fmt, layer, n->out, D, D, &blk->out_w, &blk->out_b)
      && bind_pair (b, fmt, layer, n->ln2, D, 0, &blk->ln2_w, &blk->ln2_b)
      && bind_pair (b, fmt, layer, n->fc1, M, D, &blk->fc1_w, &blk->fc1_b)
      && bind_pair (b, fmt, layer, n->fc2, D, M, &blk->fc2_w, &blk->fc2_b);
}

/* Blocks are counted by their first layer norm; a tensor of any block past
 * the count means that layer norm is missing, not that the tower is shorter. */
gboolean
count_layers (struct binder *b, const char *fmt, const char *ln1, int *layers)
{
  const char *placeholder = strstr (fmt, "%d");
  size_t prefix_len = (size_t) (placeholder - fmt);
  GPtrArray *all = safetensors_tensors (b->st);
  int highest = -1;
  char *name;

  for (*layers = 0;; (*layers)++) {
    gboolean found;

    name = block_key (fmt, *layers, ln1, ".weight");
    found = safetensors_find (b->st, name) != NULL;
    g_free (name);
    if (!found)
      break;
  }
  for (guint i = 0; i < all->len; i++) {
    const char *t = ((const struct st_tensor *) g_ptr_array_index (all, i))->name;

    if (strncmp (t, fmt, prefix_len) == 0 && g_ascii_isdigit (t[prefix_len]))
      highest = MAX (highest, (int) MIN (g_ascii_strtoll (t + prefix_len, NULL, 10), G_MAXINT - 1));
  }
  g_ptr_array_free (all, TRUE);
  if (*layers > 0 && highest < *layers)
    return TRUE;
  name = block_key (fmt, *layers, ln1, ".weight");
  engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source, "missing tensor '%s'", name);
  g_free (name);
  return FALSE;
}

static gboolean
bind_tower (struct binder *b, const struct naming *n, const char *fmt, struct clip_tower *tw)
{
  tw->blocks = g_new0 (struct clip_block, tw->layers);
  for (int l = 0; l < tw->layers; l++)
    if (!bind_block (b, n, fmt, l, tw, &tw->blocks[l]))
      return FALSE;
  return TRUE;
}

/* ---- hyperparameters from shapes ------------------------------------------ */

/* Dimension @dim of tensor @name, or -1 (error set) when absent or too short. */
int64_t
bind_dim (struct binder *b, const char *name, int n_dims, int dim)
{
  const struct st_tensor *t = bind_require (b, name);

  if (!t)
    return -1;
  if (t->n_dims != n_dims) {
    engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path,
        "tensor '%s' has %d dimensions, expected %d", t->name, t->n_dims, n_dims);
    return -1;
  }
  return t->shape[dim];
}

/* Checks a hyperparameter stated in config.json against the one the tensors imply. */
static gboolean
agree (struct binder *b, const struct clip_hf_config *cfg, const char *field, int stated,
    int64_t actual)
{
  if (stated == 0 || stated == actual)
    return TRUE;
  return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
      "the tensors imply %s = %" G_GINT64_FORMAT " but %s says %d", field, actual, cfg->path,
      stated);
}

gboolean
bind_grid (struct binder *b, const char *name, int64_t n_pos, int *grid)
{
  int g = (int) lround (sqrt ((double) MAX (n_pos - 1, 0)));

  if (n_pos < 2 || (int64_t) g * g + 1 != n_pos)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "tensor '%s' has %" G_GINT64_FORMAT " positions, not 1 + a square grid", name, n_pos);
  *grid = g;
  return TRUE;
}

gboolean
bind_heads (struct binder *b, const char *tower, int width, int stated, int transformers_default,
    const struct clip_hf_config *cfg, int *heads)
{
  /* transformers: the config's value or its default; OpenAI's build_model: width / 64 */
  int h = cfg ? (stated ? stated : transformers_default) : width / 64;

  if (cfg && width % h != 0)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, cfg->path,
        "%s_config.num_attention_heads = %d does not divide the " "width %d", tower, h, width);
  if (!cfg && (h == 0 || width % 64 != 0))
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "%s tower width %d is not a multiple of 64, so the number of "
        "heads cannot be inferred as OpenAI's build_model does", tower, width);
  *heads = h;
  return TRUE;
}

struct tower_names
{
  const char *patch, *class_emb, *pos, *ln_pre, *ln_post, *proj;
  const char *tok, *text_pos, *ln_final, *text_proj;
  gboolean proj_transposed;     /* OpenAI stores x @ P as [in, out] */
};

static const struct tower_names openclip_names = {
  "visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
  "visual.ln_pre", "visual.ln_post", "visual.proj",
  "token_embedding.weight", "positional_embedding", "ln_final", "text_projection", TRUE,
};

static const struct tower_names hf_names = {
  "vision_model.embeddings.patch_embedding.weight", "vision_model.embeddings.class_embedding",
  "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm",
  "vision_model.post_layernorm", "visual_projection.weight",
  "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
  "text_model.final_layer_norm", "text_projection.weight", FALSE,
};

static const struct tower_names eva02_names = {
  EVA02_KEY, NULL, NULL, NULL, NULL, NULL,
  "text.token_embedding.weight", "text.positional_embedding", "text.ln_final",
  "text.text_projection", TRUE,
};

static gboolean
infer_vision (struct binder *b, const struct naming *n, const struct tower_names *tn,
    const struct clip_hf_config *cfg, struct clip_weights *w)
{
  struct clip_vision *v = &w->vision;
  char *fc1 = block_key (n->vision_block, 0, n->fc1, ".weight");
  int64_t width = bind_dim (b, tn->patch, 4, 0), patch = bind_dim (b, tn->patch, 4, 3);
  int64_t n_pos = bind_dim (b, tn->pos, 2, 0), mlp = width > 0 ? bind_dim (b, fc1, 2, 0) : -1;
  int64_t embed = bind_dim (b, tn->proj, 2, tn->proj_transposed ? 1 : 0);

  g_free (fc1);
  if (width <= 0 || patch <= 0 || n_pos < 0 || mlp <= 0 || embed <= 0)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "vision tower: empty or missing shapes");
  v->tower.width = (int) width;
  v->tower.mlp = (int) mlp;
  v->patch = (int) patch;
  w->embed_dim = (int) embed;
  return count_layers (b, n->vision_block, n->ln1, &v->tower.layers)
      && bind_grid (b, tn->pos, n_pos, &v->grid)
      && bind_heads (b, "vision", v->tower.width, cfg ? cfg->vision_heads : 0, 12, cfg,
      &v->tower.heads)
      && (!cfg || (agree (b, cfg, "vision_config.hidden_size", cfg->vision_width, width)
          && agree (b, cfg, "vision_config.intermediate_size", cfg->vision_mlp, mlp)
          && agree (b, cfg, "vision_config.num_hidden_layers", cfg->vision_layers, v->tower.layers)
          && agree (b, cfg, "vision_config.patch_size", cfg->patch_size, patch)
          && agree (b, cfg, "vision_config.image_size", cfg->image_size, patch * v->grid)
          && agree (b, cfg, "projection_dim", cfg->embed_dim, embed)));
}

static gboolean
infer_text (struct binder *b, const struct naming *n, const struct tower_names *tn,
    const struct clip_hf_config *cfg, struct clip_weights *w)
{
  struct clip_text *t = &w->text;
  char *fc1 = block_key (n->text_block, 0, n->fc1, ".weight");
  int64_t vocab = bind_dim (b, tn->tok, 2, 0), width = bind_dim (b, tn->tok, 2, 1);
  int64_t ctx = bind_dim (b, tn->text_pos, 2, 0), mlp = width > 0 ? bind_dim (b, fc1, 2, 0) : -1;

  g_free (fc1);
  if (vocab <= 0 || width <= 0 || ctx <= 1 || mlp <= 0)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, b->source,
        "text tower: empty or missing shapes");
  t->tower.width = (int) width;
  t->tower.mlp = (int) mlp;
  t->vocab = (int) vocab;
  t->context = (int) ctx;
  return count_layers (b, n->text_block, n->ln1, &t->tower.layers)
      && bind_heads (b, "text", t->tower.width, cfg ? cfg->text_heads : 0, 8, cfg, &t->tower.heads)
      && (!cfg || (agree (b, cfg, "text_config.hidden_size", cfg->text_width, width)
          && agree (b, cfg, "text_config.intermediate_size", cfg->text_mlp, mlp)
          && agree (b, cfg, "text_config.num_hidden_layers", cfg->text_layers, t->tower.layers)
          && agree (b, cfg, "text_config.max_position_embeddings", cfg->context, ctx)
          && agree (b, cfg, "text_config.vocab_size", cfg->vocab, vocab)));
}

const float *
bind_ln (struct binder *b, const char *prefix, int D, const float **bias)
{
  char *w_name = g_strconcat (prefix, ".weight", NULL), *b_name =
      g_strconcat (prefix, ".bias", NULL);
  const float *w = bind1 (b, w_name, D);

  *bias = w ? bind1 (b, b_name, D) : NULL;
  g_free (w_name);
  g_free (b_name);
  return *bias ? w : NULL;
}

static gboolean
bind_vision (struct binder *b, const struct naming *n, const struct tower_names *tn,
    struct clip_weights *w)
{
  struct clip_vision *v = &w->vision;
  int D = v->tower.width, E = w->embed_dim, p = v->patch;

  v->patch_w = bind_shape (b, tn->patch, 4, (int64_t[]) { D, 3, p, p });
  v->class_emb = v->patch_w ? bind1 (b, tn->class_emb, D) : NULL;
  v->pos_emb = v->class_emb ? bind2 (b, tn->pos, 1 + (int64_t) v->grid * v->grid, D) : NULL;
  if (!v->pos_emb || !(v->ln_pre_w = bind_ln (b, tn->ln_pre, D, &v->ln_pre_b))
      || !(v->ln_post_w = bind_ln (b, tn->ln_post, D, &v->ln_post_b)))
    return FALSE;
  v->proj_w = tn->proj_transposed ? bind_transposed (b, tn->proj, D, E) : bind2 (b, tn->proj, E, D);
  return v->proj_w && bind_tower (b, n, n->vision_block, &v->tower);
}

static gboolean
bind_text (struct binder *b, const struct naming *n, const struct tower_names *tn,
    struct clip_weights *w)
{
  struct clip_text *t = &w->text;
  int D = t->tower.width, E = w->embed_dim;

  t->tok_emb = bind_stored (b, tn->tok, t->vocab, D, &t->tok_dtype);
  t->pos_emb = t->tok_emb ? bind2 (b, tn->text_pos, t->context, D) : NULL;
  if (!t->pos_emb || !(t->ln_final_w = bind_ln (b, tn->ln_final, D, &t->ln_final_b)))
    return FALSE;
  t->proj_w = tn->proj_transposed ? bind_transposed (b, tn->text_proj, D, E)
      : bind2 (b, tn->text_proj, E, D);
  return t->proj_w && bind_tower (b, n, n->text_block, &t->tower);
}

static gboolean
bind_logit_scale (struct binder *b, struct clip_weights *w)
{
  const struct st_tensor *t = safetensors_find (b->st, "logit_scale");
  const float *v;

  w->logit_scale = 100.0f;      /* OpenAI's trained value, when a file omits it */
  if (!t)
    return TRUE;
  if (t->n_elements != 1 || t->n_dims > 1)
    return engine_fail (b->error, CLIPSEG_ENGINE_ERROR_MODEL, t->path,
        "tensor 'logit_scale' has %" G_GINT64_FORMAT " elements, expected one", t->n_elements);
  if (!(v = tensor_floats (b, t)))
    return FALSE;
  w->logit_scale = expf (v[0]);
  return TRUE;
}

static const char *
dtype_summary (unsigned seen)
{
  seen &= ~(1u << ST_DTYPE_I64);
  if (seen == 1u << ST_DTYPE_F32)
    return "F32";
  if (seen == 1u << ST_DTYPE_F16)
    return "F16";
  if (seen == 1u << ST_DTYPE_BF16)
    return "BF16";
  return "mixed";
}

/* EVA02: its vision tower (eva02-bind.c) checked against config.json when
 * there is one, OpenAI's text tower under "text.". */
static gboolean
bind_eva02 (struct binder *b, const struct clip_hf_config *cfg, struct clip_weights *w)
{
  const struct clip_vision *v = &w->vision;

  return eva02_bind_vision (b, cfg && cfg->rope_seq ? cfg->rope_seq : EVA02_ROPE_SEQ, w)
      && (!cfg || (agree (b, cfg, "vision_config.hidden_size", cfg->vision_width, v->tower.width)
          && agree (b, cfg, "vision_config.intermediate_size", cfg->vision_mlp, v->tower.mlp)
          && agree (b, cfg, "vision_config.num_hidden_layers", cfg->vision_layers, v->tower.layers)
          && agree (b, cfg, "vision_config.num_attention_heads", cfg->vision_heads, v->tower.heads)
          && agree (b, cfg, "vision_config.patch_size", cfg->patch_size, v->patch)
          && agree (b, cfg, "vision_config.image_size", cfg->image_size, v->patch * v->grid)
          && agree (b, cfg, "projection_dim", cfg->embed_dim, w->embed_dim)))
      && infer_text (b, &eva02_naming, &eva02_names, cfg, w)
      && bind_text (b, &eva02_naming, &eva02_names, w);
}

/* Which naming the tensors use: exactly one family's patch embedding. */
static const struct naming *
detect_naming (struct binder *b, const struct clip_hf_config *config)
{
  const struct tower_names *names[] = { &openclip_names, &hf_names, &eva02_names };
  const struct naming *namings[] = { &openclip_naming, &hf_naming, &eva02_naming };
  const struct naming *found = NULL;
  int n_found = 0;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (safetensors_find (b->st, names[i]->patch)) {
      found = namings[i];
      n_found++;
    }
  if (n_found != 1) {
    g_set_error (b->error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
        "%s: unknown architecture: %s of '%s' (OpenCLIP/OpenAI), '%s' (Hugging Face) or '%s' "
        "(EVA02) is present", b->source, n_found ? "more than one" : "none", openclip_names.patch,
        hf_names.patch, eva02_names.patch);
    return NULL;
  }
  if (config && config->eva02 != (found == &eva02_naming)) {
    g_set_error (b->error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
        "%s: model_type says %s but the tensors are named as %s's", config->path,
        config->eva02 ? "eva02-clip" : "clip", found->name);
    return NULL;
  }
  return found;
}

gboolean
checkpoint_bind (struct clip_weights *w, const struct safetensors *st,
    const struct clip_hf_config *config, const char *source, GPtrArray *owned, GError **error)
{
  struct binder b = {.st = st,.owned = owned,.error = error,.source = source };
  const struct naming *n;
  gboolean openclip, eva02, ok;

  memset (w, 0, sizeof *w);
  if (!(n = detect_naming (&b, config)))
    return FALSE;
  openclip = n == &openclip_naming;
  eva02 = n == &eva02_naming;
  w->naming = n->name;
  if (eva02) {
    ok = bind_eva02 (&b, config, w);
  } else {
    const struct tower_names *tn = openclip ? &openclip_names : &hf_names;

    ok = infer_vision (&b, n, tn, openclip ? NULL : config, w)
        && infer_text (&b, n, tn, openclip ? NULL : config, w)
        && bind_vision (&b, n, tn, w) && bind_text (&b, n, tn, w);
  }
  ok = ok && bind_logit_scale (&b, w);
  w->dtype = dtype_summary (b.dtypes_seen);
  w->n_params = b.n_params;
  w->ln_eps = config && config->ln_eps > 0 ? config->ln_eps : 1e-5f;
  if (!eva02)
    w->vision.ln_eps = w->ln_eps;
  /* EVA-CLIP builds its text tower with nn.GELU (quick_gelu is off in its configs) */
  w->activation = config && !openclip && config->activation != CLIPSEG_ACTIVATION_AUTO
      ? config->activation : eva02 ? CLIPSEG_ACTIVATION_GELU : CLIPSEG_ACTIVATION_QUICK_GELU;
  if (!ok)
    checkpoint_free_blocks (w);
  return ok;
}

void
checkpoint_free_blocks (struct clip_weights *w)
{
  g_clear_pointer (&w->vision.tower.blocks, g_free);
  g_clear_pointer (&w->text.tower.blocks, g_free);
}
