/* An application built against the installed meta library alone (tests/install):
 * attaches a clipseg result to a buffer as the element does and reads it back
 * through the C meta and the custom meta. Prints "ok" when all agrees.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <gst/clipseg/gstclipsegmeta.h>
#include <gst/clipseg/gstclipsegresultmeta.h>

int
main (int argc, char **argv)
{
  static const gchar *labels[] = { "background", "sky", NULL };
  static const gdouble coverage[] = { 0.75, 0.25 }, score[] = { 0.5, 0.9 };
  gsize offset[GST_VIDEO_MAX_PLANES] = { 0, };
  gint stride[GST_VIDEO_MAX_PLANES] = { 4, };
  guint8 pixels[] = { 0, 0, 1, 0, 0, 0, 0, 0 };
  GstBuffer *frame, *map;
  GstClipsegMeta *meta;
  GstCustomMeta *custom;
  gint width = 0;

  gst_init (&argc, &argv);
  map = gst_buffer_new_memdup (pixels, sizeof (pixels));
  gst_buffer_add_video_meta_full (map, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_GRAY8, 4, 2, 1, offset, stride);
  frame = gst_buffer_new ();
  meta = gst_buffer_add_clipseg_meta (frame, map, labels, coverage, score, 40,
      20);
  gst_buffer_add_clipseg_result_meta (frame, meta);

  custom = gst_buffer_get_custom_meta (frame, GST_CLIPSEG_RESULT_META_NAME);
  gst_structure_get_int (gst_custom_meta_get_structure (custom), "width",
      &width);
  if (gst_clipseg_meta_label_at (gst_buffer_get_clipseg_meta (frame), 25,
          5) != 1 || width != 4) {
    g_printerr ("label %d, width %d\n",
        gst_clipseg_meta_label_at (meta, 25, 5), width);
    return 1;
  }
  g_print ("ok\n");
  gst_buffer_unref (frame);
  gst_buffer_unref (map);
  return 0;
}
