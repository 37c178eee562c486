/* model.c — finds the files of a checkpoint, loads them and owns the result. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "checkpoint.h"
#include "engine-log.h"
#include "files.h"
#include "json-file.h"
#include "model.h"

static const float clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

struct clipseg_model_params
clipseg_model_default_params (void)
{
  struct clipseg_model_params params = {
    /*.vocab_path = */ NULL,
    /*.activation = */ CLIPSEG_ACTIVATION_AUTO,
    /*.precision = */ CLIPSEG_PRECISION_AUTO,
  };
  return params;
}

static const char *const precision_names[] = {
  [CLIPSEG_PRECISION_AUTO] = "auto",
  [CLIPSEG_PRECISION_FP32] = "fp32",
  [CLIPSEG_PRECISION_BF16] = "bf16",
};

const char *
clipseg_precision_name (enum clipseg_precision precision)
{
  return (unsigned) precision < G_N_ELEMENTS (precision_names) ? precision_names[precision] : NULL;
}

gboolean
clipseg_precision_from_name (const char *name, enum clipseg_precision *precision)
{
  for (guint i = 0; i < G_N_ELEMENTS (precision_names); i++) {
    if (name && strcmp (name, precision_names[i]) == 0) {
      *precision = (enum clipseg_precision) i;
      return TRUE;
    }
  }
  return FALSE;
}

/* Shards named by model.safetensors.index.json's weight_map, each added once;
 * every tensor the index names must then come from the shard it names. */
static gboolean
load_sharded (struct safetensors *st, const char *dir, const char *index_path, GError **error)
{
  JsonParser *parser = json_parser_new_immutable ();
  JsonObject *root = json_load_object (parser, index_path, error), *map = NULL;
  JsonNode *map_node = root ? json_object_get_member (root, "weight_map") : NULL;
  GHashTable *shards = g_hash_table_new (g_str_hash, g_str_equal);
  GList *names = NULL;
  gboolean ok = root != NULL;

  if (ok && (!map_node || !JSON_NODE_HOLDS_OBJECT (map_node))) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: missing object \"weight_map\"", index_path);
    ok = FALSE;
  }
  if (ok) {
    map = json_node_get_object (map_node);
    names = json_object_get_members (map);
  }
  for (GList * l = names; l && ok; l = l->next) {
    JsonNode *file = json_object_get_member (map, l->data);
    const struct st_tensor *t;
    const char *shard;
    char *shard_path;

    if (!JSON_NODE_HOLDS_VALUE (file) || json_node_get_value_type (file) != G_TYPE_STRING
        || strchr (shard = json_node_get_string (file), '/') || shard[0] == '\0'
        || strcmp (shard, "..") == 0) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: weight_map entry '%s' is not a file name in the same directory", index_path,
          (const char *) l->data);
      ok = FALSE;
      break;
    }
    shard_path = g_build_filename (dir, shard, NULL);
    if (!g_hash_table_contains (shards, shard)) {
      g_hash_table_add (shards, (gpointer) shard);
      ok = safetensors_add_file (st, shard_path, error);
    }
    if (ok && (!(t = safetensors_find (st, l->data)) || strcmp (t->path, shard_path) != 0)) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
          "%s: tensor '%s' listed in %s is not in that file", shard_path,
          (const char *) l->data, index_path);
      ok = FALSE;
    }
    g_free (shard_path);
  }
  g_list_free (names);
  g_hash_table_destroy (shards);
  g_object_unref (parser);
  return ok;
}

/* Loads model.safetensors, or the shards its index names; *@source is set to
 * the file that names the whole set (for messages about missing tensors). */
static gboolean
load_hf_weights (struct safetensors *st, const char *dir, char **source, GError **error)
{
  char *single = g_build_filename (dir, "model.safetensors", NULL);
  char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  gboolean ok;

  if (g_file_test (single, G_FILE_TEST_EXISTS)) {
    ok = safetensors_add_file (st, single, error);
    *source = g_steal_pointer (&single);
  } else if (g_file_test (index, G_FILE_TEST_EXISTS)) {
    ok = load_sharded (st, dir, index, error);
    *source = g_steal_pointer (&index);
  } else {
    ok = engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, dir, "%s",
        "no model.safetensors or model.safetensors.index.json");
  }
  g_free (single);
  g_free (index);
  return ok;
}

/* vocab.json + merges.txt in @dir, or NULL (no error) when they are not there. */
static struct clipseg_tokenizer *
load_hf_vocab (const char *dir, gboolean *found, GError **error)
{
  char *vocab = g_build_filename (dir, "vocab.json", NULL);
  char *merges = g_build_filename (dir, "merges.txt", NULL);
  struct clipseg_tokenizer *tok = NULL;

  *found = g_file_test (vocab, G_FILE_TEST_EXISTS) || g_file_test (merges, G_FILE_TEST_EXISTS);
  if (*found)
    tok = clipseg_tokenizer_load_hf (vocab, merges, error);
  g_free (vocab);
  g_free (merges);
  return tok;
}

/* A vocabulary path names OpenAI's merge file or a directory with the HF pair. */
static struct clipseg_tokenizer *
load_vocab_path (const char *path, GError **error)
{
  gboolean found;
  struct clipseg_tokenizer *tok;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return clipseg_tokenizer_load_bpe (path, error);
  tok = load_hf_vocab (path, &found, error);
  if (!found)
    engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "%s",
        "no vocab.json/merges.txt in this directory");
  return tok;
}

static struct clipseg_tokenizer *
load_vocab_beside (const char *file, GError **error)
{
  static const char *const bpe_names[] =
      { "bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt" };
  char *dir = g_path_get_dirname (file);
  struct clipseg_tokenizer *tok = NULL;
  gboolean found = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (bpe_names) && !found; i++) {
    char *path = g_build_filename (dir, bpe_names[i], NULL);

    if ((found = g_file_test (path, G_FILE_TEST_EXISTS)))
      tok = clipseg_tokenizer_load_bpe (path, error);
    g_free (path);
  }
  if (!found)
    tok = load_hf_vocab (dir, &found, error);
  if (!found)
    engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, file, "%s",
        "no BPE vocabulary beside the checkpoint "
        "(bpe_simple_vocab_16e6.txt[.gz] or vocab.json + merges.txt); give one with the vocab path");
  g_free (dir);
  return tok;
}

/* The root object of an optional JSON side file: NULL without error when the
 * file is absent, NULL with @error when it is not one JSON object. */
static JsonObject *
read_side_file (const char *path, JsonParser * parser, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  return json_load_object (parser, path, error);
}

/* An optional [3] array of positive numbers (a mean or a std). */
static gboolean
read_rgb (JsonObject *obj, const char *field, gboolean positive, float out[3], const char *path,
    GError **error)
{
  JsonNode *node = obj ? json_object_get_member (obj, field) : NULL;
  JsonArray *a;
  float v[3];

  if (!node)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node) || json_array_get_length (a = json_node_get_array (node)) != 3)
    goto bad;
  for (int c = 0; c < 3; c++) {
    JsonNode *e = json_array_get_element (a, c);

    if (!JSON_NODE_HOLDS_VALUE (e) || (json_node_get_value_type (e) != G_TYPE_DOUBLE
            && json_node_get_value_type (e) != G_TYPE_INT64))
      goto bad;
    v[c] = (float) json_node_get_double (e);
    if (positive && !(v[c] > 0))
      goto bad;
  }
  memcpy (out, v, sizeof v);
  return TRUE;

bad:
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
      "%s: %s is not an array of 3 %snumbers", path, field, positive ? "positive " : "");
  return FALSE;
}

/* image_mean / image_std of a Hugging Face preprocessor_config.json. */
static gboolean
read_preprocessor (const char *dir, float mean[3], float std[3], GError **error)
{
  char *path = g_build_filename (dir, "preprocessor_config.json", NULL);
  JsonParser *parser = json_parser_new_immutable ();
  GError *json_error = NULL;
  JsonObject *root = read_side_file (path, parser, &json_error);
  gboolean ok = !json_error && read_rgb (root, "image_mean", FALSE, mean, path, error)
      && read_rgb (root, "image_std", TRUE, std, path, error);

  if (json_error)
    g_propagate_error (error, json_error);
  g_object_unref (parser);
  g_free (path);
  return ok;
}

/* open_clip_config.json beside an OpenCLIP file: model_cfg.quick_gelu picks
 * the activation (open_clip's default is exact GELU; OpenAI's own weights come
 * without this file and use QuickGELU), preprocess_cfg the mean and std. */
static gboolean
read_open_clip_config (const char *file, struct clipseg_model *m, GError **error)
{
  char *dir = g_path_get_dirname (file);
  char *path = g_build_filename (dir, "open_clip_config.json", NULL);
  JsonParser *parser = json_parser_new_immutable ();
  GError *json_error = NULL;
  JsonObject *root = read_side_file (path, parser, &json_error), *model_cfg = NULL, *pre = NULL;
  gboolean ok = !json_error;

  if (json_error)
    g_propagate_error (error, json_error);
  if (root) {
    JsonNode *node = json_object_get_member (root, "model_cfg");
    JsonNode *quick = NULL;

    if (node && JSON_NODE_HOLDS_OBJECT (node))
      model_cfg = json_node_get_object (node);
    if (model_cfg)
      quick = json_object_get_member (model_cfg, "quick_gelu");
    if (quick && (!JSON_NODE_HOLDS_VALUE (quick)
            || json_node_get_value_type (quick) != G_TYPE_BOOLEAN)) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: model_cfg.quick_gelu is not a boolean", path);
      ok = FALSE;
    } else if (model_cfg) {
      m->w.activation = quick && json_node_get_boolean (quick)
          ? CLIPSEG_ACTIVATION_QUICK_GELU : CLIPSEG_ACTIVATION_GELU;
    }
    node = json_object_get_member (root, "preprocess_cfg");
    if (node && JSON_NODE_HOLDS_OBJECT (node))
      pre = json_node_get_object (node);
    ok = ok && read_rgb (pre, "mean", FALSE, m->info.image_mean, path, error)
        && read_rgb (pre, "std", TRUE, m->info.image_std, path, error);
  }
  g_object_unref (parser);
  g_free (path);
  g_free (dir);
  return ok;
}

static void
fill_info (struct clipseg_model *m)
{
  struct clipseg_model_info *i = &m->info;
  const struct clip_weights *w = &m->w;

  i->naming = w->naming;
  i->dtype = w->dtype;
  i->activation = w->activation;
  i->layer_norm_eps = w->ln_eps;
  i->embed_dim = w->embed_dim;
  i->patch_size = w->vision.patch;
  i->image_size = w->vision.patch * w->vision.grid;
  i->vision_width = w->vision.tower.width;
  i->vision_layers = w->vision.tower.layers;
  i->vision_heads = w->vision.tower.heads;
  i->vision_mlp = w->vision.tower.mlp;
  i->text_width = w->text.tower.width;
  i->text_layers = w->text.tower.layers;
  i->text_heads = w->text.tower.heads;
  i->text_mlp = w->text.tower.mlp;
  i->context_length = w->text.context;
  i->vocab_size = w->text.vocab;
  i->logit_scale = w->logit_scale;
  i->n_params = w->n_params;
  i->precision = m->gemm.precision;
  i->gemm_library = m->gemm.library;
  i->gemm_isa = m->gemm.isa;
  i->attention_kernel = attention_kernel_name (m->w.attention);
}

static gboolean
check_tokenizer (struct clipseg_model *m, const char *path, GError **error)
{
  int n = clipseg_tokenizer_vocab_size (m->tokenizer);

  if (n <= m->w.text.vocab)
    return TRUE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
      "%s: the vocabulary has %d tokens but the token embedding has only %d rows", path, n,
      m->w.text.vocab);
  return FALSE;
}

/* A checkpoint is a safetensors file or a directory: anything else (a
 * device, a FIFO) is named for what it is, so the user sees the mistake. */
static gboolean
check_checkpoint_path (const char *path, GError **error)
{
  struct stat st;

  if (g_stat (path, &st) != 0)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "%s", errno == ENOENT
        ? "no such checkpoint file or directory" : g_strerror (errno));
  if (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_IO, path, "is %s, not a checkpoint (a "
        "safetensors file or a directory with config.json)", files_kind (st.st_mode));
  return TRUE;
}

static gboolean
load_parts (struct clipseg_model *m, const char *path, struct clipseg_model_params params,
    GError **error)
{
  gboolean is_dir = g_file_test (path, G_FILE_TEST_IS_DIR);
  struct clip_hf_config config;
  char *config_path = is_dir ? g_build_filename (path, "config.json", NULL) : NULL;
  char *source = is_dir ? NULL : g_strdup (path);
  gboolean ok;

  if (!check_checkpoint_path (path, error))
    ok = FALSE;
  else if (is_dir)
    ok = checkpoint_read_hf_config (config_path, &config, error)
        && load_hf_weights (m->st, path, &source, error)
        && read_preprocessor (path, m->info.image_mean, m->info.image_std, error);
  else
    ok = safetensors_add_file (m->st, path, error);
  ok = ok && checkpoint_bind (&m->w, m->st, is_dir ? &config : NULL, source, m->owned, error)
      && (is_dir || read_open_clip_config (path, m, error));
  if (ok) {
    if (params.vocab_path)
      m->tokenizer = load_vocab_path (params.vocab_path, error);
    else if (is_dir)
      m->tokenizer = load_vocab_path (path, error);
    else
      m->tokenizer = load_vocab_beside (path, error);
    ok = m->tokenizer && check_tokenizer (m, path, error);
  }
  g_free (source);
  g_free (config_path);
  return ok;
}

struct clipseg_model *
clipseg_model_load (const char *path, struct clipseg_model_params params, GError **error)
{
  struct clipseg_model *m;

  g_return_val_if_fail (path != NULL, NULL);
  /* kernels.c dispatches on the activation and has no case for other values */
  if ((unsigned) params.activation > CLIPSEG_ACTIVATION_GELU) {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "activation %d is not a valid activation", (int) params.activation);
    return NULL;
  }
  if (!clipseg_precision_name (params.precision)) {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL, "precision %d is not a valid precision",
        (int) params.precision);
    return NULL;
  }
  m = g_new0 (struct clipseg_model, 1);
  g_atomic_ref_count_init (&m->ref_count);
  m->st = safetensors_new ();
  m->owned = g_ptr_array_new_with_free_func (g_free);
  memcpy (m->info.image_mean, clip_mean, sizeof clip_mean);
  memcpy (m->info.image_std, clip_std, sizeof clip_std);
  if (!load_parts (m, path, params, error)) {
    clipseg_model_unref (m);
    return NULL;
  }
  if (params.activation != CLIPSEG_ACTIVATION_AUTO)
    m->w.activation = params.activation;
  /* packed after the activation is final: it is fused into the MLP's first linear */
  gemm_resolve (params.precision, &m->gemm);
  m->w.attention = attention_kernel_for (m->gemm.precision);
  if (!checkpoint_pack_linears (&m->w, &m->gemm, m->owned, error)) {
    clipseg_model_unref (m);
    return NULL;
  }
  /* the packed or converted copies replace most of the file: what is still
   * read from it (F32 tensors used in place, token embedding rows) comes back
   * page by page as it is used */
  safetensors_release_pages (m->st);
  fill_info (m);
  return m;
}

struct clipseg_model *
clipseg_model_ref (struct clipseg_model *model)
{
  g_atomic_ref_count_inc (&model->ref_count);
  return model;
}

void
clipseg_model_unref (struct clipseg_model *model)
{
  if (!model || !g_atomic_ref_count_dec (&model->ref_count))
    return;
  checkpoint_free_linears (&model->w);
  checkpoint_free_blocks (&model->w);
  if (model->tokenizer)
    clipseg_tokenizer_free (model->tokenizer);
  g_ptr_array_free (model->owned, TRUE);
  safetensors_free (model->st);
  g_free (model);
}

const struct clipseg_model_info *
clipseg_model_get_info (const struct clipseg_model *model)
{
  return &model->info;
}

const struct clipseg_tokenizer *
clipseg_model_get_tokenizer (const struct clipseg_model *model)
{
  return model->tokenizer;
}
