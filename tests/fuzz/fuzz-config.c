/* fuzz-config.c — libFuzzer: arbitrary bytes as the config.json of an
 * otherwise valid Hugging Face CLIP directory.
 *
 * The directory (the tiny checkpoint the build generates) is copied once per
 * process; each input replaces its config.json and the directory is loaded.
 * The result must be a model whose hyperparameters are the tensors' (a config
 * can only confirm them), or a CLIPSEG_ENGINE_ERROR naming a file of the
 * directory. Anything else aborts, and so do sanitizer reports and leaks.
 */
#include "clipseg-engine.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *config_path;
static struct clipseg_model_info reference;     /* what the untouched directory loads as */

static void
remove_dir (void)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, name, NULL);

    g_unlink (p);
    g_free (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  char *base = g_build_filename (FUZZ_DATA_DIR, "hf", NULL);
  GError *err = NULL;
  GDir *d;
  const char *name;
  struct clipseg_model *model;

  dir = g_dir_make_tmp ("fuzz-config-XXXXXX", &err);
  if (!dir)
    g_error ("fuzz-config: %s", err->message);
  atexit (remove_dir);
  d = g_dir_open (base, 0, &err);
  if (!d)
    g_error ("fuzz-config: %s (build the fuzz-data target first)", err->message);
  while ((name = g_dir_read_name (d))) {
    char *from = g_build_filename (base, name, NULL), *to = g_build_filename (dir, name, NULL);
    char *contents;
    gsize len;

    if (!g_file_get_contents (from, &contents, &len, &err)
        || !g_file_set_contents (to, contents, (gssize) len, &err))
      g_error ("fuzz-config: %s", err->message);
    g_free (contents);
    g_free (from);
    g_free (to);
  }
  g_dir_close (d);
  g_free (base);
  config_path = g_build_filename (dir, "config.json", NULL);

  model = clipseg_model_load (dir, clipseg_model_default_params (), &err);
  if (!model)
    g_error ("fuzz-config: the base directory does not load: %s", err->message);
  reference = *clipseg_model_get_info (model);
  clipseg_model_unref (model);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct clipseg_model *model;
  GError *err = NULL;

  if (!g_file_set_contents_full (config_path, (const char *) data, (gssize) size, G_FILE_SET_CONTENTS_NONE, 0644, &err))        /* no fsync per input */
    g_error ("fuzz-config: %s", err->message);

  model = clipseg_model_load (dir, clipseg_model_default_params (), &err);
  if (model) {
    const struct clipseg_model_info *i = clipseg_model_get_info (model);

    /* shapes come from the tensors; the config may only agree with them */
    if (i->vision_width != reference.vision_width || i->text_width != reference.text_width
        || i->vision_layers != reference.vision_layers || i->text_layers != reference.text_layers
        || i->vision_mlp != reference.vision_mlp || i->text_mlp != reference.text_mlp
        || i->patch_size != reference.patch_size || i->image_size != reference.image_size
        || i->embed_dim != reference.embed_dim || i->vocab_size != reference.vocab_size
        || i->context_length != reference.context_length
        || i->vision_heads <= 0 || i->vision_width % i->vision_heads != 0
        || i->text_heads <= 0 || i->text_width % i->text_heads != 0
        || !(i->layer_norm_eps > 0.0f && i->layer_norm_eps < 1.0f)
        || (i->activation != CLIPSEG_ACTIVATION_QUICK_GELU
            && i->activation != CLIPSEG_ACTIVATION_GELU)) {
      g_printerr ("fuzz-config: a config changed what the tensors say\n");
      abort ();
    }
    clipseg_model_unref (model);
  } else if (!err || err->domain != CLIPSEG_ENGINE_ERROR || !strstr (err->message, dir)) {
    g_printerr ("fuzz-config: bad error: %s\n", err ? err->message : "(none)");
    abort ();
  }
  g_clear_error (&err);
  return 0;
}
