/* GStreamer clipseg
 * gstclipsegresultmeta.c: the clipseg result as a GstCustomMeta.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

/**
 * SECTION:gstclipsegresultmeta
 * @title: GstClipsegResultMeta
 * @short_description: the clipseg result for language bindings
 *
 * A #GstCustomMeta whose structure carries what #GstClipsegMeta holds, so
 * that Python (PyGObject) and other bindings read the label map and the
 * per-label figures without mirroring a C struct. Like #GstClipsegMeta it is
 * tagged "video" and "size": buffer copies and elements that only convert or
 * rescale the frame keep it (the label map covers the whole frame at any
 * size).
 */

#include "gstclipsegresultmeta.h"

/* GValueArray, as the level element's messages: PyGObject reads it as a list
 * without GStreamer's Python overrides, and gst_structure_to_string prints
 * it (a GStrv prints as NULL on 1.22). */
G_GNUC_BEGIN_IGNORE_DEPRECATIONS;
static void
gst_clipseg_take_array (GstStructure * s, const gchar * field,
    GValueArray * array)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, g_value_array_get_type ());
  g_value_take_boxed (&value, array);
  gst_structure_take_value (s, field, &value);
}

static GValueArray *
gst_clipseg_strings_array (gchar ** strings, guint n)
{
  GValueArray *array = g_value_array_new (n);
  GValue item = G_VALUE_INIT;
  guint i;

  g_value_init (&item, G_TYPE_STRING);
  for (i = 0; i < n; i++) {
    g_value_set_string (&item, strings[i]);
    g_value_array_append (array, &item);
  }
  g_value_unset (&item);
  return array;
}

static GValueArray *
gst_clipseg_doubles_array (const gdouble * doubles, guint n)
{
  GValueArray *array = g_value_array_new (n);
  GValue item = G_VALUE_INIT;
  guint i;

  g_value_init (&item, G_TYPE_DOUBLE);
  for (i = 0; i < n; i++) {
    g_value_set_double (&item, doubles[i]);
    g_value_array_append (array, &item);
  }
  g_value_unset (&item);
  return array;
}

G_GNUC_END_IGNORE_DEPRECATIONS;

void
gst_clipseg_meta_set_fields (const GstClipsegMeta * meta, GstStructure * s)
{
  g_return_if_fail (meta != NULL);
  g_return_if_fail (s != NULL);

  gst_clipseg_take_array (s, "labels",
      gst_clipseg_strings_array (meta->labels, meta->n_labels));
  gst_clipseg_take_array (s, "coverage",
      gst_clipseg_doubles_array (meta->coverage, meta->n_labels));
  gst_clipseg_take_array (s, "score",
      gst_clipseg_doubles_array (meta->score, meta->n_labels));
  gst_structure_set (s,
      "source-timestamp", G_TYPE_UINT64, meta->source_pts,
      "reused", G_TYPE_BOOLEAN, meta->reused,
      "inference-ms", G_TYPE_DOUBLE,
      meta->inference_time / (gdouble) GST_MSECOND, NULL);
}

static gboolean
gst_clipseg_copy_field (GQuark field, const GValue * value, gpointer dest)
{
  gst_structure_id_set_value (dest, field, value);
  return TRUE;
}

/* Copies keep the result, rescaled frames too: the map covers the whole
 * frame at any size. A copy of part of the memory is not a frame. */
static gboolean
gst_clipseg_result_meta_transform (GstBuffer * dest, GstCustomMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data, gpointer user_data)
{
  GstCustomMeta *dmeta;

  if (GST_META_TRANSFORM_IS_COPY (type)) {
    if (((GstMetaTransformCopy *) data)->region)
      return FALSE;
  } else if (!GST_VIDEO_META_TRANSFORM_IS_SCALE (type)) {
    return FALSE;
  }

  dmeta = gst_buffer_add_custom_meta (dest, GST_CLIPSEG_RESULT_META_NAME);
  gst_structure_foreach (gst_custom_meta_get_structure (meta),
      gst_clipseg_copy_field, gst_custom_meta_get_structure (dmeta));
  return TRUE;
}

const GstMetaInfo *
gst_clipseg_result_meta_register (void)
{
  static const GstMetaInfo *info = NULL;
  static const gchar *tags[] = {
    GST_META_TAG_VIDEO_STR, GST_META_TAG_VIDEO_SIZE_STR, NULL
  };

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *mi = gst_meta_register_custom
        (GST_CLIPSEG_RESULT_META_NAME, tags,
        gst_clipseg_result_meta_transform, NULL, NULL);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) mi);
  }
  return info;
}

GstCustomMeta *
gst_buffer_add_clipseg_result_meta (GstBuffer * buffer,
    const GstClipsegMeta * meta)
{
  GstVideoMeta *vmeta;
  GstCustomMeta *custom;
  GstStructure *s;
  GstBuffer *map;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (meta != NULL, NULL);

  gst_clipseg_result_meta_register ();
  vmeta = gst_buffer_get_video_meta (meta->label_map);
  /* the bytes from the first row on, sharing the memory */
  map = gst_buffer_copy_region (meta->label_map, GST_BUFFER_COPY_MEMORY,
      vmeta->offset[0], (gsize) vmeta->stride[0] * vmeta->height);

  custom = gst_buffer_add_custom_meta (buffer, GST_CLIPSEG_RESULT_META_NAME);
  s = gst_custom_meta_get_structure (custom);
  gst_clipseg_meta_set_fields (meta, s);
  gst_structure_set (s, "label-map", GST_TYPE_BUFFER, map,
      "width", G_TYPE_INT, (gint) vmeta->width,
      "height", G_TYPE_INT, (gint) vmeta->height,
      "stride", G_TYPE_INT, vmeta->stride[0], NULL);
  gst_buffer_unref (map);

  return custom;
}
