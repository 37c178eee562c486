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

#include <errno.h>

#include <gst/gst.h>
#include <gst/app/app.h>
#include <gst/video/video.h>

#include <gstclipsegmeta.h>

/* How long one pull from the appsink waits before the bus is checked for
 * errors: a pipeline that failed never brings the appsink to EOS. */
#define PULL_TIMEOUT (100 * GST_MSECOND)

typedef struct
{
  gchar *masks_dir;
  gboolean quiet;
  GstElement *mask_pipeline;    /* appsrc ! pngenc ! multifilesink */
  GstElement *mask_src;
  guint mask_width, mask_height;        /* of the caps set on mask_src */
  guint frames, with_meta, inferred, results;
  GstClockTime last_source;
  gint64 first_us, last_us;     /* wall clock of the first and last frame */
} Reader;

static void
print_error (GstMessage * msg, const gchar * pipeline)
{
  GError *error;
  gchar *debug;

  gst_message_parse_error (msg, &error, &debug);
  g_printerr ("%s: error from %s: %s\n", pipeline, GST_OBJECT_NAME (msg->src),
      error->message);
  if (debug)
    g_printerr ("  %s\n", debug);
  g_error_free (error);
  g_free (debug);
}

/* Returns TRUE when @bus held an error, which it then printed. */
static gboolean
pop_error (GstBus * bus, const gchar * pipeline)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);

  if (!msg)
    return FALSE;
  print_error (msg, pipeline);
  gst_message_unref (msg);
  return TRUE;
}

/* Parses @description into a pipeline, or prints why not. Without
 * FATAL_ERRORS an unknown property or a missing element is only a warning and
 * the half-built pipeline never runs. */
static GstElement *
launch (const gchar * description, const gchar * name)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch_full (description, NULL,
      GST_PARSE_FLAG_FATAL_ERRORS, &error);

  if (!pipeline) {
    g_printerr ("%s: %s\n", name, error->message);
    g_error_free (error);
  }
  return pipeline;
}

/* Sets @pipeline PLAYING; returns FALSE, having printed why, if it fails. */
static gboolean
play (GstElement * pipeline, const gchar * name)
{
  GstBus *bus;

  if (gst_element_set_state (pipeline,
          GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE)
    return TRUE;
  bus = gst_element_get_bus (pipeline);
  if (!pop_error (bus, name))
    g_printerr ("%s: could not start\n", name);
  gst_object_unref (bus);
  return FALSE;
}

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

static void
stop_masks (Reader * reader)
{
  gst_element_set_state (reader->mask_pipeline, GST_STATE_NULL);
  gst_clear_object (&reader->mask_src);
  gst_clear_object (&reader->mask_pipeline);
}

static gboolean
start_masks (Reader * reader, const GstClipsegMeta * meta)
{
  gchar *desc, *labels_path, *labels_text;
  GError *error = NULL;
  gboolean written;

  /* which label each pixel value means */
  labels_path = g_build_filename (reader->masks_dir, "labels.txt", NULL);
  labels_text = g_strjoinv ("\n", meta->labels);
  written = g_file_set_contents (labels_path, labels_text, -1, &error);
  g_free (labels_path);
  g_free (labels_text);
  if (!written) {
    g_printerr ("masks: %s\n", error->message);
    g_error_free (error);
    return FALSE;
  }

  desc = g_strdup_printf ("appsrc name=src format=time ! pngenc ! "
      "multifilesink location=\"%s/mask-%%05d.png\"", reader->masks_dir);
  reader->mask_pipeline = launch (desc, "mask pipeline");
  g_free (desc);
  if (!reader->mask_pipeline)
    return FALSE;
  reader->mask_src = gst_bin_get_by_name (GST_BIN (reader->mask_pipeline),
      "src");
  if (!play (reader->mask_pipeline, "mask pipeline")) {
    stop_masks (reader);
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_mask (Reader * reader, const GstClipsegMeta * meta, GstClockTime pts)
{
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (meta->label_map);
  GstBus *bus;
  GstBuffer *mask;
  gboolean failed;

  if (!reader->mask_pipeline && !start_masks (reader, meta))
    return FALSE;

  /* the label map follows the resolution property and the input's aspect
   * ratio, both of which may change mid-stream; appsrc sends new caps in
   * order with the buffers */
  if (vmeta->width != reader->mask_width
      || vmeta->height != reader->mask_height) {
    GstCaps *caps = gst_caps_new_simple ("video/x-raw",
        "format", G_TYPE_STRING, "GRAY8",
        "width", G_TYPE_INT, vmeta->width, "height", G_TYPE_INT, vmeta->height,
        "framerate", GST_TYPE_FRACTION, 0, 1, NULL);

    g_object_set (reader->mask_src, "caps", caps, NULL);
    gst_caps_unref (caps);
    reader->mask_width = vmeta->width;
    reader->mask_height = vmeta->height;
  }

  mask = gst_buffer_copy (meta->label_map);
  GST_BUFFER_PTS (mask) = pts;
  /* appsrc queues without limit, so a failing writer shows only on its bus */
  bus = gst_element_get_bus (reader->mask_pipeline);
  failed = pop_error (bus, "mask pipeline");
  gst_object_unref (bus);
  if (failed) {
    gst_buffer_unref (mask);
    stop_masks (reader);
    return FALSE;
  }
  if (gst_app_src_push_buffer (GST_APP_SRC (reader->mask_src),
          mask) != GST_FLOW_OK) {
    g_printerr ("mask pipeline: not accepting masks\n");
    stop_masks (reader);
    return FALSE;
  }
  return TRUE;
}

/* Writes the queued masks. Returns TRUE when the mask pipeline ended without
 * an error. */
static gboolean
finish_masks (Reader * reader)
{
  GstBus *bus;
  GstMessage *msg;
  gboolean ok = TRUE;

  if (!reader->mask_pipeline)
    return TRUE;

  gst_app_src_end_of_stream (GST_APP_SRC (reader->mask_src));
  bus = gst_element_get_bus (reader->mask_pipeline);
  msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    print_error (msg, "mask pipeline");
    ok = FALSE;
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  stop_masks (reader);
  return ok;
}

static gboolean
read_samples (Reader * reader, GstAppSink * sink, GstBus * bus)
{
  GstSample *sample;
  GstBuffer *buffer;
  GstClipsegMeta *meta;

  while (TRUE) {
    sample = gst_app_sink_try_pull_sample (sink, PULL_TIMEOUT);
    /* errors first: an error just before EOS still fails the run */
    if (pop_error (bus, "pipeline")) {
      if (sample)
        gst_sample_unref (sample);
      return FALSE;
    }
    if (!sample) {
      if (gst_app_sink_is_eos (sink))
        return TRUE;
      continue;
    }

    buffer = gst_sample_get_buffer (sample);
    meta = gst_buffer_get_clipseg_meta (buffer);

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
}

/* Returns TRUE when the pipeline ended without an error. */
static gboolean
run (Reader * reader, const gchar * description)
{
  GstElement *pipeline, *sink;
  GstBus *bus;
  gboolean ok, masks_ok;

  pipeline = launch (description, "pipeline");
  if (!pipeline)
    return FALSE;
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (!sink || !GST_IS_APP_SINK (sink)) {
    g_printerr ("the pipeline needs an \"appsink name=sink\"\n");
    gst_clear_object (&sink);
    gst_object_unref (pipeline);
    return FALSE;
  }
  bus = gst_element_get_bus (pipeline);
  ok = play (pipeline, "pipeline")
      && read_samples (reader, GST_APP_SINK (sink), bus);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  /* the masks of the frames read before a failure are still written */
  masks_ok = finish_masks (reader);

  return ok && masks_ok;
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
  /* before the pipeline, so that a bad directory does not wait for a model */
  if (reader.masks_dir && g_mkdir_with_parents (reader.masks_dir, 0755) != 0) {
    g_printerr ("cannot create the masks directory %s: %s\n",
        reader.masks_dir, g_strerror (errno));
    g_free (reader.masks_dir);
    return 1;
  }

  reader.last_source = GST_CLOCK_TIME_NONE;
  ok = run (&reader, argv[1]);
  g_print ("frames=%u with-meta=%u inferred=%u results=%u span=%.2fs\n",
      reader.frames, reader.with_meta, reader.inferred, reader.results,
      (reader.last_us - reader.first_us) / 1e6);
  g_free (reader.masks_dir);

  return ok ? 0 : 1;
}
