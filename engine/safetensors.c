/* safetensors.c — maps safetensors files and checks every structural rule. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clipseg-engine.h"
#include "engine-log.h"
#include "files.h"
#include "json-file.h"
#include "safetensors.h"

struct safetensors
{
  GPtrArray *maps;              /* GMappedFile * */
  GHashTable *tensors;          /* name -> struct st_tensor * (owned) */
  GStringChunk *strings;        /* tensor names and paths */
};

static const struct
{
  const char *name;
  size_t size;
} dtype_table[] = {
  [ST_DTYPE_F32] = {"F32", 4},
  [ST_DTYPE_F16] = {"F16", 2},
  [ST_DTYPE_BF16] = {"BF16", 2},
  [ST_DTYPE_F64] = {"F64", 8},
  [ST_DTYPE_I64] = {"I64", 8},
  [ST_DTYPE_I32] = {"I32", 4},
  [ST_DTYPE_I16] = {"I16", 2},
  [ST_DTYPE_I8] = {"I8", 1},
  [ST_DTYPE_U64] = {"U64", 8},
  [ST_DTYPE_U32] = {"U32", 4},
  [ST_DTYPE_U16] = {"U16", 2},
  [ST_DTYPE_U8] = {"U8", 1},
  [ST_DTYPE_BOOL] = {"BOOL", 1},
  [ST_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
  [ST_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
};

const char *
st_dtype_name (enum st_dtype dtype)
{
  return dtype_table[dtype].name;
}

size_t
st_dtype_size (enum st_dtype dtype)
{
  return dtype_table[dtype].size;
}

static gboolean
dtype_from_name (const char *name, enum st_dtype *dtype)
{
  for (size_t i = 0; i < G_N_ELEMENTS (dtype_table); i++) {
    if (strcmp (dtype_table[i].name, name) == 0) {
      *dtype = (enum st_dtype) i;
      return TRUE;
    }
  }
  return FALSE;
}

struct safetensors *
safetensors_new (void)
{
  struct safetensors *st = g_new0 (struct safetensors, 1);

  st->maps = g_ptr_array_new_with_free_func ((GDestroyNotify) g_mapped_file_unref);
  st->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  st->strings = g_string_chunk_new (4096);
  return st;
}

void
safetensors_release_pages (struct safetensors *st)
{
  for (guint i = 0; i < st->maps->len; i++) {
    GMappedFile *map = g_ptr_array_index (st->maps, i);
    void *start = g_mapped_file_get_contents (map);

    /* read-only private mapping: nothing is lost, a later read faults the file in */
    if (start && g_mapped_file_get_length (map) > 0)
      madvise (start, g_mapped_file_get_length (map), MADV_DONTNEED);
  }
}

void
st_tensor_release_pages (const struct st_tensor *t)
{
  guintptr page = (guintptr) sysconf (_SC_PAGESIZE);
  guintptr start = ((guintptr) t->data + page - 1) / page * page;
  guintptr end = ((guintptr) t->data + t->n_bytes) / page * page;

  if (end > start)
    madvise ((void *) start, end - start, MADV_DONTNEED);
}

void
safetensors_free (struct safetensors *st)
{
  if (!st)
    return;
  g_hash_table_destroy (st->tensors);
  g_ptr_array_free (st->maps, TRUE);
  g_string_chunk_free (st->strings);
  g_free (st);
}

const struct st_tensor *
safetensors_find (const struct safetensors *st, const char *name)
{
  return g_hash_table_lookup (st->tensors, name);
}

GPtrArray *
safetensors_tensors (const struct safetensors *st)
{
  GPtrArray *all = g_ptr_array_sized_new (g_hash_table_size (st->tensors));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, st->tensors);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  return all;
}

/* A JSON integer that is exactly representable and non-negative. */
static gboolean
json_node_get_size (JsonNode *node, int64_t *out)
{
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return *out >= 0;
}

static gboolean
parse_shape (JsonNode *node, struct st_tensor *t, const char *path, GError **error)
{
  JsonArray *dims;
  int64_t n = 1;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': \"shape\" is not an array", t->name);
  dims = json_node_get_array (node);
  if (json_array_get_length (dims) > ST_MAX_DIMS)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': %u dimensions (at most %d supported)", t->name, json_array_get_length (dims),
        ST_MAX_DIMS);
  t->n_dims = (int) json_array_get_length (dims);
  for (int i = 0; i < t->n_dims; i++) {
    if (!json_node_get_size (json_array_get_element (dims, i), &t->shape[i]))
      return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
          "tensor '%s': shape[%d] is not a non-negative integer", t->name, i);
    if (t->shape[i] != 0 && n > G_MAXINT64 / t->shape[i])
      return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "tensor '%s': shape overflows",
          t->name);
    n *= t->shape[i];
  }
  t->n_elements = n;
  return TRUE;
}

/* Fills @t from one header entry; offsets are returned for the layout check. */
struct range
{
  int64_t begin, end;
  guint entry;                  /* index into the entries being added */
};

static gboolean
parse_entry (JsonNode *node, struct st_tensor *t, struct range *r, uint64_t buffer_size,
    const char *path, GError **error)
{
  JsonObject *obj;
  JsonNode *member;
  JsonArray *range;
  const char *dtype;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': header entry is not an object", t->name);
  obj = json_node_get_object (node);

  member = json_object_get_member (obj, "dtype");
  if (!member || !JSON_NODE_HOLDS_VALUE (member)
      || json_node_get_value_type (member) != G_TYPE_STRING)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': missing or non-string \"dtype\"", t->name);
  dtype = json_node_get_string (member);
  if (!dtype_from_name (dtype, &t->dtype))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "tensor '%s': unknown dtype '%s'",
        t->name, dtype);

  member = json_object_get_member (obj, "shape");
  if (!member)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "tensor '%s': missing \"shape\"",
        t->name);
  if (!parse_shape (member, t, path, error))
    return FALSE;

  member = json_object_get_member (obj, "data_offsets");
  if (!member || !JSON_NODE_HOLDS_ARRAY (member)
      || json_array_get_length (range = json_node_get_array (member)) != 2
      || !json_node_get_size (json_array_get_element (range, 0), &r->begin)
      || !json_node_get_size (json_array_get_element (range, 1), &r->end))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': \"data_offsets\" is not two non-negative integers", t->name);
  if (r->begin > r->end || (uint64_t) r->end > buffer_size)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
        "] out of range (data section is %" G_GUINT64_FORMAT " bytes)", t->name, r->begin, r->end,
        buffer_size);
  if ((uint64_t) t->n_elements > G_MAXUINT64 / st_dtype_size (t->dtype)
      || (uint64_t) (r->end - r->begin) != (uint64_t) t->n_elements * st_dtype_size (t->dtype))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "tensor '%s': %" G_GINT64_FORMAT " bytes of data for %" G_GINT64_FORMAT " %s elements",
        t->name, r->end - r->begin, t->n_elements, dtype);
  return TRUE;
}

static int
compare_by_offset (gconstpointer a, gconstpointer b)
{
  const struct range *x = a, *y = b;

  /* by (begin, end) as the reference reader sorts: an empty tensor sorts
   * before a non-empty one starting at the same offset */
  if (x->begin != y->begin)
    return (x->begin > y->begin) - (x->begin < y->begin);
  return (x->end > y->end) - (x->end < y->end);
}

/* Tensors must tile the data section exactly, as the reference reader demands. */
static gboolean
check_layout (struct range *ranges, guint n, GPtrArray *entries, uint64_t buffer_size,
    const char *path, GError **error)
{
  int64_t end = 0;

  qsort (ranges, n, sizeof ranges[0], compare_by_offset);
  for (guint i = 0; i < n; i++) {
    const struct st_tensor *t = g_ptr_array_index (entries, ranges[i].entry);

    if (ranges[i].begin < end)
      return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
          "tensor '%s' overlaps the tensor before it (offset %" G_GINT64_FORMAT " < %"
          G_GINT64_FORMAT ")", t->name, ranges[i].begin, end);
    if (ranges[i].begin > end)
      return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
          "hole in the data section before tensor '%s' (bytes %" G_GINT64_FORMAT "..%"
          G_GINT64_FORMAT " unused)", t->name, end, ranges[i].begin);
    end = ranges[i].end;
  }
  if ((uint64_t) end != buffer_size)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "data section is %" G_GUINT64_FORMAT " bytes but tensors cover %" G_GINT64_FORMAT,
        buffer_size, end);
  return TRUE;
}

static JsonObject *
parse_header (const guint8 *bytes, uint64_t header_size, JsonParser * parser, const char *path,
    GError **error)
{
  if (header_size == 0 || bytes[0] != '{') {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "header does not start with '{'");
    return NULL;
  }
  if (!g_utf8_validate ((const char *) bytes, (gssize) header_size, NULL)) {
    engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path, "header is not valid UTF-8");
    return NULL;
  }
  return json_parse_object (parser, path, (const char *) bytes, header_size, error);
}

static gboolean
add_entries (struct safetensors *st, JsonObject *header, const guint8 *data,
    uint64_t buffer_size, const char *path, GError **error)
{
  GList *members = json_object_get_members (header);
  GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);
  struct range *ranges = g_new (struct range, json_object_get_size (header) + 1);
  const char *file_path = g_string_chunk_insert_const (st->strings, path);
  gboolean ok = TRUE;
  guint n = 0;

  for (GList * l = members; l && ok; l = l->next) {
    const char *name = l->data;
    struct st_tensor *t;

    if (strcmp (name, "__metadata__") == 0)
      continue;
    t = g_new0 (struct st_tensor, 1);
    t->name = g_string_chunk_insert_const (st->strings, name);
    t->path = file_path;
    g_ptr_array_add (entries, t);
    ok = parse_entry (json_object_get_member (header, name), t, &ranges[n], buffer_size, path,
        error);
    if (ok && g_hash_table_contains (st->tensors, name))
      ok = engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
          "tensor '%s' also appears in another file of this checkpoint", name);
    t->data = data + (ok ? ranges[n].begin : 0);
    t->n_bytes = ok ? (size_t) (ranges[n].end - ranges[n].begin) : 0;
    ranges[n].entry = n;
    n++;
  }
  if (ok)
    ok = check_layout (ranges, n, entries, buffer_size, path, error);
  if (ok) {
    for (guint i = 0; i < entries->len; i++) {
      struct st_tensor *t = g_ptr_array_index (entries, i);
      g_hash_table_insert (st->tensors, (gpointer) t->name, t);
    }
    g_ptr_array_set_free_func (entries, NULL);
  }
  g_ptr_array_free (entries, TRUE);
  g_free (ranges);
  g_list_free (members);
  return ok;
}

gboolean
safetensors_add_file (struct safetensors *st, const char *path, GError **error)
{
  GError *io_error = NULL;
  GMappedFile *map;
  int fd;
  const guint8 *bytes;
  uint64_t size, header_size = 0;
  JsonParser *parser;
  JsonObject *header;
  gboolean ok;

  fd = files_open_regular (path, 0, NULL, error);
  if (fd < 0)
    return FALSE;
  map = g_mapped_file_new_from_fd (fd, FALSE, &io_error);
  close (fd);
  if (!map) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_IO, "%s: %s", path,
        io_error->message);
    g_error_free (io_error);
    return FALSE;
  }
  bytes = (const guint8 *) g_mapped_file_get_contents (map);
  size = g_mapped_file_get_length (map);
  if (size < 8) {
    g_mapped_file_unref (map);
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "file is %" G_GUINT64_FORMAT " bytes, too short for a header", size);
  }
  for (int i = 7; i >= 0; i--)
    header_size = (header_size << 8) | bytes[i];
  if (header_size > ST_MAX_HEADER_BYTES || header_size > size - 8) {
    g_mapped_file_unref (map);
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_FORMAT, path,
        "header length %" G_GUINT64_FORMAT " exceeds %s (file is %" G_GUINT64_FORMAT " bytes)",
        header_size, header_size > ST_MAX_HEADER_BYTES ? "the 100 MB limit" : "the file", size);
  }

  parser = json_parser_new_immutable ();
  header = parse_header (bytes + 8, header_size, parser, path, error);
  ok = header && add_entries (st, header, bytes + 8 + header_size, size - 8 - header_size, path,
      error);
  g_object_unref (parser);
  if (ok)
    g_ptr_array_add (st->maps, map);
  else
    g_mapped_file_unref (map);
  return ok;
}
