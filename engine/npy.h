/* npy.h — reading and writing NumPy .npy arrays (version 1.0/2.0/3.0 read,
 * 1.0 written), little-endian float32 and int32. */
#ifndef NPY_H
#define NPY_H

#include <glib.h>
#include <stdint.h>

enum npy_dtype {
  NPY_FLOAT32,
  NPY_INT32,
};

#define NPY_MAX_DIMS 8

struct npy_array {
  enum npy_dtype dtype;
  int n_dims;
  int64_t shape[NPY_MAX_DIMS];
  int64_t n_elements;
  void *data;                  /* g_malloc'd, n_elements values */
};

/* Reads @path (Fortran-order arrays are returned in C order); other dtypes, a
 * negative dimension or a malformed header are errors naming the file and
 * what is wrong, and so is a path that is not a regular file (files.h). Free
 * with npy_array_clear. */
gboolean npy_read (const char *path, struct npy_array *out, GError **error);
/* Writes with files_write: atomically over a regular file, directly into a
 * FIFO or a character device, through a symlink. */
gboolean npy_write (const char *path, enum npy_dtype dtype, int n_dims, const int64_t *shape,
    const void *data, GError **error);
void npy_array_clear (struct npy_array *a);

#endif
