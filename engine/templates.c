/* templates.c — prompt template sets for class queries. */
#include <string.h>

#include "clipseg-engine.h"
#include "files.h"

/* The 80 prompt templates OpenAI evaluated ImageNet with (and SCLIP reuses),
 * in their published order. */
static const char *const imagenet80[] = {
  "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
  "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
  "graffiti of a {}.", "a bad photo of the {}.", "a cropped photo of the {}.", "a tattoo of a {}.",
  "the embroidered {}.", "a photo of a hard to see {}.", "a bright photo of a {}.",
  "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
  "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
  "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
  "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.",
  "a bright photo of the {}.", "a cropped photo of a {}.", "a plastic {}.",
  "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.",
  "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
  "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.",
  "a close-up photo of the {}.", "a photo of a {}.", "the origami {}.",
  "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.", "a origami {}.",
  "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
  "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.",
  "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.",
  "art of a {}.", "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.",
  "itap of the {}.", "a jpeg corrupted photo of the {}.", "a good photo of a {}.",
  "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
  "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
  "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.",
  "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.", "a toy {}.",
  "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.", "a tattoo of the {}.",
};

G_STATIC_ASSERT (G_N_ELEMENTS (imagenet80) == 80);

static const char *const single[] = { "a photo of a {}." };
static const char *const none[] = { "{}" };

static char **
copy_set (const char *const *set, gsize n)
{
  char **out = g_new0 (char *, n + 1);

  for (gsize i = 0; i < n; i++)
    out[i] = g_strdup (set[i]);
  return out;
}

static char **
load_file (const char *path, GError **error)
{
  GError *bad = NULL;
  char *text = NULL, **lines;
  GPtrArray *out;

  if (!files_read (path, FILES_MAX_LABELS_BYTES, &text, NULL, error)) {
    g_prefix_error (error, "template set '%s' is not imagenet80, single or none, and cannot be "
        "read as a file: ", path);
    return NULL;
  }
  out = g_ptr_array_new_with_free_func (g_free);
  lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    char *line = g_strchomp (lines[i]);

    if (line[0] == '\0')
      continue;
    if (!g_utf8_validate (line, -1, NULL) || !strstr (line, "{}")) {
      g_set_error (&bad, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s:%d: a template must be UTF-8 text containing '{}'", path, i + 1);
      break;
    }
    g_ptr_array_add (out, g_strdup (line));
  }
  if (!bad && out->len == 0)
    g_set_error (&bad, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: no templates in the file", path);
  g_strfreev (lines);
  g_free (text);
  if (bad) {
    g_propagate_error (error, bad);
    g_ptr_array_free (out, TRUE);
    return NULL;
  }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

char **
clipseg_templates_load (const char *spec, GError **error)
{
  g_return_val_if_fail (spec != NULL, NULL);
  if (strcmp (spec, "imagenet80") == 0)
    return copy_set (imagenet80, G_N_ELEMENTS (imagenet80));
  if (strcmp (spec, "single") == 0)
    return copy_set (single, G_N_ELEMENTS (single));
  if (strcmp (spec, "none") == 0)
    return copy_set (none, G_N_ELEMENTS (none));
  return load_file (spec, error);
}
