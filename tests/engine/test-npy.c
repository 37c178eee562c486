/* test-npy.c — the .npy reader and writer of the clipseg-engine tool. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "npy.h"

static char *dir;

/* A version 1.0 file with the given header dict and raw data. */
static char *
write_raw (const char *name, const char *dict, const void *data, gsize n_bytes)
{
  GString *file = g_string_new_len ("\x93NUMPY\x01\x00", 8);
  char *path = g_build_filename (dir, name, NULL);
  guint16 len = (guint16) strlen (dict);

  g_string_append_c (file, (char) (len & 0xff));
  g_string_append_c (file, (char) (len >> 8));
  g_string_append (file, dict);
  g_string_append_len (file, data, n_bytes);
  g_assert_true (g_file_set_contents (path, file->str, file->len, NULL));
  g_string_free (file, TRUE);
  return path;
}

static void
test_round_trip (void)
{
  float v[6] = { 1, 2, 3, 4, 5, 6 };
  char *path = g_build_filename (dir, "rt.npy", NULL);
  struct npy_array a;
  GError *error = NULL;

  g_assert_true (npy_write (path, NPY_FLOAT32, 2, (int64_t[]) { 2, 3 }, v, &error));
  g_assert_true (npy_read (path, &a, &error));
  g_assert_no_error (error);
  g_assert_cmpint (a.dtype, ==, NPY_FLOAT32);
  g_assert_cmpint (a.n_dims, ==, 2);
  g_assert_cmpint (a.shape[0], ==, 2);
  g_assert_cmpint (a.shape[1], ==, 3);
  g_assert_cmpmem (a.data, sizeof v, v, sizeof v);
  npy_array_clear (&a);
  g_free (path);
}

/* numpy writes Fortran order for F-contiguous arrays: element (i, j, k) of a
 * [2, 3, 2] array sits at i + 2 j + 6 k. */
static void
test_fortran_order_is_returned_in_c_order (void)
{
  int32_t f[12], want[12];
  struct npy_array a;
  GError *error = NULL;
  char *path;

  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 2; k++) {
        int value = 100 * i + 10 * j + k;
        f[i + 2 * j + 6 * k] = value;
        want[(i * 3 + j) * 2 + k] = value;
      }
  path = write_raw ("f.npy", "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 2), }\n",
      f, sizeof f);
  g_assert_true (npy_read (path, &a, &error));
  g_assert_no_error (error);
  g_assert_cmpint (a.dtype, ==, NPY_INT32);
  g_assert_cmpmem (a.data, sizeof want, want, sizeof want);
  npy_array_clear (&a);
  g_free (path);
}

/* Reading @path fails with an error that names it and says @what (unless
 * NULL), and returns no data. */
static void
assert_read_fails (const char *path, const char *what)
{
  struct npy_array a;
  GError *error = NULL;

  g_assert_false (npy_read (path, &a, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, path));
  if (what && !strstr (error->message, what))
    g_error ("\"%s\" does not say \"%s\"", error->message, what);
  g_assert_null (a.data);
  g_error_free (error);
}

static void
expect_error (const char *name, const char *dict, gsize n_bytes, const char *what)
{
  guint8 *data = g_malloc0 (n_bytes + 1);
  char *path = write_raw (name, dict, data, n_bytes);

  assert_read_fails (path, what);
  g_free (data);
  g_free (path);
}

static void
test_bad_files_name_the_file (void)
{
  expect_error ("f64.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16,
      "dtype '<f8' is not supported");
  expect_error ("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8,
      "dtype '>f4' is not supported");
  expect_error ("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 8,
      "data size");
  expect_error ("long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", 8,
      "data size");
  expect_error ("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }\n", 8, "no shape");
  expect_error ("order.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n", 8,
      "fortran_order");
  expect_error ("neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2), }\n", 8,
      "dimension 2 is -2, negative");
  expect_error ("rank.npy",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", 4,
      "more than 8 dimensions");
  assert_read_fails ("/dev/zero", "is a character device");
}

/* A version 2 header length takes 4 bytes after the 8 of magic and version:
 * files ending inside it are truncated, not read past their end. */
static void
test_truncated_version2_length (void)
{
  for (gsize size = 8; size < 12; size++) {
    char *path = g_build_filename (dir, "v2.npy", NULL);

    g_assert_true (g_file_set_contents (path, "\x93NUMPY\x02\x00\x10\x00\x00", size, NULL));
    assert_read_fails (path, NULL);
    g_free (path);
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("test-npy-XXXXXX", NULL);
  g_test_add_func ("/npy/round-trip", test_round_trip);
  g_test_add_func ("/npy/fortran-order-is-returned-in-c-order",
      test_fortran_order_is_returned_in_c_order);
  g_test_add_func ("/npy/bad-files-name-the-file", test_bad_files_name_the_file);
  g_test_add_func ("/npy/truncated-version2-length", test_truncated_version2_length);
  status = g_test_run ();
  {
    GDir *d = g_dir_open (dir, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (d))) {
      char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
      g_free (p);
    }
    g_dir_close (d);
    g_rmdir (dir);
  }
  g_free (dir);
  return status;
}
