/* GStreamer clipseg
 * test-defaults.c: what a new user meets first: no labels, and labels the
 * shipped model does not know.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <string.h>

#include "clipseg-check.h"

/* The text of every warning on @bus, in order (transfer full). */
static GPtrArray *
pop_warnings (GstBus * bus)
{
  GPtrArray *texts = g_ptr_array_new_with_free_func (g_free);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING))) {
    GError *error;

    gst_message_parse_warning (msg, &error, NULL);
    g_ptr_array_add (texts, g_strdup (error->message));
    g_error_free (error);
    gst_message_unref (msg);
  }
  return texts;
}

static void
check_one_warning (GstBus * bus, const gchar * expected, const gchar * not)
{
  GPtrArray *texts = pop_warnings (bus);
  const gchar *text;

  fail_unless_equals_int (texts->len, 1);
  text = g_ptr_array_index (texts, 0);
  fail_unless (strstr (text, expected) != NULL, "%s", text);
  fail_unless (!not || strstr (text, not) == NULL, "%s", text);
  g_ptr_array_unref (texts);
}

static void
check_no_warning (GstBus * bus)
{
  GPtrArray *texts = pop_warnings (bus);

  fail_unless_equals_int (texts->len, 0);
  g_ptr_array_unref (texts);
}

static gboolean
same_bytes (GstBuffer * a, GstBuffer * b)
{
  GstMapInfo ma, mb;
  gboolean same;

  gst_buffer_map (a, &ma, GST_MAP_READ);
  gst_buffer_map (b, &mb, GST_MAP_READ);
  same = ma.size == mb.size && memcmp (ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap (a, &ma);
  gst_buffer_unmap (b, &mb);
  return same;
}

static GstHarness *
harness_with_bus (GstElement * element, GstBus * bus)
{
  gst_element_set_bus (element, bus);
  return harness_for (element, RGBX_CAPS);
}

static void
teardown (GstHarness * h, GstBus * bus)
{
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

/* No labels: frames pass untouched, one warning; labels set while playing
 * start the segmentation. */
GST_START_TEST (test_no_labels_pass_through_until_set)
{
  GstBus *bus = gst_bus_new ();
  GstHarness *h = harness_with_bus (make_clipseg ("labels", NULL,
          "overlay", 2 /* blend */ , NULL), bus);
  GstBuffer *in, *out;
  guint i;

  for (i = 0; i < 3; i++) {
    in = make_frame (i, FALSE);
    out = gst_harness_push_and_pull (h, gst_buffer_copy (in));
    fail_unless (gst_buffer_get_clipseg_meta (out) == NULL);
    fail_unless (same_bytes (in, out), "frame %u changed", i);
    gst_buffer_unref (in);
    gst_buffer_unref (out);
  }
  check_one_warning (bus, "No labels", NULL);

  g_object_set (h->element, "labels", LABELS, NULL);
  out = gst_harness_push_and_pull (h, make_frame (3, FALSE));
  fail_unless_equals_string (get_meta (out)->labels[1], "red");
  gst_buffer_unref (out);
  check_no_warning (bus);

  teardown (h, bus);
}

GST_END_TEST;

/* Invalid labels with none before: nothing to keep, frames still pass. */
GST_START_TEST (test_invalid_labels_without_previous_ones)
{
  GstBus *bus = gst_bus_new ();
  GstHarness *h = harness_with_bus (make_clipseg ("labels", NULL, NULL), bus);
  GstBuffer *out;

  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (0, FALSE)));
  check_one_warning (bus, "No labels", NULL);
  g_object_set (h->element, "labels", "red, ,blue", NULL);
  out = gst_harness_push_and_pull (h, make_frame (1, FALSE));
  fail_unless (gst_buffer_get_clipseg_meta (out) == NULL);
  check_one_warning (bus, "pass through untouched", "previous");

  gst_buffer_unref (out);
  teardown (h, bus);
}

GST_END_TEST;

/* The shipped model lists its twelve classes: other labels get one warning
 * per label set, naming the classes and the way to a real checkpoint. */
GST_START_TEST (test_unknown_labels_warn_once)
{
  GstBus *bus = gst_bus_new ();
  GstHarness *h = harness_with_bus (make_clipseg ("model", WORLD_MODEL,
          "labels", "grass, person|truck", "resolution", 64, NULL), bus);
  GPtrArray *texts;
  const gchar *text;
  guint i;

  for (i = 0; i < 3; i++)
    gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (i, FALSE)));
  texts = pop_warnings (bus);
  fail_unless_equals_int (texts->len, 1);
  text = g_ptr_array_index (texts, 0);
  fail_unless (strstr (text, "12 classes (sky, grass, water, sand, ball, box, "
          "star, tent, tree, car, house, boat)") != NULL, "%s", text);
  fail_unless (strstr (text, "\"person\", \"truck\"") != NULL, "%s", text);
  fail_unless (strstr (text, "scripts/get-model.sh") != NULL, "%s", text);
  g_ptr_array_unref (texts);

  g_object_set (h->element, "labels", "grass, water|sea", NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (3, FALSE)));
  check_one_warning (bus, "boat): \"sea\" will not be found", NULL);

  g_object_set (h->element, "labels", "grass, water", NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (4, FALSE)));
  check_no_warning (bus);

  teardown (h, bus);
}

GST_END_TEST;

/* A real CLIP lists no classes: any label is fine. */
GST_START_TEST (test_open_vocabulary_model_never_warns)
{
  GstBus *bus = gst_bus_new ();
  GstHarness *h = harness_with_bus (make_clipseg ("labels",
          "person, zebra|okapi", NULL), bus);

  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (0, FALSE)));
  check_no_warning (bus);
  teardown (h, bus);
}

GST_END_TEST;

static Suite *
defaults_suite (void)
{
  Suite *s = suite_create ("clipseg-defaults");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_no_labels_pass_through_until_set);
  tcase_add_test (tc, test_invalid_labels_without_previous_ones);
  tcase_add_test (tc, test_unknown_labels_warn_once);
  tcase_add_test (tc, test_open_vocabulary_model_never_warns);
  return s;
}

GST_CHECK_MAIN (defaults);
