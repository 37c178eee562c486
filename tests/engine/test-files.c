/* test-files.c — inputs that are not regular files end in an error naming
 * what they are, at once; text inputs over their size limit are refused
 * before reading; outputs replace regular files atomically and write
 * through FIFOs, devices and symlinks without replacing them. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "clipseg-engine.h"
#include "files.h"

static char *dir;

static char *
path_in (const char *name)
{
  return g_build_filename (dir, name, NULL);
}

static char *
make_fifo (const char *name)
{
  char *path = path_in (name);

  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  return path;
}

static void
assert_io_error (GError *error, const char *path, const char *what)
{
  g_assert_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_IO);
  if (!strstr (error->message, path) || !strstr (error->message, what))
    g_error ("\"%s\" does not name %s and say \"%s\"", error->message, path, what);
}

/* Without O_NONBLOCK opening a FIFO nobody writes would hang here (the
 * meson test has a timeout). */
static void
test_read_refuses_special_files (void)
{
  char *fifo = make_fifo ("read.fifo");
  const struct
  {
    const char *path, *what;
  } cases[] = {
    {fifo, "is a FIFO"},
    {"/dev/zero", "is a character device"},
    {dir, "is a directory"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GError *error = NULL;
    char *data = NULL;

    g_assert_false (files_read (cases[i].path, 0, &data, NULL, &error));
    g_assert_null (data);
    assert_io_error (error, cases[i].path, cases[i].what);
    g_error_free (error);
  }
  g_unlink (fifo);
  g_free (fifo);
}

static void
test_read_limit_is_checked_before_reading (void)
{
  char *path = path_in ("big.txt");
  char *text = g_strnfill (1000, 'a'), *data = NULL;
  GError *error = NULL;
  gsize len = 0;

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_assert_false (files_read (path, 999, &data, &len, &error));
  assert_io_error (error, path, "1000 bytes, more than the 999");
  g_clear_error (&error);
  g_assert_true (files_read (path, 1000, &data, &len, &error));
  g_assert_cmpuint (len, ==, 1000);
  g_assert_cmpstr (data, ==, text);
  g_free (data);
  g_free (text);
  g_free (path);
}

/* A 5 MB labels file is refused from its size, not parsed. */
static void
test_labels_file_limit (void)
{
  char *path = path_in ("labels.txt");
  GString *text = g_string_new (NULL);
  GError *error = NULL;
  gint64 start;

  while (text->len <= FILES_MAX_LABELS_BYTES * 5)
    g_string_append (text, "thing, object, item\n");
  g_assert_true (g_file_set_contents (path, text->str, text->len, NULL));
  start = g_get_monotonic_time ();
  g_assert_null (clipseg_labels_load_file (path, &error));
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  assert_io_error (error, path, "more than the 1048576");
  g_clear_error (&error);
  g_assert_null (clipseg_labels_load_file ("/dev/zero", &error));
  assert_io_error (error, "/dev/zero", "is a character device");
  g_error_free (error);
  g_string_free (text, TRUE);
  g_free (path);
}

static void
test_templates_file_special (void)
{
  char *fifo = make_fifo ("templates.fifo");
  GError *error = NULL;

  g_assert_null (clipseg_templates_load (fifo, &error));
  assert_io_error (error, fifo, "is a FIFO");
  g_error_free (error);
  g_unlink (fifo);
  g_free (fifo);
}

static ino_t
inode_of (const char *path)
{
  struct stat st;

  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  return st.st_ino;
}

static void
assert_contents (const char *path, const char *want)
{
  char *got = NULL;

  g_assert_true (g_file_get_contents (path, &got, NULL, NULL));
  g_assert_cmpstr (got, ==, want);
  g_free (got);
}

/* A regular file is replaced by a new one (readers of the old see it whole). */
static void
test_write_regular_is_atomic (void)
{
  char *path = path_in ("out.bin");
  GError *error = NULL;
  ino_t before;

  g_assert_true (files_write (path, "first", 5, &error));
  g_assert_no_error (error);
  assert_contents (path, "first");
  before = inode_of (path);
  g_assert_true (files_write (path, "second", 6, &error));
  assert_contents (path, "second");
  g_assert_true (inode_of (path) != before);
  g_free (path);
}

static void
test_write_through_symlink (void)
{
  char *target = path_in ("target.bin"), *link = path_in ("link.bin");
  char *dangling_target = path_in ("made.bin"), *dangling = path_in ("dangling.bin");
  GError *error = NULL;
  struct stat st;

  g_assert_true (g_file_set_contents (target, "old", -1, NULL));
  g_assert_cmpint (symlink (target, link), ==, 0);
  g_assert_true (files_write (link, "new", 3, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_lstat (link, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
  assert_contents (target, "new");

  g_assert_cmpint (symlink (dangling_target, dangling), ==, 0);
  g_assert_true (files_write (dangling, "made", 4, &error));
  g_assert_cmpint (g_lstat (dangling, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
  assert_contents (dangling_target, "made");
  g_free (target);
  g_free (link);
  g_free (dangling_target);
  g_free (dangling);
}

static gpointer
read_fifo (gpointer path)
{
  char *got = NULL;

  g_assert_true (g_file_get_contents (path, &got, NULL, NULL));
  return got;
}

static void
test_write_fifo_with_reader (void)
{
  char *fifo = make_fifo ("out.fifo");
  GThread *reader = g_thread_new ("reader", read_fifo, fifo);
  GError *error = NULL;
  struct stat st;
  char *got;

  g_assert_true (files_write (fifo, "through", 7, &error));
  g_assert_no_error (error);
  got = g_thread_join (reader);
  g_assert_cmpstr (got, ==, "through");
  g_assert_cmpint (g_lstat (fifo, &st), ==, 0);
  g_assert_true (S_ISFIFO (st.st_mode));
  g_free (got);
  g_unlink (fifo);
  g_free (fifo);
}

static void
test_write_devices_stay_devices (void)
{
  GError *error = NULL;
  struct stat st;

  g_assert_true (files_write ("/dev/null", "x", 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_lstat ("/dev/null", &st), ==, 0);
  g_assert_true (S_ISCHR (st.st_mode));
  /* opening /dev/stdout truncates a file it leads to, as cp does: only
   * where our output is a pipe or a terminal */
  g_assert_cmpint (fstat (1, &st), ==, 0);
  if (S_ISREG (st.st_mode))
    return;
  g_assert_true (files_write ("/dev/stdout", "", 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_lstat ("/dev/stdout", &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
}

static void
test_write_refuses_directory (void)
{
  GError *error = NULL;

  g_assert_false (files_write (dir, "x", 1, &error));
  assert_io_error (error, dir, "is a directory");
  g_error_free (error);
}

/* A copy of @src's files into a new folder of @dir, except @skip. */
static char *
copy_model (const char *src, const char *name, const char *skip)
{
  char *dst = path_in (name);
  GDir *d = g_dir_open (src, 0, NULL);
  const char *entry;

  g_assert_nonnull (d);
  g_assert_cmpint (g_mkdir (dst, 0700), ==, 0);
  while ((entry = g_dir_read_name (d))) {
    char *from = g_build_filename (src, entry, NULL), *to = g_build_filename (dst, entry, NULL);
    char *contents;
    gsize len;

    if (strcmp (entry, skip) != 0) {
      g_assert_true (g_file_get_contents (from, &contents, &len, NULL));
      g_assert_true (g_file_set_contents (to, contents, len, NULL));
      g_free (contents);
    }
    g_free (from);
    g_free (to);
  }
  g_dir_close (d);
  return dst;
}

/* The model's own files as FIFOs, directories or devices: clear errors, no hang. */
static void
test_model_special_files (void)
{
  const char *names[] = { "model.safetensors", "config.json", "vocab.json", "merges.txt" };
  GError *error = NULL;

  g_assert_null (clipseg_model_load ("/dev/zero", clipseg_model_default_params (), &error));
  assert_io_error (error, "/dev/zero", "is a character device, not a checkpoint");
  g_clear_error (&error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *folder = g_strdup_printf ("model-fifo-%u", i);
    char *model = copy_model (WORLD_MODEL_DIR, folder, names[i]);
    char *file = g_build_filename (model, names[i], NULL), *dir_folder;
    char *dir_model, *dir_file;

    g_assert_cmpint (mkfifo (file, 0600), ==, 0);
    g_assert_null (clipseg_model_load (model, clipseg_model_default_params (), &error));
    assert_io_error (error, file, "is a FIFO");
    g_clear_error (&error);

    dir_folder = g_strdup_printf ("model-dir-%u", i);
    dir_model = copy_model (WORLD_MODEL_DIR, dir_folder, names[i]);
    dir_file = g_build_filename (dir_model, names[i], NULL);
    g_assert_cmpint (g_mkdir (dir_file, 0700), ==, 0);
    g_assert_null (clipseg_model_load (dir_model, clipseg_model_default_params (), &error));
    assert_io_error (error, dir_file, "is a directory");
    g_clear_error (&error);
    g_free (dir_folder);
    g_free (dir_model);
    g_free (dir_file);
    g_free (folder);
    g_free (model);
    g_free (file);
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("clipseg-files-XXXXXX", NULL);
  g_test_add_func ("/files/read-refuses-special-files", test_read_refuses_special_files);
  g_test_add_func ("/files/read-limit-is-checked-before-reading",
      test_read_limit_is_checked_before_reading);
  g_test_add_func ("/files/labels-file-limit", test_labels_file_limit);
  g_test_add_func ("/files/templates-file-special", test_templates_file_special);
  g_test_add_func ("/files/write-regular-is-atomic", test_write_regular_is_atomic);
  g_test_add_func ("/files/write-through-symlink", test_write_through_symlink);
  g_test_add_func ("/files/write-fifo-with-reader", test_write_fifo_with_reader);
  g_test_add_func ("/files/write-devices-stay-devices", test_write_devices_stay_devices);
  g_test_add_func ("/files/write-refuses-directory", test_write_refuses_directory);
  g_test_add_func ("/files/model-special-files", test_model_special_files);
  status = g_test_run ();
  /* the folders hold only small copies; leave them to the system's tmp cleaner when a test failed */
  if (status == 0) {
    char *argv_rm[] = { "rm", "-rf", dir, NULL };
    g_spawn_sync (NULL, argv_rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  g_free (dir);
  return status;
}
