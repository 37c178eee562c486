/* fuzz-npy.c — libFuzzer: arbitrary bytes, as a file, to the tool's .npy reader.
 *
 * npy_read must return an array whose element count is the product of its
 * shape (every element readable; data may be NULL only when there are none) and which npy_write writes back to the same
 * array, or fail with an error naming the file. Anything else aborts, and so do
 * sanitizer reports and leaks.
 */
#include "npy.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *in_path, *out_path;

static void
remove_dir (void)
{
  g_unlink (in_path);
  g_unlink (out_path);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  GError *err = NULL;

  dir = g_dir_make_tmp ("fuzz-npy-XXXXXX", &err);
  if (!dir)
    g_error ("fuzz-npy: %s", err->message);
  in_path = g_build_filename (dir, "in.npy", NULL);
  out_path = g_build_filename (dir, "out.npy", NULL);
  atexit (remove_dir);
  return 0;
}

static void
die (const char *what)
{
  g_printerr ("fuzz-npy: %s\n", what);
  abort ();
}

static void
check_array (const struct npy_array *a)
{
  int64_t n = 1;
  guint8 sum = 0;

  if (a->n_dims < 0 || a->n_dims > NPY_MAX_DIMS)
    die ("bad rank");
  if (!a->data && a->n_elements)
    die ("array without data");
  if (a->dtype != NPY_FLOAT32 && a->dtype != NPY_INT32)
    die ("unknown dtype");
  for (int d = 0; d < a->n_dims; d++) {
    if (a->shape[d] < 0)
      die ("negative extent");
    n *= a->shape[d];
  }
  if (n != a->n_elements)
    die ("element count is not the product of the shape");
  for (int64_t i = 0; i < a->n_elements * 4; i++)       /* ASan: every byte is ours */
    sum += ((const guint8 *) a->data)[i];
  (void) sum;
}

/* What npy_write writes from @a reads back as @a. */
static void
check_round_trip (const struct npy_array *a)
{
  struct npy_array b;
  GError *err = NULL;

  if (!npy_write (out_path, a->dtype, a->n_dims, a->shape, a->data, &err))
    g_error ("fuzz-npy: %s", err->message);
  if (!npy_read (out_path, &b, &err))
    die (err->message);
  if (b.dtype != a->dtype || b.n_dims != a->n_dims
      || memcmp (b.shape, a->shape, sizeof (int64_t) * a->n_dims) != 0
      || b.n_elements != a->n_elements
      || (a->n_elements && memcmp (b.data, a->data, a->n_elements * 4) != 0))
    die ("the written array reads back different");
  npy_array_clear (&b);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct npy_array a;
  GError *err = NULL;

  if (!g_file_set_contents_full (in_path, (const char *) data, (gssize) size, G_FILE_SET_CONTENTS_NONE, 0644, &err))    /* no fsync per input */
    g_error ("fuzz-npy: %s", err->message);
  if (npy_read (in_path, &a, &err)) {
    check_array (&a);
    check_round_trip (&a);
    npy_array_clear (&a);
  } else if (!err || !strstr (err->message, in_path)) {
    die (err ? err->message : "failed without an error");
  }
  g_clear_error (&err);
  return 0;
}
