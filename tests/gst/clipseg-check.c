/* GStreamer clipseg
 * clipseg-check.c: what the element test programs share.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include "clipseg-check.h"

#include <string.h>

/* A clipseg on the fast test model, three labels, no background words,
 * sync processing (the harness is live, so auto would mean latest). */
GstElement *
make_clipseg (const gchar * first_property, ...)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  va_list args;

  fail_unless (element != NULL);
  /* resolution = the frame height keeps label maps at frame size */
  g_object_set (element, "model", TEST_MODEL, "labels", LABELS,
      "templates", "single", "background", "", "resolution", HEIGHT, NULL);
  gst_util_set_object_arg (G_OBJECT (element), "processing", "sync");
  if (first_property) {
    va_start (args, first_property);
    g_object_set_valist (G_OBJECT (element), first_property, args);
    va_end (args);
  }
  return element;
}

GstHarness *
harness_for (GstElement * element, const gchar * caps)
{
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");

  gst_object_unref (element);
  if (caps)
    gst_harness_set_src_caps_str (h, caps);
  return h;
}

/* An RGBx frame that differs with @index, or flat grey. */
GstBuffer *
make_frame (guint index, gboolean grey)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, WIDTH * HEIGHT * 4, NULL);
  GstMapInfo map;
  gsize i;

  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (i = 0; i < map.size; i++)
    map.data[i] = grey ? 128 : (i * 7 + (i / 256) * 11 + index * 53) & 0xff;
  gst_buffer_unmap (buffer, &map);
  GST_BUFFER_PTS (buffer) = index * FRAME_DURATION;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;

  return buffer;
}

GstClipsegMeta *
get_meta (GstBuffer * buffer)
{
  GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (buffer);

  fail_unless (meta != NULL, "no GstClipsegMeta on the buffer");
  return meta;
}

GstVideoMeta *
label_map_info (GstClipsegMeta * meta)
{
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (meta->label_map);

  fail_unless (vmeta != NULL);
  fail_unless_equals_int (vmeta->format, GST_VIDEO_FORMAT_GRAY8);
  return vmeta;
}

/* A copy of the label map bytes, tightly packed. */
guint8 *
copy_label_map (GstClipsegMeta * meta, gsize * size)
{
  GstVideoMeta *vmeta = label_map_info (meta);
  guint8 *copy = g_malloc (vmeta->width * vmeta->height);
  GstMapInfo map;
  guint y;

  gst_buffer_map (meta->label_map, &map, GST_MAP_READ);
  for (y = 0; y < vmeta->height; y++)
    memcpy (copy + y * vmeta->width,
        map.data + vmeta->offset[0] + y * vmeta->stride[0], vmeta->width);
  gst_buffer_unmap (meta->label_map, &map);
  *size = vmeta->width * vmeta->height;

  return copy;
}

GstMessage *
pop_error (GstBus * bus, GstMessageType type)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, type);

  fail_unless (msg != NULL, "no %s message", gst_message_type_get_name (type));
  return msg;
}

void
check_string_property (GstElement * element, const gchar * name,
    const gchar * expected)
{
  gchar *value;

  g_object_get (element, name, &value, NULL);
  fail_unless_equals_string (value, expected);
  g_free (value);
}
