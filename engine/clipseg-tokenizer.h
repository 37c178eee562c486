/* clipseg-tokenizer.h — CLIP's byte-level BPE tokenizer.
 *
 * Reproduces OpenAI CLIP's simple_tokenizer: text is cleaned (ftfy.fix_text,
 * HTML entities unescaped twice, whitespace runs collapsed, stripped,
 * lowercased), split with CLIP's pre-tokenising pattern, every piece is mapped
 * byte-to-unicode and merged by BPE rank with "</w>" on its last symbol, and the
 * ids are framed by the start and end tokens. The one step not reproduced is
 * ftfy's statistical mojibake repair ("Ã©" -> "é"); tokenizer.c lists exactly
 * which of ftfy's fixes are applied.
 *
 * Two vocabulary sources load to the same tokenizer:
 *   - OpenAI's merge list, bpe_simple_vocab_16e6.txt or its .gz (ids built as
 *     CLIP builds them: 256 byte symbols, the same with "</w>", one id per merge,
 *     then <|startoftext|> and <|endoftext|>);
 *   - a Hugging Face pair vocab.json + merges.txt (ids read from vocab.json, so
 *     small vocabularies of the same layout work too).
 *
 * Usage:
 *   GError *err = NULL;
 *   struct clipseg_tokenizer *tok = clipseg_tokenizer_load_bpe ("bpe_simple_vocab_16e6.txt.gz", &err);
 *   int32_t ids[77];
 *   gboolean truncated;
 *   int n = clipseg_tokenizer_encode (tok, "a photo of a dog.", ids, 77, &truncated);
 *   clipseg_tokenizer_free (tok);
 *
 * Thread safety: a loaded tokenizer is immutable; encode may be called from any
 * number of threads at once.
 */
#ifndef CLIPSEG_TOKENIZER_H
#define CLIPSEG_TOKENIZER_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

struct clipseg_tokenizer;

/* Loads OpenAI's merge list (plain text or gzip, detected by content); it must
 * have the header and at least the 48894 merge lines CLIP uses.
 * Returns NULL and sets @error (naming the file and line) on failure:
 * CLIPSEG_ENGINE_ERROR_IO when the file cannot be read, _FORMAT when it is
 * malformed. */
struct clipseg_tokenizer *clipseg_tokenizer_load_bpe (const char *path, GError **error);

/* Loads a Hugging Face vocab.json + merges.txt pair. vocab.json is one object
 * of token -> id with the ids 0 .. size-1; merges.txt starts with a "#version"
 * line, then one "left right" rule per line. The 512 byte symbols (with and
 * without "</w>"), both halves and the result of every rule and both special
 * tokens must be in vocab.json. Returns NULL and sets @error (naming the file
 * and the line or token) on failure, with the codes of _load_bpe. */
struct clipseg_tokenizer *clipseg_tokenizer_load_hf (const char *vocab_json_path,
    const char *merges_txt_path, GError **error);

void clipseg_tokenizer_free (struct clipseg_tokenizer *tok);

/* Number of ids, special tokens included. */
int clipseg_tokenizer_vocab_size (const struct clipseg_tokenizer *tok);
int32_t clipseg_tokenizer_start_id (const struct clipseg_tokenizer *tok);
int32_t clipseg_tokenizer_end_id (const struct clipseg_tokenizer *tok);

/* Encodes @text (NUL-terminated UTF-8; invalid bytes become U+FFFD first) into
 * @ids as [start, tokens…, end], no padding, and returns the number of ids
 * written. @max_ids must be at least 2. When the tokens do not fit, they are
 * cut so the sequence is exactly @max_ids long and still ends with the end
 * token. *@truncated (if not NULL) is set to whether tokens were cut. */
int clipseg_tokenizer_encode (const struct clipseg_tokenizer *tok, const char *text,
    int32_t *ids, int max_ids, gboolean *truncated);

G_END_DECLS

#endif
