/* GStreamer clipseg
 * gstclipsegmask.h: the label map of clipseg's results as a video stream.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_MASK_H__
#define __GST_CLIPSEG_MASK_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_CLIPSEG_MASK (gst_clipseg_mask_get_type ())
G_DECLARE_FINAL_TYPE (GstClipsegMask, gst_clipseg_mask, GST, CLIPSEG_MASK,
    GstElement)

GST_ELEMENT_REGISTER_DECLARE (clipsegmask);

G_END_DECLS

#endif /* __GST_CLIPSEG_MASK_H__ */
