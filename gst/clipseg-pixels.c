/* GStreamer clipseg
 * clipseg-pixels.c: video frames to the engine's normalised float planes.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * Every supported format is unpacked row by row to 32-bit ARGB or AYUV by
 * the video library; from there one path serves them all: two source rows
 * are interpolated, the result is resampled horizontally, and each output
 * plane is a weighted sum of the three colour components plus an offset.
 * The weights fold the YUV->RGB matrix and the normalisation into one step.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "clipseg-pixels.h"
#include "clipseg-orc.h"

#include <math.h>
#include <string.h>

/* Weights of R, G, B in [0, 1] as functions of the unpacked components, in
 * the form value = w[0] * c1 + w[1] * c2 + w[2] * c3 + w[3]. */
static void
gst_clipseg_pixels_rgb_weights (const GstVideoInfo * info, gfloat rgb[3][4])
{
  gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];
  gdouble kr, kb, kg, ys, cs, luma_off;
  gdouble pb[3], pr[3];
  gint c;

  memset (rgb, 0, sizeof (gfloat) * 12);
  if (GST_VIDEO_INFO_IS_RGB (info)) {
    for (c = 0; c < 3; c++)
      rgb[c][c] = 1.0 / 255.0;
    return;
  }

  if (!gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb)) {
    kr = 0.299;                 /* BT.601, what decoders assume when unsure */
    kb = 0.114;
  }
  kg = 1.0 - kr - kb;
  gst_video_color_range_offsets (info->colorimetry.range, info->finfo, offset,
      scale);
  ys = scale[0];
  cs = scale[1];
  luma_off = offset[0];

  /* R = Y' + 2 (1 - Kr) Pr, B = Y' + 2 (1 - Kb) Pb, G from Y' = Kr R + Kg G + Kb B */
  pb[0] = 0.0;
  pr[0] = 2.0 * (1.0 - kr);
  pb[1] = -2.0 * kb * (1.0 - kb) / kg;
  pr[1] = -2.0 * kr * (1.0 - kr) / kg;
  pb[2] = 2.0 * (1.0 - kb);
  pr[2] = 0.0;
  for (c = 0; c < 3; c++) {
    rgb[c][0] = 1.0 / ys;
    rgb[c][1] = pb[c] / cs;
    rgb[c][2] = pr[c] / cs;
    rgb[c][3] = -luma_off / ys - 128.0 * (pb[c] + pr[c]) / cs;
  }
}

void
gst_clipseg_pixels_init (GstClipsegPixels * px, const GstVideoInfo * info,
    gint out_width, gint out_height, const gfloat mean[3], const gfloat std[3])
{
  gint in_width = GST_VIDEO_INFO_WIDTH (info);
  gdouble scale = (gdouble) in_width / out_width;
  gdouble first = 0.5 * scale - 0.5;
  gint c, k;

  gst_clipseg_pixels_clear (px);
  px->info = *info;
  px->out_width = out_width;
  px->out_height = out_height;

  gst_clipseg_pixels_rgb_weights (info, px->coef);
  for (c = 0; c < 3; c++) {
    for (k = 0; k < 4; k++)
      px->coef[c][k] /= std[c];
    px->coef[c][3] -= mean[c] / std[c];
  }

  /* +1: the rows start with a copy of their first pixel. The resampler gets
   * the whole pixels as a pointer offset and only the fraction as offset. */
  px->x_start = (gint) floor (first + 1.0);
  px->x_offset = lrint ((first + 1.0 - px->x_start) * 65536.0);
  px->x_increment = lrint (scale * 65536.0);

  for (k = 0; k < 2; k++) {
    px->rows[k] = g_new (guint32, in_width + 2);
    px->row_index[k] = -1;
  }
  px->mixed = g_new (guint32, in_width + 2);
  px->resampled = g_new (guint32, out_width);
}

void
gst_clipseg_pixels_clear (GstClipsegPixels * px)
{
  g_clear_pointer (&px->rows[0], g_free);
  g_clear_pointer (&px->rows[1], g_free);
  g_clear_pointer (&px->mixed, g_free);
  g_clear_pointer (&px->resampled, g_free);
}

/* Source row @y unpacked, from the two-row cache when there; @keep is the
 * row the caller still needs, so it is not evicted. */
static const guint32 *
gst_clipseg_pixels_row (GstClipsegPixels * px, const GstVideoFrame * frame,
    gint y, gint keep)
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint slot;

  for (slot = 0; slot < 2; slot++)
    if (px->row_index[slot] == y)
      return px->rows[slot];

  slot = px->row_index[0] == keep ? 1 : 0;
  finfo->unpack_func (finfo, GST_VIDEO_PACK_FLAG_NONE, px->rows[slot] + 1,
      frame->data, frame->info.stride, 0, y, width);
  /* Edge pixels repeated on both sides: sampling positions left of the first
   * pixel centre or right of the last one clamp to the edge, as in cv2, and
   * the resampler may read one pixel past the one it lands on. */
  px->rows[slot][0] = px->rows[slot][1];
  px->rows[slot][width + 1] = px->rows[slot][width];
  px->row_index[slot] = y;

  return px->rows[slot];
}

void
gst_clipseg_pixels_convert (GstClipsegPixels * px, const GstVideoFrame * frame,
    gfloat * planes)
{
  gint in_width = GST_VIDEO_FRAME_WIDTH (frame);
  gint in_height = GST_VIDEO_FRAME_HEIGHT (frame);
  gsize plane_size = (gsize) px->out_width * px->out_height;
  gdouble scale = (gdouble) in_height / px->out_height;
  gint y, c;

  px->row_index[0] = px->row_index[1] = -1;

  for (y = 0; y < px->out_height; y++) {
    gdouble fy = MAX (0.0, (y + 0.5) * scale - 0.5);
    gint y0 = MIN ((gint) fy, in_height - 1);
    gint y1 = MIN (y0 + 1, in_height - 1);
    gint weight = lrint ((fy - y0) * 256.0);
    const guint32 *row0 = gst_clipseg_pixels_row (px, frame, y0, y1);
    const guint32 *src = row0;

    if (weight > 0 && y1 != y0) {
      const guint32 *row1 = gst_clipseg_pixels_row (px, frame, y1, y0);

      gst_clipseg_orc_lerp_u8 ((guint8 *) px->mixed, (const guint8 *) row0,
          (const guint8 *) row1, 256 - weight, weight, (in_width + 2) * 4);
      src = px->mixed;
    }
    gst_clipseg_orc_resample_bilinear_u32 ((guint8 *) px->resampled,
        (const guint8 *) (src + px->x_start), px->x_offset, px->x_increment,
        px->out_width);

    for (c = 0; c < 3; c++)
      gst_clipseg_orc_pixel_to_plane (planes + c * plane_size +
          y * px->out_width, px->resampled, px->coef[c][0], px->coef[c][1],
          px->coef[c][2], px->coef[c][3], px->out_width);
  }
}
