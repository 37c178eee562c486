/* GStreamer clipseg
 * gstclipsegresultmeta.h: the clipseg result as a GstCustomMeta, readable
 * from any language binding.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_RESULT_META_H__
#define __GST_CLIPSEG_RESULT_META_H__

#include "gstclipsegmeta.h"

G_BEGIN_DECLS

/**
 * GST_CLIPSEG_RESULT_META_NAME:
 *
 * The name of the #GstCustomMeta that the clipseg element attaches next to
 * #GstClipsegMeta, for language bindings (GObject-Introspection reads custom
 * metas, not C structs). Its structure, named the same, holds:
 *
 * - `labels`: #GValueArray of strings, label 0 first
 * - `coverage`, `score`: #GValueArray of doubles, one per label
 * - `source-timestamp` (guint64): PTS of the frame the result was computed on
 * - `reused` (boolean): computed on an earlier frame
 * - `inference-ms` (double): wall-clock time the inference took
 * - `label-map` (#GstBuffer): one byte per pixel, the label index, covering
 *   the whole frame; `width`, `height`, `stride` (int) give its layout
 *
 * In Python: `meta = buf.get_custom_meta("GstClipsegResultMeta")`, then
 * `s = meta.get_structure()`; `s.get_value("labels")` is a list and
 * `s.get_value("label-map").extract_dup(0, stride * height)` the bytes.
 */
#define GST_CLIPSEG_RESULT_META_NAME "GstClipsegResultMeta"

/**
 * gst_clipseg_result_meta_register:
 *
 * Registers the custom meta (once; every call returns the same info).
 */
GST_CLIPSEG_META_API
const GstMetaInfo *gst_clipseg_result_meta_register (void);

/**
 * gst_clipseg_meta_set_fields:
 * @meta: a #GstClipsegMeta
 * @s: a writable #GstStructure
 *
 * Sets on @s the fields @meta shares with the custom meta and the element's
 * bus messages: `labels`, `coverage`, `score`, `source-timestamp`, `reused`,
 * `inference-ms`.
 */
GST_CLIPSEG_META_API
void gst_clipseg_meta_set_fields (const GstClipsegMeta * meta,
    GstStructure * s);

/**
 * gst_buffer_add_clipseg_result_meta:
 * @buffer: a writable #GstBuffer
 * @meta: the #GstClipsegMeta of @buffer
 *
 * Attaches the #GstCustomMeta named %GST_CLIPSEG_RESULT_META_NAME with
 * @meta's result. Returns: (transfer none): the new meta.
 */
GST_CLIPSEG_META_API
GstCustomMeta *gst_buffer_add_clipseg_result_meta (GstBuffer * buffer,
    const GstClipsegMeta * meta);

G_END_DECLS

#endif /* __GST_CLIPSEG_RESULT_META_H__ */
