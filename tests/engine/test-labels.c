/* test-labels.c — the label and template parsers against malformed input:
 * every error a code and a message naming the class, line, name or file. */
#include <glib/gstdio.h>
#include <string.h>

#include "test-util.h"

static void
expect_labels_error (gboolean list, const char *text, const char *what)
{
  GError *error = NULL;
  struct clipseg_labels *labels = list ? clipseg_labels_parse_list (text, &error)
      : clipseg_labels_parse_file_text (text, &error);
  char *desc = g_strdup_printf ("%s \"%s\"", list ? "list" : "file text", text);

  if (labels) {
    check_failed ("%s parsed but should have failed", desc);
    clipseg_labels_free (labels);
  } else {
    check_error (desc, error, INVALID, what, NULL);
  }
  g_clear_error (&error);
  g_free (desc);
}

static void
test_labels_errors (void)
{
  /* inline lists */
  expect_labels_error (TRUE, "", "no classes");
  expect_labels_error (TRUE, "   ", "class 1");
  expect_labels_error (TRUE, "sky|, car", "class 1, name 2");
  expect_labels_error (TRUE, "sky, person| |man", "class 2, name 2");
  expect_labels_error (TRUE, "sky, \xe3\x80\x80", "class 2");   /* ideographic space only */
  expect_labels_error (TRUE, "sky, \xff", "UTF-8");
  expect_labels_error (TRUE, "sky, ca\xc3", "UTF-8");
  /* class files */
  expect_labels_error (FALSE, "", "no classes");
  expect_labels_error (FALSE, "sky, \ncar", "line 1, name 2");
  expect_labels_error (FALSE, "sky\nperson, , man", "line 2, name 2");
  expect_labels_error (FALSE, "sky\n\t\n", "line 2");
  expect_labels_error (FALSE, "sky\n\xc0\xaf\n", "UTF-8");
}

/* An empty class (",," in a list, an empty line in a file): g_strsplit of an
 * empty string has no element, so the blank-name check never runs. */
static void
test_labels_empty_class (void)
{
  expect_labels_error (TRUE, "sky,,car", "class 2");
  expect_labels_error (TRUE, "sky, car,", "class 3");
  expect_labels_error (TRUE, ",sky", "class 1");
  expect_labels_error (TRUE, ",", "class 1");
  expect_labels_error (FALSE, "\n", "line 1");
  expect_labels_error (FALSE, "sky\n\ncar\n", "line 2");
  expect_labels_error (FALSE, "sky\ncar\n\n", "line 3");
}

static void
test_labels_ok (void)
{
  GError *error = NULL;
  struct clipseg_labels *l = clipseg_labels_parse_list (" sky , person|man ,car", &error);

  g_assert_no_error (error);
  g_assert_cmpint (clipseg_labels_n_classes (l), ==, 3);
  g_assert_cmpint (clipseg_labels_n_names (l, 1), ==, 2);
  g_assert_cmpstr (clipseg_labels_name (l, 1, 1), ==, "man");
  clipseg_labels_free (l);
  l = clipseg_labels_parse_file_text ("sky\nperson, man\ncar", &error);
  g_assert_no_error (error);
  g_assert_cmpint (clipseg_labels_n_classes (l), ==, 3);
  g_assert_cmpstr (clipseg_labels_name (l, 1, 1), ==, "man");
  clipseg_labels_free (l);
}

/* Bad arguments are criticals that leave the labels as they were (and, under
 * ASan, allocate nothing that leaks). */
static void
test_labels_prepend_class_checks (void)
{
  struct clipseg_labels *l = clipseg_labels_parse_list ("sky", NULL);
  const char *blank[] = { "background", " \t" }, *null_name[] = { NULL }, *ok[] = { "background" };

  g_test_expect_message ("clipseg-engine", G_LOG_LEVEL_CRITICAL, "*n_names > 0*");
  clipseg_labels_prepend_class (l, ok, 0);
  g_test_expect_message ("clipseg-engine", G_LOG_LEVEL_CRITICAL, "*names != NULL*");
  clipseg_labels_prepend_class (l, NULL, 1);
  g_test_expect_message ("clipseg-engine", G_LOG_LEVEL_CRITICAL, "*name_is_blank*");
  clipseg_labels_prepend_class (l, blank, 2);
  g_test_expect_message ("clipseg-engine", G_LOG_LEVEL_CRITICAL, "*names[i] != NULL*");
  clipseg_labels_prepend_class (l, null_name, 1);
  g_test_assert_expected_messages ();
  g_assert_cmpint (clipseg_labels_n_classes (l), ==, 1);
  clipseg_labels_prepend_class (l, ok, 1);
  g_assert_cmpint (clipseg_labels_n_classes (l), ==, 2);
  g_assert_cmpstr (clipseg_labels_name (l, 0, 0), ==, "background");
  clipseg_labels_free (l);
}

static void
expect_templates_error (const char *path, int code, const char *what)
{
  GError *error = NULL;
  char **t = clipseg_templates_load (path, &error);

  if (t) {
    check_failed ("templates %s loaded but should have failed", path);
    g_strfreev (t);
  } else {
    check_error (path, error, code, path, what, NULL);
  }
  g_clear_error (&error);
}

static void
test_templates_errors (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("clipseg-templates-XXXXXX", &error);
  char *file = path_in (dir, "templates.txt"), *missing = path_in (dir, "missing.txt");
  char **t;

  write_text (file, "a photo of a {}.\na drawing\n");
  expect_templates_error (file, FORMAT, ":2");
  write_text (file, "a photo of a {}.\n\na {} \xff\n");
  expect_templates_error (file, FORMAT, ":3");
  write_text (file, "a photo of a {.\n");
  expect_templates_error (file, FORMAT, ":1");
  write_text (file, "");
  expect_templates_error (file, FORMAT, "no templates");
  write_text (file, "\n\n  \n");
  expect_templates_error (file, FORMAT, "no templates");
  expect_templates_error (missing, IO, "imagenet80");
  expect_templates_error (dir, IO, "imagenet80");       /* a directory */
  expect_templates_error ("", IO, "imagenet80");
  expect_templates_error ("Imagenet80", IO, "imagenet80");

  /* the outcome must not depend on whether the caller asks for the error */
  write_text (file, "a photo of a {}.\na drawing\n");
  t = clipseg_templates_load (file, NULL);
  if (t) {
    check_failed ("templates %s with a bad line loaded without a GError", file);
    g_strfreev (t);
  }
  write_text (file, "\n");
  t = clipseg_templates_load (file, NULL);
  if (t) {
    check_failed ("templates %s without templates loaded without a GError", file);
    g_strfreev (t);
  }

  /* good: one per line, blank lines skipped, CRLF endings trimmed */
  write_text (file, "a photo of a {}.\r\n\r\n{} in a video game.\n");
  t = clipseg_templates_load (file, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (t), ==, 2);
  g_assert_cmpstr (t[1], ==, "{} in a video game.");
  g_strfreev (t);

  g_unlink (file);
  g_rmdir (dir);
  g_free (file);
  g_free (missing);
  g_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add_func ("/" path, func)
  ADD ("labels/errors", test_labels_errors);
  ADD ("labels/empty-class", test_labels_empty_class);
  ADD ("labels/ok", test_labels_ok);
  ADD ("labels/prepend-class-checks", test_labels_prepend_class_checks);
  ADD ("templates/errors", test_templates_errors);
#undef ADD

  return g_test_run ();
}
