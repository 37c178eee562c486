/* json-file.c — strict JSON: a scan for what json-glib mishandles, then json-glib. */
#include <string.h>

#include "clipseg-engine.h"
#include "engine-log.h"
#include "files.h"
#include "json-file.h"

static gboolean
scan_fail (GError **error, const char *path, int line, const char *what)
{
  return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "line %d: not valid JSON (%s)",
      line, what);
}

static gboolean
is_digit_run (const char *s, size_t n, size_t *i)
{
  size_t start = *i;

  while (*i < n && g_ascii_isdigit (s[*i]))
    (*i)++;
  return *i > start;
}

/* true, false, null, or a number as JSON writes it (no hex, no leading '+'
 * or zeros, no bare '.', which json-glib would take). */
static gboolean
is_literal (const char *s, size_t n)
{
  size_t i = 0;

  if ((n == 4 && memcmp (s, "true", 4) == 0) || (n == 5 && memcmp (s, "false", 5) == 0)
      || (n == 4 && memcmp (s, "null", 4) == 0))
    return TRUE;
  if (i < n && s[i] == '-')
    i++;
  if (i < n && s[i] == '0')
    i++;
  else if (!is_digit_run (s, n, &i))
    return FALSE;
  if (i < n && s[i] == '.' && (++i, !is_digit_run (s, n, &i)))
    return FALSE;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (!is_digit_run (s, n, &i))
      return FALSE;
  }
  return i == n;
}

/* Outside strings only standard JSON bytes may appear, so the scan and the
 * parser agree on where strings are; nesting is bounded and nothing may
 * follow the top-level value. */
static gboolean
scan (const char *path, const char *data, gsize len, GError **error)
{
  gboolean in_string = FALSE, closed = FALSE;
  int depth = 0, line = 1;

  for (gsize i = 0; i < len; i++) {
    char c = data[i];

    line += c == '\n';
    if (in_string) {
      if (c == '\\')
        i++;                    /* the escaped byte cannot end the string */
      else if (c == '"')
        in_string = FALSE;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    if (closed)
      return scan_fail (error, path, line, "content after the top-level value");
    if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > JSON_MAX_DEPTH)
        return scan_fail (error, path, line, "nested too deeply");
    } else if (c == ']' || c == '}') {
      closed = --depth <= 0;
    } else if (c == ':' || c == ',') {
      continue;
    } else if (depth == 0) {
      return scan_fail (error, path, line, "the top level is not a JSON object");
    } else {
      gsize end = i;

      while (end < len && (g_ascii_isalnum (data[end]) || (data[end] && strchr ("+-.", data[end]))))
        end++;
      if (end == i || !is_literal (data + i, end - i))
        return scan_fail (error, path, line, "not a number, true, false or null");
      i = end - 1;
    }
  }
  return TRUE;
}

JsonObject *
json_parse_object (JsonParser * parser, const char *path, const char *data, gsize len,
    GError **error)
{
  GError *json_error = NULL;
  JsonNode *root;

  if (!scan (path, data, len, error))
    return NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) len, &json_error)) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT, "%s: not valid JSON: %s",
        path, json_error->message);
    g_error_free (json_error);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_FORMAT,
        "%s: the top level is not a JSON object", path);
    return NULL;
  }
  return json_node_get_object (root);
}

JsonObject *
json_load_object (JsonParser * parser, const char *path, GError **error)
{
  char *data = NULL;
  gsize len = 0;
  JsonObject *obj;

  if (!files_read (path, FILES_MAX_JSON_BYTES, &data, &len, error))
    return NULL;
  obj = json_parse_object (parser, path, data, len, error);
  g_free (data);
  return obj;
}
