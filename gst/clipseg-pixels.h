/* GStreamer clipseg
 * clipseg-pixels.h: video frames to the engine's normalised float planes.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_PIXELS_H__
#define __GST_CLIPSEG_PIXELS_H__

#include <gst/video/video.h>

G_BEGIN_DECLS

/* Bilinear resize (half-pixel centres, no antialiasing, as SCLIP's cv2
 * resize) of any 8-bit RGB or YUV frame to [3, out_height, out_width] RGB
 * planes holding (x / 255 - mean) / std. */
typedef struct
{
  GstVideoInfo info;
  gint out_width, out_height;
  gfloat coef[3][4];            /* per plane: weights of components 1..3, offset */
  gint x_start;                 /* row pixel output column 0 starts from */
  gint x_offset, x_increment;   /* 16.16: fraction past x_start, step */
  guint32 *rows[2];             /* unpacked source rows, edge pixels repeated */
  gint row_index[2];
  guint32 *mixed;               /* the two rows interpolated */
  guint32 *resampled;           /* mixed, resized to out_width */
} GstClipsegPixels;

void gst_clipseg_pixels_init (GstClipsegPixels * px, const GstVideoInfo * info,
    gint out_width, gint out_height, const gfloat mean[3], const gfloat std[3]);
void gst_clipseg_pixels_clear (GstClipsegPixels * px);
void gst_clipseg_pixels_convert (GstClipsegPixels * px,
    const GstVideoFrame * frame, gfloat * planes);

G_END_DECLS

#endif /* __GST_CLIPSEG_PIXELS_H__ */
