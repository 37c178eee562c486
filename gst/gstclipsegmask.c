/* GStreamer clipseg
 * gstclipsegmask.c: the label map of clipseg's results as a video stream.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

/**
 * SECTION:element-clipsegmask
 * @title: clipsegmask
 * @short_description: turns clipseg's label maps into video
 *
 * clipsegmask replaces every frame by the label map of its #GstClipsegMeta:
 * GRAY8 whose pixel values are the label indices (0 = background), or RGB
 * in the overlay's colours (label 0 black), at the label map's own size or
 * scaled to the frame's (nearest neighbour, so values stay label indices).
 * A frame without a result (before the first one in clipseg's `latest`
 * processing) becomes an all-0 mask. The output size follows the label map,
 * which can change mid-stream: new caps go downstream then.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     clipseg labels="person, car" processing=sync ! clipsegmask ! pngenc ! \
 *     multifilesink location=mask-%05d.png
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstclipsegmask.h"
#include "gstclipsegmeta.h"
#include "clipseg-overlay.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_clipseg_mask_debug);
#define GST_CAT_DEFAULT gst_clipseg_mask_debug

typedef enum
{
  GST_CLIPSEG_MASK_SIZE_MAP,
  GST_CLIPSEG_MASK_SIZE_FRAME,
} GstClipsegMaskSize;

typedef enum
{
  GST_CLIPSEG_MASK_FORMAT_GRAY8,
  GST_CLIPSEG_MASK_FORMAT_RGB,
} GstClipsegMaskFormat;

#define GST_TYPE_CLIPSEG_MASK_SIZE (gst_clipseg_mask_size_get_type ())
static GType
gst_clipseg_mask_size_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_MASK_SIZE_MAP, "The label map's size (clipseg's resolution)",
        "map"},
    {GST_CLIPSEG_MASK_SIZE_FRAME,
        "The frame's size, scaled with nearest neighbour", "frame"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegMaskSize", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define GST_TYPE_CLIPSEG_MASK_FORMAT (gst_clipseg_mask_format_get_type ())
static GType
gst_clipseg_mask_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_MASK_FORMAT_GRAY8, "GRAY8, pixel value = label index",
        "gray8"},
    {GST_CLIPSEG_MASK_FORMAT_RGB,
        "RGB in the overlay's colours, label 0 black", "rgb"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegMaskFormat", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

enum
{
  PROP_0,
  PROP_SIZE,
  PROP_FORMAT,
  PROP_COLORS,
};

#define DEFAULT_SIZE GST_CLIPSEG_MASK_SIZE_MAP
#define DEFAULT_FORMAT GST_CLIPSEG_MASK_FORMAT_GRAY8

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE ("{ GRAY8, RGB }")));

struct _GstClipsegMask
{
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* properties, under the object lock */
  GstClipsegMaskSize size;
  GstClipsegMaskFormat format;
  gchar *colors_text;
  GArray *colors;

  /* streaming thread */
  GstVideoInfo in_info;         /* of the frames */
  GstVideoInfo out_info;        /* of the caps sent downstream, or unset */
  gint last_width, last_height; /* of the last label map */
  GQueue pending;               /* sticky events that must follow the caps */
};

#define gst_clipseg_mask_parent_class parent_class
G_DEFINE_TYPE (GstClipsegMask, gst_clipseg_mask, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (clipsegmask, "clipsegmask", GST_RANK_NONE,
    GST_TYPE_CLIPSEG_MASK);

/* The output size and format of one frame; sends new caps when they
 * changed. */
static gboolean
gst_clipseg_mask_negotiate (GstClipsegMask * self, gint width, gint height,
    GstClipsegMaskFormat format)
{
  GstVideoFormat vformat = format == GST_CLIPSEG_MASK_FORMAT_RGB ?
      GST_VIDEO_FORMAT_RGB : GST_VIDEO_FORMAT_GRAY8;
  GstVideoInfo info;
  GstCaps *caps;
  gboolean ok;

  if (GST_VIDEO_INFO_FORMAT (&self->out_info) == vformat
      && GST_VIDEO_INFO_WIDTH (&self->out_info) == width
      && GST_VIDEO_INFO_HEIGHT (&self->out_info) == height)
    return TRUE;

  gst_video_info_set_format (&info, vformat, width, height);
  GST_VIDEO_INFO_FPS_N (&info) = GST_VIDEO_INFO_FPS_N (&self->in_info);
  GST_VIDEO_INFO_FPS_D (&info) = GST_VIDEO_INFO_FPS_D (&self->in_info);
  caps = gst_video_info_to_caps (&info);
  GST_DEBUG_OBJECT (self, "output caps %" GST_PTR_FORMAT, caps);
  ok = gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  if (!ok)
    return FALSE;
  self->out_info = info;
  while (!g_queue_is_empty (&self->pending))
    gst_pad_push_event (self->srcpad, g_queue_pop_head (&self->pending));
  return TRUE;
}

/* Fills @out with @meta's labels scaled to @out's size over the region, or
 * with 0 without a @meta; RGB through @palette (ARGB, alpha ignored). */
static void
gst_clipseg_mask_fill (GstVideoFrame * out, GstClipsegMeta * meta,
    gint frame_width, gint frame_height, const guint32 * palette)
{
  gint width = GST_VIDEO_FRAME_WIDTH (out);
  gint height = GST_VIDEO_FRAME_HEIGHT (out);
  gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (out, 0);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, 0);
  guint8 *dest = GST_VIDEO_FRAME_PLANE_DATA (out, 0);
  GstVideoMeta *vmeta;
  GstVideoRectangle r;
  GstMapInfo map;
  gint *columns, x, y;

  if (!meta) {
    for (y = 0; y < height; y++)
      memset (dest + y * stride, 0, width * pstride);
    return;
  }

  vmeta = gst_buffer_get_video_meta (meta->label_map);
  /* the output is either the map itself or the frame it covers part of */
  if (width == (gint) vmeta->width && height == (gint) vmeta->height) {
    r.x = r.y = 0;
    r.w = width;
    r.h = height;
  } else {
    r.x = gst_util_uint64_scale_int (meta->region.x, width, frame_width);
    r.y = gst_util_uint64_scale_int (meta->region.y, height, frame_height);
    r.w = gst_util_uint64_scale_int (meta->region.w, width, frame_width);
    r.h = gst_util_uint64_scale_int (meta->region.h, height, frame_height);
  }

  columns = g_new (gint, width);
  for (x = 0; x < width; x++)
    columns[x] = x >= r.x && x < r.x + r.w ?
        (gint) ((gint64) (x - r.x) * vmeta->width / r.w) : -1;

  gst_buffer_map (meta->label_map, &map, GST_MAP_READ);
  for (y = 0; y < height; y++) {
    guint8 *row = dest + y * stride;
    const guint8 *src = NULL;

    if (y >= r.y && y < r.y + r.h)
      src = map.data + vmeta->offset[0] +
          (gint64) (y - r.y) * vmeta->height / r.h * vmeta->stride[0];
    for (x = 0; x < width; x++) {
      guint8 label = src && columns[x] >= 0 ? src[columns[x]] : 0;

      if (pstride == 1) {
        row[x] = label;
      } else {
        row[3 * x] = palette[label] >> 16;
        row[3 * x + 1] = palette[label] >> 8;
        row[3 * x + 2] = palette[label];
      }
    }
  }
  gst_buffer_unmap (meta->label_map, &map);
  g_free (columns);
}

static GstFlowReturn
gst_clipseg_mask_chain (GstPad * pad, GstObject * parent, GstBuffer * buffer)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (parent);
  GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (buffer);
  gint frame_width = GST_VIDEO_INFO_WIDTH (&self->in_info);
  gint frame_height = GST_VIDEO_INFO_HEIGHT (&self->in_info);
  guint32 palette[256] = { 0, };
  GstClipsegMaskFormat format;
  GstClipsegMaskSize size;
  GstVideoFrame frame;
  GstBuffer *out;
  gint width, height;

  if (meta) {
    GstVideoMeta *vmeta = gst_buffer_get_video_meta (meta->label_map);

    self->last_width = vmeta->width;
    self->last_height = vmeta->height;
  }

  GST_OBJECT_LOCK (self);
  size = self->size;
  format = self->format;
  if (meta && format == GST_CLIPSEG_MASK_FORMAT_RGB)
    gst_clipseg_palette_fill (palette, (const gchar * const *) meta->labels,
        MIN (meta->n_labels, G_N_ELEMENTS (palette)), self->colors, 1.0);
  GST_OBJECT_UNLOCK (self);

  /* before the first label map a map-sized mask has the frame's size */
  width = size == GST_CLIPSEG_MASK_SIZE_MAP && self->last_width ?
      self->last_width : frame_width;
  height = size == GST_CLIPSEG_MASK_SIZE_MAP && self->last_height ?
      self->last_height : frame_height;
  if (!gst_clipseg_mask_negotiate (self, width, height, format)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_NOT_NEGOTIATED;
  }

  out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&self->out_info),
      NULL);
  gst_buffer_copy_into (out, buffer, GST_BUFFER_COPY_FLAGS |
      GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  gst_video_frame_map (&frame, &self->out_info, out, GST_MAP_WRITE);
  gst_clipseg_mask_fill (&frame, meta, frame_width, frame_height, palette);
  gst_video_frame_unmap (&frame);
  gst_buffer_unref (buffer);

  return gst_pad_push (self->srcpad, out);
}

static gboolean
gst_clipseg_mask_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      ok = gst_video_info_from_caps (&self->in_info, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_STREAM_START:
    case GST_EVENT_EOS:
      break;
    default:
      /* the output caps come with the first frame: what must follow them
       * (the segment) waits for it */
      if (GST_EVENT_IS_STICKY (event)
          && !gst_pad_has_current_caps (self->srcpad)) {
        g_queue_push_tail (&self->pending, event);
        return TRUE;
      }
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_clipseg_mask_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps = gst_pad_get_pad_template_caps (pad);

      gst_query_parse_caps (query, &filter);
      if (filter) {
        GstCaps *tmp = caps;

        caps = gst_caps_intersect_full (filter, tmp, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref (tmp);
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_ALLOCATION:
      /* the frames end here: downstream's buffers are of another kind */
      return FALSE;
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static gboolean
gst_clipseg_mask_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS) {
    GstCaps *filter, *caps;
    const gchar *format;

    GST_OBJECT_LOCK (self);
    format = self->format == GST_CLIPSEG_MASK_FORMAT_RGB ? "RGB" : "GRAY8";
    GST_OBJECT_UNLOCK (self);
    caps = gst_caps_make_writable (gst_pad_get_pad_template_caps (pad));
    gst_caps_set_simple (caps, "format", G_TYPE_STRING, format, NULL);
    gst_query_parse_caps (query, &filter);
    if (filter) {
      GstCaps *tmp = caps;

      caps = gst_caps_intersect_full (filter, tmp, GST_CAPS_INTERSECT_FIRST);
      gst_caps_unref (tmp);
    }
    gst_query_set_caps_result (query, caps);
    gst_caps_unref (caps);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

static GstStateChangeReturn
gst_clipseg_mask_change_state (GstElement * element, GstStateChange transition)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (element);

  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    gst_video_info_init (&self->in_info);
    gst_video_info_init (&self->out_info);
    self->last_width = self->last_height = 0;
  }
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    g_queue_clear_full (&self->pending, (GDestroyNotify) gst_event_unref);
  return ret;
}

static void
gst_clipseg_mask_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (object);
  GError *error = NULL;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SIZE:
      self->size = g_value_get_enum (value);
      break;
    case PROP_FORMAT:
      self->format = g_value_get_enum (value);
      break;
    case PROP_COLORS:
      gst_clipseg_colors_set (g_value_get_string (value), &self->colors,
          &self->colors_text, &error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* posting takes the object lock */
  if (error) {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Invalid colors, keeping the previous ones."), ("%s", error->message));
    g_error_free (error);
  }
}

static void
gst_clipseg_mask_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SIZE:
      g_value_set_enum (value, self->size);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, self->format);
      break;
    case PROP_COLORS:
      g_value_set_string (value, self->colors_text);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clipseg_mask_finalize (GObject * object)
{
  GstClipsegMask *self = GST_CLIPSEG_MASK (object);

  g_free (self->colors_text);
  g_clear_pointer (&self->colors, gst_clipseg_colors_free);
  g_queue_clear_full (&self->pending, (GDestroyNotify) gst_event_unref);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clipseg_mask_class_init (GstClipsegMaskClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_clipseg_mask_debug, "clipsegmask", 0,
      "clipseg label maps as video");

  gobject_class->set_property = gst_clipseg_mask_set_property;
  gobject_class->get_property = gst_clipseg_mask_get_property;
  gobject_class->finalize = gst_clipseg_mask_finalize;

  g_object_class_install_property (gobject_class, PROP_SIZE,
      g_param_spec_enum ("size", "Size",
          "Mask size: the label map's (clipseg's resolution) or the frame's "
          "(nearest neighbour). Default: map.", GST_TYPE_CLIPSEG_MASK_SIZE,
          DEFAULT_SIZE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format",
          "gray8: pixel value = label index; rgb: the overlay's colours "
          "(clipseg's default palette or colors), label 0 black. "
          "Default: gray8.", GST_TYPE_CLIPSEG_MASK_FORMAT, DEFAULT_FORMAT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_COLORS,
      g_param_spec_string ("colors", "Colors",
          "Colours for format=rgb as clipseg's colors property: "
          "comma-separated LABEL=RRGGBB entries, LABEL a name or number. "
          "Default: none (clipseg's default palette).", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_set_static_metadata (element_class,
      "clipseg label map", "Filter/Converter/Video",
      "Outputs the label map of clipseg's GstClipsegMeta as video: GRAY8 "
      "label indices or RGB colours, at the map's or the frame's size",
      "clipseg developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_clipseg_mask_change_state);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_MASK_SIZE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_MASK_FORMAT, 0);
}

static void
gst_clipseg_mask_init (GstClipsegMask * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_clipseg_mask_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_clipseg_mask_sink_event));
  gst_pad_set_query_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_clipseg_mask_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_clipseg_mask_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->size = DEFAULT_SIZE;
  self->format = DEFAULT_FORMAT;
  gst_video_info_init (&self->in_info);
  gst_video_info_init (&self->out_info);
  g_queue_init (&self->pending);
}
