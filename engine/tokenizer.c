/* tokenizer.c — CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py), in C.
 *
 * encode() runs CLIP's steps in CLIP's order:
 *   1. clean:   ftfy.fix_text (the deterministic part, see ftfy_fix_text), html.unescape
 *               twice, strip, whitespace runs -> one space, strip, str.lower;
 *   2. split:   CLIP's pre-tokenising pattern (next_piece);
 *   3. encode:  every piece's UTF-8 bytes as byte symbols, "</w>" on the last one,
 *               merged by rank (bpe_merge); the special tokens map to their ids;
 *   4. frame:   [start] + ids + [end], cut to max_ids.
 *
 * Symbols are vocabulary ids from load time on: a word is an array of ids and a
 * merge rule is an entry (left id, right id) -> (rank, result id) in an
 * open-addressed hash table. The tokenizer is never written after loading, so
 * encoding needs no lock; its scratch memory is allocated per call.
 */
#include "clipseg-engine.h"
#include "files.h"
#include "html-entities.h"
#include "json-file.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <zlib.h>

#define START_TOKEN "<|startoftext|>"
#define END_TOKEN "<|endoftext|>"
#define END_OF_WORD "</w>"

/* CLIP's vocabulary: 256 bytes, 256 bytes + "</w>", 48894 merges, 2 specials = 49408. */
#define CLIP_N_MERGES (49152 - 256 - 2)

/* ftfy.fix_text splits text longer than this many characters (max_decode_length). */
#define FTFY_MAX_SEGMENT 1000000

struct merge
{
  uint32_t left, right;         /* the pair's symbol ids */
  int32_t rank;                 /* line order in the merge list; -1 marks an empty slot */
  int32_t result;               /* id of the joined symbol */
};

struct clipseg_tokenizer
{
  int n_vocab;
  int32_t start_id, end_id;
  int32_t byte_id[256];         /* symbol of byte b inside a word */
  int32_t byte_end_id[256];     /* symbol of byte b ending a word (b + "</w>") */
  struct merge *merges;         /* open-addressed by (left, right), merge_mask + 1 slots */
  uint32_t merge_mask;
};

/* One rule as read from a merge list, before its symbols are resolved to ids. */
struct merge_rule
{
  const char *left, *right;
  int line;                     /* 1-based, for error messages */
};

/* ------------------------------------------------------------------------ */
/* Python's character semantics                                             */

/* str.isspace (also what str.split and str.strip use). The `regex` module's \s
 * in whitespace_clean lacks U+001C..U+001F, but ftfy has removed those by then
 * and html.unescape never produces them, so one predicate serves both. */
static gboolean
is_py_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0
      || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
      || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's simple lowercase mapping. GLib maps only letters; Unicode also
 * gives case to the Roman numerals (Nl) and the circled letters (So). */
static gunichar
simple_lower (gunichar c)
{
  if (c >= 0x2160 && c <= 0x216F)
    return c + 0x10;
  if (c >= 0x24B6 && c <= 0x24CF)
    return c + 0x1A;
  return g_unichar_tolower (c);
}

/* The Cased and Case_Ignorable properties of Unicode's Final_Sigma rule: the
 * letters with case, plus the Other_Lowercase/Other_Uppercase symbols that GLib
 * has no mapping for (checked against Python over every code point). */
static gboolean
is_cased (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);

  return t == G_UNICODE_LOWERCASE_LETTER || t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_TITLECASE_LETTER || g_unichar_toupper (c) != c || c == 0xAA || c == 0xBA  /* ª º */
      || (c >= 0x2160 && c <= 0x217F)   /* Roman numerals */
      ||(c >= 0x24B6 && c <= 0x24E9)    /* circled letters */
      ||(c >= 0x1F130 && c <= 0x1F149)  /* squared capitals */
      ||(c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

static gboolean
is_case_ignorable (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return TRUE;
    default:
      /* Word_Break MidLetter, MidNumLet and Single_Quote */
      return c == '\'' || c == '.' || c == ':' || c == 0xB7 || c == 0x387 || c == 0x55F
          || c == 0x5F4 || c == 0x2018 || c == 0x2019 || c == 0x2024 || c == 0x2027
          || c == 0xFE13 || c == 0xFE52 || c == 0xFE55 || c == 0xFF07 || c == 0xFF0E || c == 0xFF1A;
  }
}

/* Capital sigma at @p lowercases to final sigma when a cased letter precedes it
 * and none follows (case-ignorable characters skipped both ways). */
static gboolean
is_final_sigma (const char *start, const char *p)
{
  const char *q;
  gunichar c = 0;

  for (q = p; q > start;) {
    q = g_utf8_prev_char (q);
    c = g_utf8_get_char (q);
    if (!is_case_ignorable (c))
      break;
  }
  if (q == p || is_case_ignorable (c) || !is_cased (c))
    return FALSE;
  for (q = g_utf8_next_char (p); *q; q = g_utf8_next_char (q)) {
    c = g_utf8_get_char (q);
    if (!is_case_ignorable (c))
      return !is_cased (c);
  }
  return TRUE;
}

/* str.lower: the simple mappings plus Python's two special cases. Not
 * g_utf8_strdown, whose results depend on the locale (Turkish dotless i). */
static char *
py_lower (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));
  const char *p;

  for (p = s; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (c == 0x130)             /* İ -> i + combining dot above */
      g_string_append (out, "i\xcc\x87");
    else if (c == 0x3A3)
      g_string_append_unichar (out, is_final_sigma (s, p) ? 0x3C2 : 0x3C3);
    else
      g_string_append_unichar (out, simple_lower (c));
  }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* html.unescape                                                            */

/* Appends what html.unescape makes of the numeric reference @code_point
 * (already clamped to 0x110000 when larger). */
static void
append_numeric_reference (GString *out, uint32_t code_point)
{
  const char *replacement = clipseg_html_numeric_replacement (code_point);

  if (replacement)
    g_string_append (out, replacement);
  else if ((code_point >= 0xD800 && code_point <= 0xDFFF) || code_point > 0x10FFFF)
    g_string_append (out, "\xef\xbf\xbd");
  else
    g_string_append_unichar (out, code_point);
}

/* Matches "#[0-9]+;?" or "#[xX][0-9a-fA-F]+;?" at @p (just after the '&'):
 * appends the replacement and returns the bytes matched, or 0. */
static size_t
unescape_numeric (const char *p, GString *out)
{
  gboolean hex = (p[1] == 'x' || p[1] == 'X') && g_ascii_isxdigit (p[2]);
  const char *q = p + (hex ? 2 : 1);
  uint32_t value = 0;

  if (!hex && !g_ascii_isdigit (*q))
    return 0;
  for (; hex ? g_ascii_isxdigit (*q) : g_ascii_isdigit (*q); q++) {
    uint32_t digit = hex ? g_ascii_xdigit_value (*q) : g_ascii_digit_value (*q);

    /* Python's int is unbounded; anything past U+10FFFF is U+FFFD anyway */
    value = MIN ((uint64_t) value * (hex ? 16 : 10) + digit, 0x110000);
  }
  if (*q == ';')
    q++;
  append_numeric_reference (out, value);
  return q - p;
}

/* Matches "[^\t\n\f <&#;]{1,32};?" at @p: appends the entity's value (or the
 * value of its longest legacy prefix, followed by the rest), else the text as
 * it was, and returns the bytes matched, or 0. */
static size_t
unescape_named (const char *p, GString *out)
{
  size_t ends[33];              /* byte offset after each character */
  const struct clipseg_html_entity *entity;
  size_t len = 0;
  int n = 0, x;

  while (n < 32 && p[len] && !strchr ("\t\n\f <&#;", p[len])) {
    len = g_utf8_next_char (p + len) - p;
    ends[++n] = len;
  }
  if (n == 0)
    return 0;
  if (p[len] == ';')
    len++;

  entity = clipseg_html_entity_lookup (p, len);
  if (entity) {
    g_string_append (out, entity->value);
    return len;
  }
  /* the longest prefix of at least 2 characters that is a name without ';' */
  for (x = n - 1; x >= 2; x--) {
    entity = clipseg_html_entity_lookup (p, ends[x]);
    if (entity) {
      g_string_append (out, entity->value);
      g_string_append_len (out, p + ends[x], len - ends[x]);
      return len;
    }
  }
  g_string_append_c (out, '&');
  g_string_append_len (out, p, len);
  return len;
}

/* Python's html.unescape. */
static char *
html_unescape (const char *s)
{
  GString *out;

  if (!strchr (s, '&'))
    return g_strdup (s);

  out = g_string_sized_new (strlen (s));
  while (*s) {
    size_t used = 0;

    if (*s == '&')
      used = s[1] == '#' ? unescape_numeric (s + 1, out) : unescape_named (s + 1, out);
    if (used)
      s += 1 + used;
    else
      g_string_append_c (out, *s++);
  }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* ftfy.fix_text, the deterministic part                                    */
/*
 * ftfy 6.x, default configuration, step by step:
 *   done  unescape_html ("auto": only while no '<' was seen, see ftfy_fix_text):
 *         "&name;" for HTML5 names ending in ';', ftfy's all-caps spellings of
 *         lowercase names ("&EACUTE;" -> "É"), and whole numeric references;
 *   NOT   fix_encoding: mojibake repair ("Ã©" -> "é", restore_byte_a0,
 *         replace_lossy_sequences, decode_inconsistent_utf8). It decides by a
 *         statistical "badness" score over character classes and tries a dozen
 *         codecs; its result is not a fixed function we could table, and it only
 *         acts on text that was already mis-decoded, which label text is not;
 *   done  fix_c1_controls: U+0080..U+009F read as Windows-1252;
 *   done  fix_latin_ligatures: the 22 Latin ligatures and digraphs ("ﬁ" -> "fi");
 *   done  fix_character_width: U+3000 -> space, U+FF01..U+FFEF -> their NFKC
 *         form (full-width ASCII, half-width katakana and hangul);
 *   done  uncurl_quotes: U+02BC, U+2018..U+201B -> ', U+201C..U+201F -> ";
 *   done  fix_line_breaks: CRLF, CR, U+2028, U+2029, U+0085 -> LF;
 *   n/a   fix_surrogates: UTF-8 cannot hold surrogates (invalid input was
 *         already replaced by U+FFFD, as ftfy does with lone surrogates);
 *   done  remove_terminal_escapes: ESC [ digits/';' letter;
 *   done  remove_control_chars: U+0000..08, 0B, 0E..1F, 7F, 206A..206F, FEFF,
 *         FFF9..FFFC;
 *   done  NFC normalisation;
 * repeated on every line until nothing changes, as fix_and_explain does.
 * Character data comes from GLib (Unicode 15), not Python's unicodedata.
 */

/* A per-character rewrite: appends the replacement of @c to @out and returns
 * TRUE, or returns FALSE to keep @c. */
typedef gboolean (*char_rewrite) (gunichar c, GString *out);

static char *
rewrite_chars (const char *s, char_rewrite rewrite)
{
  GString *out = g_string_sized_new (strlen (s));
  const char *p;

  for (p = s; *p; p = g_utf8_next_char (p))
    if (!rewrite (g_utf8_get_char (p), out))
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
  return g_string_free (out, FALSE);
}

static gboolean
rewrite_c1_control (gunichar c, GString *out)
{
  if (c < 0x80 || c > 0x9F)
    return FALSE;
  /* html's table for these references is Windows-1252 with the five undefined
   * bytes kept as themselves: exactly ftfy's sloppy-windows-1252 */
  g_string_append (out, clipseg_html_numeric_replacement (c));
  return TRUE;
}

static gboolean
rewrite_latin_ligature (gunichar c, GString *out)
{
  static const struct
  {
    gunichar c;
    const char *letters;
  } ligatures[] = {
    {0x132, "IJ"}, {0x133, "ij"}, {0x149, "\xca\xbcn"},
    {0x1C4, "D\xc5\xbd"}, {0x1C5, "D\xc5\xbe"}, {0x1C6, "d\xc5\xbe"},
    {0x1C7, "LJ"}, {0x1C8, "Lj"}, {0x1C9, "lj"},
    {0x1CA, "NJ"}, {0x1CB, "Nj"}, {0x1CC, "nj"},
    {0x1F1, "DZ"}, {0x1F2, "Dz"}, {0x1F3, "dz"},
    {0xFB00, "ff"}, {0xFB01, "fi"}, {0xFB02, "fl"}, {0xFB03, "ffi"},
    {0xFB04, "ffl"}, {0xFB05, "\xc5\xbft"}, {0xFB06, "st"},
  };
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (ligatures); i++) {
    if (ligatures[i].c == c) {
      g_string_append (out, ligatures[i].letters);
      return TRUE;
    }
  }
  return FALSE;
}

static gboolean
rewrite_character_width (gunichar c, GString *out)
{
  char utf8[6];
  char *normal;
  int len;

  if (c == 0x3000) {
    g_string_append_c (out, ' ');
    return TRUE;
  }
  if (c < 0xFF01 || c > 0xFFEF)
    return FALSE;
  len = g_unichar_to_utf8 (c, utf8);
  normal = g_utf8_normalize (utf8, len, G_NORMALIZE_NFKC);
  g_string_append (out, normal);
  g_free (normal);
  return TRUE;
}

static gboolean
rewrite_curly_quote (gunichar c, GString *out)
{
  if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))
    g_string_append_c (out, '\'');
  else if (c >= 0x201C && c <= 0x201F)
    g_string_append_c (out, '"');
  else
    return FALSE;
  return TRUE;
}

static gboolean
rewrite_control_char (gunichar c, GString *out)
{
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F
      || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static char *
fix_line_breaks (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));
  const char *p;

  for (p = s; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (c == '\r' && p[1] == '\n')
      continue;                 /* the '\n' comes next */
    if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
      g_string_append_c (out, '\n');
    else
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
  }
  return g_string_free (out, FALSE);
}

/* Removes "\033\[((?:\d|;)*)([a-zA-Z])"; \d is any Unicode decimal digit. */
static char *
remove_terminal_escapes (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));

  while (*s) {
    if (s[0] == '\033' && s[1] == '[') {
      const char *q = s + 2;

      while (*q == ';' || g_unichar_isdigit (g_utf8_get_char (q)))
        q = g_utf8_next_char (q);
      if (g_ascii_isalpha (*q)) {
        s = q + 1;
        continue;
      }
    }
    g_string_append_c (out, *s++);
  }
  return g_string_free (out, FALSE);
}

/* Length of the match of ftfy's "&#?[0-9A-Za-z]{1,24};" at @p, or 0. */
static size_t
ftfy_entity_length (const char *p)
{
  size_t start = p[1] == '#' ? 2 : 1, n = 0;

  while (n < 24 && g_ascii_isalnum (p[start + n]))
    n++;
  return n > 0 && p[start + n] == ';' ? start + n + 1 : 0;
}

/* ftfy's unescape_html: what @entity (the whole "&…;" match, @len bytes)
 * becomes, appended to @out. */
static void
ftfy_unescape_entity (const char *entity, size_t len, GString *out)
{
  const struct clipseg_html_entity *known;
  char *lower;
  size_t i;

  if (entity[1] == '#') {
    /* a numeric reference counts only if html.unescape consumes the ';' too */
    char *text = g_strndup (entity, len);
    char *value = html_unescape (text);

    g_string_append (out, strchr (value, ';') ? text : value);
    g_free (value);
    g_free (text);
    return;
  }

  known = clipseg_html_entity_lookup (entity + 1, len - 1);
  if (known) {
    g_string_append (out, known->value);
    return;
  }
  /* "&NTILDE;": an all-caps spelling of a lowercase name */
  for (i = 1; i < len; i++) {
    if (g_ascii_islower (entity[i])) {
      g_string_append_len (out, entity, len);
      return;
    }
  }
  lower = g_ascii_strdown (entity + 1, len - 1);
  known = clipseg_html_entity_lookup (lower, len - 1);
  g_free (lower);
  if (known && known->ftfy_upper)
    g_string_append (out, known->ftfy_upper);
  else
    g_string_append_len (out, entity, len);
}

static char *
ftfy_unescape_html (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));

  while (*s) {
    size_t len = *s == '&' ? ftfy_entity_length (s) : 0;

    if (len) {
      ftfy_unescape_entity (s, len, out);
      s += len;
    } else {
      g_string_append_c (out, *s++);
    }
  }
  return g_string_free (out, FALSE);
}

/* Replaces *@text by @fixed(*@text). */
static void
apply_step (char **text, char *fixed)
{
  g_free (*text);
  *text = fixed;
}

/* ftfy's fix_and_explain on one line: every step in ftfy's order, until the
 * text stops changing. */
static char *
ftfy_fix_segment (const char *segment, gboolean unescape_html)
{
  char *text = g_strdup (segment);

  for (;;) {
    char *before = g_strdup (text);
    gboolean changed;

    if (unescape_html)
      apply_step (&text, ftfy_unescape_html (text));
    apply_step (&text, rewrite_chars (text, rewrite_c1_control));
    apply_step (&text, rewrite_chars (text, rewrite_latin_ligature));
    apply_step (&text, rewrite_chars (text, rewrite_character_width));
    apply_step (&text, rewrite_chars (text, rewrite_curly_quote));
    apply_step (&text, fix_line_breaks (text));
    apply_step (&text, remove_terminal_escapes (text));
    apply_step (&text, rewrite_chars (text, rewrite_control_char));
    apply_step (&text, g_utf8_normalize (text, -1, G_NORMALIZE_NFC));

    changed = strcmp (text, before) != 0;
    g_free (before);
    if (!changed)
      return text;
  }
}

/* ftfy.fix_text on valid UTF-8: line by line (each line keeps its '\n'); once a
 * line contains '<' the text may be HTML, and from then on entities are left
 * alone, as ftfy's "auto" setting does. */
static char *
ftfy_fix_text (const char *text)
{
  GString *out = g_string_sized_new (strlen (text));
  gboolean unescape_html = TRUE;
  const char *p = text;

  while (*p) {
    const char *end = strchr (p, '\n');
    char *segment, *fixed;
    long n_chars;

    end = end ? end + 1 : p + strlen (p);
    n_chars = g_utf8_strlen (p, end - p);
    if (n_chars > FTFY_MAX_SEGMENT)
      end = g_utf8_offset_to_pointer (p, FTFY_MAX_SEGMENT);

    segment = g_strndup (p, end - p);
    if (strchr (segment, '<'))
      unescape_html = FALSE;
    fixed = ftfy_fix_segment (segment, unescape_html);
    g_string_append (out, fixed);
    g_free (fixed);
    g_free (segment);
    p = end;
  }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Cleaning and pre-tokenising                                              */

/* whitespace_clean (strip, whitespace runs -> one space, strip). */
static char *
collapse_whitespace (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));
  gboolean pending_space = FALSE;
  const char *p;

  for (p = s; *p; p = g_utf8_next_char (p)) {
    if (is_py_space (g_utf8_get_char (p))) {
      pending_space = out->len > 0;
      continue;
    }
    if (pending_space)
      g_string_append_c (out, ' ');
    pending_space = FALSE;
    g_string_append_len (out, p, g_utf8_next_char (p) - p);
  }
  return g_string_free (out, FALSE);
}

/* whitespace_clean (basic_clean (text)).lower () */
static char *
clean_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  g_autofree char *fixed = ftfy_fix_text (valid);
  g_autofree char *once = html_unescape (fixed);
  g_autofree char *twice = html_unescape (once);
  g_autofree char *collapsed = collapse_whitespace (twice);

  return py_lower (collapsed);
}

enum char_class
{ CHAR_SKIPPED, CHAR_LETTER, CHAR_NUMBER, CHAR_OTHER };

/* Which of the pattern's classes [\p{L}], [\p{N}], [^\s\p{L}\p{N}] takes @c.
 * Under IGNORECASE the `regex` module matches U+0345 (a mark whose uppercase is
 * the letter Ι) with none of them, so CLIP drops it like a space. */
static enum char_class
char_class (gunichar c)
{
  if (is_py_space (c) || c == 0x345)
    return CHAR_SKIPPED;
  switch (g_unichar_type (c)) {
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_UPPERCASE_LETTER:
      return CHAR_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return CHAR_NUMBER;
    default:
      return CHAR_OTHER;
  }
}

/* Length of @literal's case-insensitive match at @p, or 0. The literals are
 * ASCII; under IGNORECASE the `regex` module also equates 's' with 'ſ'. */
static size_t
match_literal (const char *p, const char *literal)
{
  const char *q = p;

  for (; *literal; literal++) {
    gunichar c = g_utf8_get_char (q);

    if (c != (gunichar) * literal && !(c < 0x80 && g_ascii_tolower (c) == *literal)
        && !(c == 0x17F && *literal == 's'))
      return 0;
    q = g_utf8_next_char (q);
  }
  return q - p;
}

/* Finds the next match of CLIP's pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * at or after @p. Returns its start and sets *@len, or returns NULL at the end. */
static const char *
next_piece (const char *p, size_t *len)
{
  static const char *const literals[] = {
    START_TOKEN, END_TOKEN, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  };

  for (; *p; p = g_utf8_next_char (p)) {
    enum char_class class;
    const char *q;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS (literals); i++) {
      *len = match_literal (p, literals[i]);
      if (*len)
        return p;
    }

    class = char_class (g_utf8_get_char (p));
    if (class == CHAR_SKIPPED)
      continue;
    q = g_utf8_next_char (p);
    if (class != CHAR_NUMBER)   /* letters and others come in runs */
      while (*q && char_class (g_utf8_get_char (q)) == class)
        q = g_utf8_next_char (q);
    *len = q - p;
    return p;
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Merge table and BPE                                                      */

static uint32_t
merge_slot (uint32_t left, uint32_t right, uint32_t mask)
{
  uint64_t key = (uint64_t) left << 32 | right;

  return (uint32_t) ((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static const struct merge *
merge_find (const struct clipseg_tokenizer *tok, uint32_t left, uint32_t right)
{
  uint32_t i;

  for (i = merge_slot (left, right, tok->merge_mask);; i = (i + 1) & tok->merge_mask) {
    const struct merge *m = &tok->merges[i];

    if (m->rank < 0)
      return NULL;
    if (m->left == left && m->right == right)
      return m;
  }
}

/* Adds a rule; a pair seen again takes the later rank, as CLIP's dict does. */
static void
merge_insert (struct clipseg_tokenizer *tok, uint32_t left, uint32_t right, int32_t rank,
    int32_t result)
{
  uint32_t i = merge_slot (left, right, tok->merge_mask);

  while (tok->merges[i].rank >= 0
      && !(tok->merges[i].left == left && tok->merges[i].right == right))
    i = (i + 1) & tok->merge_mask;
  tok->merges[i] = (struct merge) { left, right, rank, result };
}

/* CLIP's bpe(): merges the lowest-ranked adjacent pair, every occurrence left
 * to right, until no adjacent pair is a rule. Works in place on @word (@n
 * symbol ids) and returns the new length. */
static int
bpe_merge (const struct clipseg_tokenizer *tok, int32_t *word, int n)
{
  while (n > 1) {
    const struct merge *best = NULL;
    int i, j;

    for (i = 0; i + 1 < n; i++) {
      const struct merge *m = merge_find (tok, word[i], word[i + 1]);

      if (m && (!best || m->rank < best->rank))
        best = m;
    }
    if (!best)
      break;

    for (i = 0, j = 0; i < n; j++) {
      if (i + 1 < n && word[i] == (int32_t) best->left && word[i + 1] == (int32_t) best->right) {
        word[j] = best->result;
        i += 2;
      } else {
        word[j] = word[i++];
      }
    }
    n = j;
  }
  return n;
}

/* The symbols of one piece: its bytes, "</w>" on the last, merged. */
static int
encode_piece (const struct clipseg_tokenizer *tok, const char *piece, size_t len, int32_t *word)
{
  size_t i;

  /* CLIP's cache maps the special tokens to themselves, never through BPE */
  if (len == strlen (START_TOKEN) && memcmp (piece, START_TOKEN, len) == 0) {
    word[0] = tok->start_id;
    return 1;
  }
  if (len == strlen (END_TOKEN) && memcmp (piece, END_TOKEN, len) == 0) {
    word[0] = tok->end_id;
    return 1;
  }

  for (i = 0; i + 1 < len; i++)
    word[i] = tok->byte_id[(guint8) piece[i]];
  word[len - 1] = tok->byte_end_id[(guint8) piece[len - 1]];
  return bpe_merge (tok, word, (int) len);
}

int
clipseg_tokenizer_encode (const struct clipseg_tokenizer *tok, const char *text,
    int32_t *ids, int max_ids, gboolean *truncated)
{
  g_autofree char *clean = NULL;
  g_autofree int32_t *word = NULL;
  const char *piece;
  size_t len;
  gboolean cut = FALSE;
  int n = 0;

  g_return_val_if_fail (tok != NULL && text != NULL && ids != NULL, 0);
  g_return_val_if_fail (max_ids >= 2, 0);

  clean = clean_text (text);
  word = g_new (int32_t, strlen (clean) + 1);

  ids[n++] = tok->start_id;
  for (piece = next_piece (clean, &len); piece && !cut; piece = next_piece (piece + len, &len)) {
    int n_word = encode_piece (tok, piece, len, word), i;

    for (i = 0; i < n_word && !cut; i++) {
      if (n < max_ids - 1)
        ids[n++] = word[i];
      else
        cut = TRUE;
    }
  }
  ids[n++] = tok->end_id;

  if (truncated)
    *truncated = cut;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Building from a vocabulary and merge rules                               */


/* Bytes GPT-2's bytes_to_unicode keeps as their own character. */
static gboolean
is_printable_byte (int b)
{
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

/* GPT-2's bytes_to_unicode: @chars[b] is the character byte b is written as;
 * @order lists the bytes in vocabulary order (the printable ones as
 * themselves, then the other 68 as U+0100 onwards, both in byte order). */
static void
bytes_to_unicode (gunichar chars[256], guint8 order[256])
{
  int b, i = 0, n_other = 0;

  for (b = 0; b < 256; b++) {
    if (is_printable_byte (b)) {
      chars[b] = b;
      order[i++] = b;
    }
  }
  for (b = 0; b < 256; b++) {
    if (!is_printable_byte (b)) {
      chars[b] = 0x100 + n_other++;
      order[i++] = b;
    }
  }
}

/* The text of a byte's symbol: its character, then @suffix. */
static char *
byte_symbol (gunichar c, const char *suffix)
{
  char utf8[7];

  utf8[g_unichar_to_utf8 (c, utf8)] = '\0';
  return g_strconcat (utf8, suffix, NULL);
}

/* Symbol text -> id, like CLIP's encoder dict: a text listed twice keeps the
 * later id. Owns its keys. */
static GHashTable *
vocab_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
vocab_add (GHashTable *vocab, char *symbol, int32_t id)
{
  g_hash_table_insert (vocab, symbol, GINT_TO_POINTER (id));
}

static gboolean
vocab_find (GHashTable *vocab, const char *symbol, int32_t *id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (vocab, symbol, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

/* vocab_find, or a FORMAT error naming @file when the symbol is missing. */
static gboolean
vocab_require (GHashTable *vocab, const char *symbol, int32_t *id, const char *file, GError **error)
{
  if (vocab_find (vocab, symbol, id))
    return TRUE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
      "%s: the vocabulary has no token \"%s\"", file, symbol);
  return FALSE;
}

/* Resolves the byte symbols, the special tokens and every merge rule against
 * @vocab. @vocab_file and @merges_file name the sources in error messages. */
static struct clipseg_tokenizer *
tokenizer_new (GHashTable *vocab, int n_vocab, const struct merge_rule *rules, guint n_rules,
    const char *vocab_file, const char *merges_file, GError **error)
{
  struct clipseg_tokenizer *tok = g_new0 (struct clipseg_tokenizer, 1);
  GString *joined = g_string_new (NULL);
  gunichar chars[256];
  guint8 order[256];
  size_t n_slots = 2, i;
  int b;

  tok->n_vocab = n_vocab;
  bytes_to_unicode (chars, order);
  for (b = 0; b < 256; b++) {
    g_autofree char *inner = byte_symbol (chars[b], "");
    g_autofree char *final = byte_symbol (chars[b], END_OF_WORD);

    if (!vocab_require (vocab, inner, &tok->byte_id[b], vocab_file, error)
        || !vocab_require (vocab, final, &tok->byte_end_id[b], vocab_file, error))
      goto fail;
  }
  if (!vocab_require (vocab, START_TOKEN, &tok->start_id, vocab_file, error)
      || !vocab_require (vocab, END_TOKEN, &tok->end_id, vocab_file, error))
    goto fail;

  /* at most half full, so every probe sequence reaches an empty slot */
  while (n_slots < 2 * (size_t) n_rules)
    n_slots *= 2;
  tok->merge_mask = n_slots - 1;
  tok->merges = g_new (struct merge, n_slots);
  for (i = 0; i < n_slots; i++)
    tok->merges[i].rank = -1;

  for (i = 0; i < n_rules; i++) {
    const struct merge_rule *rule = &rules[i];
    int32_t left, right, result;

    if (!vocab_find (vocab, rule->left, &left) || !vocab_find (vocab, rule->right, &right)) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: line %d: the symbol \"%s\" is not in %s", merges_file, rule->line,
          vocab_find (vocab, rule->left, &left) ? rule->right : rule->left, vocab_file);
      goto fail;
    }
    g_string_assign (joined, rule->left);
    g_string_append (joined, rule->right);
    if (!vocab_find (vocab, joined->str, &result)) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: line %d: the merge result \"%s\" is not in %s", merges_file, rule->line,
          joined->str, vocab_file);
      goto fail;
    }
    merge_insert (tok, left, right, i, result);
  }
  g_string_free (joined, TRUE);
  return tok;

fail:
  g_string_free (joined, TRUE);
  clipseg_tokenizer_free (tok);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading the files                                                        */

/* Inflates gzip data, every member in turn as Python's gzip module does, into
 * a NUL-terminated buffer. */
static gboolean
gunzip (const char *path, const char *in, gsize in_len, char **out, gsize *out_len, GError **error)
{
  z_stream zs = { 0 };
  GByteArray *buf;
  const char *problem;
  int ret;

  if (in_len > G_MAXUINT) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: gzip file too large", path);
    return FALSE;
  }
  if (inflateInit2 (&zs, 16 + MAX_WBITS) != Z_OK) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_IO,
        "%s: cannot start zlib", path);
    return FALSE;
  }

  zs.next_in = (Bytef *) in;
  zs.avail_in = in_len;
  buf = g_byte_array_new ();
  do {
    guint8 chunk[65536];

    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    ret = inflate (&zs, Z_NO_FLUSH);
    g_byte_array_append (buf, chunk, sizeof chunk - zs.avail_out);
    if (ret == Z_STREAM_END && zs.avail_in > 0)
      ret = inflateReset (&zs);
  } while (ret == Z_OK && buf->len <= FILES_MAX_VOCAB_BYTES);
  /* a gzip bomb stops at the limit of the text it stands for */
  problem =
      buf->len >
      FILES_MAX_VOCAB_BYTES ? "inflates to more than the 64 MiB a vocabulary may have" : zs.msg ?
      zs.msg : "unexpected end of data";
  if (buf->len > FILES_MAX_VOCAB_BYTES)
    ret = Z_DATA_ERROR;
  inflateEnd (&zs);

  if (ret != Z_STREAM_END) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: not a valid gzip file: %s", path, problem);
    g_byte_array_free (buf, TRUE);
    return FALSE;
  }
  *out_len = buf->len;
  g_byte_array_append (buf, (const guint8 *) "", 1);
  *out = (char *) g_byte_array_free (buf, FALSE);
  return TRUE;
}

/* Checks that @text (@len bytes, NUL-terminated) is UTF-8 and splits it in
 * place at '\n' into lines, which point into @text. */
static GPtrArray *
split_lines (const char *path, char *text, gsize len, GError **error)
{
  GPtrArray *lines;
  const char *bad;
  char *p;

  if (!g_utf8_validate_len (text, len, &bad)) {
    int line = 1;

    for (p = text; p < bad; p++)
      line += *p == '\n';
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: line %d is not valid UTF-8", path, line);
    return NULL;
  }

  lines = g_ptr_array_new ();
  g_ptr_array_add (lines, text);
  for (p = text; p < text + len; p++) {
    if (*p == '\n') {
      *p = '\0';
      g_ptr_array_add (lines, p + 1);
    }
  }
  return lines;
}

/* Splits a merge line in place at whitespace, as str.split() does, into the
 * rule's two symbols; FALSE unless there are exactly two. */
static gboolean
parse_merge_line (char *line, struct merge_rule *rule)
{
  char *fields[2];
  char *p = line;
  int n = 0;

  for (;;) {
    while (*p && is_py_space (g_utf8_get_char (p)))
      p = g_utf8_next_char (p);
    if (!*p)
      break;
    if (n == 2)
      return FALSE;
    fields[n++] = p;
    while (*p && !is_py_space (g_utf8_get_char (p)))
      p = g_utf8_next_char (p);
    if (*p) {
      char *end = p;

      p = g_utf8_next_char (p);
      *end = '\0';
    }
  }
  if (n != 2)
    return FALSE;
  rule->left = fields[0];
  rule->right = fields[1];
  return TRUE;
}

static gboolean
is_blank (const char *line)
{
  for (; *line; line = g_utf8_next_char (line))
    if (!is_py_space (g_utf8_get_char (line)))
      return FALSE;
  return TRUE;
}

/* Parses lines [@first, @first + @n) of @lines into @rules. */
static gboolean
parse_merge_rules (const char *path, GPtrArray *lines, guint first, guint n,
    struct merge_rule *rules, GError **error)
{
  guint i;

  for (i = 0; i < n; i++) {
    rules[i].line = first + i + 1;
    if (!parse_merge_line (g_ptr_array_index (lines, first + i), &rules[i])) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: line %d: expected two symbols separated by a space", path, rules[i].line);
      return FALSE;
    }
  }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* OpenAI's merge list                                                      */

/* CLIP's vocabulary, ids in list order: the byte symbols, the same with
 * "</w>", one joined pair per rule, then the two special tokens. */
static GHashTable *
clip_vocab (const struct merge_rule *rules, guint n_rules, int *n_vocab)
{
  GHashTable *vocab = vocab_new ();
  gunichar chars[256];
  guint8 order[256];
  int32_t id = 0;
  guint i;

  bytes_to_unicode (chars, order);
  for (i = 0; i < 256; i++)
    vocab_add (vocab, byte_symbol (chars[order[i]], ""), id++);
  for (i = 0; i < 256; i++)
    vocab_add (vocab, byte_symbol (chars[order[i]], END_OF_WORD), id++);
  for (i = 0; i < n_rules; i++)
    vocab_add (vocab, g_strconcat (rules[i].left, rules[i].right, NULL), id++);
  vocab_add (vocab, g_strdup (START_TOKEN), id++);
  vocab_add (vocab, g_strdup (END_TOKEN), id++);
  *n_vocab = id;
  return vocab;
}

struct clipseg_tokenizer *
clipseg_tokenizer_load_bpe (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  g_autofree struct merge_rule *rules = NULL;
  g_autoptr (GPtrArray) lines = NULL;
  g_autoptr (GHashTable) vocab = NULL;
  gsize len;
  int n_vocab;

  g_return_val_if_fail (path != NULL, NULL);

  if (!files_read (path, FILES_MAX_VOCAB_BYTES, &data, &len, error))
    return NULL;
  if (len >= 2 && (guint8) data[0] == 0x1F && (guint8) data[1] == 0x8B) {
    g_autofree char *compressed = g_steal_pointer (&data);

    if (!gunzip (path, compressed, len, &data, &len, error))
      return NULL;
  }

  lines = split_lines (path, data, len, error);
  if (!lines)
    return NULL;
  /* line 1 is the header; CLIP takes the next 49152 - 256 - 2 lines */
  if (lines->len < 1 + CLIP_N_MERGES) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: %u merge lines after the header; CLIP needs %d", path, lines->len - 1, CLIP_N_MERGES);
    return NULL;
  }
  rules = g_new (struct merge_rule, CLIP_N_MERGES);
  if (!parse_merge_rules (path, lines, 1, CLIP_N_MERGES, rules, error))
    return NULL;

  vocab = clip_vocab (rules, CLIP_N_MERGES, &n_vocab);
  return tokenizer_new (vocab, n_vocab, rules, CLIP_N_MERGES, path, path, error);
}

/* ------------------------------------------------------------------------ */
/* Hugging Face vocab.json + merges.txt                                     */

/* vocab.json: an object of token -> id, the ids exactly 0 .. size - 1. */
static GHashTable *
load_vocab_json (const char *path, int *n_vocab, GError **error)
{
  g_autofree char *data = NULL;
  g_autofree const char **by_id = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GList) names = NULL;
  g_autoptr (GHashTable) vocab = NULL;
  JsonObject *object;
  GList *l;
  gsize len;
  guint n;

  if (!files_read (path, FILES_MAX_VOCAB_BYTES, &data, &len, error)
      || !(object = json_parse_object (parser, path, data, len, error)))
    return NULL;

  n = json_object_get_size (object);
  by_id = g_new0 (const char *, n);
  vocab = vocab_new ();
  names = json_object_get_members (object);
  for (l = names; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (object, name);
    gint64 id;

    if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: the id of \"%s\" is not an integer", path, name);
      return NULL;
    }
    id = json_node_get_int (node);
    if (id < 0 || id >= n) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: the id %" G_GINT64_FORMAT " of \"%s\" is outside 0..%u", path, id, name, n - 1);
      return NULL;
    }
    if (by_id[id]) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
          "%s: \"%s\" and \"%s\" have the same id %" G_GINT64_FORMAT, path, by_id[id], name, id);
      return NULL;
    }
    by_id[id] = name;
    vocab_add (vocab, g_strdup (name), id);
  }
  *n_vocab = n;
  return g_steal_pointer (&vocab);
}

struct clipseg_tokenizer *
clipseg_tokenizer_load_hf (const char *vocab_json_path, const char *merges_txt_path, GError **error)
{
  g_autoptr (GHashTable) vocab = NULL;
  g_autofree char *data = NULL;
  g_autofree struct merge_rule *rules = NULL;
  g_autoptr (GPtrArray) lines = NULL;
  guint n_lines;
  gsize len;
  int n_vocab;

  g_return_val_if_fail (vocab_json_path != NULL && merges_txt_path != NULL, NULL);

  vocab = load_vocab_json (vocab_json_path, &n_vocab, error);
  if (!vocab)
    return NULL;

  if (!files_read (merges_txt_path, FILES_MAX_VOCAB_BYTES, &data, &len, error))
    return NULL;
  lines = split_lines (merges_txt_path, data, len, error);
  if (!lines)
    return NULL;
  if (!g_str_has_prefix (g_ptr_array_index (lines, 0), "#version")) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: line 1: expected the \"#version\" header", merges_txt_path);
    return NULL;
  }
  /* trailing blank lines end the file, as the .strip() in transformers does */
  n_lines = lines->len;
  while (n_lines > 1 && is_blank (g_ptr_array_index (lines, n_lines - 1)))
    n_lines--;

  rules = g_new (struct merge_rule, n_lines - 1);
  if (!parse_merge_rules (merges_txt_path, lines, 1, n_lines - 1, rules, error))
    return NULL;
  return tokenizer_new (vocab, n_vocab, rules, n_lines - 1, vocab_json_path, merges_txt_path,
      error);
}

/* ------------------------------------------------------------------------ */

void
clipseg_tokenizer_free (struct clipseg_tokenizer *tok)
{
  if (!tok)
    return;
  g_free (tok->merges);
  g_free (tok);
}

int
clipseg_tokenizer_vocab_size (const struct clipseg_tokenizer *tok)
{
  return tok->n_vocab;
}

int32_t
clipseg_tokenizer_start_id (const struct clipseg_tokenizer *tok)
{
  return tok->start_id;
}

int32_t
clipseg_tokenizer_end_id (const struct clipseg_tokenizer *tok)
{
  return tok->end_id;
}
