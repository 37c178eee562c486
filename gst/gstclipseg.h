/* GStreamer clipseg
 * gstclipseg.h: open-vocabulary dense segmentation of video with CLIP.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_H__
#define __GST_CLIPSEG_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_CLIPSEG (gst_clipseg_get_type ())
G_DECLARE_FINAL_TYPE (GstClipseg, gst_clipseg, GST, CLIPSEG, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (clipseg);

G_END_DECLS

#endif /* __GST_CLIPSEG_H__ */
