/* fuzz-labels.c — libFuzzer: arbitrary bytes to both label parsers and, as a
 * file, to the template loader.
 *
 * Each parser must return labels that keep the documented shape — at least
 * one class, every class at least one name, every name valid UTF-8 holding a
 * non-space character and free of its separators — or fail with an INVALID
 * (labels) / FORMAT (templates) CLIPSEG_ENGINE_ERROR. Templates must each be
 * valid UTF-8 containing "{}". Anything else aborts, and so do sanitizer
 * reports and leaks.

 */
#include "clipseg-engine.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *template_path;

static void
remove_dir (void)
{
  g_unlink (template_path);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  GError *err = NULL;

  dir = g_dir_make_tmp ("fuzz-labels-XXXXXX", &err);
  if (!dir)
    g_error ("fuzz-labels: %s", err->message);
  template_path = g_build_filename (dir, "templates.txt", NULL);
  atexit (remove_dir);
  return 0;
}

static gboolean
has_non_space (const char *s)
{
  for (; *s; s = g_utf8_next_char (s))
    if (!g_unichar_isspace (g_utf8_get_char (s)))
      return TRUE;
  return FALSE;
}

static void
check_labels (struct clipseg_labels *labels, GError *err, const char *class_sep,
    const char *name_sep, const char *what)
{
  int n;

  if (!labels) {
    if (!err || err->domain != CLIPSEG_ENGINE_ERROR || err->code != CLIPSEG_ENGINE_ERROR_INVALID) {
      g_printerr ("fuzz-labels: %s failed without an INVALID error\n", what);
      abort ();
    }
    return;
  }
  n = clipseg_labels_n_classes (labels);
  if (n < 1) {
    g_printerr ("fuzz-labels: %s returned no classes\n", what);
    abort ();
  }
  for (int c = 0; c < n; c++) {
    int k = clipseg_labels_n_names (labels, c);

    if (k < 1) {
      g_printerr ("fuzz-labels: %s: class %d has no names\n", what, c + 1);
      abort ();
    }
    for (int j = 0; j < k; j++) {
      const char *name = clipseg_labels_name (labels, c, j);

      if (!name || !g_utf8_validate (name, -1, NULL) || !has_non_space (name)
          || strstr (name, class_sep) || strstr (name, name_sep)) {
        g_printerr ("fuzz-labels: %s: class %d name %d is malformed\n", what, c + 1, j + 1);
        abort ();
      }
    }
  }
  clipseg_labels_free (labels);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = g_strndup ((const char *) data, size);   /* stops at a NUL, as C callers do */
  struct clipseg_labels *labels;
  GError *err = NULL;
  char **templates;

  labels = clipseg_labels_parse_list (text, &err);
  check_labels (labels, err, ",", "|", "parse_list");
  g_clear_error (&err);
  labels = clipseg_labels_parse_file_text (text, &err);
  check_labels (labels, err, "\n", ", ", "parse_file_text");
  g_clear_error (&err);
  g_free (text);

  if (!g_file_set_contents_full (template_path, (const char *) data, (gssize) size, G_FILE_SET_CONTENTS_NONE, 0644, &err))      /* no fsync per input */
    g_error ("fuzz-labels: %s", err->message);
  templates = clipseg_templates_load (template_path, &err);
  if (templates) {
    if (!templates[0])
      abort ();
    for (int i = 0; templates[i]; i++)
      if (!g_utf8_validate (templates[i], -1, NULL) || !strstr (templates[i], "{}")
          || strchr (templates[i], '\n'))
        abort ();
    g_strfreev (templates);
  } else if (!err || err->domain != CLIPSEG_ENGINE_ERROR
      || err->code != CLIPSEG_ENGINE_ERROR_FORMAT || !strstr (err->message, template_path)) {
    g_printerr ("fuzz-labels: templates: bad error: %s\n", err ? err->message : "(none)");
    abort ();
  }
  g_clear_error (&err);
  return 0;
}
