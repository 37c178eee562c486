/* GStreamer clipseg
 * test-outputs.c: the elements that turn clipseg's results into streams and
 * files: clipsegmask and clipsegjsonsink.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "clipseg-check.h"

/* Frames 0..n-1 through clipseg, with their results. */
static GstBuffer **
segmented_frames (guint n)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBuffer **out = g_new0 (GstBuffer *, n + 1);
  guint i;

  for (i = 0; i < n; i++)
    out[i] = gst_harness_push_and_pull (h, make_frame (i, FALSE));
  gst_harness_teardown (h);
  return out;
}

static void
free_frames (GstBuffer ** frames)
{
  guint i;

  for (i = 0; frames[i]; i++)
    gst_buffer_unref (frames[i]);
  g_free (frames);
}

static GstHarness *
mask_harness (const gchar * properties)
{
  gchar *desc = g_strdup_printf ("clipsegmask %s", properties);
  GstHarness *h = gst_harness_new_parse (desc);

  g_free (desc);
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  return h;
}

static void
check_caps (GstHarness * h, const gchar * format, gint width, gint height)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstVideoInfo info;

  fail_unless (caps != NULL);
  fail_unless (gst_video_info_from_caps (&info, caps));
  fail_unless_equals_string (gst_video_format_to_string
      (GST_VIDEO_INFO_FORMAT (&info)), format);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&info), width);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&info), height);
  fail_unless_equals_int (GST_VIDEO_INFO_FPS_N (&info), 30);
  gst_caps_unref (caps);
}

/* Pixel (x, y) of a GRAY8 or RGB output buffer of @width pixels a row. */
static const guint8 *
pixel (GstMapInfo * map, gint width, gint bpp, gint x, gint y)
{
  gint stride = GST_ROUND_UP_4 (width * bpp);

  return map->data + y * stride + x * bpp;
}

/* GRAY8 at the map's size: the label map itself. */
GST_START_TEST (test_mask_gray8_is_the_label_map)
{
  GstBuffer **frames = segmented_frames (2);
  GstHarness *h = mask_harness ("");
  GstClipsegMeta *meta = get_meta (frames[1]);
  GstVideoMeta *vmeta = label_map_info (meta);
  GstBuffer *out;
  GstMapInfo map;
  gsize size;
  guint8 *expected = copy_label_map (meta, &size);
  gint x, y;

  gst_buffer_unref (gst_harness_push_and_pull (h, gst_buffer_ref (frames[0])));
  out = gst_harness_push_and_pull (h, gst_buffer_ref (frames[1]));
  check_caps (h, "GRAY8", vmeta->width, vmeta->height);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), GST_BUFFER_PTS (frames[1]));
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (y = 0; y < (gint) vmeta->height; y++)
    for (x = 0; x < (gint) vmeta->width; x++)
      fail_unless_equals_int (*pixel (&map, vmeta->width, 1, x, y),
          expected[y * vmeta->width + x]);
  gst_buffer_unmap (out, &map);

  gst_buffer_unref (out);
  g_free (expected);
  gst_harness_teardown (h);
  free_frames (frames);
}

GST_END_TEST;

/* At the frame's size: nearest neighbour, as gst_clipseg_meta_label_at. */
GST_START_TEST (test_mask_frame_size_is_nearest)
{
  GstBuffer **frames = segmented_frames (1);
  GstHarness *h = mask_harness ("size=frame");
  GstClipsegMeta *meta = get_meta (frames[0]);
  GstBuffer *out;
  GstMapInfo map;
  gint x, y;

  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBx,width=100,height=70,framerate=30/1");
  meta->region.w = 100;
  meta->region.h = 70;
  out = gst_harness_push_and_pull (h, gst_buffer_ref (frames[0]));
  check_caps (h, "GRAY8", 100, 70);
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (y = 0; y < 70; y++)
    for (x = 0; x < 100; x++)
      fail_unless_equals_int (*pixel (&map, 100, 1, x, y),
          gst_clipseg_meta_label_at (meta, x, y));
  gst_buffer_unmap (out, &map);

  gst_buffer_unref (out);
  gst_harness_teardown (h);
  free_frames (frames);
}

GST_END_TEST;

/* RGB: label 0 black, each label one colour of its own. */
GST_START_TEST (test_mask_rgb_colours_labels)
{
  GstBuffer **frames = segmented_frames (1);
  GstHarness *h = mask_harness ("format=rgb colors=\"red=#ff0000\"");
  GstClipsegMeta *meta = get_meta (frames[0]);
  GstVideoMeta *vmeta = label_map_info (meta);
  guint32 colour[256];
  gboolean seen[256] = { FALSE, };
  GstBuffer *out;
  GstMapInfo map;
  gsize size;
  guint8 *labels = copy_label_map (meta, &size);
  gint x, y;
  guint k, j;

  out = gst_harness_push_and_pull (h, gst_buffer_ref (frames[0]));
  check_caps (h, "RGB", vmeta->width, vmeta->height);
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (y = 0; y < (gint) vmeta->height; y++) {
    for (x = 0; x < (gint) vmeta->width; x++) {
      const guint8 *p = pixel (&map, vmeta->width, 3, x, y);
      guint8 label = labels[y * vmeta->width + x];
      guint32 rgb = p[0] << 16 | p[1] << 8 | p[2];

      if (seen[label])
        fail_unless_equals_int (rgb, colour[label]);
      seen[label] = TRUE;
      colour[label] = rgb;
    }
  }
  gst_buffer_unmap (out, &map);
  for (k = 0; k < meta->n_labels; k++) {
    if (!seen[k])
      continue;
    fail_unless ((colour[k] == 0) == (k == 0), "label %u colour %06x", k,
        colour[k]);
    for (j = 0; j < k; j++)
      fail_unless (!seen[j] || colour[j] != colour[k]);
  }
  if (seen[1])
    fail_unless_equals_int (colour[1], 0xff0000);

  g_free (labels);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  free_frames (frames);
}

GST_END_TEST;

/* A frame without a result is all 0, at the frame's size before any map. */
GST_START_TEST (test_mask_without_result_is_zero)
{
  GstHarness *h = mask_harness ("");
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  GstMapInfo map;
  gint x, y;

  check_caps (h, "GRAY8", WIDTH, HEIGHT);
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (y = 0; y < HEIGHT; y++)
    for (x = 0; x < WIDTH; x++)
      fail_unless_equals_int (*pixel (&map, WIDTH, 1, x, y), 0);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- clipsegjsonsink ---------------------------------------------------- */

static gchar **
run_json_sink (GstBuffer ** frames, const gchar * dir)
{
  gchar *location = g_build_filename (dir, "frames.jsonl", NULL);
  gchar *labels = g_build_filename (dir, "labels.txt", NULL);
  GstElement *sink = gst_element_factory_make ("clipsegjsonsink", NULL);
  GstHarness *h;
  gchar *text, **lines;
  guint i;

  fail_unless (sink != NULL);
  g_object_set (sink, "location", location, "labels-location", labels, NULL);
  h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  for (i = 0; frames[i]; i++)
    fail_unless_equals_int (gst_harness_push (h, gst_buffer_ref (frames[i])),
        GST_FLOW_OK);
  gst_harness_teardown (h);

  fail_unless (g_file_get_contents (location, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  g_free (text);
  fail_unless (g_file_get_contents (labels, &text, NULL, NULL));
  fail_unless_equals_string (text, "background\nred\ngreen\nblue");
  g_free (text);
  g_remove (location);
  g_remove (labels);
  g_free (location);
  g_free (labels);
  return lines;
}

/* One object per frame, the result's figures; coverage sums to 1. */
GST_START_TEST (test_json_lines_one_per_frame)
{
  GstBuffer **frames = segmented_frames (3);
  gchar *dir = g_dir_make_tmp ("clipseg-json-XXXXXX", NULL);
  gchar **lines;
  guint i, k;

  /* the last frame comes without a result */
  gst_buffer_remove_meta (frames[2], (GstMeta *) get_meta (frames[2]));
  lines = run_json_sink (frames, dir);
  fail_unless_equals_int (g_strv_length (lines), 4);
  fail_unless_equals_string (lines[3], "");
  for (i = 0; i < 3; i++) {
    JsonParser *parser = json_parser_new ();
    JsonObject *o;
    gdouble total = 0.0;

    fail_unless (json_parser_load_from_data (parser, lines[i], -1, NULL),
        "%s", lines[i]);
    o = json_node_get_object (json_parser_get_root (parser));
    fail_unless_equals_int (json_object_get_int_member (o, "frame"), i);
    fail_unless_equals_int (json_object_get_int_member (o, "pts"),
        GST_BUFFER_PTS (frames[i]));
    fail_unless_equals_int (json_object_get_int_member (o, "duration"),
        FRAME_DURATION);
    fail_unless_equals_int (json_object_get_boolean_member (o, "inferred"),
        i < 2);
    fail_unless (!json_object_get_boolean_member (o, "reused"));
    if (i < 2) {
      GstClipsegMeta *meta = get_meta (frames[i]);
      JsonArray *labels = json_object_get_array_member (o, "labels");
      JsonArray *coverage = json_object_get_array_member (o, "coverage");
      JsonArray *score = json_object_get_array_member (o, "score");

      fail_unless_equals_int (json_object_get_int_member (o, "source-pts"),
          meta->source_pts);
      fail_unless (json_object_get_double_member (o, "inference-ms") > 0.0);
      fail_unless_equals_int (json_array_get_length (labels), 4);
      for (k = 0; k < 4; k++) {
        fail_unless_equals_string (json_array_get_string_element (labels, k),
            meta->labels[k]);
        fail_unless_equals_float (json_array_get_double_element (coverage, k),
            meta->coverage[k]);
        fail_unless_equals_float (json_array_get_double_element (score, k),
            meta->score[k]);
        total += meta->coverage[k];
      }
      fail_unless (fabs (total - 1.0) < 1e-9);
    } else {
      fail_unless (!json_object_has_member (o, "labels"));
    }
    g_object_unref (parser);
  }

  g_strfreev (lines);
  g_rmdir (dir);
  g_free (dir);
  free_frames (frames);
}

GST_END_TEST;

GST_START_TEST (test_json_sink_unwritable_location_fails)
{
  GstElement *sink = gst_element_factory_make ("clipsegjsonsink", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;

  g_object_set (sink, "location", "/nonexistent/dir/frames.jsonl", NULL);
  gst_element_set_bus (sink, bus);
  fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = pop_error (bus, GST_MESSAGE_ERROR);
  gst_message_unref (msg);
  gst_element_set_state (sink, GST_STATE_NULL);
  gst_element_set_bus (sink, NULL);
  gst_object_unref (bus);
  gst_object_unref (sink);
}

GST_END_TEST;

static Suite *
outputs_suite (void)
{
  Suite *s = suite_create ("clipseg-outputs");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_mask_gray8_is_the_label_map);
  tcase_add_test (tc, test_mask_frame_size_is_nearest);
  tcase_add_test (tc, test_mask_rgb_colours_labels);
  tcase_add_test (tc, test_mask_without_result_is_zero);
  tcase_add_test (tc, test_json_lines_one_per_frame);
  tcase_add_test (tc, test_json_sink_unwritable_location_fails);
  return s;
}

GST_CHECK_MAIN (outputs);
