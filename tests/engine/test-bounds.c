/* test-bounds.c — sizes that come from input are bounded: names and prompts
 * of a label set are capped with an error at once, a label set at the cap
 * costs nothing until encoded, and a long encoding step can be stopped. */
#include <string.h>

#include <glib.h>

#include "clipseg-engine.h"

static struct clipseg_model *model;

/* One class with @n synonyms, as a class file line. */
static char *
synonyms (int n)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i < n; i++)
    g_string_append_printf (s, "%sthing %d", i ? ", " : "", i);
  g_string_append_c (s, '\n');
  return g_string_free (s, FALSE);
}

static void
test_names_are_capped_at_once (void)
{
  char *text = synonyms (5000);
  GError *error = NULL;
  gint64 start = g_get_monotonic_time ();

  g_assert_null (clipseg_labels_parse_file_text (text, &error));
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "at most 4096"));
  g_clear_error (&error);
  for (char *p = text; *p; p++)
    if (*p == ',')
      *p = '|';
  g_assert_null (clipseg_labels_parse_list (text, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_error_free (error);
  g_free (text);
}

static char **
templates (int n)
{
  char **t = g_new0 (char *, n + 1);

  for (int i = 0; i < n; i++)
    t[i] = g_strdup_printf ("photo %d of a {}.", i);
  return t;
}

/* At the cap a deferred set is made at once (nothing tokenized yet); one
 * template more is refused. */
static void
test_prompts_are_capped (void)
{
  char *text = synonyms (CLIPSEG_MAX_NAMES);
  struct clipseg_labels *labels = clipseg_labels_parse_file_text (text, NULL);
  char **at_cap = templates (CLIPSEG_MAX_PROMPTS / CLIPSEG_MAX_NAMES);
  char **over = templates (CLIPSEG_MAX_PROMPTS / CLIPSEG_MAX_NAMES + 1);
  struct clipseg_queries *q;
  GError *error = NULL;
  gint64 start;

  g_assert_nonnull (labels);
  g_assert_false (clipseg_queries_check_size (labels, (const char *const *) over, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_null (clipseg_queries_new_deferred (model, labels, (const char *const *) over, &error));
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID);
  g_clear_error (&error);
  start = g_get_monotonic_time ();
  q = clipseg_queries_new_deferred (model, labels, (const char *const *) at_cap, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC / 2);
  g_assert_cmpint (clipseg_queries_n_pending (q), ==, CLIPSEG_MAX_PROMPTS);
  clipseg_queries_free (q);
  g_strfreev (at_cap);
  g_strfreev (over);
  clipseg_labels_free (labels);
  g_free (text);
}

static gboolean
abort_after (void *data)
{
  return g_atomic_int_dec_and_test ((gint *) data);
}

/* The first step (every name's first template) of many names stops within
 * a layer of being asked, changes nothing, and goes on later. */
#define N_STOPPED 1024
static void
test_encode_step_stops (void)
{
  char *text = synonyms (N_STOPPED);
  struct clipseg_labels *labels = clipseg_labels_parse_file_text (text, NULL);
  char **t = templates (2);
  struct clipseg_queries *q = clipseg_queries_new_deferred (model, labels,
      (const char *const *) t, NULL);
  struct clipseg_queries *whole;
  gint polls = 3;

  g_assert_cmpint (clipseg_queries_encode_step_abortable (q, 1, 2, abort_after, &polls), ==,
      2 * N_STOPPED);
  g_assert_cmpint (clipseg_queries_n_pending (q), ==, 2 * N_STOPPED);
  for (int i = 0; i < N_STOPPED * clipseg_queries_embed_dim (q); i++)
    g_assert_cmpfloat (clipseg_queries_embeddings (q)[i], ==, 0.0f);
  g_assert_cmpint (clipseg_queries_encode_step (q, 1, 2), ==, N_STOPPED);
  g_assert_cmpint (clipseg_queries_encode_step (q, N_STOPPED, 2), ==, 0);
  whole = clipseg_queries_new (model, labels, (const char *const *) t, 2, NULL);
  /* OpenBLAS may sum in another order for another batch size: equal to rounding */
  for (int i = 0; i < N_STOPPED * clipseg_queries_embed_dim (q); i++)
    g_assert_cmpfloat_with_epsilon (clipseg_queries_embeddings (q)[i],
        clipseg_queries_embeddings (whole)[i], 1e-6);
  clipseg_queries_free (whole);
  clipseg_queries_free (q);
  g_strfreev (t);
  clipseg_labels_free (labels);
  g_free (text);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  model = clipseg_model_load (WORLD_MODEL_DIR, clipseg_model_default_params (), NULL);
  g_assert_nonnull (model);
  g_test_add_func ("/bounds/names-are-capped-at-once", test_names_are_capped_at_once);
  g_test_add_func ("/bounds/prompts-are-capped", test_prompts_are_capped);
  g_test_add_func ("/bounds/encode-step-stops", test_encode_step_stops);
  status = g_test_run ();
  clipseg_model_unref (model);
  return status;
}
