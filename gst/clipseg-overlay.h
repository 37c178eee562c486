/* GStreamer clipseg
 * clipseg-overlay.h: colourised label maps, blended or as overlay compositions.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_OVERLAY_H__
#define __GST_CLIPSEG_OVERLAY_H__

#include <gst/video/video.h>

#include "clipseg-infer.h"

G_BEGIN_DECLS

/* A per-label colour chosen by the user: @key is a label name or index. */
typedef struct
{
  gchar *key;
  guint32 rgb;
} GstClipsegColor;

/* Parses "person=#ff0000, 2=00ff00" (hex RGB with an optional '#' or "0x").
 * Returns the entries (free with gst_clipseg_colors_free) or NULL with
 * @error. */
GArray *gst_clipseg_colors_parse (const gchar * text, GError ** error);
void gst_clipseg_colors_free (GArray * colors);

/* A colors property's setter: replaces *@colors and *@text by @value's
 * colours, or keeps them and returns FALSE with @error for invalid @value
 * (which the caller posts as a warning once it released its object lock). */
gboolean gst_clipseg_colors_set (const gchar * value, GArray ** colors,
    gchar ** text, GError ** error);

/* ARGB per label: label 0 transparent, the others from a spread-hue palette
 * or @colors, with alpha @alpha (0..1). */
void gst_clipseg_palette_fill (guint32 * palette, const gchar * const *labels,
    guint n_labels, const GArray * colors, gdouble alpha);

/* Caches the colourised map of one result for one palette. */
typedef struct
{
  GstClipsegResult *result;     /* the key, with the palette's cookie */
  guint cookie;

  GstVideoInfo info;            /* blend planes, in the frame's layout */
  guint8 *colour[GST_VIDEO_MAX_PLANES];
  guint8 *alpha[GST_VIDEO_MAX_PLANES];
  gint stride[GST_VIDEO_MAX_PLANES];

  GstVideoOverlayComposition *composition;
} GstClipsegOverlay;

void gst_clipseg_overlay_clear (GstClipsegOverlay * overlay);

/* Blends the colourised map of @result into @frame; only pixels with a label
 * other than 0 change. @cookie identifies the palette. */
void gst_clipseg_overlay_blend (GstClipsegOverlay * overlay,
    GstVideoFrame * frame, const GstClipsegResult * result,
    const guint32 * palette, guint cookie);

/* (transfer none): an ARGB rectangle of the colourised map covering a frame
 * of @width x @height. */
GstVideoOverlayComposition *gst_clipseg_overlay_get_composition
    (GstClipsegOverlay * overlay, const GstClipsegResult * result,
    const guint32 * palette, guint cookie, gint width, gint height);

G_END_DECLS

#endif /* __GST_CLIPSEG_OVERLAY_H__ */
