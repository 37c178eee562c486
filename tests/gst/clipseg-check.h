/* GStreamer clipseg
 * clipseg-check.h: what the element test programs share: a clipseg on the
 * fast test model, harnesses, frames and the result's label map.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __CLIPSEG_CHECK_H__
#define __CLIPSEG_CHECK_H__

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "gstclipsegmeta.h"

G_BEGIN_DECLS

#define WIDTH 64
#define HEIGHT 48
#define CAPS_FMT "video/x-raw,format=%s,width=%d,height=%d,framerate=30/1"
#define RGBX_CAPS "video/x-raw,format=RGBx,width=64,height=48,framerate=30/1"
#define FRAME_DURATION (GST_SECOND / 30)
#define LABELS "red, green, blue"
/* background words, so that some pixels stay unlabelled */
#define BACKGROUND "wall, floor, sky"

/* A clipseg on the fast test model (TEST_MODEL), three labels, no background
 * words, sync processing (the harness is live, so auto would mean latest),
 * label maps at frame size; then the given properties. */
GstElement *make_clipseg (const gchar * first_property, ...);

/* A harness around @element (whose reference it takes) with @caps on its
 * source, if any. */
GstHarness *harness_for (GstElement * element, const gchar * caps);

/* An RGBx frame of WIDTH x HEIGHT that differs with @index, or flat grey,
 * timestamped as frame @index at 30 fps. */
GstBuffer *make_frame (guint index, gboolean grey);

/* The buffer's GstClipsegMeta; fails the test without one. */
GstClipsegMeta *get_meta (GstBuffer * buffer);

/* The label map's GstVideoMeta, checked to be GRAY8. */
GstVideoMeta *label_map_info (GstClipsegMeta * meta);

/* (transfer full): a copy of the label map bytes, tightly packed. */
guint8 *copy_label_map (GstClipsegMeta * meta, gsize * size);

/* (transfer full): the first message of @type on @bus; fails without. */
GstMessage *pop_error (GstBus * bus, GstMessageType type);

/* Fails unless the string property @name of @element reads @expected. */
void check_string_property (GstElement * element, const gchar * name,
    const gchar * expected);

G_END_DECLS

#endif /* __CLIPSEG_CHECK_H__ */
