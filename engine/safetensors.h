/* safetensors.h — internal: memory-mapped safetensors files, validated on open.
 *
 * A set holds one file or every shard of a sharded checkpoint; tensor names are
 * unique across the set. Data stays in the read-only mappings; callers convert
 * or copy what they need. Every structural rule of the format is checked when
 * a file is added (header size and JSON shape, dtype names, shapes, offsets in
 * range, byte counts matching shapes, no overlap, no hole, nothing after the
 * last tensor), so a tensor handed out is always safe to read.
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <glib.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
/* the reference reader's limit */
#define ST_MAX_HEADER_BYTES (100 * 1000 * 1000)

enum st_dtype {
  ST_DTYPE_F32,
  ST_DTYPE_F16,
  ST_DTYPE_BF16,
  ST_DTYPE_F64,
  ST_DTYPE_I64,
  ST_DTYPE_I32,
  ST_DTYPE_I16,
  ST_DTYPE_I8,
  ST_DTYPE_U64,
  ST_DTYPE_U32,
  ST_DTYPE_U16,
  ST_DTYPE_U8,
  ST_DTYPE_BOOL,
  ST_DTYPE_F8_E5M2,
  ST_DTYPE_F8_E4M3,
};

struct st_tensor {
  const char *name;
  const char *path;          /* the file holding it, for error messages */
  enum st_dtype dtype;
  int n_dims;
  int64_t shape[ST_MAX_DIMS];
  int64_t n_elements;
  const guint8 *data;        /* inside the mapping; not necessarily aligned */
  size_t n_bytes;
};

struct safetensors;

struct safetensors *safetensors_new (void);
void safetensors_free (struct safetensors *st);
/* Maps and validates @path and adds its tensors; FALSE with @error naming the
 * file and the tensor or field at fault. */
gboolean safetensors_add_file (struct safetensors *st, const char *path, GError **error);
/* Drops the mapped files' pages from the process's resident memory, e.g.
 * once their tensors are converted or packed: pages still referenced are
 * read again from the file (or the page cache) when next touched. */
void safetensors_release_pages (struct safetensors *st);
/* The same for the pages that lie wholly inside @t's bytes, e.g. once it is
 * converted: loading then never holds a file and its conversion at once. */
void st_tensor_release_pages (const struct st_tensor *t);
/* NULL when absent. */
const struct st_tensor *safetensors_find (const struct safetensors *st, const char *name);
/* Every tensor, in no particular order. */
GPtrArray *safetensors_tensors (const struct safetensors *st);

const char *st_dtype_name (enum st_dtype dtype);
size_t st_dtype_size (enum st_dtype dtype);

#endif
