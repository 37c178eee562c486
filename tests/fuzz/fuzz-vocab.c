/* fuzz-vocab.c — libFuzzer: arbitrary bytes as a Hugging Face vocab.json.
 *
 * The loader must either return a tokenizer (which then encodes a few words)
 * or fail with a CLIPSEG_ENGINE_ERROR naming the file; never crash or leak.
 * merges.txt is a fixed small file written once beside it.
 */
#include "clipseg-engine.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *vocab_path, *merges_path;

static void
remove_files (void)
{
  g_unlink (vocab_path);
  g_unlink (merges_path);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char merges[] = "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\n";
  GError *err = NULL;

  dir = g_dir_make_tmp ("fuzz-vocab-XXXXXX", &err);
  if (!dir)
    g_error ("fuzz-vocab: %s", err->message);
  vocab_path = g_build_filename (dir, "vocab.json", NULL);
  merges_path = g_build_filename (dir, "merges.txt", NULL);
  if (!g_file_set_contents (merges_path, merges, -1, &err))
    g_error ("fuzz-vocab: %s", err->message);
  atexit (remove_files);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct clipseg_tokenizer *tok;
  GError *err = NULL;

  /* no fsync: it would dominate the time per input */
  if (!g_file_set_contents_full (vocab_path, (const char *) data, size,
          G_FILE_SET_CONTENTS_NONE, 0644, &err))
    g_error ("fuzz-vocab: %s", err->message);

  tok = clipseg_tokenizer_load_hf (vocab_path, merges_path, &err);
  if (tok) {
    int32_t ids[16];

    clipseg_tokenizer_encode (tok, "hello, hell!", ids, G_N_ELEMENTS (ids), NULL);
    clipseg_tokenizer_free (tok);
  } else if (err->domain != CLIPSEG_ENGINE_ERROR || !strstr (err->message, "vocab.json")) {
    abort ();
  }
  g_clear_error (&err);
  return 0;
}
