/* fuzz-tokenizer.c — libFuzzer: encodes arbitrary bytes with CLIP's vocabulary.
 *
 * Every input must encode without a crash, leak or sanitizer report, and the
 * ids must keep the contract: framed by the start and end tokens, at most
 * max_ids long (exactly max_ids when truncated), each a vocabulary id. The
 * first byte picks max_ids, so truncation is fuzzed too.
 *
 * Needs the shared folder beside the checkout; without it every input is a
 * no-op and the target says so once.
 */
#include "clipseg-engine.h"

#include <stdlib.h>

#define MAX_IDS 77

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct clipseg_tokenizer *tok;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *path = CLIP_BPE_FILE;
  GError *err = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_printerr ("fuzz-tokenizer: %s is absent; skipping (every input is a no-op)\n", path);
    return 0;
  }
  tok = clipseg_tokenizer_load_bpe (path, &err);
  if (!tok)
    g_error ("fuzz-tokenizer: %s", err->message);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int32_t ids[MAX_IDS];
  gboolean truncated;
  char *text;
  int max_ids, n, i;

  if (!tok || size == 0)
    return 0;

  max_ids = 2 + data[0] % (MAX_IDS - 1);
  text = g_strndup ((const char *) data + 1, size - 1);
  n = clipseg_tokenizer_encode (tok, text, ids, max_ids, &truncated);
  g_free (text);

  if (n < 2 || n > max_ids || (truncated && n != max_ids))
    abort ();
  if (ids[0] != clipseg_tokenizer_start_id (tok) || ids[n - 1] != clipseg_tokenizer_end_id (tok))
    abort ();
  for (i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= clipseg_tokenizer_vocab_size (tok))
      abort ();
  return 0;
}
