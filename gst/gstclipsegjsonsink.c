/* GStreamer clipseg
 * gstclipsegjsonsink.c: clipseg's results as JSON lines, one per frame.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

/**
 * SECTION:element-clipsegjsonsink
 * @title: clipsegjsonsink
 * @short_description: writes clipseg's results as JSON lines
 *
 * clipsegjsonsink writes one JSON object per frame, on a line of its own
 * (JSON lines, as DL Streamer's gvametapublish file-format=json-lines):
 *
 * |[
 * {"frame":0,"pts":0,"duration":33333333,"inferred":true,"reused":false,
 *  "source-pts":0,"inference-ms":41.2,"labels":["background","person"],
 *  "coverage":[0.9,0.1],"score":[0.7,0.6]}
 * ]|
 *
 * `frame` counts the frames from the start, `pts`, `duration` and
 * `source-pts` (of the frame the result was computed on) are nanoseconds
 * (null when unknown), `inferred` is true when the result was computed on
 * this frame and `reused` when it was carried over from an earlier one;
 * `labels`, `coverage` (share of the label map's pixels, summing to 1) and
 * `score` (mean probability where chosen) have one entry per label. A frame
 * without a result (before the first one with clipseg's `latest`
 * processing) has only `frame`, `pts`, `duration`, and `inferred` and
 * `reused` false.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     clipseg labels="person, car" processing=sync ! \
 *     clipsegjsonsink location=out.jsonl
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstclipsegjsonsink.h"
#include "gstclipsegmeta.h"

#include <errno.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

GST_DEBUG_CATEGORY_STATIC (gst_clipseg_json_sink_debug);
#define GST_CAT_DEFAULT gst_clipseg_json_sink_debug

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_LABELS_LOCATION,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw(ANY)"));

struct _GstClipsegJsonSink
{
  GstBaseSink parent;

  /* properties, under the object lock */
  gchar *location;
  gchar *labels_location;

  /* streaming thread, from start to stop */
  FILE *file;
  guint64 frame;
  gchar *labels_written;        /* the label names last written, joined */
};

#define gst_clipseg_json_sink_parent_class parent_class
G_DEFINE_TYPE (GstClipsegJsonSink, gst_clipseg_json_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (clipsegjsonsink, "clipsegjsonsink",
    GST_RANK_NONE, GST_TYPE_CLIPSEG_JSON_SINK);

static void
gst_clipseg_json_add_time (JsonBuilder * b, const gchar * name,
    GstClockTime time)
{
  json_builder_set_member_name (b, name);
  if (GST_CLOCK_TIME_IS_VALID (time))
    json_builder_add_int_value (b, time);
  else
    json_builder_add_null_value (b);
}

static void
gst_clipseg_json_add_doubles (JsonBuilder * b, const gchar * name,
    const gdouble * values, guint n)
{
  guint i;

  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (i = 0; i < n; i++)
    json_builder_add_double_value (b, values[i]);
  json_builder_end_array (b);
}

static void
gst_clipseg_json_add_result (JsonBuilder * b, const GstClipsegMeta * meta)
{
  guint k;

  gst_clipseg_json_add_time (b, "source-pts", meta->source_pts);
  json_builder_set_member_name (b, "inference-ms");
  json_builder_add_double_value (b,
      meta->inference_time / (gdouble) GST_MSECOND);
  json_builder_set_member_name (b, "labels");
  json_builder_begin_array (b);
  for (k = 0; k < meta->n_labels; k++)
    json_builder_add_string_value (b, meta->labels[k]);
  json_builder_end_array (b);
  gst_clipseg_json_add_doubles (b, "coverage", meta->coverage, meta->n_labels);
  gst_clipseg_json_add_doubles (b, "score", meta->score, meta->n_labels);
}

/* (transfer full): the frame's line, without its newline. */
static gchar *
gst_clipseg_json_line (guint64 frame, GstBuffer * buffer,
    const GstClipsegMeta * meta)
{
  JsonBuilder *b = json_builder_new ();
  JsonGenerator *gen = json_generator_new ();
  JsonNode *root;
  gchar *line;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "frame");
  json_builder_add_int_value (b, frame);
  gst_clipseg_json_add_time (b, "pts", GST_BUFFER_PTS (buffer));
  gst_clipseg_json_add_time (b, "duration", GST_BUFFER_DURATION (buffer));
  json_builder_set_member_name (b, "inferred");
  json_builder_add_boolean_value (b, meta && !meta->reused);
  json_builder_set_member_name (b, "reused");
  json_builder_add_boolean_value (b, meta && meta->reused);
  if (meta)
    gst_clipseg_json_add_result (b, meta);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  line = json_generator_to_data (gen, NULL);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  return line;
}

/* Writes the label names, one per line, when they changed. */
static gboolean
gst_clipseg_json_sink_write_labels (GstClipsegJsonSink * self,
    const gchar * path, const GstClipsegMeta * meta)
{
  gchar *text = g_strjoinv ("\n", meta->labels);
  GError *error = NULL;

  if (g_strcmp0 (text, self->labels_written) == 0) {
    g_free (text);
    return TRUE;
  }
  if (!g_file_set_contents (path, text, -1, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not write the labels to \"%s\".", path), ("%s",
            error->message));
    g_error_free (error);
    g_free (text);
    return FALSE;
  }
  g_free (self->labels_written);
  self->labels_written = text;
  return TRUE;
}

static GstFlowReturn
gst_clipseg_json_sink_render (GstBaseSink * sink, GstBuffer * buffer)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (sink);
  GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (buffer);
  gchar *line, *labels_location;
  gboolean ok;

  GST_OBJECT_LOCK (self);
  labels_location = g_strdup (self->labels_location);
  GST_OBJECT_UNLOCK (self);
  ok = !meta || !labels_location
      || gst_clipseg_json_sink_write_labels (self, labels_location, meta);
  g_free (labels_location);
  if (!ok)
    return GST_FLOW_ERROR;

  line = gst_clipseg_json_line (self->frame++, buffer, meta);
  ok = fprintf (self->file, "%s\n", line) >= 0 && fflush (self->file) == 0;
  g_free (line);
  if (!ok) {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not write a line."),
        ("%s", g_strerror (errno)));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

static gboolean
gst_clipseg_json_sink_start (GstBaseSink * sink)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (sink);
  gchar *location;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  GST_OBJECT_UNLOCK (self);

  self->frame = 0;
  g_clear_pointer (&self->labels_written, g_free);
  self->file = location && *location ? g_fopen (location, "w") : stdout;
  if (!self->file) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open \"%s\" for writing.", location), ("%s",
            g_strerror (errno)));
    g_free (location);
    return FALSE;
  }
  g_free (location);
  return TRUE;
}

static gboolean
gst_clipseg_json_sink_stop (GstBaseSink * sink)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (sink);
  gboolean ok = TRUE;

  if (self->file && self->file != stdout)
    ok = fclose (self->file) == 0;
  self->file = NULL;
  g_clear_pointer (&self->labels_written, g_free);
  if (!ok)
    GST_ELEMENT_ERROR (self, RESOURCE, CLOSE, ("Could not close the file."),
        ("%s", g_strerror (errno)));
  return ok;
}

static void
gst_clipseg_json_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_LABELS_LOCATION:
      g_free (self->labels_location);
      self->labels_location = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clipseg_json_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_LABELS_LOCATION:
      g_value_set_string (value, self->labels_location);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clipseg_json_sink_finalize (GObject * object)
{
  GstClipsegJsonSink *self = GST_CLIPSEG_JSON_SINK (object);

  g_free (self->location);
  g_free (self->labels_location);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clipseg_json_sink_class_init (GstClipsegJsonSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_clipseg_json_sink_debug, "clipsegjsonsink", 0,
      "clipseg results as JSON lines");

  gobject_class->set_property = gst_clipseg_json_sink_set_property;
  gobject_class->get_property = gst_clipseg_json_sink_get_property;
  gobject_class->finalize = gst_clipseg_json_sink_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "File to write the JSON lines to (replaced). Default: none "
          "(standard output).", NULL, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_LABELS_LOCATION,
      g_param_spec_string ("labels-location", "Labels location",
          "Also write the label names, one per line in label-index order, to "
          "this file whenever they change (a legend for label maps). "
          "Default: none.", NULL, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  gst_element_class_set_static_metadata (element_class,
      "clipseg JSON lines sink", "Sink/Metadata",
      "Writes the clipseg result of every frame as one JSON object per line",
      "clipseg developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);

  sink_class->start = GST_DEBUG_FUNCPTR (gst_clipseg_json_sink_start);
  sink_class->stop = GST_DEBUG_FUNCPTR (gst_clipseg_json_sink_stop);
  sink_class->render = GST_DEBUG_FUNCPTR (gst_clipseg_json_sink_render);
}

static void
gst_clipseg_json_sink_init (GstClipsegJsonSink * self)
{
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}
