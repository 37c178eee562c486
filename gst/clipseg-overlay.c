/* GStreamer clipseg
 * clipseg-overlay.c: colourised label maps, blended or as overlay compositions.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * Blending works on bytes so that one ORC kernel serves every format: for
 * each plane of the frame the overlay keeps a plane of colour bytes and a
 * plane of alpha bytes in the same layout (built once per result and
 * palette), and every frame is then d = (d * (255 - a) + c * a) / 255.
 * Bytes of unlabelled pixels, and padding or alpha bytes, have a = 0 and so
 * stay exactly as they were.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "clipseg-overlay.h"
#include "clipseg-orc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- colours ------------------------------------------------------------ */

static gboolean
gst_clipseg_color_parse_rgb (const gchar * text, guint32 * rgb)
{
  gchar *end;
  guint64 value;

  if (g_str_has_prefix (text, "#"))
    text += 1;
  else if (g_str_has_prefix (text, "0x") || g_str_has_prefix (text, "0X"))
    text += 2;
  if (strlen (text) != 6 || !g_ascii_isxdigit (text[0]))
    return FALSE;
  value = g_ascii_strtoull (text, &end, 16);
  if (*end != '\0')
    return FALSE;
  *rgb = value;
  return TRUE;
}

static void
gst_clipseg_color_clear (GstClipsegColor * color)
{
  g_free (color->key);
}

GArray *
gst_clipseg_colors_parse (const gchar * text, GError ** error)
{
  GArray *colors = g_array_new (FALSE, FALSE, sizeof (GstClipsegColor));
  gchar **entries;
  guint i;

  g_array_set_clear_func (colors, (GDestroyNotify) gst_clipseg_color_clear);
  if (!text)
    return colors;

  entries = g_strsplit (text, ",", -1);
  for (i = 0; entries[i]; i++) {
    gchar **kv;
    GstClipsegColor color;

    if (*g_strstrip (entries[i]) == '\0')
      continue;
    kv = g_strsplit (entries[i], "=", 2);
    if (!kv[1] || *g_strstrip (kv[0]) == '\0'
        || !gst_clipseg_color_parse_rgb (g_strstrip (kv[1]), &color.rgb)) {
      g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
          "colour entry %u \"%s\" is not LABEL=RRGGBB", i + 1, entries[i]);
      g_strfreev (kv);
      g_strfreev (entries);
      g_array_unref (colors);
      return NULL;
    }
    color.key = g_strdup (kv[0]);
    g_array_append_val (colors, color);
    g_strfreev (kv);
  }
  g_strfreev (entries);

  return colors;
}

void
gst_clipseg_colors_free (GArray * colors)
{
  g_array_unref (colors);
}

gboolean
gst_clipseg_colors_set (const gchar * value, GArray ** colors, gchar ** text,
    GError ** error)
{
  GArray *parsed = gst_clipseg_colors_parse (value, error);

  if (!parsed)
    return FALSE;
  g_clear_pointer (colors, gst_clipseg_colors_free);
  *colors = parsed;
  g_free (*text);
  *text = g_strdup (value);
  return TRUE;
}

/* Golden-angle hue steps keep neighbouring labels far apart in colour. */
static guint32
gst_clipseg_palette_default (guint label)
{
  gdouble h = fmod (label * 0.6180339887, 1.0) * 6.0;
  gdouble s = 0.85, v = 0.95;
  gint i = (gint) h;
  gdouble f = h - i;
  gdouble p = v * (1.0 - s), q = v * (1.0 - s * f), t =
      v * (1.0 - s * (1.0 - f));
  gdouble rgb[6][3] = {
    {v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}
  };

  return (lrint (rgb[i][0] * 255.0) << 16) | (lrint (rgb[i][1] * 255.0) << 8)
      | lrint (rgb[i][2] * 255.0);
}

static gboolean
gst_clipseg_color_matches (const GstClipsegColor * color, const gchar * label,
    guint index)
{
  gchar *end;
  guint64 key_index;

  if (g_strcmp0 (color->key, label) == 0)
    return TRUE;
  key_index = g_ascii_strtoull (color->key, &end, 10);
  return *end == '\0' && end != color->key && key_index == index;
}

void
gst_clipseg_palette_fill (guint32 * palette, const gchar * const *labels,
    guint n_labels, const GArray * colors, gdouble alpha)
{
  guint32 a = (guint32) lrint (CLAMP (alpha, 0.0, 1.0) * 255.0) << 24;
  guint k, i;

  palette[0] = 0;
  for (k = 1; k < n_labels; k++) {
    guint32 rgb = gst_clipseg_palette_default (k);

    for (i = 0; colors && i < colors->len; i++) {
      const GstClipsegColor *color =
          &g_array_index (colors, GstClipsegColor, i);

      if (gst_clipseg_color_matches (color, labels[k], k))
        rgb = color->rgb;
    }
    palette[k] = a | rgb;
  }
}

/* ---- blending ----------------------------------------------------------- */

/* The palette in the frame's components (R, G, B or Y, U, V), per label. */
static void
gst_clipseg_overlay_components (const GstVideoInfo * info,
    const guint32 * palette, guint n_labels, guint8 (*comp)[3])
{
  gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];
  gdouble kr = 0.299, kb = 0.114;
  guint k;

  if (!GST_VIDEO_INFO_IS_RGB (info)) {
    gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb);
    gst_video_color_range_offsets (info->colorimetry.range, info->finfo,
        offset, scale);
  }

  for (k = 0; k < n_labels; k++) {
    gdouble r = ((palette[k] >> 16) & 0xff) / 255.0;
    gdouble g = ((palette[k] >> 8) & 0xff) / 255.0;
    gdouble b = (palette[k] & 0xff) / 255.0;
    gdouble y;

    if (GST_VIDEO_INFO_IS_RGB (info)) {
      comp[k][0] = lrint (r * 255.0);
      comp[k][1] = lrint (g * 255.0);
      comp[k][2] = lrint (b * 255.0);
      continue;
    }
    y = kr * r + (1.0 - kr - kb) * g + kb * b;
    comp[k][0] = CLAMP (lrint (offset[0] + scale[0] * y), 0, 255);
    comp[k][1] = CLAMP (lrint (128 + scale[1] * (b - y) / (2.0 * (1.0 - kb))),
        0, 255);
    comp[k][2] = CLAMP (lrint (128 + scale[2] * (r - y) / (2.0 * (1.0 - kr))),
        0, 255);
  }
}

/* Writes colour and alpha of one colour component into its plane bytes;
 * a subsampled component takes the label of its top-left frame pixel. */
static void
gst_clipseg_overlay_fill_component (GstClipsegOverlay * overlay, gint c,
    const GstClipsegResult * result, const guint32 * palette, guint8 (*comp)[3])
{
  const GstVideoInfo *info = &overlay->info;
  const GstVideoFormatInfo *finfo = info->finfo;
  gint plane = GST_VIDEO_INFO_COMP_PLANE (info, c);
  gint poffset = GST_VIDEO_INFO_COMP_POFFSET (info, c);
  gint pstride = GST_VIDEO_INFO_COMP_PSTRIDE (info, c);
  gint width = GST_VIDEO_INFO_WIDTH (info);
  gint height = GST_VIDEO_INFO_HEIGHT (info);
  gint cx, cy;

  for (cy = 0; cy < GST_VIDEO_INFO_COMP_HEIGHT (info, c); cy++) {
    gint fy = MIN (cy << GST_VIDEO_FORMAT_INFO_H_SUB (finfo, c), height - 1);
    const guint8 *map_row =
        result->map + (gsize) (fy * (gint64) result->height / height) *
        result->width;
    guint8 *colour = overlay->colour[plane] + cy * overlay->stride[plane];
    guint8 *alpha = overlay->alpha[plane] + cy * overlay->stride[plane];

    for (cx = 0; cx < GST_VIDEO_INFO_COMP_WIDTH (info, c); cx++) {
      gint fx = MIN (cx << GST_VIDEO_FORMAT_INFO_W_SUB (finfo, c), width - 1);
      guint8 label = map_row[fx * (gint64) result->width / width];
      gint i = cx * pstride + poffset;

      colour[i] = comp[label][c];
      alpha[i] = palette[label] >> 24;
    }
  }
}

static void
gst_clipseg_overlay_build_planes (GstClipsegOverlay * overlay,
    const GstClipsegResult * result, const guint32 * palette)
{
  const GstVideoInfo *info = &overlay->info;
  guint8 (*comp)[3] = g_malloc_n (result->n_labels, sizeof (*comp));
  guint p;
  gint c;

  for (p = 0; p < GST_VIDEO_INFO_N_PLANES (info); p++) {
    gsize size = GST_VIDEO_INFO_PLANE_STRIDE (info, p) *
        (gsize) GST_VIDEO_INFO_COMP_HEIGHT (info, p ? 1 : 0);

    overlay->stride[p] = GST_VIDEO_INFO_PLANE_STRIDE (info, p);
    overlay->colour[p] = g_malloc0 (size);
    overlay->alpha[p] = g_malloc0 (size);
  }

  gst_clipseg_overlay_components (info, palette, result->n_labels, comp);
  for (c = 0; c < 3; c++)
    gst_clipseg_overlay_fill_component (overlay, c, result, palette, comp);
  g_free (comp);
}

static void
gst_clipseg_overlay_clear_planes (GstClipsegOverlay * overlay)
{
  gint p;

  for (p = 0; p < GST_VIDEO_MAX_PLANES; p++) {
    g_clear_pointer (&overlay->colour[p], g_free);
    g_clear_pointer (&overlay->alpha[p], g_free);
  }
}

void
gst_clipseg_overlay_clear (GstClipsegOverlay * overlay)
{
  gst_clipseg_overlay_clear_planes (overlay);
  g_clear_pointer (&overlay->composition, gst_video_overlay_composition_unref);
  g_clear_pointer (&overlay->result, gst_clipseg_result_unref);
}

/* Drops what was built for another result or palette. */
static void
gst_clipseg_overlay_update_key (GstClipsegOverlay * overlay,
    const GstClipsegResult * result, guint cookie)
{
  if (overlay->result == result && overlay->cookie == cookie)
    return;

  gst_clipseg_overlay_clear (overlay);
  overlay->result = gst_clipseg_result_ref ((GstClipsegResult *) result);
  overlay->cookie = cookie;
}

void
gst_clipseg_overlay_blend (GstClipsegOverlay * overlay, GstVideoFrame * frame,
    const GstClipsegResult * result, const guint32 * palette, guint cookie)
{
  const GstVideoInfo *info = &frame->info;
  guint p;

  gst_clipseg_overlay_update_key (overlay, result, cookie);
  if (overlay->colour[0] && (GST_VIDEO_INFO_FORMAT (&overlay->info) !=
          GST_VIDEO_INFO_FORMAT (info)
          || GST_VIDEO_INFO_WIDTH (&overlay->info) !=
          GST_VIDEO_INFO_WIDTH (info)
          || GST_VIDEO_INFO_HEIGHT (&overlay->info) !=
          GST_VIDEO_INFO_HEIGHT (info)))
    gst_clipseg_overlay_clear_planes (overlay);
  if (!overlay->colour[0]) {
    gst_video_info_set_interlaced_format (&overlay->info,
        GST_VIDEO_INFO_FORMAT (info), GST_VIDEO_INTERLACE_MODE_PROGRESSIVE,
        GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info));
    overlay->info.colorimetry = info->colorimetry;
    gst_clipseg_overlay_build_planes (overlay, result, palette);
  }

  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (frame); p++) {
    gint c = p ? 1 : 0;         /* the first component stored in plane p */

    gst_clipseg_orc_blend_u8 (GST_VIDEO_FRAME_PLANE_DATA (frame, p),
        GST_VIDEO_FRAME_PLANE_STRIDE (frame, p), overlay->colour[p],
        overlay->stride[p], overlay->alpha[p], overlay->stride[p],
        GST_VIDEO_FRAME_COMP_WIDTH (frame, c) *
        GST_VIDEO_FRAME_COMP_PSTRIDE (frame, c),
        GST_VIDEO_FRAME_COMP_HEIGHT (frame, c));
  }
}

/* ---- composition -------------------------------------------------------- */

GstVideoOverlayComposition *
gst_clipseg_overlay_get_composition (GstClipsegOverlay * overlay,
    const GstClipsegResult * result, const guint32 * palette, guint cookie,
    gint width, gint height)
{
  GstVideoOverlayRectangle *rect;
  GstBuffer *pixels;
  GstMapInfo map;
  guint32 *argb;
  gsize i, n = (gsize) result->width * result->height;

  gst_clipseg_overlay_update_key (overlay, result, cookie);
  if (overlay->composition)
    return overlay->composition;

  pixels = gst_buffer_new_allocate (NULL, n * 4, NULL);
  gst_buffer_map (pixels, &map, GST_MAP_WRITE);
  argb = (guint32 *) map.data;
  /* GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB is ARGB in native words */
  for (i = 0; i < n; i++)
    argb[i] = palette[result->map[i]];
  gst_buffer_unmap (pixels, &map);
  gst_buffer_add_video_meta (pixels, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, result->width, result->height);

  rect = gst_video_overlay_rectangle_new_raw (pixels, 0, 0, width, height,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE);
  overlay->composition = gst_video_overlay_composition_new (rect);
  gst_video_overlay_rectangle_unref (rect);
  gst_buffer_unref (pixels);

  return overlay->composition;
}
