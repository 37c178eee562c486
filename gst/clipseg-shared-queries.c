/* GStreamer clipseg
 * clipseg-shared-queries.c: text queries shared by the elements of a process.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include "clipseg-shared-queries.h"

struct _GstClipsegSharedQueries
{
  gchar *key;
  struct clipseg_queries *queries;
  guint users;
};

static GMutex lock;
static GHashTable *table;       /* key -> GstClipsegSharedQueries */

/* Names the model, every name of every class in order and the templates:
 * equal keys give equal queries. */
static gchar *
gst_clipseg_shared_queries_key (struct clipseg_model *model,
    const struct clipseg_labels *labels, gchar ** templates)
{
  GString *key = g_string_new (NULL);
  gint c, n;

  g_string_append_printf (key, "%p", (gpointer) model);
  for (c = 0; c < clipseg_labels_n_classes (labels); c++) {
    g_string_append_c (key, '\n');
    for (n = 0; n < clipseg_labels_n_names (labels, c); n++)
      g_string_append_printf (key, "%s\t", clipseg_labels_name (labels, c, n));
  }
  g_string_append_c (key, '\v');
  for (n = 0; templates[n]; n++)
    g_string_append_printf (key, "%s\n", templates[n]);

  return g_string_free (key, FALSE);
}

GstClipsegSharedQueries *
gst_clipseg_shared_queries_acquire (struct clipseg_model *model,
    const struct clipseg_labels *labels, gchar ** templates, GError ** error)
{
  gchar *key = gst_clipseg_shared_queries_key (model, labels, templates);
  GstClipsegSharedQueries *shared;

  g_mutex_lock (&lock);
  if (!table)
    table = g_hash_table_new (g_str_hash, g_str_equal);
  shared = g_hash_table_lookup (table, key);
  if (!shared) {
    struct clipseg_queries *queries = clipseg_queries_new_deferred (model,
        labels, (const gchar * const *) templates, error);

    if (!queries) {
      g_mutex_unlock (&lock);
      g_free (key);
      return NULL;
    }
    shared = g_new0 (GstClipsegSharedQueries, 1);
    shared->key = g_steal_pointer (&key);
    shared->queries = queries;
    g_hash_table_insert (table, shared->key, shared);
  }
  shared->users++;
  g_mutex_unlock (&lock);
  g_free (key);

  return shared;
}

void
gst_clipseg_shared_queries_release (GstClipsegSharedQueries * shared)
{
  g_mutex_lock (&lock);
  if (--shared->users == 0) {
    g_hash_table_remove (table, shared->key);
    clipseg_queries_free (shared->queries);
    g_free (shared->key);
    g_free (shared);
  }
  g_mutex_unlock (&lock);
}

struct clipseg_queries *
gst_clipseg_shared_queries_get (GstClipsegSharedQueries * shared)
{
  return shared->queries;
}
