/* test-finite.c — NaN or infinity never gives a silent answer: the loader
 * names the first non-finite tensor, and finite weights that overflow float
 * make text encoding and segmentation fail with NOT_FINITE. */
#include <float.h>
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "clipseg-engine.h"
#include "finite.h"

static char *dir;

static void
test_find_nonfinite (void)
{
  size_t n = 10000;
  float *v = g_new (float, n);
  const float bad[] = { NAN, INFINITY, -INFINITY };
  const size_t where[] = { 0, 4095, 4096, 9999 };

  for (size_t i = 0; i < n; i++)
    v[i] = i % 3 == 0 ? FLT_MAX : i % 3 == 1 ? -FLT_MIN / 4 : (float) i;
  g_assert_cmpuint (floats_find_nonfinite (v, n), ==, n);
  for (guint b = 0; b < G_N_ELEMENTS (bad); b++) {
    for (guint w = 0; w < G_N_ELEMENTS (where); w++) {
      float keep = v[where[w]];

      v[where[w]] = bad[b];
      g_assert_cmpuint (floats_find_nonfinite (v, n), ==, where[w]);
      v[where[w]] = keep;
    }
  }
  g_assert_cmpuint (floats_find_nonfinite (v, 0), ==, 0);
  g_free (v);
}

/* A copy of the test checkpoint with every element of F32 tensor @name set
 * to @value (only the first when @first_only). */
static char *
model_with (const char *name, float value, gboolean first_only)
{
  char *copy = g_build_filename (dir, name, NULL);
  const char *files[] = { "config.json", "vocab.json", "merges.txt", "model.safetensors" };
  char *st_path = g_build_filename (copy, "model.safetensors", NULL);
  JsonParser *parser = json_parser_new ();
  JsonObject *tensor;
  JsonArray *offsets;
  guint64 header_len;
  char *bytes;
  gsize len;

  g_assert_cmpint (g_mkdir (copy, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    char *from = g_build_filename (MODEL_DIR, files[i], NULL);
    char *to = g_build_filename (copy, files[i], NULL);

    g_assert_true (g_file_get_contents (from, &bytes, &len, NULL));
    g_assert_true (g_file_set_contents (to, bytes, len, NULL));
    g_free (bytes);
    g_free (from);
    g_free (to);
  }
  g_assert_true (g_file_get_contents (st_path, &bytes, &len, NULL));
  memcpy (&header_len, bytes, sizeof header_len);
  g_assert_true (json_parser_load_from_data (parser, bytes + 8, (gssize) header_len, NULL));
  tensor =
      json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), name);
  g_assert_nonnull (tensor);
  g_assert_cmpstr (json_object_get_string_member (tensor, "dtype"), ==, "F32");
  offsets = json_object_get_array_member (tensor, "data_offsets");
  for (gint64 o = json_array_get_int_element (offsets, 0);
      o < (first_only ? json_array_get_int_element (offsets, 0) + 4
          : json_array_get_int_element (offsets, 1)); o += 4)
    memcpy (bytes + 8 + header_len + o, &value, sizeof value);
  g_assert_true (g_file_set_contents (st_path, bytes, len, NULL));
  g_object_unref (parser);
  g_free (bytes);
  g_free (st_path);
  return copy;
}

static struct clipseg_model *
load (const char *path, GError **error)
{
  struct clipseg_model_params params = clipseg_model_default_params ();

  /* fp32 linears: bf16 would round FLT_MAX to infinity on its own */
  params.precision = CLIPSEG_PRECISION_FP32;
  return clipseg_model_load (path, params, error);
}

static void
test_nan_weight_is_named_at_load (void)
{
  const char *names[] = { "vision_model.embeddings.patch_embedding.weight",
    "text_model.final_layer_norm.bias"
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *path = model_with (names[i], i ? INFINITY : NAN, i == 0);
    GError *error = NULL;

    g_assert_null (load (path, &error));
    g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL);
    if (!strstr (error->message, names[i]) || !strstr (error->message, "finite"))
      g_error ("\"%s\" does not name %s as not finite", error->message, names[i]);
    g_error_free (error);
    g_free (path);
  }
}

static struct clipseg_labels *
two_labels (void)
{
  return clipseg_labels_parse_list ("sky, person", NULL);
}

static void
test_overflowing_text_is_refused (void)
{
  char *path = model_with ("text_projection.weight", FLT_MAX, FALSE);
  struct clipseg_model *model = load (path, NULL);
  struct clipseg_labels *labels = two_labels ();
  const char *templates[] = { "a photo of a {}.", NULL };
  GError *error = NULL;

  g_assert_nonnull (model);
  g_assert_null (clipseg_queries_new (model, labels, templates, 2, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_NOT_FINITE);
  g_assert_nonnull (strstr (error->message, "text embeddings"));
  g_error_free (error);
  clipseg_labels_free (labels);
  clipseg_model_unref (model);
  g_free (path);
}

static void
test_overflowing_vision_is_refused (void)
{
  char *path = model_with ("visual_projection.weight", FLT_MAX, FALSE);
  struct clipseg_model *model = load (path, NULL);
  struct clipseg_labels *labels = two_labels ();
  const char *templates[] = { "a photo of a {}.", NULL };
  struct clipseg_queries *queries;
  struct clipseg_state *state;
  struct clipseg_segment_params sp = clipseg_segment_default_params ();
  int side = clipseg_model_get_info (model)->image_size;
  float *pixels = g_new0 (float, 3 * side * side), *probs = g_new (float, 2 * side * side);
  int32_t *map = g_new (int32_t, side * side);
  GError *error = NULL;

  queries = clipseg_queries_new (model, labels, templates, 2, &error);
  g_assert_no_error (error);
  state = clipseg_state_new (model, 2);
  for (int i = 0; i < 3 * side * side; i++)
    pixels[i] = (float) (i % 7) / 7.0f;
  g_assert_false (clipseg_state_segment (state, pixels, side, side, queries, &sp, side, side,
          probs, map, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_NOT_FINITE);
  g_assert_nonnull (strstr (error->message, "cosines"));
  g_error_free (error);
  clipseg_state_free (state);
  clipseg_queries_free (queries);
  clipseg_labels_free (labels);
  clipseg_model_unref (model);
  g_free (pixels);
  g_free (probs);
  g_free (map);
  g_free (path);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("clipseg-finite-XXXXXX", NULL);
  g_test_add_func ("/finite/find-nonfinite", test_find_nonfinite);
  g_test_add_func ("/finite/nan-weight-is-named-at-load", test_nan_weight_is_named_at_load);
  g_test_add_func ("/finite/overflowing-text-is-refused", test_overflowing_text_is_refused);
  g_test_add_func ("/finite/overflowing-vision-is-refused", test_overflowing_vision_is_refused);
  status = g_test_run ();
  if (status == 0) {
    char *argv_rm[] = { "rm", "-rf", dir, NULL };
    g_spawn_sync (NULL, argv_rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  g_free (dir);
  return status;
}
