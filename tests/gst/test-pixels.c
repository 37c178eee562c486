/* GStreamer clipseg
 * test-pixels.c: the ORC frame conversion against a plain double-precision
 * bilinear resize (half-pixel centres, as cv2) and normalisation.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <gst/check/gstcheck.h>
#include <gst/video/video.h>

#include <math.h>

#include "clipseg-pixels.h"

static const gfloat mean[3] = { 0.48145466, 0.4578275, 0.40821073 };
static const gfloat std[3] = { 0.26862954, 0.26130258, 0.27577711 };

/* R, G, B in [0, 1] of source pixel (x, y), from the format's own unpacking
 * and the BT.601/709 equations for YUV. */
static void
reference_rgb (const GstVideoFrame * frame, gint x, gint y, gdouble rgb[3])
{
  const GstVideoInfo *info = &frame->info;
  guint32 *row = g_new (guint32, GST_VIDEO_FRAME_WIDTH (frame));
  const guint8 *px;
  gint offset[4], scale[4];
  gdouble kr, kb, yy, pb, pr;

  info->finfo->unpack_func (info->finfo, GST_VIDEO_PACK_FLAG_NONE, row,
      frame->data, info->stride, 0, y, GST_VIDEO_FRAME_WIDTH (frame));
  px = (const guint8 *) &row[x];
  if (GST_VIDEO_INFO_IS_RGB (info)) {
    rgb[0] = px[1] / 255.0;
    rgb[1] = px[2] / 255.0;
    rgb[2] = px[3] / 255.0;
  } else {
    fail_unless (gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix,
            &kr, &kb));
    gst_video_color_range_offsets (info->colorimetry.range, info->finfo,
        offset, scale);
    yy = (px[1] - offset[0]) / (gdouble) scale[0];
    pb = (px[2] - 128.0) / scale[1];
    pr = (px[3] - 128.0) / scale[2];
    rgb[0] = yy + 2.0 * (1.0 - kr) * pr;
    rgb[2] = yy + 2.0 * (1.0 - kb) * pb;
    rgb[1] = (yy - kr * rgb[0] - kb * rgb[2]) / (1.0 - kr - kb);
  }
  g_free (row);
}

static void
source_position (gint o, gint in, gint out, gint * i0, gint * i1, gdouble * w)
{
  gdouble f = MAX (0.0, (o + 0.5) * in / out - 0.5);

  *i0 = MIN ((gint) f, in - 1);
  *i1 = MIN (*i0 + 1, in - 1);
  *w = f - *i0;
}

static gdouble
check_format (GstVideoFormat format, gint in_w, gint in_h, gint out_w,
    gint out_h)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  GstClipsegPixels px = { 0, };
  GstBuffer *buffer;
  GstMapInfo map;
  gfloat *planes = g_new (gfloat, 3 * out_w * out_h);
  gdouble worst = 0.0;
  gsize i;
  gint x, y, c;

  gst_video_info_set_format (&info, format, in_w, in_h);
  buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (i = 0; i < map.size; i++)
    map.data[i] = (i * 37 + (i / 97) * 11) & 0xff;
  gst_buffer_unmap (buffer, &map);
  fail_unless (gst_video_frame_map (&frame, &info, buffer, GST_MAP_READ));

  gst_clipseg_pixels_init (&px, &info, out_w, out_h, mean, std);
  gst_clipseg_pixels_convert (&px, &frame, planes);

  for (y = 0; y < out_h; y++) {
    gint y0, y1, x0, x1;
    gdouble wy, wx;

    source_position (y, in_h, out_h, &y0, &y1, &wy);
    for (x = 0; x < out_w; x++) {
      gdouble a[3], b[3], cc[3], d[3];

      source_position (x, in_w, out_w, &x0, &x1, &wx);
      reference_rgb (&frame, x0, y0, a);
      reference_rgb (&frame, x1, y0, b);
      reference_rgb (&frame, x0, y1, cc);
      reference_rgb (&frame, x1, y1, d);
      for (c = 0; c < 3; c++) {
        gdouble v = (1 - wy) * ((1 - wx) * a[c] + wx * b[c]) +
            wy * ((1 - wx) * cc[c] + wx * d[c]);
        gdouble expected = (v - mean[c]) / std[c];
        gdouble got = planes[(c * out_h + y) * out_w + x];

        /* in units of one 8-bit level */
        worst = MAX (worst, fabs (got - expected) * std[c] * 255.0);
      }
    }
  }

  gst_clipseg_pixels_clear (&px);
  gst_video_frame_unmap (&frame);
  gst_buffer_unref (buffer);
  g_free (planes);
  return worst;
}

/* Fixed-point weights (1/256) cost up to two levels on this worst-case
 * pattern (neighbouring bytes far apart); the YUV->RGB matrix multiplies the
 * chroma part of that by up to 2.6. */
GST_START_TEST (test_convert_matches_bilinear_reference)
{
  const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB,
    GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12,
  };
  const gint sizes[][4] = {
    {97, 61, 40, 26},           /* downscale, odd sizes */
    {64, 48, 64, 48},           /* same size */
    {30, 20, 45, 30},           /* upscale */
  };
  guint f, s;

  for (f = 0; f < G_N_ELEMENTS (formats); f++) {
    for (s = 0; s < G_N_ELEMENTS (sizes); s++) {
      gdouble worst = check_format (formats[f], sizes[s][0], sizes[s][1],
          sizes[s][2], sizes[s][3]);

      GST_INFO ("%s %dx%d -> %dx%d: worst %.2f levels",
          gst_video_format_to_string (formats[f]), sizes[s][0], sizes[s][1],
          sizes[s][2], sizes[s][3], worst);
      fail_unless (worst < (GST_VIDEO_FORMAT_INFO_IS_YUV
              (gst_video_format_get_info (formats[f])) ? 6.0 : 2.0),
          "%s %dx%d -> %dx%d: off by %.2f levels",
          gst_video_format_to_string (formats[f]), sizes[s][0], sizes[s][1],
          sizes[s][2], sizes[s][3], worst);
    }
  }
}

GST_END_TEST;

static Suite *
pixels_suite (void)
{
  Suite *s = suite_create ("clipseg-pixels");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_convert_matches_bilinear_reference);
  return s;
}

GST_CHECK_MAIN (pixels);
