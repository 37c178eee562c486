/* fuzz-safetensors.c — libFuzzer: arbitrary bytes as a safetensors checkpoint.
 *
 * Each input is written to open_clip_model.safetensors in a directory made
 * once per process (with the tiny OpenCLIP vocabulary beside it, when the
 * build generated one), then:
 *   1. added with the internal safetensors_add_file: it must either fail with
 *      a FORMAT/IO error naming the file, or hand out tensors whose every byte
 *      is inside the mapping (each one is read, so ASan sees any overrun) and
 *      whose byte count matches shape x dtype size;
 *   2. loaded through clipseg_model_load: a model, or a CLIPSEG_ENGINE_ERROR
 *      whose message names the file or its directory.
 * Any other outcome aborts, and so do sanitizer reports and leaks.
 */
#include "clipseg-engine.h"
#include "safetensors.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *path;

static void
remove_dir (void)
{
  const char *names[] = { "open_clip_model.safetensors", "vocab.json", "merges.txt" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *p = g_build_filename (dir, names[i], NULL);

    g_unlink (p);
    g_free (p);
  }
  g_rmdir (dir);
}

static void
copy_beside (const char *from_dir, const char *name)
{
  char *from = g_build_filename (from_dir, name, NULL), *to = g_build_filename (dir, name, NULL);
  char *contents;
  gsize len;

  if (g_file_get_contents (from, &contents, &len, NULL)) {
    if (!g_file_set_contents (to, contents, (gssize) len, NULL))
      g_error ("fuzz-safetensors: cannot write %s", to);
    g_free (contents);
  }
  g_free (from);
  g_free (to);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  GError *err = NULL;

  dir = g_dir_make_tmp ("fuzz-safetensors-XXXXXX", &err);
  if (!dir)
    g_error ("fuzz-safetensors: %s", err->message);
  path = g_build_filename (dir, "open_clip_model.safetensors", NULL);
#ifdef FUZZ_DATA_DIR
  {
    char *vocab_dir = g_build_filename (FUZZ_DATA_DIR, "openclip", NULL);

    copy_beside (vocab_dir, "vocab.json");
    copy_beside (vocab_dir, "merges.txt");
    g_free (vocab_dir);
  }
#endif
  atexit (remove_dir);
  return 0;
}

static void
check_error (GError *err, const char *what, const char *must_name)
{
  if (!err || err->domain != CLIPSEG_ENGINE_ERROR || !err->message[0]) {
    g_printerr ("fuzz-safetensors: %s failed without a clipseg error\n", what);
    abort ();
  }
  if (!strstr (err->message, must_name)) {
    g_printerr ("fuzz-safetensors: %s: the message does not name %s: %s\n", what, must_name,
        err->message);
    abort ();
  }
}

static void
check_tensors (struct safetensors *st)
{
  GPtrArray *all = safetensors_tensors (st);
  volatile guint8 sink = 0;

  for (guint i = 0; i < all->len; i++) {
    const struct st_tensor *t = g_ptr_array_index (all, i);

    if (safetensors_find (st, t->name) != t || strcmp (t->path, path) != 0
        || t->n_dims < 0 || t->n_dims > ST_MAX_DIMS
        || (uint64_t) t->n_bytes != (uint64_t) t->n_elements * st_dtype_size (t->dtype)) {
      g_printerr ("fuzz-safetensors: tensor '%s' is inconsistent\n", t->name);
      abort ();
    }
    for (size_t b = 0; b < t->n_bytes; b++)
      sink ^= t->data[b];
  }
  (void) sink;
  g_ptr_array_free (all, TRUE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct safetensors *st;
  struct clipseg_model *model;
  GError *err = NULL;

  if (!g_file_set_contents_full (path, (const char *) data, (gssize) size, G_FILE_SET_CONTENTS_NONE, 0644, &err))       /* no fsync per input */
    g_error ("fuzz-safetensors: %s", err->message);

  st = safetensors_new ();
  if (safetensors_add_file (st, path, &err))
    check_tensors (st);
  else
    check_error (err, "safetensors_add_file", path);
  g_clear_error (&err);
  safetensors_free (st);

  model = clipseg_model_load (path, clipseg_model_default_params (), &err);
  if (model) {
    const struct clipseg_model_info *info = clipseg_model_get_info (model);

    if (info->vision_width <= 0 || info->text_width <= 0 || info->patch_size <= 0)
      abort ();
    clipseg_model_unref (model);
  } else {
    check_error (err, "clipseg_model_load", dir);
  }
  g_clear_error (&err);
  return 0;
}
