/* GStreamer clipseg
 * gstclipsegmeta.c: the per-frame segmentation result of the clipseg element.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

/**
 * SECTION:gstclipsegmeta
 * @title: GstClipsegMeta
 * @short_description: per-frame dense segmentation from the clipseg element
 *
 * The meta is tagged "video" and "size": it is kept by elements that only
 * change the pixel format or the frame size (videoconvert, videoscale), which
 * rescale its region, and dropped by elements that change the picture in other
 * ways. Buffer copies keep it, sharing the label map.
 */

#include "gstclipsegmeta.h"

#include <string.h>

static gboolean
gst_clipseg_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstClipsegMeta *smeta = (GstClipsegMeta *) meta;

  smeta->label_map = NULL;
  memset (&smeta->region, 0, sizeof (smeta->region));
  smeta->n_labels = 0;
  smeta->labels = NULL;
  smeta->coverage = NULL;
  smeta->score = NULL;
  smeta->source_pts = GST_CLOCK_TIME_NONE;
  smeta->reused = FALSE;
  smeta->inference_time = GST_CLOCK_TIME_NONE;
  smeta->probabilities = NULL;

  return TRUE;
}

static void
gst_clipseg_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstClipsegMeta *smeta = (GstClipsegMeta *) meta;

  gst_clear_buffer (&smeta->label_map);
  gst_clear_buffer (&smeta->probabilities);
  g_strfreev (smeta->labels);
  g_free (smeta->coverage);
  g_free (smeta->score);
}

/* Copies everything but the frame mapping, which the caller sets. */
static GstClipsegMeta *
gst_clipseg_meta_copy_to (GstBuffer * dest, GstClipsegMeta * src)
{
  GstClipsegMeta *dmeta;

  dmeta = gst_buffer_add_clipseg_meta (dest, src->label_map,
      (const gchar * const *) src->labels, src->coverage, src->score,
      src->region.w, src->region.h);
  dmeta->source_pts = src->source_pts;
  dmeta->reused = src->reused;
  dmeta->inference_time = src->inference_time;
  if (src->probabilities)
    dmeta->probabilities = gst_buffer_ref (src->probabilities);

  return dmeta;
}

static gboolean
gst_clipseg_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstClipsegMeta *smeta = (GstClipsegMeta *) meta;
  GstClipsegMeta *dmeta;

  if (GST_META_TRANSFORM_IS_COPY (type)) {
    GstMetaTransformCopy *copy = data;

    /* A part of the memory is not a part of the picture. */
    if (copy->region)
      return FALSE;

    dmeta = gst_clipseg_meta_copy_to (dest, smeta);
    dmeta->region = smeta->region;
  } else if (GST_VIDEO_META_TRANSFORM_IS_SCALE (type)) {
    GstVideoMetaTransform *trans = data;
    gint in_w = GST_VIDEO_INFO_WIDTH (trans->in_info);
    gint in_h = GST_VIDEO_INFO_HEIGHT (trans->in_info);
    gint out_w = GST_VIDEO_INFO_WIDTH (trans->out_info);
    gint out_h = GST_VIDEO_INFO_HEIGHT (trans->out_info);

    if (in_w <= 0 || in_h <= 0)
      return FALSE;

    dmeta = gst_clipseg_meta_copy_to (dest, smeta);
    dmeta->region.x = gst_util_uint64_scale_int (smeta->region.x, out_w, in_w);
    dmeta->region.y = gst_util_uint64_scale_int (smeta->region.y, out_h, in_h);
    dmeta->region.w = gst_util_uint64_scale_int (smeta->region.w, out_w, in_w);
    dmeta->region.h = gst_util_uint64_scale_int (smeta->region.h, out_h, in_h);
  } else {
    return FALSE;
  }

  return TRUE;
}

GType
gst_clipseg_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = {
    GST_META_TAG_VIDEO_STR, GST_META_TAG_VIDEO_SIZE_STR, NULL
  };

  if (g_once_init_enter (&type)) {
    GType _type = gst_meta_api_type_register ("GstClipsegMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

const GstMetaInfo *
gst_clipseg_meta_get_info (void)
{
  static const GstMetaInfo *meta_info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & meta_info)) {
    const GstMetaInfo *mi = gst_meta_register (GST_CLIPSEG_META_API_TYPE,
        "GstClipsegMeta", sizeof (GstClipsegMeta), gst_clipseg_meta_init,
        gst_clipseg_meta_free, gst_clipseg_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & meta_info, (GstMetaInfo *) mi);
  }
  return meta_info;
}

GstClipsegMeta *
gst_buffer_add_clipseg_meta (GstBuffer * buffer, GstBuffer * label_map,
    const gchar * const *labels, const gdouble * coverage,
    const gdouble * score, gint frame_width, gint frame_height)
{
  GstClipsegMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (GST_IS_BUFFER (label_map), NULL);
  g_return_val_if_fail (gst_buffer_get_video_meta (label_map) != NULL, NULL);
  g_return_val_if_fail (labels != NULL, NULL);

  meta = (GstClipsegMeta *) gst_buffer_add_meta (buffer,
      GST_CLIPSEG_META_INFO, NULL);
  meta->label_map = gst_buffer_ref (label_map);
  meta->n_labels = g_strv_length ((gchar **) labels);
  meta->labels = g_strdupv ((gchar **) labels);
  meta->coverage = g_memdup2 (coverage, meta->n_labels * sizeof (gdouble));
  meta->score = g_memdup2 (score, meta->n_labels * sizeof (gdouble));
  meta->region.w = frame_width;
  meta->region.h = frame_height;

  return meta;
}

gint
gst_clipseg_meta_label_at (GstClipsegMeta * meta, gint x, gint y)
{
  GstVideoMeta *vmeta;
  GstMapInfo map;
  gint mx, my, label;

  g_return_val_if_fail (meta != NULL, -1);

  x -= meta->region.x;
  y -= meta->region.y;
  if (x < 0 || y < 0 || x >= meta->region.w || y >= meta->region.h)
    return -1;

  vmeta = gst_buffer_get_video_meta (meta->label_map);
  mx = (gint64) x *vmeta->width / meta->region.w;
  my = (gint64) y *vmeta->height / meta->region.h;

  if (!gst_buffer_map (meta->label_map, &map, GST_MAP_READ))
    return -1;
  label = map.data[vmeta->offset[0] + my * vmeta->stride[0] + mx];
  gst_buffer_unmap (meta->label_map, &map);

  return label;
}
