/* GStreamer clipseg
 * test-clipseg-files.c: the element against bad input files and sizes.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * Special files in place of inputs, label sets beyond the caps, weights that
 * overflow and thread counts beyond the CPUs: each ends in a clear error or
 * a warning at once, never a hang or a silent wrong mask. Anything that
 * could hang is bounded by the check timeout.
 */

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <float.h>
#include <string.h>
#include <sys/stat.h>

#include "gstclipsegmeta.h"

#define RGBX_CAPS "video/x-raw,format=RGBx,width=64,height=48,framerate=30/1"

static gchar *dir;

static GstElement *
make_clipseg (const gchar * model, const gchar * first_property, ...)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  va_list args;

  fail_unless (element != NULL);
  g_object_set (element, "model", model, "labels", "red, green",
      "templates", "single", "resolution", 48, NULL);
  gst_util_set_object_arg (G_OBJECT (element), "processing", "sync");
  if (first_property) {
    va_start (args, first_property);
    g_object_set_valist (G_OBJECT (element), first_property, args);
    va_end (args);
  }
  return element;
}

/* Sets @element to PAUSED and expects an error whose debug text holds
 * @what, within a second when @at_once (the state change fails). */
static void
check_start_fails (GstElement * element, gboolean at_once, const gchar * what)
{
  GstBus *bus = gst_bus_new ();
  GstStateChangeReturn ret;
  GstMessage *msg;
  gchar *debug = NULL;
  gint64 start = g_get_monotonic_time ();

  gst_element_set_bus (element, bus);
  ret = gst_element_set_state (element, GST_STATE_PAUSED);
  if (at_once) {
    fail_unless_equals_int (ret, GST_STATE_CHANGE_FAILURE);
    fail_unless (g_get_monotonic_time () - start < G_USEC_PER_SEC,
        "the error took %" G_GINT64_FORMAT " us",
        g_get_monotonic_time () - start);
  }
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, NULL, &debug);
  fail_unless (debug && strstr (debug, what), "\"%s\" does not say \"%s\"",
      debug, what);
  g_free (debug);
  gst_message_unref (msg);

  start = g_get_monotonic_time ();
  gst_element_set_state (element, GST_STATE_NULL);
  fail_unless (g_get_monotonic_time () - start < G_USEC_PER_SEC);
  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  gst_object_unref (element);
}

static gchar *
path_in (const gchar * name)
{
  return g_build_filename (dir, name, NULL);
}

/* A copy of @model's files in @name, with @special ("fifo" or "dir") in
 * place of @file, or with every element of the F32 tensor @tensor set to
 * @value. */
static gchar *
copy_model (const gchar * model, const gchar * name, const gchar * file,
    const gchar * special, const gchar * tensor, gfloat value)
{
  const gchar *files[] = { "config.json", "vocab.json", "merges.txt",
    "model.safetensors"
  };
  gchar *copy = path_in (name);
  guint i;

  fail_unless_equals_int (g_mkdir (copy, 0700), 0);
  for (i = 0; i < G_N_ELEMENTS (files); i++) {
    gchar *from = g_build_filename (model, files[i], NULL);
    gchar *to = g_build_filename (copy, files[i], NULL);
    gchar *bytes;
    gsize len;

    if (g_strcmp0 (file, files[i]) == 0 && !g_strcmp0 (special, "fifo")) {
      fail_unless_equals_int (mkfifo (to, 0600), 0);
    } else if (g_strcmp0 (file, files[i]) == 0) {
      fail_unless_equals_int (g_mkdir (to, 0700), 0);
    } else {
      fail_unless (g_file_get_contents (from, &bytes, &len, NULL));
      if (tensor && g_str_has_suffix (to, ".safetensors")) {
        JsonParser *parser = json_parser_new ();
        JsonArray *offsets;
        guint64 header_len;
        gint64 o;

        memcpy (&header_len, bytes, sizeof header_len);
        fail_unless (json_parser_load_from_data (parser, bytes + 8,
                header_len, NULL));
        offsets =
            json_object_get_array_member (json_object_get_object_member
            (json_node_get_object (json_parser_get_root (parser)), tensor),
            "data_offsets");
        for (o = json_array_get_int_element (offsets, 0);
            o < json_array_get_int_element (offsets, 1); o += 4)
          memcpy (bytes + 8 + header_len + o, &value, sizeof value);
        g_object_unref (parser);
      }
      fail_unless (g_file_set_contents (to, bytes, len, NULL));
      g_free (bytes);
    }
    g_free (from);
    g_free (to);
  }
  return copy;
}

GST_START_TEST (test_special_labels_files_fail_at_once)
{
  gchar *fifo = path_in ("labels.fifo"), *big = path_in ("big.txt");
  GString *text = g_string_new (NULL);
  const struct
  {
    const gchar *path, *what;
  } cases[] = {
    {fifo, "is a FIFO"}, {"/dev/zero", "is a character device"},
    {"/tmp", "is a directory"}, {big, "more than the 1048576"},
  };
  guint i;

  fail_unless_equals_int (mkfifo (fifo, 0600), 0);
  while (text->len < 5 * 1000 * 1000)
    g_string_append (text, "thing, object, item\n");
  fail_unless (g_file_set_contents (big, text->str, text->len, NULL));
  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    check_start_fails (make_clipseg (TEST_MODEL, "labels-file",
            cases[i].path, NULL), TRUE, cases[i].what);
  check_start_fails (make_clipseg (TEST_MODEL, "templates", fifo, NULL), TRUE,
      "is a FIFO");

  g_string_free (text, TRUE);
  g_free (fifo);
  g_free (big);
}

GST_END_TEST;

GST_START_TEST (test_special_model_files_fail)
{
  gchar *fifo = copy_model (TEST_MODEL, "fifo-model", "model.safetensors",
      "fifo", NULL, 0);
  gchar *dir_model = copy_model (TEST_MODEL, "dir-model", "model.safetensors",
      "dir", NULL, 0);

  check_start_fails (make_clipseg ("/dev/zero", NULL), FALSE,
      "is a character device, not a checkpoint");
  check_start_fails (make_clipseg (fifo, NULL), FALSE, "is a FIFO");
  check_start_fails (make_clipseg (dir_model, NULL), FALSE, "is a directory");
  g_free (fifo);
  g_free (dir_model);
}

GST_END_TEST;

/* 5000 synonyms, or one template too many for 4096 names, are refused when
 * the labels are set, before any is tokenized. */
GST_START_TEST (test_too_many_prompts_fail_at_once)
{
  GString *names = g_string_new ("thing 0");
  gchar *templates = path_in ("templates.txt");
  GString *lines = g_string_new (NULL);
  gint i;

  for (i = 1; i < 5000; i++)
    g_string_append_printf (names, "|thing %d", i);
  check_start_fails (make_clipseg (TEST_MODEL, "labels", names->str, NULL),
      TRUE, "at most 4096");

  g_string_truncate (names, 0);
  g_string_append (names, "thing 0");
  for (i = 1; i < 4096; i++)
    g_string_append_printf (names, "|thing %d", i);
  for (i = 0; i < 81; i++)
    g_string_append_printf (lines, "photo %d of a {}.\n", i);
  fail_unless (g_file_set_contents (templates, lines->str, -1, NULL));
  check_start_fails (make_clipseg (TEST_MODEL, "labels", names->str,
          "templates", templates, "background", "", NULL), TRUE,
      "331776 prompts");

  g_string_free (names, TRUE);
  g_string_free (lines, TRUE);
  g_free (templates);
}

GST_END_TEST;

/* Finite weights whose products overflow float: frames pass without masks
 * (never a label map of zeros) and one warning says why. */
GST_START_TEST (test_overflowing_model_warns_once)
{
  gchar *model = copy_model (TEST_MODEL, "overflow-model", NULL, NULL,
      "visual_projection.weight", FLT_MAX);
  GstElement *element = make_clipseg (model, "precision", 1, NULL);
  GstBus *bus = gst_bus_new ();
  GstHarness *h;
  GstMessage *msg;
  guint i;

  gst_element_set_bus (element, bus);
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  for (i = 0; i < 4; i++) {
    GstBuffer *in = gst_buffer_new_allocate (NULL, 64 * 48 * 4, NULL);
    GstBuffer *out;

    gst_buffer_memset (in, 0, 40 + 50 * i, 64 * 48 * 4);
    GST_BUFFER_PTS (in) = i * GST_SECOND / 30;
    out = gst_harness_push_and_pull (h, in);
    fail_unless (out != NULL);
    fail_unless (gst_buffer_get_clipseg_meta (out) == NULL,
        "frame %u has masks from non-finite numbers", i);
    gst_buffer_unref (out);
  }
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning");
  gst_message_unref (msg);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL,
      "more than one warning");
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);

  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  g_free (model);
}

GST_END_TEST;

static GMutex log_lock;
static GCond log_cond;
static gboolean label_set_seen;

static void
watch_label_set (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  if (!g_str_has_prefix (gst_debug_message_get (message), "new label set"))
    return;
  g_mutex_lock (&log_lock);
  label_set_seen = TRUE;
  g_cond_broadcast (&log_cond);
  g_mutex_unlock (&log_lock);
}

/* A state change to NULL while 4000 names under 80 templates encode (a
 * first step of 4000 prompts takes many seconds with ViT-B/16's text tower)
 * returns within about a second. */
GST_START_TEST (test_null_while_labels_encode)
{
  GString *names = g_string_new ("thing 0");
  GstHarness *h;
  GstBuffer *in;
  gint64 start, stopped;
  gint i;

  for (i = 1; i < 4000; i++)
    g_string_append_printf (names, "|thing %d", i);
  h = gst_harness_new_with_element (make_clipseg (TEST_TEXT_MODEL, "labels",
          names->str, "templates", "imagenet80", NULL), "sink", "src");
  gst_object_unref (h->element);
  gst_util_set_object_arg (G_OBJECT (h->element), "processing", "latest");
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  gst_debug_set_threshold_for_name ("clipseg", GST_LEVEL_INFO);
  gst_debug_add_log_function (watch_label_set, NULL, NULL);

  in = gst_buffer_new_allocate (NULL, 64 * 48 * 4, NULL);
  gst_buffer_memset (in, 0, 100, 64 * 48 * 4);
  gst_buffer_unref (gst_harness_push_and_pull (h, in));
  g_mutex_lock (&log_lock);
  while (!label_set_seen)
    g_cond_wait (&log_cond, &log_lock);
  g_mutex_unlock (&log_lock);
  g_usleep (G_USEC_PER_SEC / 5);

  start = g_get_monotonic_time ();
  gst_element_set_state (h->element, GST_STATE_NULL);
  stopped = g_get_monotonic_time () - start;
  gst_debug_remove_log_function (watch_label_set);
  gst_debug_set_threshold_for_name ("clipseg", GST_LEVEL_FIXME);
  GST_INFO ("state change to NULL while labels encode: %" G_GINT64_FORMAT
      " us", stopped);
  /* a layer of a step's chunk takes about 0.1 s alone, more on a shared
   * machine; without the abort the whole step took 16-80 s here */
  fail_unless (stopped < 3 * G_USEC_PER_SEC,
      "the state change took %" G_GINT64_FORMAT " us", stopped);

  gst_harness_teardown (h);
  g_string_free (names, TRUE);
}

GST_END_TEST;

GST_START_TEST (test_n_threads_clamped_with_a_warning)
{
  GstElement *element = make_clipseg (TEST_MODEL, NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  gint n_threads, usable = g_get_num_processors ();

  gst_element_set_bus (element, bus);
  g_object_set (element, "n-threads", 1024, NULL);
  g_object_get (element, "n-threads", &n_threads, NULL);
  fail_unless (n_threads >= 1 && n_threads <= usable, "n-threads reads %d",
      n_threads);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning");
  gst_message_unref (msg);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);

  g_object_set (element, "n-threads", 1, NULL);
  g_object_get (element, "n-threads", &n_threads, NULL);
  fail_unless_equals_int (n_threads, 1);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);

  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  gst_object_unref (element);
}

GST_END_TEST;

static Suite *
clipseg_files_suite (void)
{
  Suite *s = suite_create ("clipseg-files");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_special_labels_files_fail_at_once);
  tcase_add_test (tc, test_special_model_files_fail);
  tcase_add_test (tc, test_too_many_prompts_fail_at_once);
  tcase_add_test (tc, test_overflowing_model_warns_once);
  tcase_add_test (tc, test_null_while_labels_encode);
  tcase_add_test (tc, test_n_threads_clamped_with_a_warning);
  return s;
}

int
main (int argc, char **argv)
{
  int status;
  gchar *argv_rm[] = { (gchar *) "rm", (gchar *) "-rf", NULL, NULL };

  gst_check_init (&argc, &argv);
  dir = g_dir_make_tmp ("clipseg-files-XXXXXX", NULL);
  status = gst_check_run_suite (clipseg_files_suite (), "clipseg-files",
      __FILE__);
  argv_rm[2] = dir;
  g_spawn_sync (NULL, argv_rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
      NULL, NULL, NULL);
  g_free (dir);
  return status;
}
