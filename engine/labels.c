/* labels.c — classes and their synonyms, from SCLIP class files or inline lists. */
#include <string.h>

#include "clipseg-engine.h"
#include "files.h"

struct clipseg_labels
{
  GPtrArray *classes;           /* char ** (NULL-terminated synonyms), g_strfreev'd */
};

static struct clipseg_labels *
labels_new (void)
{
  struct clipseg_labels *labels = g_new0 (struct clipseg_labels, 1);

  labels->classes = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  return labels;
}

void
clipseg_labels_free (struct clipseg_labels *labels)
{
  if (!labels)
    return;
  g_ptr_array_free (labels->classes, TRUE);
  g_free (labels);
}

/* A name must hold something the tokenizer keeps: whitespace alone encodes to nothing. */
static gboolean
name_is_blank (const char *name)
{
  for (const char *p = name; *p; p = g_utf8_next_char (p))
    if (!g_unichar_isspace (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

/* Frees what parse() holds and says why. */
static struct clipseg_labels *
too_many_names (struct clipseg_labels *labels, char **lines, char **names, int n_names,
    GError **error)
{
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
      "labels: more than %d names (%d so far): a label set may have at most %d", CLIPSEG_MAX_NAMES,
      n_names, CLIPSEG_MAX_NAMES);
  g_strfreev (names);
  g_strfreev (lines);
  clipseg_labels_free (labels);
  return NULL;
}

static struct clipseg_labels *
parse (const char *text, const char *class_sep, const char *name_sep, gboolean trim,
    const char *what, GError **error)
{
  struct clipseg_labels *labels = labels_new ();
  char **lines;
  int n_lines, n_names = 0;

  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "labels: not valid UTF-8");
    clipseg_labels_free (labels);
    return NULL;
  }
  lines = g_strsplit (text, class_sep, -1);
  n_lines = (int) g_strv_length (lines);
  if (n_lines > CLIPSEG_MAX_NAMES + 1)
    return too_many_names (labels, lines, NULL, n_lines, error);
  /* a class file may end with a newline; it does not start another class */
  if (!trim && n_lines > 0 && lines[n_lines - 1][0] == '\0')
    n_lines--;
  for (int i = 0; i < n_lines; i++) {
    char **names = g_strsplit (lines[i], name_sep, -1);

    /* g_strsplit gives no names at all for an empty class */
    if (!names[0]) {
      g_strfreev (names);
      names = g_new0 (char *, 2);
      names[0] = g_strdup ("");
    }
    n_names += g_strv_length (names);
    if (n_names > CLIPSEG_MAX_NAMES)
      return too_many_names (labels, lines, names, n_names, error);
    for (int j = 0; names[j]; j++) {
      if (trim)
        g_strstrip (names[j]);
      if (name_is_blank (names[j])) {
        g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
            "labels: %s %d, name %d is empty", what, i + 1, j + 1);
        g_strfreev (names);
        g_strfreev (lines);
        clipseg_labels_free (labels);
        return NULL;
      }
    }
    g_ptr_array_add (labels->classes, names);
  }
  g_strfreev (lines);
  if (labels->classes->len == 0) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID, "labels: no classes");
    clipseg_labels_free (labels);
    return NULL;
  }
  return labels;
}

struct clipseg_labels *
clipseg_labels_parse_file_text (const char *text, GError **error)
{
  return parse (text, "\n", ", ", FALSE, "line", error);
}

struct clipseg_labels *
clipseg_labels_load_file (const char *path, GError **error)
{
  struct clipseg_labels *labels;
  char *text;

  g_return_val_if_fail (path != NULL, NULL);
  if (!files_read (path, FILES_MAX_LABELS_BYTES, &text, NULL, error))
    return NULL;
  labels = clipseg_labels_parse_file_text (text, error);
  if (!labels)
    g_prefix_error (error, "%s: ", path);
  g_free (text);
  return labels;
}

struct clipseg_labels *
clipseg_labels_parse_list (const char *text, GError **error)
{
  return parse (text, ",", "|", TRUE, "class", error);
}

void
clipseg_labels_prepend_class (struct clipseg_labels *labels, const char *const *names, int n_names)
{
  char **copy;

  g_return_if_fail (labels != NULL && names != NULL && n_names > 0);
  for (int i = 0; i < n_names; i++)
    g_return_if_fail (names[i] != NULL && !name_is_blank (names[i]));
  copy = g_new0 (char *, n_names + 1);
  for (int i = 0; i < n_names; i++)
    copy[i] = g_strdup (names[i]);
  g_ptr_array_insert (labels->classes, 0, copy);
}

int
clipseg_labels_n_classes (const struct clipseg_labels *labels)
{
  return (int) labels->classes->len;
}

int
clipseg_labels_n_names (const struct clipseg_labels *labels, int class_index)
{
  g_return_val_if_fail (class_index >= 0 && class_index < (int) labels->classes->len, 0);
  return (int) g_strv_length (g_ptr_array_index (labels->classes, class_index));
}

const char *
clipseg_labels_name (const struct clipseg_labels *labels, int class_index, int name_index)
{
  g_return_val_if_fail (name_index >= 0
      && name_index < clipseg_labels_n_names (labels, class_index), NULL);
  return ((char **) g_ptr_array_index (labels->classes, class_index))[name_index];
}
