/* test-tokenizer.c — the CLIP tokenizer against ids from OpenAI's Python
 * tokenizer, through both loaders, and every way loading can fail.
 *
 * The golden data lives in the shared folder beside the checkout
 * (clip-vocab/tokens-golden.tsv, one JSON string, a tab, the ids); tests that
 * need it skip with a message when it is absent.
 */
#include "clipseg-engine.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <zlib.h>

#define N_GOLDEN 858
#define CLIP_N_MERGES (49152 - 256 - 2)
#define START_ID 49406
#define END_ID 49407
#define MAX_IDS 512

struct golden
{
  char *text;
  int32_t ids[MAX_IDS];
  int n_ids;
};

static char *bpe_path;          /* the shared gz, NULL when absent */
static struct golden goldens[N_GOLDEN];
static int n_goldens;
static struct clipseg_tokenizer *clip;  /* loaded once from bpe_path */

/* ---- helpers ------------------------------------------------------------ */

static gboolean
have_shared_data (void)
{
  if (bpe_path)
    return TRUE;
  g_test_skip ("shared data not found at " CLIPSEG_SHARED_DIR "/clip-vocab "
      "(the folder beside the checkout); golden checks need it");
  return FALSE;
}

static void
load_goldens (void)
{
  g_autofree char *path = g_build_filename (CLIPSEG_SHARED_DIR, "clip-vocab",
      "tokens-golden.tsv", NULL);
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  GError *err = NULL;
  int i;

  g_assert_true (g_file_get_contents (path, &contents, NULL, &err));
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] && lines[i][0]; i++) {
    g_auto (GStrv) fields = g_strsplit (lines[i], "\t", 2);
    g_auto (GStrv) ids = NULL;
    struct golden *g = &goldens[n_goldens++];
    JsonNode *text;
    int k;

    g_assert_cmpint (n_goldens, <=, N_GOLDEN);
    g_assert_nonnull (fields[1]);
    text = json_from_string (fields[0], &err);
    g_assert_no_error (err);
    g->text = g_strdup (json_node_get_string (text));
    json_node_unref (text);
    ids = g_strsplit (fields[1], " ", -1);
    for (k = 0; ids[k]; k++)
      g->ids[g->n_ids++] = atoi (ids[k]);
  }
  g_assert_cmpint (n_goldens, ==, N_GOLDEN);
}

/* Encodes @text without truncation. */
static int
encode (const struct clipseg_tokenizer *tok, const char *text, int32_t *ids)
{
  gboolean truncated = TRUE;
  int n = clipseg_tokenizer_encode (tok, text, ids, MAX_IDS, &truncated);

  g_assert_false (truncated);
  return n;
}

/* Number of golden strings @tok encodes exactly as CLIP does. */
static int
count_golden_matches (const struct clipseg_tokenizer *tok)
{
  int i, n_ok = 0;

  for (i = 0; i < n_goldens; i++) {
    int32_t ids[MAX_IDS];
    int n = encode (tok, goldens[i].text, ids);

    if (n == goldens[i].n_ids && memcmp (ids, goldens[i].ids, n * sizeof *ids) == 0)
      n_ok++;
    else if (g_test_verbose ())
      g_printerr ("golden mismatch: \"%s\"\n", goldens[i].text);
  }
  return n_ok;
}

static void
assert_same_encoding (const char *a, const char *b)
{
  int32_t ids_a[MAX_IDS], ids_b[MAX_IDS];
  int n_a = encode (clip, a, ids_a), n_b = encode (clip, b, ids_b);

  if (n_a != n_b || memcmp (ids_a, ids_b, n_a * sizeof *ids_a) != 0)
    g_error ("\"%s\" and \"%s\" should encode alike", a, b);
}

static void
assert_encoding (const struct clipseg_tokenizer *tok, const char *text, const int32_t *want,
    int n_want)
{
  int32_t ids[MAX_IDS];
  int n = encode (tok, text, ids), i;

  g_assert_cmpint (n, ==, n_want);
  for (i = 0; i < n; i++)
    g_assert_cmpint (ids[i], ==, want[i]);
}

static char *
write_file (const char *dir, const char *name, const char *contents, gssize len)
{
  char *path = g_build_filename (dir, name, NULL);
  GError *err = NULL;

  g_assert_true (g_file_set_contents (path, contents, len, &err));
  return path;
}

static void
write_json (const char *path, JsonObject *object)
{
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  GError *err = NULL;

  json_node_set_object (root, object);
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, path, &err));
}

/* Removes @dir and the files in it. */
static void
remove_dir (char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (dir);
  g_free (dir);
}

static char *
make_tmp_dir (void)
{
  GError *err = NULL;
  char *dir = g_dir_make_tmp ("test-tokenizer-XXXXXX", &err);

  g_assert_no_error (err);
  return dir;
}

static gboolean
is_printable_byte (int b)
{
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

static void
set_symbol (char *symbol, gunichar c)
{
  symbol[g_unichar_to_utf8 (c, symbol)] = '\0';
}

/* GPT-2's bytes_to_unicode, written out again here so the HF files the tests
 * write do not borrow the code under test: the symbol of each byte, in
 * vocabulary order. */
static void
byte_symbols (char symbols[256][8])
{
  int b, i = 0, n_other = 0;

  for (b = 0; b < 256; b++)
    if (is_printable_byte (b))
      set_symbol (symbols[i++], b);
  for (b = 0; b < 256; b++)
    if (!is_printable_byte (b))
      set_symbol (symbols[i++], 0x100 + n_other++);
}

/* Checks *@err and that its message names @file, then clears it. */
static void
assert_load_error (GError **err, int code, const char *file)
{
  g_autofree char *base = g_path_get_basename (file);

  g_assert_error (*err, CLIPSEG_ENGINE_ERROR, code);
  g_test_message ("%s", (*err)->message);
  if (!strstr ((*err)->message, base))
    g_error ("error message \"%s\" does not name %s", (*err)->message, base);
  g_clear_error (err);
}

/* ---- golden ids ----------------------------------------------------------- */

static void
test_golden_bpe_all_match (void)
{
  if (!have_shared_data ())
    return;
  g_assert_cmpint (clipseg_tokenizer_vocab_size (clip), ==, 49408);
  g_assert_cmpint (clipseg_tokenizer_start_id (clip), ==, START_ID);
  g_assert_cmpint (clipseg_tokenizer_end_id (clip), ==, END_ID);
  g_assert_cmpint (count_golden_matches (clip), ==, N_GOLDEN);
}

/* Writes CLIP's merge list as Hugging Face's vocab.json + merges.txt. */
static void
write_hf_files (const char *vocab_path, const char *merges_path)
{
  g_autoptr (JsonObject) vocab = json_object_new ();
  g_autoptr (GString) gz_text = g_string_new (NULL);
  g_autoptr (GString) merges = g_string_new ("#version: 0.2\n");
  char symbols[256][8], buf[65536], *line;
  gzFile gz = gzopen (bpe_path, "rb");
  GError *err = NULL;
  int i, n, id = 0;

  g_assert_nonnull (gz);
  while ((n = gzread (gz, buf, sizeof buf)) > 0)
    g_string_append_len (gz_text, buf, n);
  g_assert_cmpint (n, ==, 0);
  gzclose (gz);

  byte_symbols (symbols);
  for (i = 0; i < 256; i++)
    json_object_set_int_member (vocab, symbols[i], id++);
  for (i = 0; i < 256; i++) {
    g_autofree char *s = g_strconcat (symbols[i], "</w>", NULL);

    json_object_set_int_member (vocab, s, id++);
  }
  /* the merge lines follow the header line; each is "left right" */
  line = strchr (gz_text->str, '\n') + 1;
  for (i = 0; i < CLIP_N_MERGES; i++) {
    char *end = strchr (line, '\n'), *space;
    g_autofree char *joined = NULL;

    *end = '\0';
    space = strchr (line, ' ');
    joined = g_strdup_printf ("%.*s%s", (int) (space - line), line, space + 1);
    json_object_set_int_member (vocab, joined, id++);
    g_string_append_printf (merges, "%s\n", line);
    line = end + 1;
  }
  json_object_set_int_member (vocab, "<|startoftext|>", id++);
  json_object_set_int_member (vocab, "<|endoftext|>", id++);

  write_json (vocab_path, vocab);
  g_assert_true (g_file_set_contents (merges_path, merges->str, merges->len, &err));
}

static void
test_golden_hf_same_ids_as_bpe (void)
{
  static const char *const extra[] = {
    "", "a", "A photo of a DOG!", "naïve café — 日本語 😀", "it's the dogs' ball",
    "<|startoftext|>x<|endoftext|>", "2024-01-02 12:34", "&amp;&lt;&#x41;", "ΟΔΟΣ",
  };
  char *dir;
  g_autofree char *vocab_path = NULL, *merges_path = NULL;
  struct clipseg_tokenizer *hf;
  GError *err = NULL;
  size_t i;

  if (!have_shared_data ())
    return;
  dir = make_tmp_dir ();
  vocab_path = g_build_filename (dir, "vocab.json", NULL);
  merges_path = g_build_filename (dir, "merges.txt", NULL);
  write_hf_files (vocab_path, merges_path);

  hf = clipseg_tokenizer_load_hf (vocab_path, merges_path, &err);
  g_assert_no_error (err);
  g_assert_cmpint (clipseg_tokenizer_vocab_size (hf), ==, 49408);
  g_assert_cmpint (clipseg_tokenizer_start_id (hf), ==, START_ID);
  g_assert_cmpint (clipseg_tokenizer_end_id (hf), ==, END_ID);
  g_assert_cmpint (count_golden_matches (hf), ==, N_GOLDEN);
  for (i = 0; i < G_N_ELEMENTS (extra); i++) {
    int32_t a[MAX_IDS], b[MAX_IDS];
    int n_a = encode (clip, extra[i], a), n_b = encode (hf, extra[i], b);

    g_assert_cmpint (n_a, ==, n_b);
    g_assert_cmpmem (a, n_a * sizeof *a, b, n_b * sizeof *b);
  }

  clipseg_tokenizer_free (hf);
  remove_dir (dir);
}

struct thread_result
{
  int n_ok;
};

static gpointer
encode_goldens_thread (gpointer data)
{
  struct thread_result *result = data;

  result->n_ok = count_golden_matches (clip);
  return NULL;
}

static void
test_golden_concurrent_encoding (void)
{
  GThread *threads[4];
  struct thread_result results[4];
  int i;

  if (!have_shared_data ())
    return;
  for (i = 0; i < 4; i++)
    threads[i] = g_thread_new ("encode", encode_goldens_thread, &results[i]);
  for (i = 0; i < 4; i++) {
    g_thread_join (threads[i]);
    g_assert_cmpint (results[i].n_ok, ==, N_GOLDEN);
  }
}

/* ---- a small BPE of the same layout ------------------------------------ */

static const char *const small_merges[] = { "h e", "l l", "he ll", "hell o</w>" };

/* vocab.json of a small BPE in CLIP's layout with the ids moved: the specials
 * first (0 and 1), then the byte symbols, the same with "</w>", and the merge
 * results, so ids that come out can only have come from vocab.json. */
static JsonObject *
small_vocab (void)
{
  JsonObject *vocab = json_object_new ();
  char symbols[256][8];
  int i, id = 0;

  json_object_set_int_member (vocab, "<|startoftext|>", id++);
  json_object_set_int_member (vocab, "<|endoftext|>", id++);
  byte_symbols (symbols);
  for (i = 0; i < 256; i++)
    json_object_set_int_member (vocab, symbols[i], id++);
  for (i = 0; i < 256; i++) {
    g_autofree char *s = g_strconcat (symbols[i], "</w>", NULL);

    json_object_set_int_member (vocab, s, id++);
  }
  for (i = 0; i < (int) G_N_ELEMENTS (small_merges); i++) {
    g_auto (GStrv) pair = g_strsplit (small_merges[i], " ", 2);
    g_autofree char *joined = g_strconcat (pair[0], pair[1], NULL);

    json_object_set_int_member (vocab, joined, id++);
  }
  return vocab;
}

static char *
small_merges_text (void)
{
  GString *text = g_string_new ("#version: 0.2\n");
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (small_merges); i++)
    g_string_append_printf (text, "%s\n", small_merges[i]);
  return g_string_free (text, FALSE);
}

/* Writes @vocab and @merges into @dir and loads them. */
static struct clipseg_tokenizer *
load_small (const char *dir, JsonObject *vocab, const char *merges, char **vocab_path,
    char **merges_path, GError **err)
{
  *vocab_path = g_build_filename (dir, "vocab.json", NULL);
  write_json (*vocab_path, vocab);
  *merges_path = write_file (dir, "merges.txt", merges, -1);
  return clipseg_tokenizer_load_hf (*vocab_path, *merges_path, err);
}

static void
test_small_vocab_ids_from_vocab_json (void)
{
  /* 'l' is printable byte number 'l' - '!' after the two specials */
  const int32_t l = 2 + 'l' - '!', l_end = 2 + 256 + 'l' - '!';
  const int32_t he = 514, hello_end = 517;
  const int32_t want[] = { 0, hello_end, he, l, l_end, 1 };
  g_autoptr (JsonObject) vocab = small_vocab ();
  g_autofree char *merges = small_merges_text ();
  g_autofree char *vocab_path = NULL, *merges_path = NULL;
  char *dir = make_tmp_dir ();
  struct clipseg_tokenizer *tok;
  GError *err = NULL;

  tok = load_small (dir, vocab, merges, &vocab_path, &merges_path, &err);
  g_assert_no_error (err);
  g_assert_cmpint (clipseg_tokenizer_vocab_size (tok), ==, 518);
  g_assert_cmpint (clipseg_tokenizer_start_id (tok), ==, 0);
  g_assert_cmpint (clipseg_tokenizer_end_id (tok), ==, 1);
  /* "hello" merges all the way; "hell" stops at he + l + l</w>, since the
   * rule is (l, l) and the last l carries </w> */
  assert_encoding (tok, "Hello hell", want, G_N_ELEMENTS (want));

  clipseg_tokenizer_free (tok);
  remove_dir (dir);
}

/* ---- truncation ---------------------------------------------------------- */

static void
test_truncation_keeps_end_token (void)
{
  g_autoptr (GString) text = g_string_new (NULL);
  int32_t full[MAX_IDS], ids[77];
  gboolean truncated = FALSE;
  int i, n_full, n;

  if (!have_shared_data ())
    return;
  for (i = 0; i < 100; i++)
    g_string_append_printf (text, "word%d ", i);
  n_full = encode (clip, text->str, full);
  g_assert_cmpint (n_full, >, 77);

  n = clipseg_tokenizer_encode (clip, text->str, ids, 77, &truncated);
  g_assert_cmpint (n, ==, 77);
  g_assert_true (truncated);
  g_assert_cmpmem (ids, 76 * sizeof *ids, full, 76 * sizeof *full);
  g_assert_cmpint (ids[76], ==, END_ID);
}

static void
test_truncation_exact_fit_is_not_truncated (void)
{
  g_autoptr (GString) text = g_string_new (NULL);
  int32_t ids[77];
  gboolean truncated = TRUE;
  int i;

  if (!have_shared_data ())
    return;
  /* 75 one-token words fill the 77 ids exactly */
  for (i = 0; i < 75; i++)
    g_string_append (text, "a ");
  g_assert_cmpint (clipseg_tokenizer_encode (clip, text->str, ids, 77, &truncated), ==, 77);
  g_assert_false (truncated);
  g_assert_cmpint (ids[75], ==, 320);
  g_assert_cmpint (ids[76], ==, END_ID);

  g_string_append (text, "b");
  g_assert_cmpint (clipseg_tokenizer_encode (clip, text->str, ids, 77, &truncated), ==, 77);
  g_assert_true (truncated);
  g_assert_cmpint (ids[75], ==, 320);
  g_assert_cmpint (ids[76], ==, END_ID);
}

static void
test_truncation_two_ids_is_the_frame (void)
{
  int32_t ids[2];
  gboolean truncated = FALSE;

  if (!have_shared_data ())
    return;
  g_assert_cmpint (clipseg_tokenizer_encode (clip, "dog", ids, 2, &truncated), ==, 2);
  g_assert_true (truncated);
  g_assert_cmpint (ids[0], ==, START_ID);
  g_assert_cmpint (ids[1], ==, END_ID);

  g_assert_cmpint (clipseg_tokenizer_encode (clip, "  ", ids, 2, &truncated), ==, 2);
  g_assert_false (truncated);
}

/* ---- cleaning -------------------------------------------------------------- */

static void
test_special_tokens_map_to_their_ids (void)
{
  const int32_t alone[] = { START_ID, START_ID, END_ID };
  const int32_t inside[] = { START_ID, 320, END_ID, 321, END_ID };      /* a</w>, b</w> */

  if (!have_shared_data ())
    return;
  assert_encoding (clip, "<|startoftext|>", alone, G_N_ELEMENTS (alone));
  assert_encoding (clip, "a<|endoftext|>b", inside, G_N_ELEMENTS (inside));
  /* text is lowercased before it is split */
  assert_encoding (clip, "A<|EndOfText|>B", inside, G_N_ELEMENTS (inside));
  /* a broken one is ordinary punctuation and letters */
  assert_same_encoding ("<|endoftext|", "<| endoftext |");
}

static void
test_html_entities_unescaped_like_python (void)
{
  if (!have_shared_data ())
    return;
  assert_same_encoding ("rock &amp; roll", "rock & roll");
  assert_same_encoding ("dog&#39;s", "dog's");
  assert_same_encoding ("dog&#x27;s", "dog's");
  assert_same_encoding ("&lt;b&gt;", "<b>");
  /* legacy names are accepted without ';', also as a prefix */
  assert_same_encoding ("fish &amp chips", "fish & chips");
  assert_same_encoding ("&notit", "\xc2\xacit");
  assert_same_encoding ("caf&eacute;", "caf\xc3\xa9");
  /* unescaped twice by CLIP */
  assert_same_encoding ("&amp;amp;", "&");
  assert_same_encoding ("&amp;lt;", "<");
  /* Python's rules for numeric references */
  assert_same_encoding ("&#0;", "\xef\xbf\xbd");
  assert_same_encoding ("&#x110000;", "\xef\xbf\xbd");
  assert_same_encoding ("&#150;", "\xe2\x80\x93");
  assert_same_encoding ("a&#1;b", "ab");
  /* unknown names stay */
  assert_same_encoding ("&bogus;", "& bogus ;");
}

static void
test_html_entities_ftfy_pass (void)
{
  if (!have_shared_data ())
    return;
  /* ftfy unescapes until nothing changes, then CLIP twice more */
  assert_same_encoding ("&amp;amp;amp;amp;", "&");
  /* ftfy also reads all-caps spellings of lowercase names */
  assert_same_encoding ("P&EACUTE;REZ", "P\xc3\x89REZ");
  /* ... but leaves entities alone once the text has a '<' (it may be HTML) */
  assert_same_encoding ("<b> &amp;amp;amp;", "<b> & amp ;");
  assert_same_encoding ("<b> &EACUTE;", "<b> & eacute ;");
}

static void
test_whitespace_and_case_cleaned (void)
{
  if (!have_shared_data ())
    return;
  assert_same_encoding ("  A   Photo\tOF\n\na DOG.  ", "a photo of a dog.");
  assert_same_encoding ("\xc2\xa0" "dog\xe3\x80\x80" "cat\xe2\x80\xa8", "dog cat");
  assert_same_encoding ("", "   ");
  /* Python's str.lower, whatever the locale */
  assert_same_encoding ("\xc4\xb0stanbul", "i\xcc\x87stanbul");
  assert_same_encoding ("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
  assert_same_encoding ("\xe2\x85\xab", "\xe2\x85\xbb");
}

static void
test_ftfy_fixes_applied (void)
{
  if (!have_shared_data ())
    return;
  assert_same_encoding ("dog\xe2\x80\x99s", "dog's");
  assert_same_encoding ("\xe2\x80\x9chi\xe2\x80\x9d", "\"hi\"");
  assert_same_encoding ("\xef\xac\x81sh", "fish");
  assert_same_encoding ("\xef\xbc\xa4\xef\xbc\xaf\xef\xbc\xa7\xef\xbc\x91", "dog1");
  assert_same_encoding ("cafe\xcc\x81", "caf\xc3\xa9");
  assert_same_encoding ("do\x07g", "dog");
  assert_same_encoding ("\x1b[31mred\x1b[0m", "red");
  assert_same_encoding ("\xc2\x96", "\xe2\x80\x93");
  /* invalid UTF-8 becomes U+FFFD */
  assert_same_encoding ("dog\xff", "dog\xef\xbf\xbd");
}

/* ---- load failures ---------------------------------------------------------- */

static void
test_error_bpe_missing_file (void)
{
  GError *err = NULL;

  g_assert_null (clipseg_tokenizer_load_bpe ("/nonexistent/bpe_vocab.txt.gz", &err));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_IO, "bpe_vocab.txt.gz");
}

static void
test_error_bpe_bad_gzip (void)
{
  char *dir = make_tmp_dir ();
  g_autofree char *path = write_file (dir, "vocab.txt.gz", "\x1f\x8b garbage", 10);
  GError *err = NULL;

  g_assert_null (clipseg_tokenizer_load_bpe (path, &err));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_FORMAT, path);
  remove_dir (dir);
}

static void
test_error_bpe_truncated_gzip (void)
{
  char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "vocab.txt.gz", NULL);
  g_autofree char *contents = NULL;
  gzFile gz = gzopen (path, "wb");
  GError *err = NULL;
  gsize len;
  int i;

  for (i = 0; i < 1000; i++)
    gzprintf (gz, "line %d of a merge list\n", i);
  gzclose (gz);
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (path, contents, len / 2, NULL));

  g_assert_null (clipseg_tokenizer_load_bpe (path, &err));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_FORMAT, path);
  remove_dir (dir);
}

static void
test_error_bpe_too_few_merges (void)
{
  char *dir = make_tmp_dir ();
  g_autofree char *path = write_file (dir, "short_vocab.txt", "#version: 0.2\na b\nab c\n", -1);
  GError *err = NULL;

  g_assert_null (clipseg_tokenizer_load_bpe (path, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "48894"));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_FORMAT, path);
  remove_dir (dir);
}

static void
test_error_bpe_merge_line_not_two_symbols (void)
{
  g_autoptr (GString) text = g_string_new ("#version: 0.2\n");
  char *dir = make_tmp_dir ();
  g_autofree char *path = NULL;
  GError *err = NULL;
  int i;

  for (i = 0; i < CLIP_N_MERGES; i++)
    g_string_append (text, i == 3 ? "a b c\n" : "a b\n");
  path = write_file (dir, "bad_vocab.txt", text->str, text->len);

  g_assert_null (clipseg_tokenizer_load_bpe (path, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "line 5"));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_FORMAT, path);
  remove_dir (dir);
}

/* Loads a small BPE whose vocab.json is @vocab_text (or @vocab when NULL) and
 * whose merges.txt is @merges (or the good one when NULL); expects failure
 * with @code, naming the file @bad_file ("vocab.json" or "merges.txt") and
 * @detail. */
static void
expect_hf_failure (const char *vocab_text, JsonObject *vocab, const char *merges, int code,
    const char *bad_file, const char *detail)
{
  g_autofree char *good_merges = small_merges_text ();
  g_autofree char *vocab_path = NULL, *merges_path = NULL;
  char *dir = make_tmp_dir ();
  GError *err = NULL;

  if (vocab_text) {
    vocab_path = write_file (dir, "vocab.json", vocab_text, -1);
    merges_path = write_file (dir, "merges.txt", merges ? merges : good_merges, -1);
    g_assert_null (clipseg_tokenizer_load_hf (vocab_path, merges_path, &err));
  } else {
    g_assert_null (load_small (dir, vocab, merges ? merges : good_merges, &vocab_path,
            &merges_path, &err));
  }
  g_assert_nonnull (err);
  if (detail && !strstr (err->message, detail))
    g_error ("error message \"%s\" does not mention %s", err->message, detail);
  assert_load_error (&err, code, bad_file);
  remove_dir (dir);
}

static void
test_error_hf_missing_files (void)
{
  char *dir = make_tmp_dir ();
  g_autofree char *merges_text = small_merges_text ();
  g_autofree char *merges = write_file (dir, "merges.txt", merges_text, -1);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.txt", NULL);
  g_autoptr (JsonObject) object = small_vocab ();
  GError *err = NULL;

  g_assert_null (clipseg_tokenizer_load_hf (vocab, merges, &err));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_IO, vocab);

  write_json (vocab, object);
  g_assert_null (clipseg_tokenizer_load_hf (vocab, missing, &err));
  assert_load_error (&err, CLIPSEG_ENGINE_ERROR_IO, missing);
  remove_dir (dir);
}

static void
test_error_hf_bad_json (void)
{
  g_autofree char *deep = g_strnfill (1000000, '[');

  expect_hf_failure ("{\"a\": 0,", NULL, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "JSON");
  expect_hf_failure ("{\"a\": 0 /* json-glib would take this */}", NULL, NULL,
      CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "JSON");
  /* json-glib recurses per level; this must fail, not overflow the stack */
  expect_hf_failure (deep, NULL, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "nested");
}

static void
test_error_hf_vocab_not_object (void)
{
  expect_hf_failure ("[\"a\", \"b\"]", NULL, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json",
      "object");
}

static void
test_error_hf_non_integer_id (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  json_object_set_double_member (vocab, "hell", 515.5);
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "\"hell\"");
  json_object_set_string_member (vocab, "hell", "515");
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "\"hell\"");
}

static void
test_error_hf_duplicate_id (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  json_object_set_int_member (vocab, "extra", 515);     /* the id of "ll" */
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "515");
}

static void
test_error_hf_id_out_of_range (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  json_object_set_int_member (vocab, "hell", -1);
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "\"hell\"");
  json_object_set_int_member (vocab, "hell", 100000);
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "\"hell\"");
}

static void
test_error_hf_missing_special_token (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  /* keep the ids dense: the end token's id goes to a new ordinary token */
  json_object_remove_member (vocab, "<|endoftext|>");
  json_object_set_int_member (vocab, "zz", 1);
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "<|endoftext|>");
}

static void
test_error_hf_missing_byte_symbol (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  json_object_remove_member (vocab, "q</w>");
  json_object_set_int_member (vocab, "zz", 2 + 256 + 'q' - '!');
  expect_hf_failure (NULL, vocab, NULL, CLIPSEG_ENGINE_ERROR_FORMAT, "vocab.json", "q</w>");
}

static void
test_error_hf_merge_line_not_two_symbols (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  expect_hf_failure (NULL, vocab, "#version: 0.2\nh e\nl l x\n", CLIPSEG_ENGINE_ERROR_FORMAT,
      "merges.txt", "line 3");
  expect_hf_failure (NULL, vocab, "#version: 0.2\nh e\n\nl l\n", CLIPSEG_ENGINE_ERROR_FORMAT,
      "merges.txt", "line 3");
}

static void
test_error_hf_merge_result_missing (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  expect_hf_failure (NULL, vocab, "#version: 0.2\nh e\nx y\n", CLIPSEG_ENGINE_ERROR_FORMAT,
      "merges.txt", "\"xy\"");
}

static void
test_error_hf_merge_symbol_missing (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  expect_hf_failure (NULL, vocab, "#version: 0.2\nh e\nhe xy\n", CLIPSEG_ENGINE_ERROR_FORMAT,
      "merges.txt", "\"xy\"");
}

static void
test_error_hf_merges_without_header (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  expect_hf_failure (NULL, vocab, "h e\nl l\n", CLIPSEG_ENGINE_ERROR_FORMAT, "merges.txt",
      "#version");
}

static void
test_error_hf_merges_not_utf8 (void)
{
  g_autoptr (JsonObject) vocab = small_vocab ();

  expect_hf_failure (NULL, vocab, "#version: 0.2\nh e\nl \xff\n", CLIPSEG_ENGINE_ERROR_FORMAT,
      "merges.txt", "line 3");
}

int
main (int argc, char **argv)
{
  int ret;
  int i;

  g_test_init (&argc, &argv, NULL);

  bpe_path = g_build_filename (CLIPSEG_SHARED_DIR, "clip-vocab",
      "bpe_simple_vocab_16e6.txt.gz", NULL);
  if (g_file_test (bpe_path, G_FILE_TEST_EXISTS)) {
    GError *err = NULL;

    clip = clipseg_tokenizer_load_bpe (bpe_path, &err);
    g_assert_no_error (err);
    load_goldens ();
  } else {
    g_clear_pointer (&bpe_path, g_free);
  }

  g_test_add_func ("/tokenizer/golden/bpe-loader-all-match", test_golden_bpe_all_match);
  g_test_add_func ("/tokenizer/golden/hf-loader-same-ids", test_golden_hf_same_ids_as_bpe);
  g_test_add_func ("/tokenizer/golden/concurrent-encoding", test_golden_concurrent_encoding);
  g_test_add_func ("/tokenizer/small-vocab/ids-from-vocab-json",
      test_small_vocab_ids_from_vocab_json);
  g_test_add_func ("/tokenizer/truncation/keeps-end-token", test_truncation_keeps_end_token);
  g_test_add_func ("/tokenizer/truncation/exact-fit-not-truncated",
      test_truncation_exact_fit_is_not_truncated);
  g_test_add_func ("/tokenizer/truncation/two-ids-is-the-frame",
      test_truncation_two_ids_is_the_frame);
  g_test_add_func ("/tokenizer/clean/special-tokens", test_special_tokens_map_to_their_ids);
  g_test_add_func ("/tokenizer/clean/html-entities", test_html_entities_unescaped_like_python);
  g_test_add_func ("/tokenizer/clean/html-entities-ftfy", test_html_entities_ftfy_pass);
  g_test_add_func ("/tokenizer/clean/whitespace-and-case", test_whitespace_and_case_cleaned);
  g_test_add_func ("/tokenizer/clean/ftfy-fixes", test_ftfy_fixes_applied);
  g_test_add_func ("/tokenizer/errors/bpe-missing-file", test_error_bpe_missing_file);
  g_test_add_func ("/tokenizer/errors/bpe-bad-gzip", test_error_bpe_bad_gzip);
  g_test_add_func ("/tokenizer/errors/bpe-truncated-gzip", test_error_bpe_truncated_gzip);
  g_test_add_func ("/tokenizer/errors/bpe-too-few-merges", test_error_bpe_too_few_merges);
  g_test_add_func ("/tokenizer/errors/bpe-merge-line-not-two-symbols",
      test_error_bpe_merge_line_not_two_symbols);
  g_test_add_func ("/tokenizer/errors/hf-missing-files", test_error_hf_missing_files);
  g_test_add_func ("/tokenizer/errors/hf-bad-json", test_error_hf_bad_json);
  g_test_add_func ("/tokenizer/errors/hf-vocab-not-object", test_error_hf_vocab_not_object);
  g_test_add_func ("/tokenizer/errors/hf-non-integer-id", test_error_hf_non_integer_id);
  g_test_add_func ("/tokenizer/errors/hf-duplicate-id", test_error_hf_duplicate_id);
  g_test_add_func ("/tokenizer/errors/hf-id-out-of-range", test_error_hf_id_out_of_range);
  g_test_add_func ("/tokenizer/errors/hf-missing-special-token",
      test_error_hf_missing_special_token);
  g_test_add_func ("/tokenizer/errors/hf-missing-byte-symbol", test_error_hf_missing_byte_symbol);
  g_test_add_func ("/tokenizer/errors/hf-merge-line-not-two-symbols",
      test_error_hf_merge_line_not_two_symbols);
  g_test_add_func ("/tokenizer/errors/hf-merge-result-missing", test_error_hf_merge_result_missing);
  g_test_add_func ("/tokenizer/errors/hf-merge-symbol-missing", test_error_hf_merge_symbol_missing);
  g_test_add_func ("/tokenizer/errors/hf-merges-without-header",
      test_error_hf_merges_without_header);
  g_test_add_func ("/tokenizer/errors/hf-merges-not-utf8", test_error_hf_merges_not_utf8);

  ret = g_test_run ();

  clipseg_tokenizer_free (clip);
  for (i = 0; i < n_goldens; i++)
    g_free (goldens[i].text);
  g_free (bpe_path);
  return ret;
}
