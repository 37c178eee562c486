/* test-loader.c — the loader against every kind of malformed checkpoint and
 * side file (labels and templates: test-labels.c; segmentation arguments:
 * test-segment-args.c).
 *
 * The base checkpoints are small random ones in the real formats, generated at
 * build time by tests/reference/make_checkpoint.py into LOADER_DATA_DIR (see
 * meson.build): loader-hf (with the int64 position_ids), loader-hf-sharded
 * (three shards), loader-hf-f16, loader-hf-bf16 (same weights) and
 * loader-openclip (OpenCLIP naming, vocab.json + merges.txt and
 * open_clip_config.json beside it). Every failure case copies a base into a
 * g_dir_make_tmp directory, breaks one thing there, loads it and checks: NULL,
 * CLIPSEG_ENGINE_ERROR, the expected code, and a message naming the file and
 * the tensor or field at fault.
 *
 * Cases that could crash the process run in a subprocess
 * (g_test_trap_subprocess), so a crash fails only them.
 */
#include "clipseg-engine.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "test-util.h"

#define EVA02 "loader-eva02"    /* as scripts/convert-checkpoint.py writes EVA02-CLIP */

/* Loads @path (with @vocab_path) expecting failure with @code and a message
 * containing every following string (NULL-terminated). */
static void
expect_load_error_ (const char *path, const char *vocab_path, int code, ...)
{
  struct clipseg_model_params params = clipseg_model_default_params ();
  struct clipseg_model *model;
  GError *error = NULL;
  va_list subs;

  params.vocab_path = vocab_path;
  model = clipseg_model_load (path, params, &error);
  if (model) {
    check_failed ("%s loaded but should have failed", path);
    clipseg_model_unref (model);
    g_clear_error (&error);
    return;
  }
  va_start (subs, code);
  check_error_v (path, error, code, subs);
  va_end (subs);
  g_clear_error (&error);
}

#define expect_load_error(path, code, ...) expect_load_error_ (path, NULL, code, __VA_ARGS__, NULL)
#define expect_load_error_vocab(path, vocab, code, ...) \
  expect_load_error_ (path, vocab, code, __VA_ARGS__, NULL)

/* A temporary copy of base checkpoint @name (its regular files). */
static char *
copy_base (const char *name)
{
  char *src = base_path (name);
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("clipseg-loader-XXXXXX", &error);
  GDir *d;
  const char *entry;

  g_assert_no_error (error);
  d = g_dir_open (src, 0, &error);
  g_assert_no_error (error);
  while ((entry = g_dir_read_name (d))) {
    char *from = g_build_filename (src, entry, NULL), *to = g_build_filename (dir, entry, NULL);
    char *contents;
    gsize len;

    if (g_file_test (from, G_FILE_TEST_IS_REGULAR)) {
      g_assert_true (g_file_get_contents (from, &contents, &len, &error));
      g_assert_true (g_file_set_contents (to, contents, (gssize) len, &error));
      g_free (contents);
    }
    g_free (from);
    g_free (to);
  }
  g_dir_close (d);
  g_free (src);
  return dir;
}

static void
remove_tree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *entry;

  if (!d)
    return;
  while ((entry = g_dir_read_name (d))) {
    char *path = g_build_filename (dir, entry, NULL);

    if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
      remove_tree (path);
    else
      g_unlink (path);
    g_free (path);
  }
  g_dir_close (d);
  g_rmdir (dir);
}

static char *
read_text (const char *path)
{
  GError *error = NULL;
  char *text;

  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  return text;
}

/* ---- JSON side files ------------------------------------------------------ */

static JsonNode *
json_read (const char *path)
{
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;
  JsonNode *root;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  root = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

static void
json_write (const char *path, JsonNode *root)
{
  JsonGenerator *gen = json_generator_new ();
  GError *error = NULL;

  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, path, &error));
  g_object_unref (gen);
}

/* The object at a dotted @where ("" = the root) of @root. */
static JsonObject *
json_at (JsonNode *root, const char *where)
{
  JsonObject *obj = json_node_get_object (root);
  char **parts = g_strsplit (where, ".", -1);

  for (int i = 0; parts[i] && parts[i][0]; i++)
    obj = json_object_get_object_member (obj, parts[i]);
  g_strfreev (parts);
  g_assert_nonnull (obj);
  return obj;
}

/* Reads @file in @dir, lets @edit change member @member of object @where and
 * writes it back. @value NULL removes the member. */
static void
json_edit (const char *dir, const char *file, const char *where, const char *member,
    JsonNode *value)
{
  char *path = path_in (dir, file);
  JsonNode *root = json_read (path);
  JsonObject *obj = json_at (root, where);

  if (value)
    json_object_set_member (obj, member, value);
  else
    json_object_remove_member (obj, member);
  json_write (path, root);
  json_node_unref (root);
  g_free (path);
}

static JsonNode *
jint (gint64 v)
{
  return json_node_init_int (json_node_alloc (), v);
}

static JsonNode *
jdouble (double v)
{
  return json_node_init_double (json_node_alloc (), v);
}

static JsonNode *
jstring (const char *v)
{
  return json_node_init_string (json_node_alloc (), v);
}

/* A JSON value parsed from text. */
static JsonNode *
jparse (const char *text)
{
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;
  JsonNode *node;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  node = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return node;
}

/* A deep copy (json_node_copy shares objects and arrays). */
static JsonNode *
jclone (JsonNode *node)
{
  char *text = json_to_string (node, FALSE);
  JsonNode *copy = jparse (text);

  g_free (text);
  return copy;
}

/* ---- safetensors editing ------------------------------------------------- */

struct st_file
{
  JsonNode *header;             /* root object */
  GByteArray *data;             /* the data section */
};

static struct st_file *
st_read (const char *path)
{
  struct st_file *f = g_new0 (struct st_file, 1);
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;
  char *bytes;
  gsize len;
  guint64 hlen = 0;

  g_assert_true (g_file_get_contents (path, &bytes, &len, &error));
  g_assert_cmpuint (len, >=, 8);
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | (guint8) bytes[i];
  g_assert_cmpuint (hlen, <=, len - 8);
  g_assert_true (json_parser_load_from_data (parser, bytes + 8, (gssize) hlen, &error));
  f->header = json_node_copy (json_parser_get_root (parser));
  f->data = g_byte_array_new ();
  g_byte_array_append (f->data, (const guint8 *) bytes + 8 + hlen, (guint) (len - 8 - hlen));
  g_object_unref (parser);
  g_free (bytes);
  return f;
}

static void
st_free (struct st_file *f)
{
  json_node_unref (f->header);
  g_byte_array_unref (f->data);
  g_free (f);
}

/* Writes 8-byte length + @header (@hlen bytes) + @data as the file @path. */
static void
write_st_raw (const char *path, guint64 declared, const void *header, gsize hlen,
    const void *data, gsize dlen)
{
  GByteArray *out = g_byte_array_new ();
  guint8 le[8];

  for (int i = 0; i < 8; i++)
    le[i] = (guint8) (declared >> (8 * i));
  g_byte_array_append (out, le, 8);
  g_byte_array_append (out, header, (guint) hlen);
  g_byte_array_append (out, data, (guint) dlen);
  write_file (path, out->data, out->len);
  g_byte_array_unref (out);
}

/* Serialises @f with the header padded by spaces so the data section starts
 * at an offset ≡ @misalign (mod 8) in the file. */
static void
st_write_misaligned (struct st_file *f, const char *path, int misalign)
{
  JsonGenerator *gen = json_generator_new ();
  GString *header;
  gsize len;
  char *text;

  json_generator_set_root (gen, f->header);
  text = json_generator_to_data (gen, &len);
  header = g_string_new_len (text, (gssize) len);
  while ((8 + header->len) % 8 != (gsize) misalign)
    g_string_append_c (header, ' ');
  write_st_raw (path, header->len, header->str, header->len, f->data->data, f->data->len);
  g_string_free (header, TRUE);
  g_free (text);
  g_object_unref (gen);
}

static void
st_write (struct st_file *f, const char *path)
{
  st_write_misaligned (f, path, 0);
}

static JsonObject *
st_entry (struct st_file *f, const char *name)
{
  JsonObject *h = json_node_get_object (f->header);

  g_assert_true (json_object_has_member (h, name));
  return json_object_get_object_member (h, name);
}

static void
st_offsets (struct st_file *f, const char *name, gint64 *begin, gint64 *end)
{
  JsonArray *a = json_object_get_array_member (st_entry (f, name), "data_offsets");

  *begin = json_array_get_int_element (a, 0);
  *end = json_array_get_int_element (a, 1);
}

static void
st_set_offsets (struct st_file *f, const char *name, gint64 begin, gint64 end)
{
  JsonArray *a = json_array_new ();

  json_array_add_int_element (a, begin);
  json_array_add_int_element (a, end);
  json_object_set_array_member (st_entry (f, name), "data_offsets", a);
}

static void
st_set_shape (struct st_file *f, const char *name, int n_dims, const gint64 *dims)
{
  JsonArray *a = json_array_new ();

  for (int i = 0; i < n_dims; i++)
    json_array_add_int_element (a, dims[i]);
  json_object_set_array_member (st_entry (f, name), "shape", a);
}

static gint64
st_n_elements (struct st_file *f, const char *name)
{
  JsonArray *a = json_object_get_array_member (st_entry (f, name), "shape");
  gint64 n = 1;

  for (guint i = 0; i < json_array_get_length (a); i++)
    n *= json_array_get_int_element (a, i);
  return n;
}

struct slot
{
  const char *name;
  gint64 begin, end;
};

static int
slot_cmp (gconstpointer a, gconstpointer b)
{
  const struct slot *x = a, *y = b;

  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Rebuilds the data section in offset order: tensor @name gets @n_bytes new
 * zero bytes (or is removed when @remove), every other keeps its bytes, and
 * all offsets are renumbered. */
static void
st_rebuild (struct st_file *f, const char *name, gsize n_bytes, gboolean remove)
{
  JsonObject *h = json_node_get_object (f->header);
  GList *members = json_object_get_members (h);
  GArray *slots = g_array_new (FALSE, FALSE, sizeof (struct slot));
  GByteArray *data = g_byte_array_new ();
  gboolean found = FALSE;

  for (GList * l = members; l; l = l->next) {
    struct slot s = { l->data };

    if (strcmp (s.name, "__metadata__") == 0)
      continue;
    st_offsets (f, s.name, &s.begin, &s.end);
    g_array_append_val (slots, s);
  }
  g_array_sort (slots, slot_cmp);
  for (guint i = 0; i < slots->len; i++) {
    struct slot *s = &g_array_index (slots, struct slot, i);
    gint64 begin = data->len;

    if (strcmp (s->name, name) == 0) {
      found = TRUE;
      if (remove)
        continue;
      g_byte_array_set_size (data, data->len + (guint) n_bytes);
      memset (data->data + begin, 0, n_bytes);
    } else {
      g_byte_array_append (data, f->data->data + s->begin, (guint) (s->end - s->begin));
    }
    st_set_offsets (f, s->name, begin, data->len);
  }
  g_assert_true (found);
  if (remove)
    json_object_remove_member (h, name);
  g_byte_array_unref (f->data);
  f->data = data;
  g_array_free (slots, TRUE);
  g_list_free (members);
}

static void
st_remove (struct st_file *f, const char *name)
{
  st_rebuild (f, name, 0, TRUE);
}

/* Gives tensor @name dtype @dtype (element size @size) with zero data. */
static void
st_set_dtype (struct st_file *f, const char *name, const char *dtype, gsize size)
{
  json_object_set_string_member (st_entry (f, name), "dtype", dtype);
  st_rebuild (f, name, (gsize) st_n_elements (f, name) * size, FALSE);
}

/* Adds tensor @name as a copy of @src (header entry and bytes, appended). */
static void
st_add_copy (struct st_file *f, const char *src, const char *name)
{
  gint64 begin, end, at = f->data->len;

  guint8 *bytes;

  st_offsets (f, src, &begin, &end);
  json_object_set_member (json_node_get_object (f->header), name,
      jclone (json_object_get_member (json_node_get_object (f->header), src)));
  bytes = g_memdup2 (f->data->data + begin, (gsize) (end - begin));
  g_byte_array_append (f->data, bytes, (guint) (end - begin));
  g_free (bytes);
  st_set_offsets (f, name, at, at + (end - begin));
}

/* The tensor stored last in the data section. */
static const char *
st_last (struct st_file *f)
{
  JsonObject *h = json_node_get_object (f->header);
  GList *members = json_object_get_members (h);
  const char *last = NULL;
  gint64 best = -1, begin, end;

  for (GList * l = members; l; l = l->next) {
    if (strcmp (l->data, "__metadata__") == 0)
      continue;
    st_offsets (f, l->data, &begin, &end);
    if (begin > best)
      best = begin, last = l->data;
  }
  g_list_free (members);
  return last;
}

/* A tensor that does not start the data section (its predecessor is non-empty). */
static const char *
st_not_first (struct st_file *f)
{
  JsonObject *h = json_node_get_object (f->header);
  GList *members = json_object_get_members (h);
  const char *found = NULL;
  gint64 begin, end;

  for (GList * l = members; l && !found; l = l->next) {
    if (strcmp (l->data, "__metadata__") == 0)
      continue;
    st_offsets (f, l->data, &begin, &end);
    if (begin >= 64 && end > begin)
      found = l->data;
  }
  g_list_free (members);
  g_assert_nonnull (found);
  return found;
}

/* ---- per-case scaffolding -------------------------------------------------- */

/* One corruption of one base: the copy, the file being broken and its bytes. */
struct breakage
{
  char *dir;                    /* temporary copy of the base */
  char *file;                   /* dir/<file> */
  struct st_file *st;           /* parsed safetensors, when opened with st */
};

static struct breakage *
breakage_new (const char *base, const char *file)
{
  struct breakage *b = g_new0 (struct breakage, 1);

  b->dir = copy_base (base);
  b->file = file ? path_in (b->dir, file) : NULL;
  return b;
}

/* A copy of @base with @file parsed as safetensors. */
static struct breakage *
breakage_st (const char *base, const char *file)
{
  struct breakage *b = breakage_new (base, file);

  b->st = st_read (b->file);
  return b;
}

static void
breakage_free (struct breakage *b)
{
  remove_tree (b->dir);
  if (b->st)
    st_free (b->st);
  g_free (b->dir);
  g_free (b->file);
  g_free (b);
}

/* What to give the loader for the base kind: the directory, or the OpenCLIP file. */
static const char *
model_path (struct breakage *b)
{
  return b->file && g_str_has_suffix (b->file, OPENCLIP_FILE) ? b->file : b->dir;
}

/* ---- positive checks ----------------------------------------------------- */

static void
test_bases_load (void)
{
  static const struct
  {
    const char *base, *naming, *dtype;
    int vision_width, text_width;
    enum clipseg_activation act;
  } bases[] = {
    {HF, "huggingface", "F32", HF_VISION_WIDTH, HF_TEXT_WIDTH, CLIPSEG_ACTIVATION_QUICK_GELU},
    {SHARDED, "huggingface", "F32", HF_VISION_WIDTH, HF_TEXT_WIDTH, CLIPSEG_ACTIVATION_QUICK_GELU},
    {HF_F16, "huggingface", "F16", HF_VISION_WIDTH, HF_TEXT_WIDTH, CLIPSEG_ACTIVATION_QUICK_GELU},
    {HF_BF16, "huggingface", "BF16", HF_VISION_WIDTH, HF_TEXT_WIDTH, CLIPSEG_ACTIVATION_QUICK_GELU},
    {OPENCLIP "/" OPENCLIP_FILE, "openclip", "F32", OC_WIDTH, OC_WIDTH, CLIPSEG_ACTIVATION_GELU},
  };

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (bases); i++) {
    char *path = base_path (bases[i].base);
    struct clipseg_model *m = load_ok (path);
    const struct clipseg_model_info *info = clipseg_model_get_info (m);

    g_assert_cmpstr (info->naming, ==, bases[i].naming);
    g_assert_cmpstr (info->dtype, ==, bases[i].dtype);
    g_assert_cmpint (info->activation, ==, bases[i].act);
    g_assert_cmpint (info->vision_width, ==, bases[i].vision_width);
    g_assert_cmpint (info->text_width, ==, bases[i].text_width);
    g_assert_cmpint (info->vision_layers, ==, N_LAYERS);
    g_assert_cmpint (info->text_layers, ==, N_LAYERS);
    g_assert_cmpint (info->patch_size, ==, PATCH);
    g_assert_cmpint (info->image_size, ==, IMAGE);
    g_assert_cmpint (info->embed_dim, ==, EMBED);
    g_assert_cmpint (info->vocab_size, ==, VOCAB);
    g_assert_cmpint (info->context_length, ==, 77);
    g_assert_cmpint (clipseg_tokenizer_vocab_size (clipseg_model_get_tokenizer (m)), ==, VOCAB);
    g_assert_cmpfloat_with_epsilon (info->logit_scale, 100.0f, 2.0f);   /* BF16: 98.9 */
    clipseg_model_unref (m);
    g_free (path);
  }
}

static void
assert_same_info (const struct clipseg_model_info *a, const struct clipseg_model_info *b)
{
  g_assert_cmpstr (a->naming, ==, b->naming);
  g_assert_cmpint (a->activation, ==, b->activation);
  g_assert_cmpfloat (a->layer_norm_eps, ==, b->layer_norm_eps);
  g_assert_cmpint (a->embed_dim, ==, b->embed_dim);
  g_assert_cmpint (a->image_size, ==, b->image_size);
  g_assert_cmpint (a->patch_size, ==, b->patch_size);
  g_assert_cmpint (a->vision_width, ==, b->vision_width);
  g_assert_cmpint (a->vision_layers, ==, b->vision_layers);
  g_assert_cmpint (a->vision_heads, ==, b->vision_heads);
  g_assert_cmpint (a->vision_mlp, ==, b->vision_mlp);
  g_assert_cmpint (a->text_width, ==, b->text_width);
  g_assert_cmpint (a->text_layers, ==, b->text_layers);
  g_assert_cmpint (a->text_heads, ==, b->text_heads);
  g_assert_cmpint (a->text_mlp, ==, b->text_mlp);
  g_assert_cmpint (a->context_length, ==, b->context_length);
  g_assert_cmpint (a->vocab_size, ==, b->vocab_size);
  g_assert_cmpint (a->n_params, ==, b->n_params);
  for (int c = 0; c < 3; c++) {
    g_assert_cmpfloat (a->image_mean[c], ==, b->image_mean[c]);
    g_assert_cmpfloat (a->image_std[c], ==, b->image_std[c]);
  }
  /* logit_scale is stored in the file's dtype: exp() of a rounded value */
  g_assert_cmpfloat (fabsf (a->logit_scale - b->logit_scale), <=, 0.02f * a->logit_scale);
}

/* Dense SCLIP features of a fixed random 32x32 image. */
static float *
dense_features (struct clipseg_model *m, int *n)
{
  struct clipseg_state *state = clipseg_state_new (m, 1);
  const struct clipseg_model_info *info = clipseg_model_get_info (m);
  float *pixels = random_pixels (IMAGE, IMAGE, 11);
  GError *error = NULL;
  float *features;

  *n = (IMAGE / PATCH) * (IMAGE / PATCH) * info->embed_dim;
  features = g_new (float, *n);
  g_assert_true (clipseg_state_encode_dense (state, pixels, IMAGE, IMAGE, CLIPSEG_MODE_SCLIP,
          features, &error));
  g_assert_no_error (error);
  clipseg_state_free (state);
  g_free (pixels);
  return features;
}

static void
test_f16_bf16_info (void)
{
  char *path_f32, *path_f16, *path_bf16;
  struct clipseg_model *f32, *f16, *bf16;
  float *feat32, *feat16;
  int n;
  double max_diff = 0;

  if (!have_bases ())
    return;
  path_f32 = base_path (HF), path_f16 = base_path (HF_F16), path_bf16 = base_path (HF_BF16);
  f32 = load_ok (path_f32), f16 = load_ok (path_f16), bf16 = load_ok (path_bf16);
  g_assert_cmpstr (clipseg_model_get_info (f16)->dtype, ==, "F16");
  g_assert_cmpstr (clipseg_model_get_info (bf16)->dtype, ==, "BF16");
  assert_same_info (clipseg_model_get_info (f32), clipseg_model_get_info (f16));
  assert_same_info (clipseg_model_get_info (f32), clipseg_model_get_info (bf16));

  /* same random weights, rounded: features close to the F32 ones */
  feat32 = dense_features (f32, &n);
  feat16 = dense_features (f16, &n);
  for (int i = 0; i < n; i++)
    max_diff = MAX (max_diff, fabs (feat32[i] - feat16[i]));
  g_test_message ("F16 vs F32 dense features: max abs difference %g", max_diff);
  g_assert_cmpfloat (max_diff, <, 0.05);

  g_free (feat32);
  g_free (feat16);
  clipseg_model_unref (f32);
  clipseg_model_unref (f16);
  clipseg_model_unref (bf16);
  g_free (path_f32);
  g_free (path_f16);
  g_free (path_bf16);
}

/* Resident kB of the mappings of @file in this process (/proc/self/smaps). */
static long
mapped_rss_kb (const char *file)
{
  char *smaps = NULL, **lines;
  gboolean in_file = FALSE;
  long kb = 0;

  g_assert_true (g_file_get_contents ("/proc/self/smaps", &smaps, NULL, NULL));
  lines = g_strsplit (smaps, "\n", -1);
  for (char **l = lines; *l; l++) {
    long v;

    /* mapping headers start with an address range, fields with a name */
    if (g_ascii_isxdigit (**l) && strchr (*l, '-') && strchr (*l, '-') < strchr (*l, ' '))
      in_file = g_str_has_suffix (*l, file);
    else if (in_file && sscanf (*l, "Rss: %ld kB", &v) == 1)
      kb += v;
  }
  g_strfreev (lines);
  g_free (smaps);
  return kb;
}

/* Once the linears are packed and the F16 tensors converted, the mapped
 * file's pages leave resident memory (the token embedding stays in the file,
 * read a row at a time): an F16 model costs its converted copies, not those
 * plus the file. */
static void
test_file_pages_released (void)
{
  char *dir, *file;
  struct clipseg_model *model;
  GStatBuf sb;

  if (!have_bases ())
    return;
  dir = base_path (HF_F16);
  file = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (g_stat (file, &sb), ==, 0);
  model = load_ok (dir);
  g_test_message ("%s: %ld kB of %ld resident", file, mapped_rss_kb (file),
      (long) sb.st_size / 1024);
  g_assert_cmpint (mapped_rss_kb (file), <, sb.st_size / 1024 / 10);
  clipseg_model_unref (model);
  g_free (file);
  g_free (dir);
}

/* Same file with a header whose length puts the data at offsets ≡ 1, 2, 3 (mod 4):
 * the F32 weights are copied out of the mapping instead of used in place and
 * must give bit-identical features. */
static void
test_unaligned_f32 (void)
{
  struct breakage *b;
  struct clipseg_model *aligned, *unaligned;
  float *want, *got;
  int n;

  if (!have_bases ())
    return;
  b = breakage_st (HF, "model.safetensors");
  st_write_misaligned (b->st, b->file, 0);
  aligned = load_ok (b->dir);
  want = dense_features (aligned, &n);
  for (int misalign = 1; misalign < 4; misalign++) {
    st_write_misaligned (b->st, b->file, misalign);
    unaligned = load_ok (b->dir);
    assert_same_info (clipseg_model_get_info (aligned), clipseg_model_get_info (unaligned));
    g_assert_cmpstr (clipseg_model_get_info (unaligned)->dtype, ==, "F32");
    got = dense_features (unaligned, &n);
    g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));
    g_free (got);
    clipseg_model_unref (unaligned);
  }
  g_free (want);
  clipseg_model_unref (aligned);
  breakage_free (b);
}

/* The sharded base holds the same weights as the single-file one. */
static void
test_sharded_same_as_single (void)
{
  char *p1, *p2;
  struct clipseg_model *single, *sharded;
  float *f1, *f2;
  int n;

  if (!have_bases ())
    return;
  p1 = base_path (HF), p2 = base_path (SHARDED);
  single = load_ok (p1), sharded = load_ok (p2);
  assert_same_info (clipseg_model_get_info (single), clipseg_model_get_info (sharded));
  f1 = dense_features (single, &n);
  f2 = dense_features (sharded, &n);
  g_assert_cmpmem (f1, n * sizeof (float), f2, n * sizeof (float));
  g_free (f1);
  g_free (f2);
  clipseg_model_unref (single);
  clipseg_model_unref (sharded);
  g_free (p1);
  g_free (p2);
}

/* A model keeps working after its files are deleted (they stay mapped) and
 * holds no reference to the directory. */
static void
test_model_outlives_files (void)
{
  struct breakage *b;
  struct clipseg_model *m;
  float *f;
  int n;

  if (!have_bases ())
    return;
  b = breakage_new (HF, NULL);
  m = load_ok (b->dir);
  remove_tree (b->dir);
  f = dense_features (m, &n);
  g_free (f);
  clipseg_model_unref (m);
  breakage_free (b);
}

/* ---- safetensors structure -------------------------------------------------- */

/* Writes @len raw bytes as the model.safetensors of an HF copy and expects FORMAT. */
static void
expect_raw_file_error (const void *bytes, gsize len, const char *what)
{
  struct breakage *b = breakage_new (HF, "model.safetensors");

  write_file (b->file, bytes, len);
  expect_load_error (b->dir, FORMAT, b->file, what);
  breakage_free (b);
}

/* A file made of a declared length, a header text and some data bytes. */
static void
expect_header_error (guint64 declared, const char *header, gsize hlen, gsize data_len,
    int code, const char *what)
{
  struct breakage *b = breakage_new (HF, "model.safetensors");
  guint8 *data = g_malloc0 (MAX (data_len, 1));

  write_st_raw (b->file, declared, header, hlen, data, data_len);
  expect_load_error (b->dir, code, b->file, what);
  g_free (data);
  breakage_free (b);
}

static void
test_st_short_files (void)
{
  if (!have_bases ())
    return;
  expect_raw_file_error ("", 0, "0 bytes");
  expect_raw_file_error ("\x10\0\0\0\0", 5, "5 bytes");
  expect_raw_file_error ("\0\0\0\0\0\0\0", 7, "7 bytes");
}

static void
test_st_header_length (void)
{
  static const char header[] = "{}";

  if (!have_bases ())
    return;
  /* beyond the file */
  expect_header_error (3, header, 2, 0, FORMAT, "header length 3");
  expect_header_error (1000, header, 2, 0, FORMAT, "header length 1000");
  /* absurd: the top bit set, every bit set */
  expect_header_error (G_GUINT64_CONSTANT (1) << 63, header, 2, 0, FORMAT, "header length");
  expect_header_error (G_MAXUINT64, header, 2, 0, FORMAT, "header length");
  /* zero: no header at all */
  expect_header_error (0, "", 0, 16, FORMAT, "'{'");
}

/* A header length over the 100 MB limit in a file that really is that large
 * (sparse): refused before anything is parsed. */
static void
test_st_header_over_limit (void)
{
  struct breakage *b;
  guint64 declared = 100 * 1000 * 1000 + 1;
  guint8 le[8];
  int fd;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "model.safetensors");
  fd = g_open (b->file, O_WRONLY | O_TRUNC, 0644);
  g_assert_cmpint (fd, >=, 0);
  for (int i = 0; i < 8; i++)
    le[i] = (guint8) (declared >> (8 * i));
  g_assert_cmpint (write (fd, le, 8), ==, 8);
  g_assert_cmpint (write (fd, "{", 1), ==, 1);
  g_assert_cmpint (ftruncate (fd, (off_t) (declared + 8 + 64)), ==, 0);
  close (fd);
  expect_load_error (b->dir, FORMAT, b->file, "100 MB");
  breakage_free (b);
}

static void
test_st_bad_header_text (void)
{
  static const struct
  {
    const char *header;
    const char *what;
  } cases[] = {
    {" {}", "'{'"},             /* must start with '{' */
    {"[]", "'{'"},              /* an array, not an object */
    {"\"x\"", "'{'"},
    {"{not json}", "JSON"},
    {"{\"a\": {\"dtype\": \"F32\"", "JSON"},    /* cut short */
    {"{\"\xff\xfe\": 1}", "UTF-8"},     /* invalid UTF-8 in a key */
    {"{\"a\": \"\xc3\"}", "UTF-8"},     /* truncated sequence */
    {"{\"a\": \"\xed\xa0\x80\"}", "UTF-8"},     /* surrogate */
  };

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_header_error (strlen (cases[i].header), cases[i].header, strlen (cases[i].header), 0,
        FORMAT, cases[i].what);
}

/* Text json-glib accepts but JSON (and the reference reader) does not: a
 * second value after the object, comments, single-quoted strings, hex numbers. */
static void
test_st_header_not_strict_json (void)
{
  static const char *const headers[] = {
    "{} {}",
    "{} {\"x\": 1}",
    "{/* comment */}",
    "{'__metadata__': {}}",
    "{\"__metadata__\": {\"n\": 0x10}}",
  };

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    expect_header_error (strlen (headers[i]), headers[i], strlen (headers[i]), 0, FORMAT, "JSON");
}

/* A NUL inside the header region is not JSON. */
static void
test_st_header_nul (void)
{
  static const char header[] = "{}\0\0\0\0\0\0";

  if (!have_bases ())
    return;
  expect_header_error (8, header, 8, 0, FORMAT, "header");
}

/* One header entry replaced by @entry (JSON text); @what must be named. */
static void
expect_entry_error (const char *tensor, const char *entry, const char *what)
{
  struct breakage *b = breakage_st (HF, "model.safetensors");

  json_object_set_member (json_node_get_object (b->st->header), tensor, jparse (entry));
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, tensor, what);
  breakage_free (b);
}

static void
test_st_bad_entries (void)
{
  const char *t = "vision_model.post_layernorm.bias";   /* F32 [64], 256 bytes */
  struct breakage *b;
  gint64 begin, end;
  char *entry;

  if (!have_bases ())
    return;
  b = breakage_st (HF, "model.safetensors");
  st_offsets (b->st, t, &begin, &end);
  breakage_free (b);

#define ENTRY(fmt, ...) (entry = g_strdup_printf (fmt, __VA_ARGS__))
  expect_entry_error (t, "5", "not an object");
  expect_entry_error (t, "[1, 2]", "not an object");
  expect_entry_error (t, "null", "not an object");
  ENTRY ("{\"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]}", begin,
      end);
  expect_entry_error (t, entry, "dtype"), g_free (entry);
  ENTRY ("{\"dtype\": 32, \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "dtype"), g_free (entry);
  ENTRY ("{\"dtype\": \"F17\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "F17"), g_free (entry);
  ENTRY ("{\"dtype\": \"f32\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "f32"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"data_offsets\": [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]}",
      begin, end);
  expect_entry_error (t, entry, "shape"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": 64, \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "shape"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [-64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "shape[0]"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [8, 8.0], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "shape[1]"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [\"64\"], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "shape[0]"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,64], \"data_offsets\": [%"
      G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "dimensions"), g_free (entry);
  ENTRY
      ("{\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [%"
      G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "overflow"), g_free (entry);
  /* 2^62 elements of 4 bytes: the byte count overflows 64 bits */
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [%"
      G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "bytes of data"), g_free (entry);
  expect_entry_error (t, "{\"dtype\": \"F32\", \"shape\": [64]}", "data_offsets");
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT "]}", begin);
  expect_entry_error (t, entry, "data_offsets"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT ", 0]}", begin, end);
  expect_entry_error (t, entry, "data_offsets"), g_free (entry);
  expect_entry_error (t, "{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [-256, 0]}",
      "data_offsets");
  expect_entry_error (t, "{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [0.0, 256.0]}",
      "data_offsets");
  expect_entry_error (t, "{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": \"0-256\"}",
      "data_offsets");
  /* beyond int64: json-glib reads it as a double */
  expect_entry_error (t,
      "{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [0, 18446744073709551872]}",
      "data_offsets");
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", end, begin);
  expect_entry_error (t, entry, "out of range"), g_free (entry);
  expect_entry_error (t,
      "{\"dtype\": \"F32\", \"shape\": [64], \"data_offsets\": [100000000, 100000256]}",
      "out of range");
  /* byte count not matching the shape */
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [65], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "bytes of data"), g_free (entry);
  ENTRY ("{\"dtype\": \"F16\", \"shape\": [64], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "bytes of data"), g_free (entry);
  ENTRY ("{\"dtype\": \"F32\", \"shape\": [64, 0], \"data_offsets\": [%" G_GINT64_FORMAT ", %"
      G_GINT64_FORMAT "]}", begin, end);
  expect_entry_error (t, entry, "bytes of data"), g_free (entry);
#undef ENTRY
}

/* A tensor moved 4 bytes back overlaps the one before it. */
static void
test_st_overlap (void)
{
  struct breakage *b;
  const char *t;
  gint64 begin, end;

  if (!have_bases ())
    return;
  b = breakage_st (HF, "model.safetensors");
  t = st_not_first (b->st);
  st_offsets (b->st, t, &begin, &end);
  st_set_offsets (b->st, t, begin - 4, end - 4);
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, t, "overlaps");
  breakage_free (b);

  /* two names for the same bytes */
  b = breakage_st (HF, "model.safetensors");
  t = st_not_first (b->st);
  st_offsets (b->st, t, &begin, &end);
  json_object_set_member (json_node_get_object (b->st->header), "alias",
      jclone (json_object_get_member (json_node_get_object (b->st->header), t)));
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, "overlaps");
  breakage_free (b);
}

/* Unused bytes before a tensor, or after the last one. */
static void
test_st_hole_and_trailing (void)
{
  struct breakage *b;
  const char *t;
  gint64 begin, end;
  static const guint8 pad[4];

  if (!have_bases ())
    return;
  /* the last tensor moved 4 bytes on, into 4 added bytes */
  b = breakage_st (HF, "model.safetensors");
  t = st_last (b->st);
  st_offsets (b->st, t, &begin, &end);
  g_byte_array_append (b->st->data, pad, 4);
  st_set_offsets (b->st, t, begin + 4, end + 4);
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, t, "hole");
  breakage_free (b);

  /* 4 bytes after the last tensor */
  b = breakage_st (HF, "model.safetensors");
  g_byte_array_append (b->st->data, pad, 4);
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, "data section");
  breakage_free (b);

  /* a tensor removed from the header but not from the data: a hole */
  b = breakage_st (HF, "model.safetensors");
  t = st_not_first (b->st);
  json_object_remove_member (json_node_get_object (b->st->header), t);
  st_write (b->st, b->file);
  expect_load_error (b->dir, FORMAT, b->file, "hole");
  breakage_free (b);
}

/* Files cut short, in the data and in the header. */
static void
test_st_truncated (void)
{
  struct breakage *b;
  char *bytes;
  gsize len;
  GError *error = NULL;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "model.safetensors");
  g_assert_true (g_file_get_contents (b->file, &bytes, &len, &error));
  /* one byte short: the last tensor ends beyond the data */
  write_file (b->file, bytes, len - 1);
  expect_load_error (b->dir, FORMAT, b->file, "out of range");
  /* half the file */
  write_file (b->file, bytes, len / 2);
  expect_load_error (b->dir, FORMAT, b->file, "out of range");
  /* only the header: zero-length data section */
  {
    guint64 hlen = 0;

    for (int i = 7; i >= 0; i--)
      hlen = (hlen << 8) | (guint8) bytes[i];
    write_file (b->file, bytes, 8 + hlen);
    expect_load_error (b->dir, FORMAT, b->file, "out of range", "0 bytes");
    /* inside the header */
    write_file (b->file, bytes, 8 + hlen / 2);
    expect_load_error (b->dir, FORMAT, b->file, "header length");
  }
  g_free (bytes);
  breakage_free (b);
}

/* A file with no tensors at all ("{}" and only __metadata__): it is well formed
 * but holds no CLIP; the error must still name the file. */
static void
test_st_no_tensors (void)
{
  static const char *const headers[] = { "{}", "{\"__metadata__\": {\"format\": \"pt\"}}" };
  struct breakage *b;

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (headers); i++) {
    b = breakage_new (HF, "model.safetensors");
    write_st_raw (b->file, strlen (headers[i]), headers[i], strlen (headers[i]), "", 0);
    expect_load_error (b->dir, MODEL, b->file, "unknown architecture");
    breakage_free (b);
  }
}

/* A zero-element tensor takes no bytes; a file whose only tensors are empty is well formed. */
static void
test_st_zero_length_tensor (void)
{
  struct breakage *b;

  if (!have_bases ())
    return;
  b = breakage_st (HF, "model.safetensors");
  /* an extra empty tensor at offset 0 is fine; the checkpoint still loads */
  json_object_set_member (json_node_get_object (b->st->header), "extra.empty",
      jparse ("{\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [0, 0]}"));
  st_write (b->st, b->file);
  clipseg_model_unref (load_ok (b->dir));
  breakage_free (b);
}

/* Deeply nested JSON in a safetensors header: json-glib recurses per level and
 * overflows the stack, so the engine must refuse it before parsing. Runs in a
 * subprocess so a crash fails this case only. */
static char *
nested (const char *prefix, int depth, const char *suffix)
{
  GString *s = g_string_new (prefix);

  for (int i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  g_string_append (s, suffix);
  return g_string_free (s, FALSE);
}

#define DEEP 1000000

static void
test_st_deep_nesting (void)
{
  struct breakage *b;
  char *header;

  if (g_test_subprocess ()) {
    char *file = path_in (g_getenv ("CLIPSEG_LOADER_CASE"), "model.safetensors");

    expect_load_error (g_getenv ("CLIPSEG_LOADER_CASE"), FORMAT, file);
    g_free (file);
    return;
  }
  if (!have_bases ())
    return;
  b = breakage_new (HF, "model.safetensors");
  header = nested ("{\"a\": ", DEEP, "");
  write_st_raw (b->file, strlen (header), header, strlen (header), "", 0);
  run_in_subprocess (b->dir);
  g_free (header);
  breakage_free (b);
}

/* ---- checkpoint level: tensors ---------------------------------------------- */

/* Removes tensor @name from @file of a copy of @base and expects MODEL naming it. */
static void
expect_missing_tensor (const char *base, const char *file, const char *name)
{
  struct breakage *b = breakage_st (base, file);

  st_remove (b->st, name);
  st_write (b->st, b->file);
  expect_load_error (model_path (b), MODEL, name, "missing tensor");
  /* the file (or for an OpenCLIP file, the path given) is named */
  expect_load_error (model_path (b), MODEL, b->file);
  breakage_free (b);
}

static void
test_missing_tensor_hf (void)
{
  static const char *const names[] = {
    /* vision: block weight, block bias, top level */
    "vision_model.encoder.layers.1.mlp.fc2.weight",
    "vision_model.encoder.layers.0.self_attn.k_proj.bias",
    "vision_model.encoder.layers.1.layer_norm2.weight",
    "vision_model.embeddings.class_embedding",
    "vision_model.embeddings.position_embedding.weight",
    "vision_model.pre_layrnorm.weight",
    "vision_model.post_layernorm.bias",
    "visual_projection.weight",
    /* text */
    "text_model.encoder.layers.0.self_attn.q_proj.weight",
    "text_model.encoder.layers.1.self_attn.out_proj.bias",
    "text_model.encoder.layers.0.mlp.fc1.weight",
    "text_model.embeddings.token_embedding.weight",
    "text_model.embeddings.position_embedding.weight",
    "text_model.final_layer_norm.weight",
    "text_projection.weight",
  };

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    expect_missing_tensor (HF, "model.safetensors", names[i]);
}

static void
test_missing_tensor_openclip (void)
{
  static const char *const names[] = {
    "visual.transformer.resblocks.0.attn.in_proj_weight",
    "visual.transformer.resblocks.1.attn.in_proj_bias",
    "visual.transformer.resblocks.1.mlp.c_proj.weight",
    "visual.class_embedding",
    "visual.positional_embedding",
    "visual.ln_post.weight",
    "visual.proj",
    "transformer.resblocks.0.ln_2.bias",
    "transformer.resblocks.1.attn.out_proj.weight",
    "token_embedding.weight",
    "positional_embedding",
    "ln_final.bias",
    "text_projection",
  };

  if (!have_bases ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    expect_missing_tensor (OPENCLIP, OPENCLIP_FILE, names[i]);
}

/* Layers are counted by their first LayerNorm weight: without it a block's
 * other tensors must not be silently dropped. */
static void
test_missing_layer_norm_defining_block (void)
{
  struct breakage *b;
  const char *hf_first = "vision_model.encoder.layers.0.layer_norm1.weight";
  const char *hf_last = "text_model.encoder.layers.1.layer_norm1.weight";
  const char *oc_last = "visual.transformer.resblocks.1.ln_1.weight";

  if (!have_bases ())
    return;
  /* a later block without its first layer norm: that tensor is named */
  b = breakage_st (HF, "model.safetensors");
  st_remove (b->st, hf_last);
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, b->file, hf_last);
  breakage_free (b);

  b = breakage_st (HF, "model.safetensors");
  st_remove (b->st, hf_first);
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, b->file, hf_first);
  breakage_free (b);

  b = breakage_st (OPENCLIP, OPENCLIP_FILE);
  st_remove (b->st, oc_last);
  st_write (b->st, b->file);
  expect_load_error (b->file, MODEL, b->file, oc_last);
  breakage_free (b);
}

/* Reshapes tensor @name (same byte count) and expects MODEL naming it. */
static void
expect_wrong_shape (const char *base, const char *file, const char *name, int n_dims,
    const gint64 *dims, const char *what)
{
  struct breakage *b = breakage_st (base, file);

  st_set_shape (b->st, name, n_dims, dims);
  st_write (b->st, b->file);
  expect_load_error (model_path (b), MODEL, b->file, name, what);
  breakage_free (b);
}

static void
test_wrong_shape (void)
{
  if (!have_bases ())
    return;
  /* [256] as [128, 2] */
  expect_wrong_shape (HF, "model.safetensors", "vision_model.encoder.layers.0.mlp.fc1.bias", 2,
      (gint64[]) { 128, 2 }, "[128, 2]");
  /* [64, 64] transposed-looking [32, 128] */
  expect_wrong_shape (HF, "model.safetensors",
      "vision_model.encoder.layers.1.self_attn.v_proj.weight", 2, (gint64[]) { 32, 128 },
      "[32, 128]");
  /* [48] as [1, 48] */
  expect_wrong_shape (HF, "model.safetensors", "text_model.final_layer_norm.bias", 2,
      (gint64[]) { 1, 48 }, "[1, 48]");
  /* [E, D] of the text projection as [D, E] */
  expect_wrong_shape (HF, "model.safetensors", "text_projection.weight", 2,
      (gint64[]) { HF_TEXT_WIDTH, EMBED }, "shape");
  /* the patch embedding with 3 dimensions */
  expect_wrong_shape (HF, "model.safetensors", "vision_model.embeddings.patch_embedding.weight", 3,
      (gint64[]) { 64, 3, 64 }, "dimensions");
  /* positions not 1 + a square grid */
  expect_wrong_shape (HF, "model.safetensors", "vision_model.embeddings.position_embedding.weight",
      2, (gint64[]) { 16, 68 }, "positions");
  /* OpenCLIP: fused qkv [3D, D] as [D, 3D] */
  expect_wrong_shape (OPENCLIP, OPENCLIP_FILE, "visual.transformer.resblocks.0.attn.in_proj_weight",
      2, (gint64[]) { OC_WIDTH, 3 * OC_WIDTH }, "shape");
  expect_wrong_shape (OPENCLIP, OPENCLIP_FILE, "transformer.resblocks.1.ln_1.bias", 2,
      (gint64[]) { 2, 64 }, "shape");
  /* logit_scale with two elements */
  {
    struct breakage *b = breakage_st (OPENCLIP, OPENCLIP_FILE);

    st_set_dtype (b->st, "logit_scale", "F32", 4);      /* zero it, keeping [] */
    st_set_shape (b->st, "logit_scale", 1, (gint64[]) { 2 });
    st_rebuild (b->st, "logit_scale", 8, FALSE);
    st_write (b->st, b->file);
    expect_load_error (b->file, MODEL, b->file, "logit_scale");
    breakage_free (b);
  }
}

/* Gives tensor @name an integer dtype and expects MODEL naming it and the dtype. */
static void
expect_wrong_dtype (const char *base, const char *file, const char *name, const char *dtype,
    gsize size)
{
  struct breakage *b = breakage_st (base, file);

  st_set_dtype (b->st, name, dtype, size);
  st_write (b->st, b->file);
  expect_load_error (model_path (b), MODEL, b->file, name, dtype);
  breakage_free (b);
}

static void
test_wrong_dtype (void)
{
  if (!have_bases ())
    return;
  expect_wrong_dtype (HF, "model.safetensors", "vision_model.encoder.layers.0.mlp.fc1.weight",
      "I64", 8);
  expect_wrong_dtype (HF, "model.safetensors", "text_model.embeddings.token_embedding.weight", "U8",
      1);
  expect_wrong_dtype (HF, "model.safetensors", "vision_model.post_layernorm.bias", "F64", 8);
  expect_wrong_dtype (HF, "model.safetensors", "text_projection.weight", "BOOL", 1);
  expect_wrong_dtype (HF, "model.safetensors", "logit_scale", "I32", 4);
  expect_wrong_dtype (OPENCLIP, OPENCLIP_FILE, "visual.proj", "I64", 8);
  expect_wrong_dtype (OPENCLIP, OPENCLIP_FILE, "transformer.resblocks.0.attn.in_proj_weight",
      "F8_E4M3", 1);
  expect_wrong_dtype (OPENCLIP, OPENCLIP_FILE, "logit_scale", "U8", 1);
}

/* Neither naming, or both. */
static void
test_unknown_architecture_tensors (void)
{
  struct breakage *b;
  JsonObject *h;
  JsonNode *node;

  if (!have_bases ())
    return;
  /* HF patch embedding renamed */
  b = breakage_st (HF, "model.safetensors");
  h = json_node_get_object (b->st->header);
  node =
      json_node_copy (json_object_get_member (h, "vision_model.embeddings.patch_embedding.weight"));
  json_object_remove_member (h, "vision_model.embeddings.patch_embedding.weight");
  json_object_set_member (h, "vision_tower.patch_embed.proj.weight", node);
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, b->file, "unknown architecture",
      "vision_model.embeddings.patch_embedding.weight");
  breakage_free (b);

  /* an OpenCLIP file that also has the HF patch embedding (its own copy of the bytes) */
  b = breakage_st (OPENCLIP, OPENCLIP_FILE);
  st_add_copy (b->st, "visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight");
  st_write (b->st, b->file);
  expect_load_error (b->file, MODEL, b->file, "unknown architecture", "visual.conv1.weight");
  breakage_free (b);
}

/* ---- EVA02-CLIP (CLIPSelf's vision tower) ---------------------------------- */

static gboolean
have_eva02 (void)
{
  char *path = base_path (EVA02);
  gboolean ok = g_file_test (path, G_FILE_TEST_IS_DIR);

  g_free (path);
  if (!ok)
    g_test_skip
        ("EVA02 base checkpoint not generated (needs /usr/bin/python3 with numpy at build time)");
  return ok;
}

static void
test_eva02_loads (void)
{
  struct clipseg_model *model;
  const struct clipseg_model_info *i;
  char *path;

  if (!have_eva02 ())
    return;
  path = base_path (EVA02);
  model = load_ok (path);
  g_free (path);
  i = clipseg_model_get_info (model);
  g_assert_cmpstr (i->naming, ==, "eva02");
  /* the text tower's: EVA-CLIP builds it with nn.GELU and eps 1e-5 */
  g_assert_cmpint (i->activation, ==, CLIPSEG_ACTIVATION_GELU);
  g_assert_cmpfloat (i->layer_norm_eps, ==, 1e-5f);
  g_assert_cmpint (i->vision_width, ==, OC_WIDTH);
  g_assert_cmpint (i->vision_mlp, ==, (int) (OC_WIDTH * 2.6667));
  g_assert_cmpint (i->vision_layers, ==, N_LAYERS);
  g_assert_cmpint (i->image_size, ==, IMAGE);
  clipseg_model_unref (model);
}

/* Every part of the EVA02 block, the tower around it and the text tower
 * under "text." is required and named when missing. */
static void
test_eva02_missing_tensor (void)
{
  static const char *const names[] = {
    "visual.blocks.0.attn.q_bias", "visual.blocks.1.attn.v_bias",
    "visual.blocks.0.attn.k_proj.weight", "visual.blocks.1.attn.inner_attn_ln.bias",
    "visual.blocks.0.attn.proj.weight", "visual.blocks.1.mlp.w2.weight",
    "visual.blocks.0.mlp.ffn_ln.weight", "visual.blocks.1.mlp.w3.bias",
    "visual.patch_embed.proj.bias", "visual.cls_token", "visual.pos_embed", "visual.norm.bias",
    "visual.head.bias", "text.transformer.resblocks.1.mlp.c_fc.weight",
    "text.token_embedding.weight", "text.ln_final.weight", "text.text_projection",
  };

  if (!have_eva02 ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    expect_missing_tensor (EVA02, "model.safetensors", names[i]);
}

/* Layer scale, a stored RoPE table of the wrong shape, and a config.json
 * that names the other family are refused, naming what is wrong. */
static void
test_eva02_refused (void)
{
  struct breakage *b;

  if (!have_eva02 ())
    return;
  b = breakage_st (EVA02, "model.safetensors");
  st_add_copy (b->st, "visual.blocks.1.norm1.weight", "visual.blocks.1.gamma_1");
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, "visual.blocks.1.gamma_1", "layer scale");
  breakage_free (b);

  b = breakage_st (EVA02, "model.safetensors");
  st_remove (b->st, "visual.rope.freqs_sin");
  st_add_copy (b->st, "visual.pos_embed", "visual.rope.freqs_sin");
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, "visual.rope.freqs_sin", "shape");
  breakage_free (b);

  b = breakage_new (EVA02, "config.json");
  json_edit (b->dir, "config.json", "", "model_type", jstring ("clip"));
  json_edit (b->dir, "config.json", "vision_config", "hidden_act", jstring ("gelu"));
  json_edit (b->dir, "config.json", "vision_config", "layer_norm_eps", jdouble (1e-5));
  expect_load_error (b->dir, MODEL, b->file, "model_type says clip", "eva02");
  breakage_free (b);

  b = breakage_new (HF, "config.json");
  json_edit (b->dir, "config.json", "", "model_type", jstring ("eva02-clip"));
  expect_load_error (b->dir, MODEL, b->file, "model_type says eva02-clip", "huggingface");
  breakage_free (b);

  b = breakage_new (EVA02, "config.json");
  json_edit (b->dir, "config.json", "vision_config", "num_hidden_layers", jint (3));
  expect_load_error (b->dir, MODEL, b->file, "vision_config.num_hidden_layers");
  breakage_free (b);

  /* EVA02 and OpenAI names at once */
  b = breakage_st (EVA02, "model.safetensors");
  st_add_copy (b->st, "visual.patch_embed.proj.weight", "visual.conv1.weight");
  st_write (b->st, b->file);
  expect_load_error (b->dir, MODEL, "unknown architecture", "more than one");
  breakage_free (b);
}

/* ---- checkpoint level: config.json ------------------------------------------ */

/* Sets (or with NULL removes) @member of object @where in config.json. */
static void
expect_config_error (const char *where, const char *member, JsonNode *value, int code,
    const char *what)
{
  struct breakage *b = breakage_new (HF, "config.json");

  json_edit (b->dir, "config.json", where, member, value);
  expect_load_error (b->dir, code, b->file, what);
  breakage_free (b);
}

static void
expect_config_text_error (const char *text, int code, const char *what)
{
  struct breakage *b = breakage_new (HF, "config.json");

  write_text (b->file, text);
  expect_load_error (b->dir, code, b->file, what);
  breakage_free (b);
}

static void
test_config_unknown_architecture (void)
{
  if (!have_bases ())
    return;
  expect_config_error ("", "model_type", jstring ("siglip"), MODEL, "siglip");
  expect_config_error ("", "model_type", jstring ("siglip"), MODEL, "model_type");
  expect_config_error ("", "model_type", jint (5), FORMAT, "model_type");
}

static void
test_config_not_json (void)
{
  if (!have_bases ())
    return;
  expect_config_text_error ("{\"model_type\": \"clip\",", FORMAT, "config.json");
  expect_config_text_error ("not json", FORMAT, "config.json");
  expect_config_text_error ("\xff\xfe{}", FORMAT, "config.json");
  expect_config_text_error ("[1, 2]", FORMAT, "not a JSON object");
  expect_config_text_error ("\"clip\"", FORMAT, "not a JSON object");
  expect_config_text_error ("", FORMAT, "config.json");
}

static void
test_config_missing (void)
{
  struct breakage *b;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "config.json");
  g_unlink (b->file);
  expect_load_error (b->dir, IO, b->file);
  breakage_free (b);
}

static void
test_config_sections (void)
{
  if (!have_bases ())
    return;
  expect_config_error ("", "text_config", NULL, FORMAT, "text_config");
  expect_config_error ("", "vision_config", NULL, FORMAT, "vision_config");
  expect_config_error ("", "text_config", jint (3), FORMAT, "text_config");
  expect_config_error ("", "vision_config", jparse ("[1]"), FORMAT, "vision_config");
}

static void
test_config_bad_values (void)
{
  if (!have_bases ())
    return;
  expect_config_error ("vision_config", "hidden_size", jdouble (64.5), FORMAT,
      "vision_config.hidden_size");
  expect_config_error ("vision_config", "hidden_size", jstring ("64"), FORMAT,
      "vision_config.hidden_size");
  expect_config_error ("vision_config", "hidden_size", jint (-64), FORMAT,
      "vision_config.hidden_size");
  expect_config_error ("vision_config", "hidden_size", jint (0), FORMAT,
      "vision_config.hidden_size");
  expect_config_error ("text_config", "hidden_size", jparse ("[48]"), FORMAT,
      "text_config.hidden_size");
  expect_config_error ("text_config", "vocab_size", jint (G_GINT64_CONSTANT (1) << 40), FORMAT,
      "text_config.vocab_size");
  expect_config_error ("text_config", "num_hidden_layers", jparse ("true"), FORMAT,
      "text_config.num_hidden_layers");
  expect_config_error ("", "projection_dim", jdouble (32.0), FORMAT, "projection_dim");
  expect_config_error ("vision_config", "hidden_act", jstring ("relu"), FORMAT,
      "vision_config.hidden_act");
  expect_config_error ("text_config", "hidden_act", jint (1), FORMAT, "text_config.hidden_act");
  expect_config_error ("text_config", "hidden_act", jstring ("gelu"), FORMAT, "activation");
  expect_config_error ("vision_config", "layer_norm_eps", jdouble (-1e-5), FORMAT,
      "vision_config.layer_norm_eps");
  expect_config_error ("text_config", "layer_norm_eps", jdouble (0), FORMAT,
      "text_config.layer_norm_eps");
  expect_config_error ("text_config", "layer_norm_eps", jstring ("1e-5"), FORMAT,
      "text_config.layer_norm_eps");
  expect_config_error ("text_config", "layer_norm_eps", jdouble (1e-6), FORMAT, "layer_norm_eps");
}

/* Like expect_config_error, but the message is about the tensors: it names
 * the weights file, "config.json" and the field. */
static void
expect_config_disagrees (const char *where, const char *member, JsonNode *value)
{
  struct breakage *b = breakage_new (HF, "config.json");
  char *weights = path_in (b->dir, "model.safetensors");
  char *field = where[0] ? g_strconcat (where, ".", member, NULL) : g_strdup (member);

  json_edit (b->dir, "config.json", where, member, value);
  expect_load_error (b->dir, MODEL, weights, "config.json", field);
  g_free (field);
  g_free (weights);
  breakage_free (b);
}

/* Stated hyperparameters the tensors contradict. */
static void
test_config_disagrees (void)
{
  if (!have_bases ())
    return;
  expect_config_disagrees ("vision_config", "hidden_size", jint (128));
  expect_config_disagrees ("vision_config", "intermediate_size", jint (100));
  expect_config_disagrees ("vision_config", "num_hidden_layers", jint (3));
  expect_config_disagrees ("vision_config", "patch_size", jint (16));
  expect_config_disagrees ("vision_config", "image_size", jint (224));
  expect_config_disagrees ("text_config", "hidden_size", jint (64));
  expect_config_disagrees ("text_config", "max_position_embeddings", jint (76));
  expect_config_disagrees ("text_config", "vocab_size", jint (49408));
  expect_config_disagrees ("text_config", "num_hidden_layers", jint (1));
  expect_config_disagrees ("", "projection_dim", jint (512));
}

/* Heads that do not divide the width: the field is num_attention_heads. */
static void
test_config_heads (void)
{
  if (!have_bases ())
    return;
  expect_config_error ("vision_config", "num_attention_heads", jint (5), MODEL,
      "vision_config.num_attention_heads");
  expect_config_error ("text_config", "num_attention_heads", jint (7), MODEL,
      "text_config.num_attention_heads");
}

static void
test_config_deep_nesting (void)
{
  struct breakage *b;
  char *text;

  if (g_test_subprocess ()) {
    char *file = path_in (g_getenv ("CLIPSEG_LOADER_CASE"), "config.json");

    expect_load_error (g_getenv ("CLIPSEG_LOADER_CASE"), FORMAT, file);
    g_free (file);
    return;
  }
  if (!have_bases ())
    return;
  b = breakage_new (HF, "config.json");
  text = nested ("{\"model_type\": ", DEEP, "");
  write_text (b->file, text);
  run_in_subprocess (b->dir);
  g_free (text);
  breakage_free (b);
}

/* ---- checkpoint level: files of an HF directory ------------------------------ */

static void
test_missing_weights (void)
{
  struct breakage *b;
  char *p;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "model.safetensors");
  g_unlink (b->file);
  expect_load_error (b->dir, IO, b->dir, "model.safetensors");
  breakage_free (b);

  /* model.safetensors a directory */
  b = breakage_new (HF, "model.safetensors");
  g_unlink (b->file);
  g_assert_cmpint (g_mkdir (b->file, 0755), ==, 0);
  expect_load_error (b->dir, IO, b->file);
  breakage_free (b);

  /* a directory that does not exist, an empty one, a path that is nothing */
  p = g_build_filename (g_get_tmp_dir (), "clipseg-no-such-model-dir", NULL);
  expect_load_error (p, IO, p);
  g_free (p);
  expect_load_error ("", IO, "no such");
  b = breakage_new (HF, NULL);
  remove_tree (b->dir);
  g_assert_cmpint (g_mkdir (b->dir, 0755), ==, 0);
  expect_load_error (b->dir, IO, b->dir, "config.json");
  breakage_free (b);
}

/* A model path that is a regular file but not safetensors. */
static void
test_not_safetensors_file (void)
{
  struct breakage *b;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "config.json");
  expect_load_error (b->file, FORMAT, b->file);
  breakage_free (b);
}

/* ---- sharded checkpoints ----------------------------------------------------- */

#define INDEX "model.safetensors.index.json"
#define SHARD1 "model-00001-of-00003.safetensors"
#define SHARD2 "model-00002-of-00003.safetensors"
#define SHARD3 "model-00003-of-00003.safetensors"

static void
expect_index_text_error (const char *text, int code, const char *what)
{
  struct breakage *b = breakage_new (SHARDED, INDEX);

  write_text (b->file, text);
  expect_load_error (b->dir, code, b->file, what);
  breakage_free (b);
}

static void
test_sharded_index (void)
{
  struct breakage *b;

  if (!have_bases ())
    return;
  expect_index_text_error ("{\"metadata\": {}}", FORMAT, "weight_map");
  expect_index_text_error ("{\"weight_map\": [1]}", FORMAT, "weight_map");
  expect_index_text_error ("[]", FORMAT, "JSON object");
  expect_index_text_error ("{\"weight_map\": {", FORMAT, INDEX);
  expect_index_text_error ("", FORMAT, INDEX);
  expect_index_text_error ("{\"weight_map\": {\"logit_scale\": 3}}", FORMAT, "logit_scale");
  expect_index_text_error ("{\"weight_map\": {\"logit_scale\": \"\"}}", FORMAT, "logit_scale");
  expect_index_text_error ("{\"weight_map\": {\"logit_scale\": \"..\"}}", FORMAT, "logit_scale");

  /* a shard name with a directory part */
  b = breakage_new (SHARDED, INDEX);
  json_edit (b->dir, INDEX, "weight_map", "logit_scale", jstring ("../" SHARD1));
  expect_load_error (b->dir, FORMAT, b->file, "logit_scale", "weight_map");
  breakage_free (b);
  b = breakage_new (SHARDED, INDEX);
  json_edit (b->dir, INDEX, "weight_map", "logit_scale", jstring ("/etc/passwd"));
  expect_load_error (b->dir, FORMAT, b->file, "logit_scale");
  breakage_free (b);
}

static void
test_sharded_missing_shard (void)
{
  struct breakage *b;
  char *shard;

  if (!have_bases ())
    return;
  /* the index names a shard that is not there */
  b = breakage_new (SHARDED, INDEX);
  json_edit (b->dir, INDEX, "weight_map", "logit_scale",
      jstring ("model-00009-of-00003.safetensors"));
  shard = path_in (b->dir, "model-00009-of-00003.safetensors");
  expect_load_error (b->dir, IO, shard);
  g_free (shard);
  breakage_free (b);

  /* a shard file deleted */
  b = breakage_new (SHARDED, SHARD2);
  g_unlink (b->file);
  expect_load_error (b->dir, IO, b->file);
  breakage_free (b);

  /* a shard broken like any safetensors file */
  b = breakage_new (SHARDED, SHARD3);
  write_text (b->file, "1234");
  expect_load_error (b->dir, FORMAT, b->file, "4 bytes");
  breakage_free (b);
}

/* The index lists a tensor that its shard does not hold. */
static void
test_sharded_tensor_not_in_shard (void)
{
  struct breakage *b;
  char *shard;
  JsonNode *root;
  JsonObject *map;
  GList *names;
  const char *moved = NULL, *other_shard = NULL;

  if (!have_bases ())
    return;
  /* a tensor in no shard at all */
  b = breakage_new (SHARDED, INDEX);
  json_edit (b->dir, INDEX, "weight_map", "vision_model.extra.weight", jstring (SHARD1));
  shard = path_in (b->dir, SHARD1);
  expect_load_error (b->dir, MODEL, shard, "vision_model.extra.weight");
  g_free (shard);
  breakage_free (b);

  /* a tensor that is in another shard (the one loaded before it) */
  b = breakage_new (SHARDED, INDEX);
  root = json_read (b->file);
  map = json_at (root, "weight_map");
  names = json_object_get_members (map);
  /* the last entry whose shard already appeared earlier in the map, moved to another shard */
  for (GList * l = names; l; l = l->next) {
    const char *shard_name = json_object_get_string_member (map, l->data);

    for (GList * k = names; k != l; k = k->next)
      if (strcmp (json_object_get_string_member (map, k->data), shard_name) == 0) {
        moved = l->data;
        other_shard = strcmp (shard_name, SHARD1) == 0 ? SHARD2 : SHARD1;
        break;
      }
  }
  g_assert_nonnull (moved);
  moved = g_strdup (moved);
  json_object_set_string_member (map, moved, other_shard);
  json_write (b->file, root);
  shard = path_in (b->dir, other_shard);
  expect_load_error (b->dir, MODEL, shard, moved);
  g_free (shard);
  g_free ((char *) moved);
  g_list_free (names);
  json_node_unref (root);
  breakage_free (b);
}

/* The same tensor in two shards. */
static void
test_sharded_duplicate (void)
{
  struct breakage *b;
  struct st_file *s1, *s2;
  char *p1, *p2, *name;
  GList *names;

  if (!have_bases ())
    return;
  b = breakage_new (SHARDED, NULL);
  p1 = path_in (b->dir, SHARD1), p2 = path_in (b->dir, SHARD2);
  s1 = st_read (p1), s2 = st_read (p2);
  /* a tensor of shard 1 appended to shard 2 */
  names = json_object_get_members (json_node_get_object (s1->header));
  name = g_strdup (strcmp (names->data, "__metadata__") ? names->data : names->next->data);
  g_list_free (names);
  {
    gint64 begin, end, at = s2->data->len;

    st_offsets (s1, name, &begin, &end);
    g_byte_array_append (s2->data, s1->data->data + begin, (guint) (end - begin));
    json_object_set_member (json_node_get_object (s2->header), name,
        jclone (json_object_get_member (json_node_get_object (s1->header), name)));
    st_set_offsets (s2, name, at, at + (end - begin));
  }
  st_write (s2, p2);
  expect_load_error (b->dir, FORMAT, name, "another file");
  st_free (s1);
  st_free (s2);
  g_free (p1);
  g_free (p2);
  g_free (name);
  breakage_free (b);
}

static void
test_index_deep_nesting (void)
{
  struct breakage *b;
  char *text;

  if (g_test_subprocess ()) {
    char *file = path_in (g_getenv ("CLIPSEG_LOADER_CASE"), INDEX);

    expect_load_error (g_getenv ("CLIPSEG_LOADER_CASE"), FORMAT, file);
    g_free (file);
    return;
  }
  if (!have_bases ())
    return;
  b = breakage_new (SHARDED, INDEX);
  text = nested ("{\"weight_map\": ", DEEP, "");
  write_text (b->file, text);
  run_in_subprocess (b->dir);
  g_free (text);
  breakage_free (b);
}

/* ---- vocabulary ------------------------------------------------------------ */

static void
test_vocab_missing (void)
{
  struct breakage *b;
  char *vocab, *merges;

  if (!have_bases ())
    return;
  /* both files gone */
  b = breakage_new (HF, NULL);
  vocab = path_in (b->dir, "vocab.json"), merges = path_in (b->dir, "merges.txt");
  g_unlink (vocab);
  g_unlink (merges);
  expect_load_error (b->dir, IO, b->dir, "vocab.json");
  g_free (vocab);
  g_free (merges);
  breakage_free (b);

  b = breakage_new (HF, "vocab.json");
  g_unlink (b->file);
  expect_load_error (b->dir, IO, b->file);
  breakage_free (b);

  b = breakage_new (HF, "merges.txt");
  g_unlink (b->file);
  expect_load_error (b->dir, IO, b->file);
  breakage_free (b);
}

static void
expect_vocab_json_error (const char *text, const char *what)
{
  struct breakage *b = breakage_new (HF, "vocab.json");

  write_text (b->file, text);
  expect_load_error (b->dir, FORMAT, b->file, what);
  breakage_free (b);
}

static void
test_vocab_json_malformed (void)
{
  struct breakage *b;
  char *text, *deep;

  if (!have_bases ())
    return;
  expect_vocab_json_error ("{\"a\": 0,", "vocab.json");
  expect_vocab_json_error ("not json", "vocab.json");
  expect_vocab_json_error ("[\"a\"]", "vocab.json");
  expect_vocab_json_error ("{\"a\": \"0\"}", "\"a\"");
  expect_vocab_json_error ("{\"a\": 1}", "\"a\"");
  expect_vocab_json_error ("{\"a\": 0, \"b\": 0}", "same id");
  expect_vocab_json_error ("{\"a\": 0.5}", "\"a\"");
  expect_vocab_json_error ("{\"\xff\": 0}", "vocab.json");
  deep = nested ("{\"a\": ", 100000, "");
  expect_vocab_json_error (deep, "nested");
  g_free (deep);

  /* the special tokens missing: <|endoftext|> has the last id */
  b = breakage_new (HF, "vocab.json");
  text = read_text (b->file);
  json_edit (b->dir, "vocab.json", "", "<|endoftext|>", NULL);
  expect_load_error (b->dir, FORMAT, b->file, "<|endoftext|>");
  /* both specials: ids still 0..n-1 */
  write_text (b->file, text);
  json_edit (b->dir, "vocab.json", "", "<|endoftext|>", NULL);
  json_edit (b->dir, "vocab.json", "", "<|startoftext|>", NULL);
  expect_load_error (b->dir, FORMAT, b->file, "<|startoftext|>");
  g_free (text);
  breakage_free (b);
}

static void
expect_merges_error (const char *text, const char *what)
{
  struct breakage *b = breakage_new (HF, "merges.txt");

  write_text (b->file, text);
  expect_load_error (b->dir, FORMAT, b->file, what);
  breakage_free (b);
}

static void
test_merges_malformed (void)
{
  struct breakage *b;
  char *text, **lines, *joined;

  if (!have_bases ())
    return;
  expect_merges_error ("", "#version");
  expect_merges_error ("i n\n", "#version");
  expect_merges_error ("#version: 0.2\ni\n", "line 2");
  expect_merges_error ("#version: 0.2\ni n t\n", "line 2");
  expect_merges_error ("#version: 0.2\ni n\n\xff \xfe\n", "line 3");
  expect_merges_error ("#version: 0.2\nzzz qqq\n", "line 2");
  /* a merge whose result is not in vocab.json: "q" + "z</w>" */
  expect_merges_error ("#version: 0.2\nq z</w>\n", "merge result");

  /* the real file with one line cut to one symbol */
  b = breakage_new (HF, "merges.txt");
  text = read_text (b->file);
  lines = g_strsplit (text, "\n", -1);
  g_assert_nonnull (lines[5]);
  *strchr (lines[5], ' ') = '\0';
  joined = g_strjoinv ("\n", lines);
  write_text (b->file, joined);
  expect_load_error (b->dir, FORMAT, b->file, "line 6");
  g_free (joined);
  g_strfreev (lines);
  g_free (text);
  breakage_free (b);
}

/* A vocabulary with more ids than the token embedding has rows. */
static void
test_vocab_larger_than_embedding (void)
{
  struct breakage *b;
  char *name;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "vocab.json");
  for (int id = VOCAB; id < VOCAB + 10; id++) {
    name = g_strdup_printf ("extra%d", id);
    json_edit (b->dir, "vocab.json", "", name, jint (id));
    g_free (name);
  }
  expect_load_error (b->dir, MODEL, b->dir, "token embedding", "624");
  breakage_free (b);
}

static void
test_openclip_vocab (void)
{
  struct breakage *b;
  char *p;

  if (!have_bases ())
    return;
  /* nothing beside the file */
  b = breakage_new (OPENCLIP, OPENCLIP_FILE);
  p = path_in (b->dir, "vocab.json"), g_unlink (p), g_free (p);
  p = path_in (b->dir, "merges.txt"), g_unlink (p), g_free (p);
  expect_load_error (b->file, IO, b->file, "vocabulary");

  /* a vocab path that does not exist, and a directory without the pair */
  p = path_in (b->dir, "bpe_simple_vocab_16e6.txt.gz");
  expect_load_error_vocab (b->file, p, IO, p);
  expect_load_error_vocab (b->file, b->dir, IO, b->dir, "vocab.json");
  g_free (p);

  /* a broken OpenAI merge list beside the file */
  p = path_in (b->dir, "bpe_simple_vocab_16e6.txt.gz");
  write_text (p, "\x1f\x8b not really gzip");
  expect_load_error (b->file, FORMAT, p, "gzip");
  write_text (p, "#version\ni n\n");
  expect_load_error (b->file, FORMAT, p, "lines");
  g_free (p);
  breakage_free (b);

  /* only merges.txt beside it */
  b = breakage_new (OPENCLIP, "vocab.json");
  g_unlink (b->file);
  p = path_in (b->dir, OPENCLIP_FILE);
  expect_load_error (p, IO, b->file);
  g_free (p);
  breakage_free (b);
}

/* ---- side files: open_clip_config.json, preprocessor_config.json ---------- */

static void
expect_side_error (const char *base, const char *file, const char *where, const char *member,
    JsonNode *value, const char *text, const char *what)
{
  struct breakage *b = breakage_new (base, file);
  char *model = strcmp (base, OPENCLIP) == 0 ? path_in (b->dir, OPENCLIP_FILE) : g_strdup (b->dir);

  if (text)
    write_text (b->file, text);
  else
    json_edit (b->dir, file, where, member, value);
  expect_load_error (model, FORMAT, b->file, what);
  g_free (model);
  breakage_free (b);
}

static void
test_open_clip_config (void)
{
  const char *f = "open_clip_config.json";

  if (!have_bases ())
    return;
  expect_side_error (OPENCLIP, f, NULL, NULL, NULL, "{\"model_cfg\": ", f);
  expect_side_error (OPENCLIP, f, NULL, NULL, NULL, "[]", "not a JSON object");
  expect_side_error (OPENCLIP, f, NULL, NULL, NULL, "", f);
  expect_side_error (OPENCLIP, f, "model_cfg", "quick_gelu", jstring ("yes"), NULL,
      "model_cfg.quick_gelu");
  expect_side_error (OPENCLIP, f, "model_cfg", "quick_gelu", jint (1), NULL,
      "model_cfg.quick_gelu");
  expect_side_error (OPENCLIP, f, "preprocess_cfg", "mean", jparse ("[0.5, 0.5]"), NULL, "mean");
  expect_side_error (OPENCLIP, f, "preprocess_cfg", "mean", jparse ("[0.5, \"0.5\", 0.5]"), NULL,
      "mean");
  expect_side_error (OPENCLIP, f, "preprocess_cfg", "std", jparse ("[0.5, 0, 0.5]"), NULL, "std");
  expect_side_error (OPENCLIP, f, "preprocess_cfg", "std", jparse ("0.5"), NULL, "std");
}

static void
test_preprocessor_config (void)
{
  const char *f = "preprocessor_config.json";

  if (!have_bases ())
    return;
  expect_side_error (HF, f, NULL, NULL, NULL, "{\"image_mean\": [", f);
  expect_side_error (HF, f, NULL, NULL, NULL, "42", "not a JSON object");
  expect_side_error (HF, f, "", "image_mean", jparse ("[0.5, 0.5, 0.5, 0.5]"), NULL, "image_mean");
  expect_side_error (HF, f, "", "image_mean", jparse ("{}"), NULL, "image_mean");
  expect_side_error (HF, f, "", "image_std", jparse ("[0.5, -0.5, 0.5]"), NULL, "image_std");
  expect_side_error (HF, f, "", "image_std", jparse ("[0.5, null, 0.5]"), NULL, "image_std");
}

/* The outcome must not depend on whether the caller asks for the error. */
static void
test_side_errors_without_gerror (void)
{
  struct breakage *b;
  struct clipseg_model *m;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "preprocessor_config.json");
  write_text (b->file, "{\"image_mean\": [");
  m = clipseg_model_load (b->dir, clipseg_model_default_params (), NULL);
  if (m) {
    check_failed ("%s with a malformed preprocessor_config.json loaded without a GError", b->dir);
    clipseg_model_unref (m);
  }
  breakage_free (b);

  b = breakage_new (OPENCLIP, "open_clip_config.json");
  write_text (b->file, "{\"model_cfg\": ");
  {
    char *p = path_in (b->dir, OPENCLIP_FILE);

    m = clipseg_model_load (p, clipseg_model_default_params (), NULL);
    if (m) {
      check_failed ("%s with a malformed open_clip_config.json loaded without a GError", p);
      clipseg_model_unref (m);
    }
    g_free (p);
  }
  breakage_free (b);
}

/* The side files' effect when well formed. */
static void
test_side_files_applied (void)
{
  struct breakage *b;
  struct clipseg_model *m;
  const struct clipseg_model_info *info;

  if (!have_bases ())
    return;
  b = breakage_new (HF, "preprocessor_config.json");
  json_edit (b->dir, "preprocessor_config.json", "", "image_mean", jparse ("[0.5, 0.25, 0.125]"));
  json_edit (b->dir, "preprocessor_config.json", "", "image_std", jparse ("[2, 4, 8]"));
  m = load_ok (b->dir);
  info = clipseg_model_get_info (m);
  g_assert_cmpfloat (info->image_mean[1], ==, 0.25f);
  g_assert_cmpfloat (info->image_std[2], ==, 8.0f);
  clipseg_model_unref (m);
  /* absent: CLIP's values */
  g_unlink (b->file);
  m = load_ok (b->dir);
  g_assert_cmpfloat_with_epsilon (clipseg_model_get_info (m)->image_mean[0], 0.48145466f, 1e-7);
  clipseg_model_unref (m);
  breakage_free (b);

  b = breakage_new (OPENCLIP, "open_clip_config.json");
  json_edit (b->dir, "open_clip_config.json", "model_cfg", "quick_gelu",
      json_node_init_boolean (json_node_alloc (), TRUE));
  {
    char *p = path_in (b->dir, OPENCLIP_FILE);

    m = load_ok (p);
    g_assert_cmpint (clipseg_model_get_info (m)->activation, ==, CLIPSEG_ACTIVATION_QUICK_GELU);
    clipseg_model_unref (m);
    g_unlink (b->file);
    m = load_ok (p);            /* OpenAI weights come without the file: QuickGELU */
    g_assert_cmpint (clipseg_model_get_info (m)->activation, ==, CLIPSEG_ACTIVATION_QUICK_GELU);
    clipseg_model_unref (m);
    g_free (p);
  }
  breakage_free (b);
}

static void
test_side_deep_nesting (void)
{
  struct breakage *b;
  char *text;

  if (g_test_subprocess ()) {
    char *file = path_in (g_getenv ("CLIPSEG_LOADER_CASE"), "preprocessor_config.json");

    expect_load_error (g_getenv ("CLIPSEG_LOADER_CASE"), FORMAT, file);
    g_free (file);
    return;
  }
  if (!have_bases ())
    return;
  b = breakage_new (HF, "preprocessor_config.json");
  text = nested ("{\"image_mean\": ", DEEP, "");
  write_text (b->file, text);
  run_in_subprocess (b->dir);
  g_free (text);
  breakage_free (b);
}

/* An activation outside the enum would reach the kernels' dispatch. */
static void
test_activation_param (void)
{
  const int bad[] = { CLIPSEG_ACTIVATION_GELU + 1, -1, 1000 };
  char *path;

  if (!have_bases ())
    return;
  path = base_path (HF);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    struct clipseg_model_params params = clipseg_model_default_params ();
    GError *error = NULL;
    char *what = g_strdup_printf ("activation %d", bad[i]);
    struct clipseg_model *m;

    params.activation = (enum clipseg_activation) bad[i];
    m = clipseg_model_load (path, params, &error);
    if (m) {
      check_failed ("%s: loaded with %s", path, what);
      clipseg_model_unref (m);
    } else {
      check_error (what, error, INVALID, what, NULL);
    }
    g_clear_error (&error);
    g_free (what);
  }
  g_free (path);
}

/* ---- main ---------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add_func ("/loader/" path, func)
  ADD ("positive/bases-load", test_bases_load);
  ADD ("positive/f16-bf16-same-info", test_f16_bf16_info);
  ADD ("positive/unaligned-f32", test_unaligned_f32);
  ADD ("positive/sharded-same-as-single", test_sharded_same_as_single);
  ADD ("positive/model-outlives-files", test_model_outlives_files);
  ADD ("positive/side-files-applied", test_side_files_applied);
  ADD ("positive/zero-length-tensor", test_st_zero_length_tensor);

  ADD ("safetensors/short-files", test_st_short_files);
  ADD ("safetensors/header-length", test_st_header_length);
  ADD ("safetensors/header-over-100MB", test_st_header_over_limit);
  ADD ("safetensors/bad-header-text", test_st_bad_header_text);
  ADD ("safetensors/header-nul", test_st_header_nul);
  ADD ("safetensors/header-not-strict-json", test_st_header_not_strict_json);
  ADD ("safetensors/bad-entries", test_st_bad_entries);
  ADD ("safetensors/overlap", test_st_overlap);
  ADD ("safetensors/hole-and-trailing", test_st_hole_and_trailing);
  ADD ("safetensors/truncated", test_st_truncated);
  ADD ("safetensors/no-tensors", test_st_no_tensors);
  ADD ("safetensors/deep-nesting", test_st_deep_nesting);

  ADD ("tensors/missing-hf", test_missing_tensor_hf);
  ADD ("tensors/missing-openclip", test_missing_tensor_openclip);
  ADD ("tensors/missing-block-marker", test_missing_layer_norm_defining_block);
  ADD ("tensors/wrong-shape", test_wrong_shape);
  ADD ("tensors/wrong-dtype", test_wrong_dtype);
  ADD ("tensors/unknown-architecture", test_unknown_architecture_tensors);
  ADD ("eva02/loads", test_eva02_loads);
  ADD ("eva02/missing-tensor", test_eva02_missing_tensor);
  ADD ("eva02/refused", test_eva02_refused);

  ADD ("config/unknown-architecture", test_config_unknown_architecture);
  ADD ("config/not-json", test_config_not_json);
  ADD ("config/missing", test_config_missing);
  ADD ("config/sections", test_config_sections);
  ADD ("config/bad-values", test_config_bad_values);
  ADD ("config/disagrees", test_config_disagrees);
  ADD ("config/heads", test_config_heads);
  ADD ("config/deep-nesting", test_config_deep_nesting);

  ADD ("files/missing-weights", test_missing_weights);
  ADD ("files/pages-released", test_file_pages_released);
  ADD ("files/not-safetensors", test_not_safetensors_file);

  ADD ("sharded/index", test_sharded_index);
  ADD ("sharded/missing-shard", test_sharded_missing_shard);
  ADD ("sharded/tensor-not-in-shard", test_sharded_tensor_not_in_shard);
  ADD ("sharded/duplicate", test_sharded_duplicate);
  ADD ("sharded/deep-nesting", test_index_deep_nesting);

  ADD ("vocab/missing", test_vocab_missing);
  ADD ("vocab/json-malformed", test_vocab_json_malformed);
  ADD ("vocab/merges-malformed", test_merges_malformed);
  ADD ("vocab/larger-than-embedding", test_vocab_larger_than_embedding);
  ADD ("vocab/openclip", test_openclip_vocab);

  ADD ("side/open-clip-config", test_open_clip_config);
  ADD ("side/preprocessor-config", test_preprocessor_config);
  ADD ("side/deep-nesting", test_side_deep_nesting);
  ADD ("side/errors-without-gerror", test_side_errors_without_gerror);
  ADD ("params/activation", test_activation_param);
#undef ADD

  return g_test_run ();
}
