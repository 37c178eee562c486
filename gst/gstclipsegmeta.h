/* GStreamer clipseg
 * gstclipsegmeta.h: the per-frame segmentation result of the clipseg element.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_META_H__
#define __GST_CLIPSEG_META_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#ifdef BUILDING_GST_CLIPSEG_META
#define GST_CLIPSEG_META_API GST_API_EXPORT
#else
#define GST_CLIPSEG_META_API GST_API_IMPORT
#endif

#define GST_CLIPSEG_META_API_TYPE (gst_clipseg_meta_api_get_type ())
#define GST_CLIPSEG_META_INFO (gst_clipseg_meta_get_info ())

typedef struct _GstClipsegMeta GstClipsegMeta;

/**
 * GstClipsegMeta:
 * @meta: parent #GstMeta
 * @label_map: one byte per pixel, the label index of that pixel (GRAY8, with a
 *   #GstVideoMeta giving its own width, height and stride). The map covers
 *   @region of the frame; label map pixel (mx, my) covers frame pixels
 *   [region.x + mx * region.w / map_width, ...).
 * @region: the rectangle of the frame, in frame pixels, that @label_map covers
 *   (the whole frame unless a downstream element cropped it).
 * @n_labels: number of labels, including label 0.
 * @labels: @n_labels label names, NULL-terminated. Label 0 is "background":
 *   the background class when the element has background words, otherwise
 *   the pixels below the probability threshold.
 * @coverage: @n_labels shares of the label map's pixels, each in [0, 1].
 * @score: @n_labels mean class probabilities over the pixels given each label
 *   (0 for absent labels).
 * @source_pts: presentation timestamp of the frame the result was computed on.
 * @reused: %TRUE when the result was computed on an earlier frame and carried
 *   over to this one (frame skipping or the `latest` processing mode).
 * @inference_time: wall-clock time the inference took.
 * @probabilities: (nullable): when the element's `attach-probabilities` is
 *   set, float32 class probabilities after temporal smoothing, laid out as
 *   [@n_labels][map height][map width] in native byte order; else %NULL.
 *
 * The dense segmentation of one video frame, as attached by the clipseg
 * element. Everything is read-only; the buffers are shared between frames
 * that carry the same result. With the element's `latest` processing (the
 * default for live sources) the frames that pass before the first result
 * after a start, flush or caps change carry no #GstClipsegMeta: check for
 * %NULL from gst_buffer_get_clipseg_meta().
 */
struct _GstClipsegMeta
{
  GstMeta meta;

  GstBuffer *label_map;
  GstVideoRectangle region;
  guint n_labels;
  gchar **labels;
  gdouble *coverage;
  gdouble *score;
  GstClockTime source_pts;
  gboolean reused;
  GstClockTime inference_time;
  GstBuffer *probabilities;
};

GST_CLIPSEG_META_API
GType gst_clipseg_meta_api_get_type (void);

GST_CLIPSEG_META_API
const GstMetaInfo *gst_clipseg_meta_get_info (void);

/**
 * gst_buffer_add_clipseg_meta:
 * @buffer: a writable #GstBuffer
 * @label_map: a GRAY8 buffer with a #GstVideoMeta (a reference is taken)
 * @labels: NULL-terminated label names (copied)
 * @coverage: one value per label (copied)
 * @score: one value per label (copied)
 * @frame_width: width of @buffer's frame in pixels
 * @frame_height: height of @buffer's frame in pixels
 *
 * Attaches a segmentation covering the whole frame; set the remaining fields
 * on the returned meta. Returns: (transfer none): the new meta.
 */
GST_CLIPSEG_META_API
GstClipsegMeta *gst_buffer_add_clipseg_meta (GstBuffer * buffer,
    GstBuffer * label_map, const gchar * const *labels,
    const gdouble * coverage, const gdouble * score, gint frame_width,
    gint frame_height);

/**
 * gst_buffer_get_clipseg_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the segmentation of @buffer.
 */
#define gst_buffer_get_clipseg_meta(buffer) \
  ((GstClipsegMeta *) gst_buffer_get_meta ((buffer), GST_CLIPSEG_META_API_TYPE))

/**
 * gst_clipseg_meta_label_at:
 * @meta: a #GstClipsegMeta
 * @x: frame column in pixels
 * @y: frame row in pixels
 *
 * Returns: the label of frame pixel (@x, @y), or -1 outside @meta's region.
 */
GST_CLIPSEG_META_API
gint gst_clipseg_meta_label_at (GstClipsegMeta * meta, gint x, gint y);

G_END_DECLS

#endif /* __GST_CLIPSEG_META_H__ */
