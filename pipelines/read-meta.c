/* clipseg-read-meta: reads the clipseg element's results from an appsink.
 *
 * An example of an application using GstClipsegMeta (pkg-config
 * gstreamer-clipseg-meta-1.0): it runs a pipeline that ends in
 * "appsink name=sink", prints one line per frame (timestamp, whether the
 * result was reused, each present label with its coverage and score) and can
 * write every label map as a PNG whose pixel values are the label indices.
 *
 *   clipseg-read-meta [--masks DIR] [--quiet] "PIPELINE ! appsink name=sink"
 *
 * It ends with a summary line "frames=N with-meta=N inferred=N results=N
 * span=S": frames seen, frames with a result, results computed on their own
 * frame (not reused), distinct results, and the wall-clock time from the
 * first frame to the last.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <gst/gst.h>
#include <gst/app/app.h>
#include <gst/video/video.h>

#include <gstclipsegmeta.h>

typedef struct
{
  gchar *masks_dir;
  gboolean quiet;
  GstElement *mask_pipeline;    /* appsrc ! pngenc ! multifilesink */
  GstElement *mask_src;
  guint frames, with_meta, inferred, results;
  GstClockTime last_source;
  gint64 first_us, last_us;     /* wall clock of the first and last frame */
} Reader;

static void
print_meta (const GstClipsegMeta * meta, GstClockTime pts)
{
  GString *line = g_string_new (NULL);
  guint k;

  g_string_append_printf (line, "pts=%" GST_TIME_FORMAT " source=%"
      GST_TIME_FORMAT " reused=%d inference=%.1fms", GST_TIME_ARGS (pts),
      GST_TIME_ARGS (meta->source_pts), meta->reused,
      meta->inference_time / (gdouble) GST_MSECOND);
  for (k = 0; k < meta->n_labels; k++) {
    if (meta->coverage[k] > 0.0)
      g_string_append_printf (line, " %s=%.1f%%(%.2f)", meta->labels[k],
          100.0 * meta->coverage[k], meta->score[k]);
  }
  g_print ("%s\n", line->str);
  g_string_free (line, TRUE);
}

static gboolean
start_masks (Reader * reader, const GstClipsegMeta * meta)
{
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (meta->label_map);
  gchar *desc, *labels_path, *labels_text;
  GError *error = NULL;
  GstCaps *caps;

  g_mkdir_with_parents (reader->masks_dir, 0755);
  desc = g_strdup_printf ("appsrc name=src format=time ! pngenc ! "
      "multifilesink location=\"%s/mask-%%05d.png\"", reader->masks_dir);
  reader->mask_pipeline = gst_parse_launch (desc, &error);
  g_free (desc);
  if (!reader->mask_pipeline) {
    g_printerr ("mask pipeline: %s\n", error->message);
    g_error_free (error);
    return FALSE;
  }
  reader->mask_src = gst_bin_get_by_name (GST_BIN (reader->mask_pipeline),
      "src");
  caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "GRAY8",
      "width", G_TYPE_INT, vmeta->width, "height", G_TYPE_INT, vmeta->height,
      "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
  g_object_set (reader->mask_src, "caps", caps, NULL);
  gst_caps_unref (caps);
  gst_element_set_state (reader->mask_pipeline, GST_STATE_PLAYING);

  /* which label each pixel value means */
  labels_path = g_build_filename (reader->masks_dir, "labels.txt", NULL);
  labels_text = g_strjoinv ("\n", meta->labels);
  g_file_set_contents (labels_path, labels_text, -1, NULL);
  g_free (labels_path);
  g_free (labels_text);

  return TRUE;
}

static gboolean
write_mask (Reader * reader, const GstClipsegMeta * meta, GstClockTime pts)
{
  GstBuffer *mask;

  if (!reader->mask_pipeline && !start_masks (reader, meta))
    return FALSE;

  mask = gst_buffer_copy (meta->label_map);
  GST_BUFFER_PTS (mask) = pts;
  return gst_app_src_push_buffer (GST_APP_SRC (reader->mask_src),
      mask) == GST_FLOW_OK;
}

static void
finish_masks (Reader * reader)
{
  GstBus *bus;
  GstMessage *msg;

  if (!reader->mask_pipeline)
    return;

  gst_app_src_end_of_stream (GST_APP_SRC (reader->mask_src));
  bus = gst_element_get_bus (reader->mask_pipeline);
  msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (reader->mask_pipeline, GST_STATE_NULL);
  gst_object_unref (reader->mask_src);
  gst_object_unref (reader->mask_pipeline);
}

static gboolean
read_samples (Reader * reader, GstAppSink * sink)
{
  GstSample *sample;

  while ((sample = gst_app_sink_pull_sample (sink))) {
    GstBuffer *buffer = gst_sample_get_buffer (sample);
    GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (buffer);

    reader->last_us = g_get_monotonic_time ();
    if (reader->frames++ == 0)
      reader->first_us = reader->last_us;
    if (meta) {
      reader->with_meta++;
      reader->inferred += !meta->reused;
      if (meta->source_pts != reader->last_source)
        reader->results++;
      reader->last_source = meta->source_pts;
      if (!reader->quiet)
        print_meta (meta, GST_BUFFER_PTS (buffer));
      if (reader->masks_dir && !write_mask (reader, meta,
              GST_BUFFER_PTS (buffer))) {
        gst_sample_unref (sample);
        return FALSE;
      }
    }
    gst_sample_unref (sample);
  }
  return TRUE;
}

/* Returns TRUE when the pipeline ended without an error. */
static gboolean
run (Reader * reader, const gchar * description)
{
  GError *error = NULL;
  GstElement *pipeline, *sink;
  GstMessage *msg;
  GstBus *bus;
  gboolean ok;

  pipeline = gst_parse_launch (description, &error);
  if (!pipeline) {
    g_printerr ("pipeline: %s\n", error->message);
    g_error_free (error);
    return FALSE;
  }
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (!sink || !GST_IS_APP_SINK (sink)) {
    g_printerr ("the pipeline needs an \"appsink name=sink\"\n");
    gst_clear_object (&sink);
    gst_object_unref (pipeline);
    return FALSE;
  }
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  ok = read_samples (reader, GST_APP_SINK (sink));

  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    gst_message_parse_error (msg, &error, NULL);
    g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (msg->src),
        error->message);
    g_error_free (error);
    gst_message_unref (msg);
    ok = FALSE;
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  finish_masks (reader);

  return ok;
}

int
main (int argc, char **argv)
{
  Reader reader = { NULL, };
  GOptionEntry entries[] = {
    {"masks", 'm', 0, G_OPTION_ARG_FILENAME, &reader.masks_dir,
        "Write every label map to DIR/mask-NNNNN.png (pixel = label index) "
          "and the label names to DIR/labels.txt", "DIR"},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &reader.quiet,
        "Print only the summary line", NULL},
    {NULL}
  };
  GOptionContext *context;
  GError *error = NULL;
  gboolean ok;

  context = g_option_context_new ("\"PIPELINE ! appsink name=sink\" - "
      "print the clipseg results of every frame");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2) {
    g_printerr ("%s\n", error ? error->message :
        "give the pipeline as one argument; see --help");
    g_clear_error (&error);
    g_option_context_free (context);
    return 2;
  }
  g_option_context_free (context);

  reader.last_source = GST_CLOCK_TIME_NONE;
  ok = run (&reader, argv[1]);
  g_print ("frames=%u with-meta=%u inferred=%u results=%u span=%.2fs\n",
      reader.frames, reader.with_meta, reader.inferred, reader.results,
      (reader.last_us - reader.first_us) / 1e6);
  g_free (reader.masks_dir);

  return ok ? 0 : 1;
}
