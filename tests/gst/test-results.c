/* GStreamer clipseg
 * test-results.c: the result in forms applications read without the C
 * struct: the custom meta, the regions of interest.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <string.h>

#include "clipseg-check.h"
#include "gstclipsegresultmeta.h"

static const GstStructure *
get_result_structure (GstBuffer * buffer)
{
  GstCustomMeta *custom = gst_buffer_get_custom_meta (buffer,
      GST_CLIPSEG_RESULT_META_NAME);

  fail_unless (custom != NULL, "no " GST_CLIPSEG_RESULT_META_NAME);
  return gst_custom_meta_get_structure (custom);
}

G_GNUC_BEGIN_IGNORE_DEPRECATIONS;
static const GValue *
nth (const GstStructure * s, const gchar * field, guint i)
{
  const GValue *value = gst_structure_get_value (s, field);
  GValueArray *array;

  fail_unless (value != NULL && G_VALUE_HOLDS (value,
          g_value_array_get_type ()), "%s is not a GValueArray", field);
  array = g_value_get_boxed (value);
  fail_unless (i < array->n_values);
  return g_value_array_get_nth (array, i);
}

static guint
array_length (const GstStructure * s, const gchar * field)
{
  return ((GValueArray *) g_value_get_boxed (gst_structure_get_value (s,
              field)))->n_values;
}

G_GNUC_END_IGNORE_DEPRECATIONS;

/* The custom meta says what GstClipsegMeta says, label map included. */
static void
check_same_result (GstBuffer * buffer, GstClipsegMeta * meta)
{
  const GstStructure *s = get_result_structure (buffer);
  GstVideoMeta *vmeta = label_map_info (meta);
  gint width, height, stride, y;
  GstClockTime source;
  gboolean reused;
  gdouble ms;
  gsize size;
  guint8 *expected = copy_label_map (meta, &size);
  GstBuffer *map = NULL;
  GstMapInfo info;
  guint k;

  fail_unless (gst_structure_get (s, "width", G_TYPE_INT, &width,
          "height", G_TYPE_INT, &height, "stride", G_TYPE_INT, &stride,
          "source-timestamp", G_TYPE_UINT64, &source,
          "reused", G_TYPE_BOOLEAN, &reused, "inference-ms", G_TYPE_DOUBLE, &ms,
          "label-map", GST_TYPE_BUFFER, &map, NULL));
  fail_unless_equals_int (width, vmeta->width);
  fail_unless_equals_int (height, vmeta->height);
  fail_unless (stride >= width);
  fail_unless_equals_uint64 (source, meta->source_pts);
  fail_unless_equals_int (reused, meta->reused);
  fail_unless_equals_float (ms, meta->inference_time / (gdouble) GST_MSECOND);

  fail_unless_equals_int (array_length (s, "labels"), meta->n_labels);
  for (k = 0; k < meta->n_labels; k++) {
    fail_unless_equals_string (g_value_get_string (nth (s, "labels", k)),
        meta->labels[k]);
    fail_unless_equals_float (g_value_get_double (nth (s, "coverage", k)),
        meta->coverage[k]);
    fail_unless_equals_float (g_value_get_double (nth (s, "score", k)),
        meta->score[k]);
  }

  fail_unless (gst_buffer_get_size (map) >= (gsize) stride * height);
  gst_buffer_map (map, &info, GST_MAP_READ);
  for (y = 0; y < height; y++)
    fail_unless (memcmp (info.data + y * stride, expected + y * width,
            width) == 0, "row %d differs", y);
  gst_buffer_unmap (map, &info);
  gst_buffer_unref (map);
  g_free (expected);
}

GST_START_TEST (test_result_meta_matches_c_meta)
{
  GstHarness *h = harness_for (make_clipseg ("inference-interval", 2, NULL),
      RGBX_CAPS);
  GstBuffer *out, *copy;
  guint i;

  for (i = 0; i < 3; i++) {
    out = gst_harness_push_and_pull (h, make_frame (i, FALSE));
    check_same_result (out, get_meta (out));
    fail_unless_equals_int (get_meta (out)->reused, i == 1);
    copy = gst_buffer_copy (out);
    check_same_result (copy, get_meta (copy));
    gst_buffer_unref (copy);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* videoscale rescales the frame: the label map still covers all of it. */
GST_START_TEST (test_result_meta_survives_videoscale)
{
  GstHarness *h = gst_harness_new_parse ("clipseg model=" TEST_MODEL
      " labels=\"" LABELS "\" templates=single background=\"\" resolution=48"
      " processing=sync ! videoscale ! capsfilter caps=video/x-raw,width=128,height=96");
  GstBuffer *out;

  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  check_same_result (out, get_meta (out));
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Every region of interest is reachable by its id, the label index. */
GST_START_TEST (test_roi_ids_are_label_indices)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  GstClipsegMeta *meta = get_meta (out);
  gpointer state = NULL;
  GstMeta *m;
  guint n = 0, k;

  while ((m = gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
    GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
        "clipseg");

    fail_unless (roi->id > 0 && roi->id < (gint) meta->n_labels);
    fail_unless (meta->coverage[roi->id] > 0.0);
    fail_unless_equals_string (gst_structure_get_string (s, "label"),
        meta->labels[roi->id]);
    fail_unless (gst_buffer_get_video_region_of_interest_meta_id (out,
            roi->id) == roi);
    n++;
  }
  for (k = 1; k < meta->n_labels; k++)
    n -= meta->coverage[k] > 0.0;
  fail_unless_equals_int (n, 0);

  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
results_suite (void)
{
  Suite *s = suite_create ("clipseg-results");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_result_meta_matches_c_meta);
  tcase_add_test (tc, test_result_meta_survives_videoscale);
  tcase_add_test (tc, test_roi_ids_are_label_indices);
  return s;
}

GST_CHECK_MAIN (results);
