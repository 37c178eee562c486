/* GStreamer clipseg
 * clipseg-known-classes.c: the closed vocabulary of a model that lists it.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include "clipseg-known-classes.h"

gchar **
gst_clipseg_known_classes_load (const gchar * model_path)
{
  gchar *dir, *path, *text = NULL;
  gchar **lines, **known;
  GPtrArray *names;
  guint i;

  /* a checkpoint is a directory or a file inside one */
  dir = g_file_test (model_path, G_FILE_TEST_IS_DIR) ?
      g_strdup (model_path) : g_path_get_dirname (model_path);
  path = g_build_filename (dir, "classes.txt", NULL);
  g_file_get_contents (path, &text, NULL, NULL);
  g_free (path);
  g_free (dir);
  if (!text)
    return NULL;

  lines = g_strsplit (text, "\n", -1);
  names = g_ptr_array_new ();
  for (i = 0; lines[i]; i++)
    if (*g_strstrip (lines[i]) != '\0')
      g_ptr_array_add (names, g_strdup (lines[i]));
  g_ptr_array_add (names, NULL);
  known = (gchar **) g_ptr_array_free (names, FALSE);
  g_strfreev (lines);
  g_free (text);

  if (!known[0])
    g_clear_pointer (&known, g_strfreev);
  return known;
}

gchar **
gst_clipseg_known_classes_unknown (const gchar * const *known,
    const struct clipseg_labels *labels)
{
  GPtrArray *unknown = g_ptr_array_new ();
  gint c, n;

  for (c = 0; c < clipseg_labels_n_classes (labels); c++) {
    for (n = 0; n < clipseg_labels_n_names (labels, c); n++) {
      const gchar *name = clipseg_labels_name (labels, c, n);

      if (!g_strv_contains (known, name))
        g_ptr_array_add (unknown, g_strdup (name));
    }
  }
  if (unknown->len == 0) {
    g_ptr_array_free (unknown, TRUE);
    return NULL;
  }
  g_ptr_array_add (unknown, NULL);
  return (gchar **) g_ptr_array_free (unknown, FALSE);
}
