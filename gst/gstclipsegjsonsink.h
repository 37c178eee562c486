/* GStreamer clipseg
 * gstclipsegjsonsink.h: clipseg's results as JSON lines, one per frame.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_JSON_SINK_H__
#define __GST_CLIPSEG_JSON_SINK_H__

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_CLIPSEG_JSON_SINK (gst_clipseg_json_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstClipsegJsonSink, gst_clipseg_json_sink, GST,
    CLIPSEG_JSON_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE (clipsegjsonsink);

G_END_DECLS

#endif /* __GST_CLIPSEG_JSON_SINK_H__ */
