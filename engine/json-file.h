/* json-file.h — internal: the one strict JSON reader every engine file goes through.
 *
 * json-glib parses recursively (deep nesting overflows the stack) and accepts
 * more than JSON (comments, single quotes, a second top-level value). A scan
 * before parsing refuses all of that, so a hostile file is an error, not a
 * crash or a silently different reading from other tools.
 */
#ifndef JSON_FILE_H
#define JSON_FILE_H

#include <json-glib/json-glib.h>

/* No file the engine reads nests deeper than a few levels. */
#define JSON_MAX_DEPTH 32

/* Parses @len bytes of @data (read from @path) with @parser and returns the
 * root object, owned by @parser; NULL with a FORMAT error naming @path (and the
 * line) when the text is not exactly one JSON object. */
JsonObject *json_parse_object (JsonParser *parser, const char *path, const char *data, gsize len,
    GError **error);

/* Reads @path whole and parses it as json_parse_object does; a file that is
 * unreadable, not a regular file or larger than FILES_MAX_JSON_BYTES is an IO
 * error. */
JsonObject *json_load_object (JsonParser *parser, const char *path, GError **error);

#endif
