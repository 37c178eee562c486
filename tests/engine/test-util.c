/* test-util.c — what the engine's input tests share (test-util.h). */
#include <glib/gstdio.h>
#include <string.h>

#include "test-util.h"

#ifndef LOADER_DATA_DIR
#error "LOADER_DATA_DIR must name the directory of the generated base checkpoints"
#endif

void
check_failed (const char *format, ...)
{
  va_list args;
  char *what;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_test_fail_printf ("%s", what);
  g_free (what);
}

void
check_error_v (const char *what, GError *error, int code, va_list subs)
{
  const char *s;

  if (!error) {
    check_failed ("%s: failed without an error", what);
    return;
  }
  g_test_message ("%s: %s", what, error->message);
  if (error->domain != CLIPSEG_ENGINE_ERROR)
    check_failed ("%s: error domain is %s, not clipseg-engine-error-quark (%s)", what,
        g_quark_to_string (error->domain), error->message);
  else if (error->code != code)
    check_failed ("%s: error code %d, expected %d (%s)", what, error->code, code, error->message);
  while ((s = va_arg (subs, const char *)))
    if (!strstr (error->message, s))
        check_failed ("%s: message does not name '%s': %s", what, s, error->message);
}

void
check_error (const char *what, GError *error, int code, ...)
{
  va_list subs;

  va_start (subs, code);
  check_error_v (what, error, code, subs);
  va_end (subs);
}

struct clipseg_model *
load_ok (const char *path)
{
  GError *error = NULL;
  struct clipseg_model *model = clipseg_model_load (path, clipseg_model_default_params (), &error);

  if (!model)
    g_error ("%s does not load: %s", path, error->message);
  return model;
}

/* ---- files ---------------------------------------------------------------- */

char *
base_path (const char *name)
{
  return g_build_filename (LOADER_DATA_DIR, name, NULL);
}

gboolean
have_bases (void)
{
  static const char *const names[] = { HF, SHARDED, HF_F16, HF_BF16, OPENCLIP };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *path = base_path (names[i]);
    gboolean ok = g_file_test (path, G_FILE_TEST_IS_DIR);

    g_free (path);
    if (!ok) {
      g_test_skip ("base checkpoints not generated in " LOADER_DATA_DIR
          " (needs /usr/bin/python3 with numpy at build time)");
      return FALSE;
    }
  }
  return TRUE;
}

char *
path_in (const char *dir, const char *file)
{
  return g_build_filename (dir, file, NULL);
}

void
write_file (const char *path, const void *data, gsize len)
{
  GError *error = NULL;

  g_assert_true (g_file_set_contents (path, data, (gssize) len, &error));
  g_assert_no_error (error);
}

void
write_text (const char *path, const char *text)
{
  write_file (path, text, strlen (text));
}

float *
random_pixels (int h, int w, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *p = g_new (float, 3 * h * w);

  for (int i = 0; i < 3 * h * w; i++)
    p[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  g_rand_free (rand);
  return p;
}

void
run_in_subprocess (const char *dir)
{
  g_setenv ("CLIPSEG_LOADER_CASE", dir, TRUE);
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv ("CLIPSEG_LOADER_CASE");
  if (!g_test_trap_has_passed ())
    check_failed
        ("the case failed in its subprocess (a crash, a sanitizer report or a failed check; see its stderr above)");
}
