/* GStreamer clipseg
 * test-clipseg.c: element tests on small random checkpoints.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>

#include <math.h>
#include <string.h>

#include "clipseg-engine.h"
#include "gstclipsegmeta.h"
#include "clipseg-check.h"

/* ---- helpers ------------------------------------------------------------ */

/* The model whose inference outlasts many pushes; the valgrind setup, where
 * everything is slower, swaps in the fast one. */
static const gchar *
slow_model (void)
{
  const gchar *path = g_getenv ("CLIPSEG_TEST_SLOW_MODEL");

  return path ? path : TEST_SLOW_MODEL;
}

static gfloat *
copy_probabilities (GstClipsegMeta * meta, gsize * n)
{
  gsize size;
  gfloat *probs;

  fail_unless (meta->probabilities != NULL);
  size = gst_buffer_get_size (meta->probabilities);
  probs = g_malloc (size);
  gst_buffer_extract (meta->probabilities, 0, probs, size);
  *n = size / sizeof (gfloat);

  return probs;
}

static guint
count_rois (GstBuffer * buffer)
{
  gpointer state = NULL;
  guint n = 0;

  while (gst_buffer_iterate_meta_filtered (buffer, &state,
          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
    n++;
  return n;
}

/* Sets @element to PAUSED, expects an error in @domain: failing the state
 * change itself when @at_once, else posted by the model loader. */
static void
check_start_fails (GstElement * element, gboolean at_once, GQuark domain,
    gint code)
{
  GstBus *bus = gst_bus_new ();
  GstStateChangeReturn ret;
  GstMessage *msg;
  GError *error = NULL;

  gst_element_set_bus (element, bus);
  ret = gst_element_set_state (element, GST_STATE_PAUSED);
  if (at_once)
    fail_unless_equals_int (ret, GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &error, NULL);
  GST_INFO ("error as expected: %s", error->message);
  fail_unless (error->domain == domain, "error domain %s",
      g_quark_to_string (error->domain));
  fail_unless_equals_int (error->code, code);
  g_error_free (error);
  gst_message_unref (msg);

  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  gst_object_unref (element);
}

static gchar *
make_temp_dir (void)
{
  gchar *dir = g_dir_make_tmp ("clipseg-test-XXXXXX", NULL);

  fail_unless (dir != NULL);
  return dir;
}

static void
remove_dir (const gchar * path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir && (name = g_dir_read_name (dir))) {
    gchar *file = g_build_filename (path, name, NULL);

    g_remove (file);
    g_free (file);
  }
  if (dir)
    g_dir_close (dir);
  g_rmdir (path);
}

/* The clipseg category's debug messages, collected while a test watches:
 * how tests see what the worker does in its own thread. */
static GMutex log_lock;
static GCond log_cond;
static GPtrArray *log_lines;

static void
collect_log (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  if (strcmp (gst_debug_category_get_name (category), "clipseg") != 0)
    return;
  g_mutex_lock (&log_lock);
  /* a worker may still log while the watch ends */
  if (log_lines)
    g_ptr_array_add (log_lines, g_strdup (gst_debug_message_get (message)));
  g_cond_broadcast (&log_cond);
  g_mutex_unlock (&log_lock);
}

static void
watch_log (GstDebugLevel level)
{
  g_mutex_lock (&log_lock);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_mutex_unlock (&log_lock);
  gst_debug_set_threshold_for_name ("clipseg", level);
  gst_debug_add_log_function (collect_log, NULL, NULL);
}

/* (transfer full): the messages since watch_log */
static GPtrArray *
unwatch_log (void)
{
  GPtrArray *lines;

  gst_debug_remove_log_function (collect_log);
  gst_debug_set_threshold_for_name ("clipseg", GST_LEVEL_FIXME);
  g_mutex_lock (&log_lock);
  lines = g_steal_pointer (&log_lines);
  g_mutex_unlock (&log_lock);
  return lines;
}

/* Waits for a message starting with @prefix. */
static void
wait_for_log (const gchar * prefix)
{
  guint i = 0;

  g_mutex_lock (&log_lock);
  while (TRUE) {
    for (; i < log_lines->len; i++)
      if (g_str_has_prefix (g_ptr_array_index (log_lines, i), prefix))
        goto found;
    g_cond_wait (&log_cond, &log_lock);
  }
found:
  g_mutex_unlock (&log_lock);
}

/* ---- caps --------------------------------------------------------------- */

static const gchar *rgb_formats[] = {
  "RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR"
};

static guint8 *
segment_test_pattern (const gchar * format, gsize * size)
{
  GstHarness *h = harness_for (make_clipseg (NULL), NULL);
  gchar *src =
      g_strdup_printf ("videotestsrc pattern=smpte num-buffers=3 ! capsfilter "
      "caps=\"" CAPS_FMT "\"", format, WIDTH, HEIGHT);
  GstBuffer *out;
  GstCaps *caps;
  guint8 *map;
  gint i;

  gst_harness_add_src_parse (h, src, FALSE);
  g_free (src);
  for (i = 0; i < 2; i++) {
    fail_unless_equals_int (gst_harness_push_from_src (h), GST_FLOW_OK);
    out = gst_harness_pull (h);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (gst_harness_push_from_src (h), GST_FLOW_OK);
  out = gst_harness_pull (h);
  map = copy_label_map (get_meta (out), size);
  gst_buffer_unref (out);

  caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless_equals_string (gst_structure_get_string (gst_caps_get_structure
          (caps, 0), "format"), format);
  gst_caps_unref (caps);
  gst_harness_teardown (h);

  return map;
}

/* Every packed RGB order converts to the same planes, so to the same label
 * map; the two 4:2:0 formats likewise. */
GST_START_TEST (test_caps_every_format)
{
  gsize size, other_size;
  guint8 *reference = segment_test_pattern ("RGB", &size);
  guint8 *yuv_reference = segment_test_pattern ("I420", &size);
  guint8 *map;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (rgb_formats); i++) {
    map = segment_test_pattern (rgb_formats[i], &other_size);
    fail_unless_equals_int (other_size, size);
    fail_unless (memcmp (map, reference, size) == 0,
        "%s segments differently from RGB", rgb_formats[i]);
    g_free (map);
  }
  map = segment_test_pattern ("NV12", &other_size);
  fail_unless (memcmp (map, yuv_reference, size) == 0,
      "NV12 segments differently from I420");
  g_free (map);
  g_free (reference);
  g_free (yuv_reference);
}

GST_END_TEST;

GST_START_TEST (test_caps_overlay_composition_feature)
{
  GstHarness *h = harness_for (make_clipseg (NULL),
      "video/x-raw(meta:GstVideoOverlayComposition),format=RGBx,"
      "width=64,height=48,framerate=30/1");
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));

  get_meta (out);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- properties --------------------------------------------------------- */

GST_START_TEST (test_property_defaults)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  gchar *model, *background, *templates;
  gchar **words;
  guint interval;
  gint window, stride, resolution;
  gdouble smoothing, threshold, alpha;
  gboolean qos, post;
  gint precision;

  g_object_get (element, "precision", &precision, NULL);
  fail_unless_equals_int (precision, 0);        /* auto */
  g_object_get (element, "model", &model, "background", &background,
      "templates", &templates, "inference-interval", &interval,
      "window", &window, "stride", &stride, "resolution", &resolution,
      "smoothing", &smoothing, "threshold", &threshold,
      "overlay-alpha", &alpha, "qos", &qos, "post-messages", &post, NULL);
  fail_unless (model != NULL && g_str_has_suffix (model, "model"));
  words = g_strsplit (background, ", ", -1);
  fail_unless_equals_int (g_strv_length (words), 26);
  fail_unless_equals_string (words[0], "sky");
  fail_unless_equals_string (words[25], "fence");
  fail_unless_equals_string (templates, "imagenet80");
  fail_unless_equals_int (interval, 1);
  fail_unless_equals_int (window, -1);
  fail_unless_equals_int (stride, 0);
  fail_unless_equals_int (resolution, 0);
  fail_unless_equals_float (smoothing, 0.5);
  fail_unless_equals_float (threshold, 0.0);
  fail_unless_equals_float (alpha, 0.5);
  fail_unless (qos);
  fail_unless (!post);
  g_strfreev (words);
  g_free (model);
  g_free (background);
  g_free (templates);
  gst_object_unref (element);
}

GST_END_TEST;

/* The default a blurb states, as its type prints it: "-1", "0.5", "true",
 * an enum's nick; NULL for types whose blurbs say it in words. */
static gchar *
default_as_stated (GParamSpec * pspec)
{
  const GValue *value = g_param_spec_get_default_value (pspec);

  if (G_VALUE_HOLDS_INT (value))
    return g_strdup_printf ("%d", g_value_get_int (value));
  if (G_VALUE_HOLDS_UINT (value))
    return g_strdup_printf ("%u", g_value_get_uint (value));
  if (G_VALUE_HOLDS_DOUBLE (value))
    return g_strdup_printf ("%g", g_value_get_double (value));
  if (G_VALUE_HOLDS_BOOLEAN (value))
    return g_strdup (g_value_get_boolean (value) ? "true" : "false");
  if (G_VALUE_HOLDS_ENUM (value))
    return g_strdup (g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class,
            g_value_get_enum (value))->value_nick);
  return NULL;
}

/* Every blurb's "Default: X" is the default the property has: blurbs are
 * built from the constants, not repeated as literals. */
GST_START_TEST (test_blurbs_state_the_defaults)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  guint n, i, checked = 0;
  GParamSpec **pspecs =
      g_object_class_list_properties (G_OBJECT_GET_CLASS (element), &n);

  for (i = 0; i < n; i++) {
    const gchar *stated = strstr (g_param_spec_get_blurb (pspecs[i]),
        "Default: ");
    gchar *value = default_as_stated (pspecs[i]);

    if (stated && value) {
      stated += strlen ("Default: ");
      fail_unless (g_str_has_prefix (stated, value)
          && !g_ascii_isdigit (stated[strlen (value)]),
          "%s: the blurb says \"Default: %s\", the default is %s",
          pspecs[i]->name, stated, value);
      checked++;
    }
    g_free (value);
  }
  fail_unless (checked >= 15, "only %u blurbs state a default", checked);
  g_free (pspecs);
  gst_object_unref (element);
}

GST_END_TEST;

/* What the element shares with the engine's segmentation has the engine's
 * defaults. */
GST_START_TEST (test_defaults_are_the_engines)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  struct clipseg_segment_params engine = clipseg_segment_default_params ();
  gint mode;
  guint pamr_steps;
  gdouble logit_scale, threshold, area_threshold, key_smoothing, denoising;

  g_object_get (element, "mode", &mode, "logit-scale", &logit_scale,
      "threshold", &threshold, "area-threshold", &area_threshold,
      "key-smoothing", &key_smoothing, "prompt-denoising", &denoising,
      "pamr-steps", &pamr_steps, NULL);
  fail_unless_equals_int (mode, engine.mode);
  fail_unless_equals_float (logit_scale, engine.logit_scale);
  fail_unless_equals_float (threshold, engine.prob_thd);
  fail_unless_equals_float (area_threshold, engine.area_thd);
  fail_unless_equals_float (key_smoothing, engine.ks_thresh);
  fail_unless_equals_float (denoising, engine.pd_thresh);
  fail_unless_equals_int (pamr_steps, engine.pamr_steps);
  gst_object_unref (element);
}

GST_END_TEST;

GST_START_TEST (test_property_flags)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  const gchar *playing[] = { "labels", "labels-file", "background",
    "templates", "mode", "resolution", "window", "stride", "logit-scale",
    "threshold", "area-threshold", "inference-interval", "processing",
    "smoothing", "overlay", "overlay-alpha", "colors", "post-messages",
    "attach-probabilities", "qos", "model"
  };
  const gchar *ready[] = { "n-threads", "precision" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (playing); i++) {
    GParamSpec *pspec =
        g_object_class_find_property (G_OBJECT_GET_CLASS (element), playing[i]);

    fail_unless (pspec != NULL, "no property %s", playing[i]);
    fail_unless (pspec->flags & GST_PARAM_MUTABLE_PLAYING, "%s", playing[i]);
    fail_unless (strlen (g_param_spec_get_blurb (pspec)) > 30, "%s",
        playing[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (ready); i++) {
    GParamSpec *pspec =
        g_object_class_find_property (G_OBJECT_GET_CLASS (element), ready[i]);

    fail_unless (pspec->flags & GST_PARAM_MUTABLE_READY, "%s", ready[i]);
  }

  /* the ranges stop at what the engine accepts: a scale above 0, an area
   * share below 1 */
  fail_unless (G_PARAM_SPEC_DOUBLE (g_object_class_find_property
          (G_OBJECT_GET_CLASS (element), "logit-scale"))->minimum > 0.0);
  fail_unless (G_PARAM_SPEC_DOUBLE (g_object_class_find_property
          (G_OBJECT_GET_CLASS (element), "area-threshold"))->maximum < 1.0);
  /* the advertised default model is the one an element starts with */
  {
    GParamSpec *pspec =
        g_object_class_find_property (G_OBJECT_GET_CLASS (element), "model");
    gchar *model;

    g_object_get (element, "model", &model, NULL);
    fail_unless_equals_string (G_PARAM_SPEC_STRING (pspec)->default_value,
        model);
    g_free (model);
  }
  gst_object_unref (element);
}

GST_END_TEST;

GST_START_TEST (test_property_round_trip)
{
  GstElement *element = gst_element_factory_make ("clipseg", NULL);
  const gchar *pairs[][2] = {
    {"model", "/some/model"}, {"labels", "a|b, c"}, {"labels-file", "x.txt"},
    {"background", ""}, {"templates", "single"}, {"mode", "maskclip"},
    {"resolution", "224"}, {"window", "0"}, {"stride", "56"},
    {"logit-scale", "65"}, {"threshold", "0.1"}, {"area-threshold", "0.2"},
    {"inference-interval", "5"}, {"processing", "latest"},
    {"smoothing", "0.5"}, {"n-threads", "2"}, {"precision", "bf16"},
    {"overlay", "blend"},
    {"overlay-alpha", "0.25"}, {"colors", "a=#ff0000"},
    {"post-messages", "true"}, {"attach-probabilities", "true"},
    {"qos", "false"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (pairs); i++) {
    GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS
        (element), pairs[i][0]);
    GValue value = G_VALUE_INIT, expected = G_VALUE_INIT;

    gst_util_set_object_arg (G_OBJECT (element), pairs[i][0], pairs[i][1]);
    g_value_init (&value, pspec->value_type);
    g_value_init (&expected, pspec->value_type);
    g_object_get_property (G_OBJECT (element), pairs[i][0], &value);
    fail_unless (gst_value_deserialize (&expected, pairs[i][1]));
    fail_unless (gst_value_compare (&value, &expected) == GST_VALUE_EQUAL,
        "%s did not keep %s", pairs[i][0], pairs[i][1]);
    g_value_unset (&value);
    g_value_unset (&expected);
  }

  /* invalid colours keep the previous ones, with a warning on the bus and
   * none through g_warning (fatal under G_DEBUG=fatal-warnings) */
  {
    GstBus *bus = gst_bus_new ();
    GstMessage *msg;
    GError *error = NULL;

    gst_element_set_bus (element, bus);
    g_object_set (element, "colors", "a=blue", NULL);
    msg = pop_error (bus, GST_MESSAGE_WARNING);
    gst_message_parse_warning (msg, &error, NULL);
    fail_unless (strstr (error->message, "colors") != NULL);
    g_error_free (error);
    gst_message_unref (msg);
    fail_unless (gst_bus_pop (bus) == NULL, "more than one message");
    check_string_property (element, "colors", "a=#ff0000");
    gst_element_set_bus (element, NULL);
    gst_object_unref (bus);
  }
  gst_object_unref (element);
}

GST_END_TEST;

/* precision reaches the engine (the loader logs what runs) and both
 * precisions label the frame alike. */
GST_START_TEST (test_precision)
{
  const gchar *names[] = { "fp32", "bf16" };
  guint8 *maps[2];
  gsize size, same = 0, i;
  guint k;

  for (k = 0; k < 2; k++) {
    GstElement *element = make_clipseg (NULL);
    const gchar *loaded = NULL;
    GstHarness *h;
    GPtrArray *log;
    GstBuffer *out;

    /* before the harness starts the element, whose loader reads it */
    gst_util_set_object_arg (G_OBJECT (element), "precision", names[k]);
    watch_log (GST_LEVEL_INFO);
    h = harness_for (element, RGBX_CAPS);
    out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
    log = unwatch_log ();
    for (i = 0; i < log->len && !loaded; i++)
      loaded = strstr (g_ptr_array_index (log, i), " loaded: ");
    fail_unless (loaded != NULL);
    GST_INFO ("asked for %s:%s", names[k], loaded + 8);
    if (k == 0)
      fail_unless (g_str_has_prefix (loaded, " loaded: fp32, "), "%s", loaded);
    maps[k] = copy_label_map (get_meta (out), &size);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
    g_ptr_array_unref (log);
  }
  for (i = 0; i < size; i++)
    same += maps[0][i] == maps[1][i];
  fail_unless (same >= size * 9 / 10, "%" G_GSIZE_FORMAT " of %"
      G_GSIZE_FORMAT " pixels alike", same, size);
  g_free (maps[0]);
  g_free (maps[1]);
}

GST_END_TEST;

/* ---- metadata ----------------------------------------------------------- */

GST_START_TEST (test_meta_fields)
{
  GstHarness *h = harness_for (make_clipseg ("attach-probabilities", TRUE,
          NULL), RGBX_CAPS);
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  GstClipsegMeta *meta = get_meta (out);
  GstVideoMeta *vmeta = label_map_info (meta);
  gsize n_pixels, n_probs, i;
  guint8 *map = copy_label_map (meta, &n_pixels);
  gfloat *probs = copy_probabilities (meta, &n_probs);
  guint counts[4] = { 0, };
  gdouble total = 0.0;
  guint k, present = 0;
  gpointer state = NULL;
  GstMeta *m;

  fail_unless_equals_int (vmeta->width, WIDTH);
  fail_unless_equals_int (vmeta->height, HEIGHT);
  fail_unless_equals_int (meta->region.x, 0);
  fail_unless_equals_int (meta->region.w, WIDTH);
  fail_unless_equals_int (meta->region.h, HEIGHT);
  fail_unless_equals_int (meta->n_labels, 4);
  fail_unless_equals_string (meta->labels[0], "background");
  fail_unless_equals_string (meta->labels[1], "red");
  fail_unless_equals_string (meta->labels[3], "blue");
  fail_unless (meta->labels[4] == NULL);
  fail_unless_equals_uint64 (meta->source_pts, 0);
  fail_unless (!meta->reused);
  fail_unless (meta->inference_time > 0);

  /* coverage matches the map; background only below the threshold (off) */
  for (i = 0; i < n_pixels; i++) {
    fail_unless (map[i] < 4);
    counts[map[i]]++;
  }
  fail_unless_equals_int (counts[0], 0);
  for (k = 0; k < 4; k++) {
    fail_unless_equals_float (meta->coverage[k],
        (gdouble) counts[k] / n_pixels);
    fail_unless (meta->score[k] >= 0.0 && meta->score[k] <= 1.0);
    fail_unless ((meta->score[k] > 0.0) == (counts[k] > 0));
    total += meta->coverage[k];
    present += k > 0 && counts[k] > 0;
  }
  fail_unless (fabs (total - 1.0) < 1e-9);

  /* probabilities: [labels][h][w], a softmax over the classes per pixel */
  fail_unless_equals_int (n_probs, 4 * n_pixels);
  for (i = 0; i < n_pixels; i++) {
    gfloat sum = 0.0;

    for (k = 0; k < 4; k++)
      sum += probs[k * n_pixels + i];
    fail_unless (fabs (sum - 1.0) < 1e-4, "pixel %d sums to %f", (int) i, sum);
    fail_unless (probs[map[i] * n_pixels + i] >= probs[1 * n_pixels + i]);
  }

  /* one ROI per present label, with the label and its score */
  fail_unless_equals_int (count_rois (out), present);
  while ((m = gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
    GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
        "clipseg");
    guint id;
    gdouble score;

    fail_unless (s != NULL);
    fail_unless (gst_structure_get_uint (s, "label-id", &id));
    fail_unless (gst_structure_get_double (s, "score", &score));
    fail_unless_equals_string (gst_structure_get_string (s, "label"),
        meta->labels[id]);
    fail_unless_equals_string (g_quark_to_string (roi->roi_type),
        meta->labels[id]);
    fail_unless_equals_float (score, meta->score[id]);
    fail_unless (roi->x + roi->w <= WIDTH && roi->y + roi->h <= HEIGHT);
    fail_unless (roi->w > 0 && roi->h > 0);
  }

  g_free (map);
  g_free (probs);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_meta_survives_copy)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  GstBuffer *copy = gst_buffer_copy (out);
  GstClipsegMeta *meta = get_meta (out);
  GstClipsegMeta *copied = get_meta (copy);

  fail_unless (copied->label_map == meta->label_map);
  fail_unless_equals_int (copied->n_labels, meta->n_labels);
  fail_unless_equals_string (copied->labels[2], meta->labels[2]);
  fail_unless_equals_float (copied->coverage[1], meta->coverage[1]);
  fail_unless_equals_uint64 (copied->source_pts, meta->source_pts);
  fail_unless_equals_int (count_rois (copy), count_rois (out));

  gst_buffer_unref (copy);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* videoconvert keeps the meta, videoscale maps it onto the scaled frame. */
GST_START_TEST (test_meta_survives_videoconvert_videoscale)
{
  GstHarness *h = gst_harness_new_parse ("clipseg model=" TEST_MODEL
      " labels=\"" LABELS "\" templates=single background=\"\" "
      "processing=sync resolution=48 ! "
      "videoconvert ! capsfilter caps=video/x-raw,format=I420 ! videoscale ! "
      "capsfilter caps=\"video/x-raw,width=128,height=96\"");
  GstBuffer *out;
  GstClipsegMeta *meta;
  GstVideoMeta *vmeta;
  gsize n_pixels;
  guint8 *map;
  gint x, y;

  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  meta = get_meta (out);
  vmeta = label_map_info (meta);
  fail_unless_equals_int (vmeta->width, WIDTH);
  fail_unless_equals_int (meta->region.w, 128);
  fail_unless_equals_int (meta->region.h, 96);
  map = copy_label_map (meta, &n_pixels);
  for (y = 0; y < 96; y++)
    for (x = 0; x < 128; x++)
      fail_unless_equals_int (gst_clipseg_meta_label_at (meta, x, y),
          map[(y / 2) * WIDTH + x / 2]);
  fail_unless_equals_int (gst_clipseg_meta_label_at (meta, 128, 0), -1);
  fail_unless (count_rois (out) > 0);

  g_free (map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- frame skipping ----------------------------------------------------- */

GST_START_TEST (test_interval_infers_every_nth_frame)
{
  GstHarness *h = harness_for (make_clipseg ("inference-interval", 3, NULL),
      RGBX_CAPS);
  GstClockTime last_inferred = GST_CLOCK_TIME_NONE;
  guint i, inferred = 0;

  for (i = 0; i < 10; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h, make_frame (i, FALSE));
    GstClipsegMeta *meta = get_meta (out);

    fail_unless_equals_int (meta->reused, i % 3 != 0);
    if (!meta->reused) {
      inferred++;
      last_inferred = GST_BUFFER_PTS (out);
    }
    fail_unless_equals_uint64 (meta->source_pts, last_inferred);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (inferred, 4); /* ceil (10 / 3) */

  /* changed while playing: every frame from now on */
  g_object_set (h->element, "inference-interval", 1, NULL);
  for (i = 10; i < 13; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h, make_frame (i, FALSE));

    fail_unless (!get_meta (out)->reused);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* In latest mode no frame waits: not the first (the worker is still
 * encoding the labels, then inferring), not any later one. Frames without a
 * result carry no meta; once results come, each is inferred from a frame
 * pushed after the previous inference started, so results move forward. */
GST_START_TEST (test_latest_never_blocks)
{
  GstElement *element = make_clipseg ("model", slow_model (),
      "labels", "red, green", NULL);
  GstClockTime source = GST_CLOCK_TIME_NONE;
  GstClipsegMeta *meta;
  GstHarness *h;
  GstBuffer *out;
  guint i, results = 0, without = 0, seen_at = 0;

  gst_util_set_object_arg (G_OBJECT (element), "processing", "latest");
  h = harness_for (element, RGBX_CAPS);

  out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  fail_unless (gst_buffer_get_clipseg_meta (out) == NULL,
      "the first frame waited for an inference");
  gst_buffer_unref (out);

  for (i = 1; results < 3; i++) {
    fail_unless (i < 1000000);
    out = gst_harness_push_and_pull (h, make_frame (i, FALSE));
    meta = gst_buffer_get_clipseg_meta (out);
    if (!meta) {
      fail_unless (results == 0, "frame %u lost the result", i);
      without++;
    } else if (meta->source_pts != source) {
      fail_unless_equals_int (meta->reused,
          meta->source_pts != GST_BUFFER_PTS (out));
      if (results > 0)
        fail_unless (meta->source_pts + FRAME_DURATION >=
            seen_at * FRAME_DURATION, "result of frame %" G_GUINT64_FORMAT
            " older than the frame %u that saw the previous one",
            meta->source_pts / FRAME_DURATION, seen_at);
      source = meta->source_pts;
      seen_at = i;
      results++;
    }
    gst_buffer_unref (out);
  }
  GST_INFO ("%u more frames passed before the first result", without);

  /* a frame in flight at teardown neither hangs nor leaks */
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (i, FALSE)));
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Pushes frames from @index on until one carries a result other than
 * @previous (a source timestamp, or NONE for any result); returns it. */
static GstClockTime
push_until_new_result (GstHarness * h, guint * index, GstClockTime previous)
{
  guint start = *index;

  while (TRUE) {
    GstBuffer *out = gst_harness_push_and_pull (h, make_frame (*index, FALSE));
    GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (out);
    GstClockTime source = meta ? meta->source_pts : GST_CLOCK_TIME_NONE;

    gst_buffer_unref (out);
    (*index)++;
    if (meta && source != previous)
      return source;
    fail_unless (*index - start < 1000000, "no new result");
  }
}

/* A label change or a new frame size in latest mode does not make the
 * streaming thread wait either: the old result goes on (it names its labels)
 * until the new labels' first result; a new size has no result to carry. */
GST_START_TEST (test_latest_label_and_caps_changes_never_block)
{
  GstElement *element = make_clipseg ("model", slow_model (),
      "labels", "red, green", NULL);
  const gchar *colours[] = { "red", "green", "blue", "cyan" };
  GString *names = g_string_new ("");
  GstClipsegMeta *meta;
  GstHarness *h;
  GstBuffer *out, *in;
  guint i = 0, k;

  gst_util_set_object_arg (G_OBJECT (element), "processing", "latest");
  h = harness_for (element, RGBX_CAPS);
  push_until_new_result (h, &i, GST_CLOCK_TIME_NONE);

  /* 4000 names (near the cap): their first encoding step outlasts the
   * next push */
  for (k = 0; k < 4000; k++)
    g_string_append_printf (names, "%s%s", k % 1000 ? "|" : k ? ", " : "",
        k % 1000 ? "tone" : colours[k / 1000]);
  g_object_set (h->element, "labels", names->str, NULL);
  g_string_free (names, TRUE);
  out = gst_harness_push_and_pull (h, make_frame (i++, FALSE));
  fail_unless_equals_int (get_meta (out)->n_labels, 3);
  gst_buffer_unref (out);
  while (TRUE) {
    out = gst_harness_push_and_pull (h, make_frame (i++, FALSE));
    meta = get_meta (out);
    fail_unless (i < 1000000);
    if (meta->n_labels == 5)
      break;
    fail_unless_equals_int (meta->n_labels, 3);
    gst_buffer_unref (out);
  }
  fail_unless_equals_string (meta->labels[4], "cyan");
  gst_buffer_unref (out);

  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBx,width=96,height=64,framerate=30/1");
  in = gst_buffer_new_allocate (NULL, 96 * 64 * 4, NULL);
  gst_buffer_memset (in, 0, 90, 96 * 64 * 4);
  out = gst_harness_push_and_pull (h, in);
  meta = gst_buffer_get_clipseg_meta (out);
  if (meta) {                   /* the new size's own, never the old one's */
    fail_unless_equals_int (label_map_info (meta)->width, 72);
  } else {
    fail_unless_equals_int (count_rois (out), 0);
  }
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Downstream lateness skips inferences only where frames wait for them: in
 * latest mode the masks keep coming however late the video is. */
GST_START_TEST (test_latest_ignores_qos)
{
  GstElement *element = make_clipseg ("model", slow_model (),
      "labels", "red, green", NULL);
  GstClockTime source;
  GstHarness *h;
  guint i = 0;

  gst_util_set_object_arg (G_OBJECT (element), "processing", "latest");
  h = harness_for (element, RGBX_CAPS);
  source = push_until_new_result (h, &i, GST_CLOCK_TIME_NONE);
  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, 100000 * GST_SECOND,
              GST_SECOND)));
  source = push_until_new_result (h, &i, source);
  push_until_new_result (h, &i, source);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Elements of one process take turns on the engine, and a frame waiting for
 * its turn gives way to a newer one: once @busy has taken its turn to encode
 * 4000 names (a few hundred milliseconds), the frames 1..9 that @waiting
 * pushes queue one after the other, and only the last is inferred. */
GST_START_TEST (test_turns_infer_the_newest_frame)
{
  GstHarness *busy = harness_for (make_clipseg ("model", slow_model (), NULL),
      RGBX_CAPS);
  GstHarness *waiting = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GString *names = g_string_new ("");
  guint i, k;

  /* sync frames: both models are loaded and both workers idle after them */
  gst_buffer_unref (gst_harness_push_and_pull (busy, make_frame (0, FALSE)));
  gst_buffer_unref (gst_harness_push_and_pull (waiting, make_frame (0, FALSE)));
  gst_util_set_object_arg (G_OBJECT (busy->element), "processing", "latest");
  gst_util_set_object_arg (G_OBJECT (waiting->element), "processing", "latest");

  watch_log (GST_LEVEL_INFO);
  for (k = 0; k < 4000; k++)
    g_string_append_printf (names, "%sthing %u", k % 20 ? "|" : k ? ", " : "",
        k);
  g_object_set (busy->element, "labels", names->str, NULL);
  gst_buffer_unref (gst_harness_push_and_pull (busy, make_frame (1, FALSE)));
  /* logged in its turn, right before it encodes the first template */
  wait_for_log ("new label set: 200 classes");
  g_ptr_array_unref (unwatch_log ());

  for (i = 1; i < 10; i++)
    gst_buffer_unref (gst_harness_push_and_pull (waiting, make_frame (i,
                FALSE)));
  /* later frames are not chosen, so the result can only come from 1..9 */
  g_object_set (waiting->element, "inference-interval", 1000000, NULL);
  fail_unless_equals_uint64 (push_until_new_result (waiting, &i, 0),
      9 * FRAME_DURATION);

  g_string_free (names, TRUE);
  gst_harness_teardown (waiting);
  gst_harness_teardown (busy);
}

GST_END_TEST;

/* The prompts the workers say they encoded in @log, which is freed. */
static guint
count_encoded_prompts (GPtrArray * log)
{
  guint i, n, total = 0;

  for (i = 0; i < log->len; i++)
    if (sscanf (g_ptr_array_index (log, i), "encoded %u prompts", &n) == 1)
      total += n;
  g_ptr_array_unref (log);
  return total;
}

/* Two elements with the same model, labels and templates encode them once:
 * 3 labels x 80 templates are 240 prompts, not 480. */
GST_START_TEST (test_elements_share_text_queries)
{
  GstHarness *h[2];
  guint k;

  watch_log (GST_LEVEL_DEBUG);
  for (k = 0; k < 2; k++) {
    h[k] = harness_for (make_clipseg ("templates", "imagenet80", NULL),
        RGBX_CAPS);
    gst_buffer_unref (gst_harness_push_and_pull (h[k], make_frame (k, FALSE)));
  }
  fail_unless_equals_int (count_encoded_prompts (unwatch_log ()), 240);

  /* other templates: another set */
  g_object_set (h[1]->element, "templates", "none", NULL);
  watch_log (GST_LEVEL_DEBUG);
  gst_buffer_unref (gst_harness_push_and_pull (h[1], make_frame (2, FALSE)));
  fail_unless_equals_int (count_encoded_prompts (unwatch_log ()), 3);
  for (k = 0; k < 2; k++)
    gst_harness_teardown (h[k]);
}

GST_END_TEST;

/* Two busy streams in one process alternate on the engine: neither gets
 * more than its share of the results. */
GST_START_TEST (test_turns_are_fair)
{
  GstHarness *h[2];
  GstClockTime source[2] = { GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE };
  guint results[2] = { 0, 0 }, k, i;

  for (k = 0; k < 2; k++) {
    /* six windows at 336: inferences far longer than a push */
    h[k] = harness_for (make_clipseg ("model", slow_model (),
            "labels", "red, green", "resolution", 336, NULL), RGBX_CAPS);
    gst_util_set_object_arg (G_OBJECT (h[k]->element), "processing", "latest");
  }
  for (i = 0; results[0] + results[1] < 12; i++) {
    fail_unless (i < 1000000);
    for (k = 0; k < 2; k++) {
      GstBuffer *out = gst_harness_push_and_pull (h[k], make_frame (i, FALSE));
      GstClipsegMeta *meta = gst_buffer_get_clipseg_meta (out);

      if (meta && meta->source_pts != source[k]) {
        source[k] = meta->source_pts;
        results[k]++;
      }
      gst_buffer_unref (out);
    }
  }
  GST_INFO ("results: %u and %u", results[0], results[1]);
  fail_unless (results[0] >= 5 && results[1] >= 5, "%u and %u results",
      results[0], results[1]);
  for (k = 0; k < 2; k++)
    gst_harness_teardown (h[k]);
}

GST_END_TEST;

/* The first line of @lines starting with @prefix, or NULL. */
static const gchar *
find_log (GPtrArray * lines, const gchar * prefix)
{
  for (guint i = 0; i < lines->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (lines, i), prefix))
      return g_ptr_array_index (lines, i);
  return NULL;
}

/* Pushes frames from *@next on until the worker starts inferring one (frames
 * pass meanwhile in latest mode) and returns that frame's number. */
static guint64
push_until_inferring (GstHarness * h, guint * next)
{
  const gchar *prefix = "inferring frame ", *line;
  guint64 serial;

  g_mutex_lock (&log_lock);
  g_ptr_array_set_size (log_lines, 0);
  while (!(line = find_log (log_lines, prefix))) {
    g_mutex_unlock (&log_lock);
    gst_buffer_unref (gst_harness_push_and_pull (h, make_frame ((*next)++,
                FALSE)));
    g_usleep (10000);
    g_mutex_lock (&log_lock);
  }
  serial = g_ascii_strtoull (line + strlen (prefix), NULL, 10);
  g_mutex_unlock (&log_lock);
  return serial;
}

/* Waits for the worker's line "<what> frame <serial> ..." */
static void
wait_for_frame_log (const gchar * what, guint64 serial)
{
  gchar *prefix = g_strdup_printf ("%s frame %" G_GUINT64_FORMAT " ", what,
      serial);

  wait_for_log (prefix);
  g_free (prefix);
}

/* A flush, and a state change to NULL, while a long inference runs (ViT-B/16
 * in six windows at 336) end it between two layers: the log shows it
 * cancelled and never finished, and each returns in a fraction of the time a
 * whole inference took in the same run. */
GST_START_TEST (test_long_inference_is_cancelled)
{
  GstHarness *h = harness_for (make_clipseg ("model", TEST_VITB16_MODEL,
          "labels", "red, green", "resolution", 336, NULL), RGBX_CAPS);
  gint64 start, whole, flushed, stopped;
  guint64 serial;
  GstSegment segment;
  guint next = 0;

  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_util_set_object_arg (G_OBJECT (h->element), "processing", "latest");
  watch_log (GST_LEVEL_LOG);
  serial = push_until_inferring (h, &next);
  start = g_get_monotonic_time ();
  wait_for_frame_log ("inferred", serial);
  whole = g_get_monotonic_time () - start;

  serial = push_until_inferring (h, &next);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  start = g_get_monotonic_time ();
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  wait_for_frame_log ("inference of", serial);
  flushed = g_get_monotonic_time () - start;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));

  serial = push_until_inferring (h, &next);
  start = g_get_monotonic_time ();
  gst_element_set_state (h->element, GST_STATE_NULL);
  stopped = g_get_monotonic_time () - start;
  wait_for_frame_log ("inference of", serial);

  g_ptr_array_unref (unwatch_log ());
  GST_INFO ("whole inference %" G_GINT64_FORMAT " us, cancelled by a flush in %"
      G_GINT64_FORMAT " us, state change to NULL in %" G_GINT64_FORMAT " us",
      whole, flushed, stopped);
  fail_unless (flushed < whole / 2 && stopped < whole / 2,
      "a whole inference took %" G_GINT64_FORMAT " us, a cancelled one %"
      G_GINT64_FORMAT " (flush) and %" G_GINT64_FORMAT " us (NULL)", whole,
      flushed, stopped);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A live source with the default resolution and window is segmented in one
 * pass at the model's native size; anything the user sets wins. */
GST_START_TEST (test_live_defaults_are_light)
{
  const struct
  {
    gboolean live;
    gint resolution, window, map_height;
  } cases[] = {
    {TRUE, 0, -1, 224},         /* the 224-pixel model's own size */
    {FALSE, 0, -1, 336},        /* 1.5 times */
    {TRUE, 0, 224, 336},        /* windows set: the usual size */
    {TRUE, 96, -1, 96},
  };
  guint c;

  for (c = 0; c < G_N_ELEMENTS (cases); c++) {
    GstElement *element = make_clipseg ("model", slow_model (),
        "labels", "red, green", "resolution", cases[c].resolution,
        "window", cases[c].window, NULL);
    GstHarness *h = harness_for (element, NULL);
    GstBuffer *out;

    gst_harness_set_live (h, cases[c].live);
    gst_harness_set_src_caps_str (h, RGBX_CAPS);
    out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
    fail_unless_equals_int (label_map_info (get_meta (out))->height,
        cases[c].map_height);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* auto is latest behind a live source, sync otherwise: the first frame
 * either passes before any result or waits for its own. */
GST_START_TEST (test_auto_follows_liveness)
{
  gboolean live;

  for (live = FALSE; live <= TRUE; live++) {
    GstElement *element = make_clipseg ("model", slow_model (),
        "labels", "red, green", NULL);
    GstHarness *h;
    GstBuffer *out;

    gst_util_set_object_arg (G_OBJECT (element), "processing", "auto");
    h = harness_for (element, NULL);
    gst_harness_set_live (h, live);
    gst_harness_set_src_caps_str (h, RGBX_CAPS);
    out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
    fail_unless_equals_int (gst_buffer_get_clipseg_meta (out) != NULL, !live);
    gst_buffer_unref (out);
    out = gst_harness_push_and_pull (h, make_frame (1, FALSE));
    if (!live)
      fail_unless (!get_meta (out)->reused);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_qos_skips_inference_not_frames)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBuffer *out;
  guint i;

  /* late before any result: inferred anyway, so that the buffer has one */
  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, GST_SECOND / 2,
              GST_SECOND / 2)));
  out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  fail_unless (!get_meta (out)->reused);
  gst_buffer_unref (out);

  /* downstream is a second late: frames before 1 s are not inferred */
  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, GST_SECOND / 2,
              GST_SECOND / 2)));
  for (i = 1; i < 4; i++) {
    out = gst_harness_push_and_pull (h, make_frame (i, FALSE));
    fail_unless (get_meta (out)->reused, "late frame %u was inferred", i);
    gst_buffer_unref (out);
  }
  out = gst_harness_push_and_pull (h, make_frame (40, FALSE));
  fail_unless (!get_meta (out)->reused);
  gst_buffer_unref (out);

  /* with qos off lateness is ignored */
  g_object_set (h->element, "qos", FALSE, NULL);
  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, 10 * GST_SECOND,
              GST_SECOND)));
  out = gst_harness_push_and_pull (h, make_frame (41, FALSE));
  fail_unless (!get_meta (out)->reused);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_latency_reports_inference_time)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (0, FALSE));
  GstClockTime inference = get_meta (out)->inference_time;

  fail_unless_equals_uint64 (gst_harness_query_latency (h), inference);
  gst_util_set_object_arg (G_OBJECT (h->element), "processing", "latest");
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 0);

  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- smoothing ---------------------------------------------------------- */

/* Probabilities of frames 0..4 with @smoothing; labels are set again before
 * frame 3 and the stream is flushed before frame 4. */
static gfloat **
run_smoothing (gdouble smoothing, gsize * n)
{
  GstHarness *h = harness_for (make_clipseg ("smoothing", smoothing,
          "attach-probabilities", TRUE, NULL), RGBX_CAPS);
  gfloat **probs = g_new0 (gfloat *, 5);
  GstSegment segment;
  guint i;

  gst_segment_init (&segment, GST_FORMAT_TIME);
  for (i = 0; i < 5; i++) {
    GstBuffer *out;

    if (i == 3)
      g_object_set (h->element, "labels", LABELS, NULL);
    if (i == 4) {
      fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
      fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
      fail_unless (gst_harness_push_event (h,
              gst_event_new_segment (&segment)));
    }
    out = gst_harness_push_and_pull (h, make_frame (i, FALSE));
    fail_unless (!get_meta (out)->reused);
    probs[i] = copy_probabilities (get_meta (out), n);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);

  return probs;
}

GST_START_TEST (test_smoothing_is_an_ema)
{
  gsize n, n2, i;
  gfloat **raw = run_smoothing (0.0, &n);
  gfloat **smooth = run_smoothing (0.75, &n2);
  gfloat expected;
  gdouble differs = 0.0;

  fail_unless_equals_int (n, n2);
  for (i = 0; i < n; i++) {
    /* the first frame has no past */
    fail_unless (fabs (smooth[0][i] - raw[0][i]) < 1e-6);
    expected = 0.75 * raw[0][i] + 0.25 * raw[1][i];
    fail_unless (fabs (smooth[1][i] - expected) < 1e-5);
    expected = 0.75 * smooth[1][i] + 0.25 * raw[2][i];
    fail_unless (fabs (smooth[2][i] - expected) < 1e-5);
    /* a label change and a flush restart it */
    fail_unless (fabs (smooth[3][i] - raw[3][i]) < 1e-6);
    fail_unless (fabs (smooth[4][i] - raw[4][i]) < 1e-6);
    differs += fabs (smooth[2][i] - raw[2][i]);
  }
  fail_unless (differs > 1e-3, "smoothing changed nothing");

  for (i = 0; i < 5; i++) {
    g_free (raw[i]);
    g_free (smooth[i]);
  }
  g_free (raw);
  g_free (smooth);
}

GST_END_TEST;

/* ---- run-time changes --------------------------------------------------- */

static GstClipsegMeta *
push_inferred (GstHarness * h, guint index, GstBuffer ** out)
{
  GstClipsegMeta *meta;

  *out = gst_harness_push_and_pull (h, make_frame (index, FALSE));
  meta = get_meta (*out);
  fail_unless (!meta->reused);
  return meta;
}

GST_START_TEST (test_runtime_property_changes)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstClipsegMeta *meta;
  GstVideoMeta *vmeta;
  GstBuffer *out;
  gchar *dir = make_temp_dir ();
  gchar *file = g_build_filename (dir, "classes.txt", NULL);

  meta = push_inferred (h, 0, &out);
  fail_unless_equals_float (meta->coverage[0], 0.0);
  gst_buffer_unref (out);

  /* flat probabilities below the threshold all go to label 0 */
  g_object_set (h->element, "logit-scale", 0.01, "threshold", 0.9, NULL);
  meta = push_inferred (h, 1, &out);
  fail_unless_equals_float (meta->coverage[0], 1.0);
  gst_buffer_unref (out);
  g_object_set (h->element, "logit-scale", 40.0, "threshold", 0.0,
      "area-threshold", 0.5, NULL);
  meta = push_inferred (h, 2, &out);
  fail_unless (meta->coverage[0] < 1.0);
  gst_buffer_unref (out);

  /* the label map follows the resolution */
  g_object_set (h->element, "resolution", 24, "area-threshold", 0.0, NULL);
  meta = push_inferred (h, 3, &out);
  vmeta = label_map_info (meta);
  fail_unless_equals_int (vmeta->width, 32);
  fail_unless_equals_int (vmeta->height, 24);
  gst_buffer_unref (out);

  /* 0: 1.5 times the 32-pixel model's input is 48, below the floor of 128 */
  g_object_set (h->element, "resolution", 0, NULL);
  meta = push_inferred (h, 4, &out);
  vmeta = label_map_info (meta);
  fail_unless_equals_int (vmeta->width, 171);
  fail_unless_equals_int (vmeta->height, 128);
  gst_buffer_unref (out);

  /* dense mode, windows and templates */
  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "maskclip");
  g_object_set (h->element, "window", 0, "templates", "none", NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (5, FALSE)));
  g_object_set (h->element, "window", 16, "stride", 8, NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (6, FALSE)));

  /* new labels, inline and from an SCLIP class file */
  g_object_set (h->element, "labels", "cat|kitten, dog", NULL);
  meta = push_inferred (h, 7, &out);
  fail_unless_equals_int (meta->n_labels, 3);
  fail_unless_equals_string (meta->labels[1], "cat");
  gst_buffer_unref (out);
  fail_unless (g_file_set_contents (file, "sky, clouds\ntree\nroad, street\n"
          "car\n", -1, NULL));
  g_object_set (h->element, "labels-file", file, "background", "wall", NULL);
  meta = push_inferred (h, 8, &out);
  fail_unless_equals_int (meta->n_labels, 5);
  fail_unless_equals_string (meta->labels[0], "background");
  fail_unless_equals_string (meta->labels[1], "sky");
  fail_unless_equals_string (meta->labels[4], "car");
  gst_buffer_unref (out);

  gst_harness_teardown (h);
  g_remove (file);
  g_rmdir (dir);
  g_free (file);
  g_free (dir);
}

GST_END_TEST;

/* The probabilities of frame @index with the element's current settings. */
static gfloat *
infer_probabilities (GstHarness * h, guint index, gsize * n)
{
  GstBuffer *out;
  gfloat *probs = copy_probabilities (push_inferred (h, index, &out), n);

  gst_buffer_unref (out);
  return probs;
}

static gboolean
probabilities_differ (const gfloat * a, const gfloat * b, gsize n)
{
  gsize i;

  for (i = 0; i < n; i++)
    if (ABS (a[i] - b[i]) > 1e-3)
      return TRUE;
  return FALSE;
}

/* MaskCLIP's refinements and PAMR: off by default, mutable while playing,
 * their largest values accepted by the engine, and each reaches it (the
 * same frame's probabilities change); key smoothing and prompt denoising
 * left set are ignored in another mode, not an error. */
GST_START_TEST (test_refinement_properties)
{
  GstHarness *h = harness_for (make_clipseg ("smoothing", 0.0,
          "attach-probabilities", TRUE, NULL), RGBX_CAPS);
  const gchar *names[] = { "key-smoothing", "prompt-denoising", "pamr-steps" };
  gfloat *plain, *refined;
  gsize n, m;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS
        (h->element), names[i]);
    GValue value = G_VALUE_INIT;

    fail_unless (pspec != NULL, "no property %s", names[i]);
    fail_unless (pspec->flags & GST_PARAM_MUTABLE_PLAYING, "%s", names[i]);
    g_value_init (&value, pspec->value_type);
    g_object_get_property (G_OBJECT (h->element), names[i], &value);
    fail_unless (g_param_value_defaults (pspec, &value), "%s", names[i]);
    fail_unless (pspec->value_type == G_TYPE_UINT ?
        g_value_get_uint (&value) == 0 : g_value_get_double (&value) == 0.0);
    g_value_unset (&value);
  }

  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "maskclip");
  plain = infer_probabilities (h, 0, &n);
  g_object_set (h->element, "pamr-steps", G_PARAM_SPEC_UINT
      (g_object_class_find_property (G_OBJECT_GET_CLASS (h->element),
              "pamr-steps"))->maximum, NULL);
  refined = infer_probabilities (h, 0, &m);
  fail_unless (m == n && probabilities_differ (plain, refined, n));
  g_free (refined);
  g_object_set (h->element, "pamr-steps", 0, "key-smoothing", 1.0,
      "prompt-denoising", 1.0, NULL);
  refined = infer_probabilities (h, 0, &m);
  fail_unless (m == n && probabilities_differ (plain, refined, n));
  g_free (refined);
  g_free (plain);

  gst_util_set_object_arg (G_OBJECT (h->element), "mode", "sclip");
  g_object_set (h->element, "pamr-steps", 3, NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (1, FALSE)));
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Every value of the mode property reaches the engine as a mode of its own:
 * the same frame's probabilities differ from one mode to the next. */
GST_START_TEST (test_every_mode_runs)
{
  GstHarness *h = harness_for (make_clipseg ("smoothing", 0.0,
          "attach-probabilities", TRUE, NULL), RGBX_CAPS);
  GEnumClass *modes = g_type_class_ref (G_PARAM_SPEC_VALUE_TYPE
      (g_object_class_find_property (G_OBJECT_GET_CLASS (h->element),
              "mode")));
  gfloat *previous = NULL, *probs;
  gsize n, m = 0;
  guint i;

  fail_unless (g_enum_get_value_by_nick (modes, "scclip") != NULL);
  for (i = 0; i < modes->n_values; i++) {
    gst_util_set_object_arg (G_OBJECT (h->element), "mode",
        modes->values[i].value_nick);
    probs = infer_probabilities (h, 0, &n);
    if (previous)
      fail_unless (n == m && probabilities_differ (previous, probs, n),
          "mode %s gives mode %s's probabilities", modes->values[i].value_nick,
          modes->values[i - 1].value_nick);
    g_free (previous);
    previous = probs, m = n;
  }
  g_free (previous);
  g_type_class_unref (modes);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A window below the patch size, a stride beyond the window, or a whole-frame
 * pass too large for the engine (window 0 at resolution 1024: 21761 tokens)
 * is a warning (once per setting) and the default windows, never a stopped
 * pipeline. */
GST_START_TEST (test_runtime_bad_windows_warn_and_continue)
{
  GstHarness *h = harness_for (make_clipseg (NULL), RGBX_CAPS);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GstBuffer *out;
  guint i, n_warnings = 0;
  const struct
  {
    gint window, stride, resolution;
  } bad[] = { {4, 0, HEIGHT}, {16, 32, HEIGHT}, {0, 0, 1024} };

  gst_element_set_bus (h->element, bus);
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_object_set (h->element, "window", bad[i].window, "stride", bad[i].stride,
        "resolution", bad[i].resolution, NULL);
    out = gst_harness_push_and_pull (h, make_frame (2 * i, FALSE));
    fail_unless (!get_meta (out)->reused);
    gst_buffer_unref (out);
    out = gst_harness_push_and_pull (h, make_frame (2 * i + 1, FALSE));
    fail_unless (!get_meta (out)->reused);
    gst_buffer_unref (out);
  }
  while ((msg = gst_bus_pop (bus))) {
    fail_unless (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ERROR);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
      n_warnings++;
    gst_message_unref (msg);
  }
  fail_unless_equals_int (n_warnings, G_N_ELEMENTS (bad));
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Pushes frames until the element says it segments with @path (or fails to
 * load it), returning the first inferred buffer after that. */
static GstBuffer *
push_until_message (GstHarness * h, GstBus * bus, GstMessageType type,
    const gchar * text, guint * index)
{
  GstMessage *msg = NULL;
  GError *error = NULL;
  GstBuffer *out;
  guint i;

  for (i = 0; i < 600 && !msg; i++) {
    gst_buffer_unref (gst_harness_push_and_pull (h, make_frame ((*index)++,
                FALSE)));
    msg = gst_bus_pop_filtered (bus, type);
    if (!msg)
      g_usleep (10000);
  }
  fail_unless (msg != NULL, "no %s message", gst_message_type_get_name (type));
  if (type == GST_MESSAGE_INFO)
    gst_message_parse_info (msg, &error, NULL);
  else
    gst_message_parse_warning (msg, &error, NULL);
  fail_unless (strstr (error->message, text) != NULL, "%s", error->message);
  g_error_free (error);
  gst_message_unref (msg);
  out = gst_harness_push_and_pull (h, make_frame ((*index)++, FALSE));
  fail_unless (!get_meta (out)->reused);
  return out;
}

/* The score of every label on frame @index, by a fresh element on @model. */
static gdouble *
fresh_scores (const gchar * model, guint index)
{
  GstHarness *h = harness_for (make_clipseg ("model", model, NULL), RGBX_CAPS);
  GstBuffer *out = gst_harness_push_and_pull (h, make_frame (index, FALSE));
  GstClipsegMeta *meta = get_meta (out);
  gdouble *scores = g_memdup2 (meta->score, meta->n_labels * sizeof (gdouble));

  gst_buffer_unref (out);
  gst_harness_teardown (h);
  return scores;
}

/* model set while playing: the old model runs until the new one is loaded,
 * then the new one segments; the property reads back the model in use, and
 * a model that fails to load leaves the running one with a warning. */
GST_START_TEST (test_model_swap_while_playing)
{
  GstElement *element = make_clipseg ("smoothing", 0.0, NULL);
  GstBus *bus = gst_bus_new ();
  GstClipsegMeta *meta;
  GstHarness *h;
  GstBuffer *out;
  gdouble *expected;
  guint index = 0, k;

  gst_element_set_bus (element, bus);
  h = harness_for (element, RGBX_CAPS);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (index++, FALSE)));

  g_object_set (h->element, "model", TEST_OTHER_MODEL, NULL);
  out = push_until_message (h, bus, GST_MESSAGE_INFO, TEST_OTHER_MODEL, &index);
  check_string_property (h->element, "model", TEST_OTHER_MODEL);
  meta = get_meta (out);
  fail_unless_equals_int (meta->n_labels, 4);
  expected = fresh_scores (TEST_OTHER_MODEL, index - 1);
  for (k = 0; k < meta->n_labels; k++)
    fail_unless_equals_float (meta->score[k], expected[k]);
  g_free (expected);
  gst_buffer_unref (out);

  g_object_set (h->element, "model", "/nonexistent/model", NULL);
  out = push_until_message (h, bus, GST_MESSAGE_WARNING, "/nonexistent/model",
      &index);
  check_string_property (h->element, "model", TEST_OTHER_MODEL);
  gst_buffer_unref (out);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL,
      "an error after a failed swap");

  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* An EVA02-CLIP checkpoint (CLIPSelf's tower, as convert-checkpoint.py
 * writes it) segments in CLIPSelf's dense mode: the result is the same as a
 * fresh element's on the same frame, and it is EVA02's own, different from
 * the CLIP test model's and from its other modes'. */
static gdouble *
mode_scores (const gchar * model, const gchar * mode, guint index)
{
  GstElement *element = make_clipseg ("model", model, NULL);
  GstHarness *h;
  GstBuffer *out;
  GstClipsegMeta *meta;
  gdouble *scores;

  gst_util_set_object_arg (G_OBJECT (element), "mode", mode);
  h = harness_for (element, RGBX_CAPS);
  out = gst_harness_push_and_pull (h, make_frame (index, FALSE));
  meta = get_meta (out);
  fail_unless_equals_int (meta->n_labels, 4);
  scores = g_memdup2 (meta->score, meta->n_labels * sizeof (gdouble));
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  return scores;
}

static gboolean
same_scores (const gdouble * a, const gdouble * b)
{
  for (guint k = 0; k < 4; k++)
    if (a[k] != b[k])
      return FALSE;
  return TRUE;
}

GST_START_TEST (test_eva02_model)
{
  gdouble *eva = mode_scores (TEST_EVA02_MODEL, "maskclip", 3);
  gdouble *again = mode_scores (TEST_EVA02_MODEL, "maskclip", 3);
  gdouble *clip = mode_scores (TEST_MODEL, "maskclip", 3);
  gdouble *vanilla = mode_scores (TEST_EVA02_MODEL, "vanilla", 3);

  fail_unless (same_scores (eva, again), "EVA02 results differ between runs");
  fail_if (same_scores (eva, clip),
      "the EVA02 model gives the CLIP model's scores");
  fail_if (same_scores (eva, vanilla), "mode has no effect on the EVA02 model");
  for (guint k = 0; k < 4; k++)
    fail_unless (isfinite (eva[k]) && eva[k] >= 0.0 && eva[k] <= 1.0);
  g_free (eva);
  g_free (again);
  g_free (clip);
  g_free (vanilla);
}

GST_END_TEST;

GST_START_TEST (test_runtime_bad_labels_keep_previous)
{
  GstElement *element = make_clipseg (NULL);
  GstBus *bus = gst_bus_new ();
  GstHarness *h;
  GstMessage *msg;
  GstBuffer *out;

  gst_element_set_bus (element, bus);
  h = harness_for (element, RGBX_CAPS);
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (0, FALSE)));

  g_object_set (h->element, "labels", "red, ,blue", NULL);
  out = gst_harness_push_and_pull (h, make_frame (1, FALSE));
  fail_unless_equals_int (get_meta (out)->n_labels, 4);
  fail_unless_equals_string (get_meta (out)->labels[2], "green");
  msg = pop_error (bus, GST_MESSAGE_WARNING);
  gst_message_unref (msg);
  gst_buffer_unref (out);
  check_string_property (h->element, "labels", LABELS);

  /* a rejected file reads back as unset, the labels that run stay */
  g_object_set (h->element, "labels-file", "/nonexistent/classes.txt",
      "templates", "single", NULL);
  out = gst_harness_push_and_pull (h, make_frame (2, FALSE));
  fail_unless_equals_string (get_meta (out)->labels[2], "green");
  gst_message_unref (pop_error (bus, GST_MESSAGE_WARNING));
  gst_buffer_unref (out);
  check_string_property (h->element, "labels-file", NULL);
  check_string_property (h->element, "labels", LABELS);

  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* ---- overlay ------------------------------------------------------------ */

/* Fills @buffer with the same pattern as make_frame. */
static void
fill_pattern (GstBuffer * buffer)
{
  GstMapInfo map;
  gsize i;

  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (i = 0; i < map.size; i++)
    map.data[i] = (i * 7 + (i / 256) * 11) & 0xff;
  gst_buffer_unmap (buffer, &map);
}

/* Pushes a frame and checks that exactly the pixels with a label other than
 * 0 changed (or none, without @expect_change). Returns how many did. */
static guint
check_blend (const gchar * format, gboolean expect_change)
{
  gchar *caps = g_strdup_printf (CAPS_FMT, format, WIDTH, HEIGHT);
  GstHarness *h = harness_for (make_clipseg ("background", BACKGROUND, NULL),
      caps);
  GstVideoInfo info;
  GstVideoFrame frame, before;
  GstBuffer *in, *out;
  guint changed = 0, labelled = 0;
  gint x, y, c;

  gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "blend");
  if (!expect_change)
    g_object_set (h->element, "overlay-alpha", 0.0, NULL);
  gst_video_info_set_format (&info, gst_video_format_from_string (format),
      WIDTH, HEIGHT);
  in = gst_buffer_new_allocate (NULL, info.size, NULL);
  fill_pattern (in);
  fail_unless (gst_video_frame_map (&before, &info, in, GST_MAP_READ));

  out = gst_harness_push_and_pull (h, gst_buffer_copy_deep (in));
  fail_unless (gst_video_frame_map (&frame, &info, out, GST_MAP_READ));
  for (y = 0; y < HEIGHT; y++) {
    for (x = 0; x < WIDTH; x++) {
      gint label = gst_clipseg_meta_label_at (get_meta (out), x, y);
      gboolean differs = FALSE;

      for (c = 0; c < (gint) GST_VIDEO_FRAME_N_COMPONENTS (&frame); c++) {
        gsize offset = y * GST_VIDEO_FRAME_COMP_STRIDE (&frame, c) +
            x * GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, c);
        guint8 now = ((guint8 *) GST_VIDEO_FRAME_COMP_DATA (&frame, c))[offset];
        guint8 was =
            ((guint8 *) GST_VIDEO_FRAME_COMP_DATA (&before, c))[offset];

        if (c == 3) {
          fail_unless_equals_int (now, was);    /* alpha stays */
        } else {
          differs |= now != was;
        }
      }
      fail_unless_equals_int (differs, expect_change && label != 0);
      changed += differs;
      labelled += label != 0;
    }
  }
  gst_video_frame_unmap (&frame);
  gst_video_frame_unmap (&before);
  if (expect_change)
    fail_unless (labelled > 0 && labelled < (guint) (WIDTH * HEIGHT),
        "the test model labels %u pixels: no contrast", labelled);

  gst_buffer_unref (in);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_free (caps);
  return changed;
}

GST_START_TEST (test_overlay_blend_changes_only_labelled_pixels)
{
  const gchar *formats[] = { "RGBx", "RGB", "BGRA", "xBGR" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    fail_unless (check_blend (formats[i], TRUE) > 0);
    fail_unless_equals_int (check_blend (formats[i], FALSE), 0);
  }
}

GST_END_TEST;

GST_START_TEST (test_overlay_blend_yuv)
{
  const gchar *formats[] = { "I420", "NV12" };
  guint i;

  /* every byte of a flat frame stays when nothing is drawn */
  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    gchar *caps = g_strdup_printf (CAPS_FMT, formats[i], WIDTH, HEIGHT);
    GstHarness *h = harness_for (make_clipseg (NULL), caps);
    GstBuffer *in = gst_buffer_new_allocate (NULL, WIDTH * HEIGHT * 3 / 2,
        NULL), *out;
    GstMapInfo map;
    guint j, changed = 0;

    gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "blend");
    gst_buffer_memset (in, 0, 128, WIDTH * HEIGHT * 3 / 2);
    out = gst_harness_push_and_pull (h, in);
    gst_buffer_map (out, &map, GST_MAP_READ);
    for (j = 0; j < map.size; j++)
      changed += map.data[j] != 128;
    gst_buffer_unmap (out, &map);
    fail_unless (changed > 0, "%s: nothing drawn", formats[i]);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
    g_free (caps);
  }
}

GST_END_TEST;

GST_START_TEST (test_overlay_colors_and_alpha)
{
  GstHarness *h = harness_for (make_clipseg ("colors",
          "1=#ff0000, green=0x00ff00", "overlay-alpha", 1.0, NULL), RGBX_CAPS);
  GstBuffer *out;
  GstMapInfo map;
  gint x, y;

  gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "blend");
  out = gst_harness_push_and_pull (h, make_frame (0, TRUE));
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (y = 0; y < HEIGHT; y++) {
    for (x = 0; x < WIDTH; x++) {
      gint label = gst_clipseg_meta_label_at (get_meta (out), x, y);
      guint8 *p = map.data + (y * WIDTH + x) * 4;

      if (label == 1) {
        fail_unless (p[0] == 255 && p[1] == 0 && p[2] == 0);
      } else if (label == 2) {
        fail_unless (p[0] == 0 && p[1] == 255 && p[2] == 0);
      } else {
        fail_unless (p[0] != 128 || p[1] != 128 || p[2] != 128);
      }
    }
  }
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_overlay_composition_when_downstream_draws)
{
  GstHarness *h = harness_for (make_clipseg ("background", BACKGROUND, NULL),
      NULL);
  GstVideoOverlayCompositionMeta *cmeta;
  GstVideoOverlayRectangle *rect;
  GstBuffer *out, *pixels;
  GstVideoMeta *vmeta;
  GstMapInfo map;
  gint x, y, rx, ry;
  guint rw, rh;
  gsize i;

  gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "auto");
  gst_harness_set_sink_caps_str (h,
      "video/x-raw(meta:GstVideoOverlayComposition),format=RGBx,"
      "width=64,height=48,framerate=30/1");
  gst_harness_add_propose_allocation_meta (h,
      GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
  gst_harness_set_src_caps_str (h, RGBX_CAPS);

  out = gst_harness_push_and_pull (h, make_frame (0, TRUE));
  cmeta = gst_buffer_get_video_overlay_composition_meta (out);
  fail_unless (cmeta != NULL);
  fail_unless_equals_int (gst_video_overlay_composition_n_rectangles
      (cmeta->overlay), 1);
  rect = gst_video_overlay_composition_get_rectangle (cmeta->overlay, 0);
  gst_video_overlay_rectangle_get_render_rectangle (rect, &rx, &ry, &rw, &rh);
  fail_unless (rx == 0 && ry == 0 && rw == WIDTH && rh == HEIGHT);
  pixels = gst_video_overlay_rectangle_get_pixels_unscaled_argb (rect,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE);
  vmeta = gst_buffer_get_video_meta (pixels);
  gst_buffer_map (pixels, &map, GST_MAP_READ);
  for (y = 0; y < (gint) vmeta->height; y++)
    for (x = 0; x < (gint) vmeta->width; x++) {
      guint32 argb = *(guint32 *) (map.data + y * vmeta->stride[0] + x * 4);
      gint label = gst_clipseg_meta_label_at (get_meta (out), x, y);

      fail_unless_equals_int ((argb >> 24) != 0, label != 0);
    }
  gst_buffer_unmap (pixels, &map);

  /* attached, not drawn */
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (i = 0; i < map.size; i++)
    fail_unless_equals_int (map.data[i], 128);
  gst_buffer_unmap (out, &map);

  /* an upstream composition gets our rectangle added: renderers read only
   * the first composition meta */
  {
    GstBuffer *in = make_frame (1, TRUE);
    GstVideoOverlayComposition *upstream =
        gst_video_overlay_composition_new (rect);
    gpointer state = NULL;
    GstMeta *m;
    guint n_metas = 0;

    gst_buffer_add_video_overlay_composition_meta (in, upstream);
    gst_video_overlay_composition_unref (upstream);
    gst_buffer_unref (out);
    out = gst_harness_push_and_pull (h, in);
    while ((m = gst_buffer_iterate_meta_filtered (out, &state,
                GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE)))
      n_metas++;
    fail_unless_equals_int (n_metas, 1);
    cmeta = gst_buffer_get_video_overlay_composition_meta (out);
    fail_unless_equals_int (gst_video_overlay_composition_n_rectangles
        (cmeta->overlay), 2);
  }
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_overlay_auto_blends_for_plain_downstream)
{
  GstHarness *h = harness_for (make_clipseg (NULL), NULL);
  GstBuffer *out;
  GstMapInfo map;
  gsize i, changed = 0;

  gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "auto");
  gst_harness_set_sink_caps_str (h, RGBX_CAPS);
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  out = gst_harness_push_and_pull (h, make_frame (0, TRUE));
  fail_unless (gst_buffer_get_video_overlay_composition_meta (out) == NULL);
  gst_buffer_map (out, &map, GST_MAP_READ);
  for (i = 0; i < map.size; i++)
    changed += map.data[i] != 128;
  gst_buffer_unmap (out, &map);
  fail_unless (changed > 0);
  gst_buffer_unref (out);

  gst_harness_teardown (h);

  /* downstream that takes the overlay caps feature but not the meta, then
   * takes it: a RECONFIGURE, same caps, and it is asked again */
  h = harness_for (make_clipseg (NULL), NULL);
  gst_util_set_object_arg (G_OBJECT (h->element), "overlay", "auto");
  gst_harness_set_sink_caps_str (h,
      "video/x-raw(meta:GstVideoOverlayComposition),format=RGBx,"
      "width=64,height=48,framerate=30/1");
  gst_harness_set_src_caps_str (h, RGBX_CAPS);
  out = gst_harness_push_and_pull (h, make_frame (1, TRUE));
  fail_unless (gst_buffer_get_video_overlay_composition_meta (out) == NULL);
  gst_buffer_unref (out);
  gst_harness_add_propose_allocation_meta (h,
      GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
  fail_unless (gst_harness_push_upstream_event (h,
          gst_event_new_reconfigure ()));
  out = gst_harness_push_and_pull (h, make_frame (2, TRUE));
  fail_unless (gst_buffer_get_video_overlay_composition_meta (out) != NULL);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- bus messages ------------------------------------------------------- */

GST_START_TEST (test_messages_per_inference)
{
  GstElement *element = make_clipseg ("post-messages", TRUE,
      "inference-interval", 2, NULL);
  GstBus *bus = gst_bus_new ();
  GstHarness *h;
  GstMessage *msg;
  guint i, n = 0;

  gst_element_set_bus (element, bus);
  h = harness_for (element, RGBX_CAPS);
  for (i = 0; i < 6; i++)
    gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (i, FALSE)));

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (msg);
    const GValue *coverage;
    GstClockTime ts, running_time, stream_time, duration;
    const GValue *labels;
    gboolean inferred, reused;
    gdouble ms, total = 0.0;
    gchar *text;
    guint k;

    if (!gst_structure_has_name (s, "clipseg")) {
      gst_message_unref (msg);
      continue;
    }
    fail_unless (gst_structure_get (s, "timestamp", G_TYPE_UINT64, &ts,
            "running-time", G_TYPE_UINT64, &running_time,
            "stream-time", G_TYPE_UINT64, &stream_time,
            "duration", G_TYPE_UINT64, &duration,
            "inferred", G_TYPE_BOOLEAN, &inferred,
            "reused", G_TYPE_BOOLEAN, &reused,
            "inference-ms", G_TYPE_DOUBLE, &ms, NULL));
    fail_unless_equals_uint64 (ts, 2 * n * FRAME_DURATION);
    fail_unless_equals_uint64 (running_time, ts);
    fail_unless_equals_uint64 (stream_time, ts);
    fail_unless_equals_uint64 (duration, FRAME_DURATION);
    fail_unless (inferred && !reused);
    fail_unless (ms > 0.0);
    labels = gst_structure_get_value (s, "labels");
    coverage = gst_structure_get_value (s, "coverage");
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS;
    fail_unless_equals_int (((GValueArray *) g_value_get_boxed
            (labels))->n_values, 4);
    fail_unless_equals_string (g_value_get_string (g_value_array_get_nth
            (g_value_get_boxed (labels), 1)), "red");
    fail_unless (G_VALUE_HOLDS (coverage, g_value_array_get_type ()));
    for (k = 0; k < 4; k++)
      total += g_value_get_double (g_value_array_get_nth (g_value_get_boxed
              (coverage), k));
    G_GNUC_END_IGNORE_DEPRECATIONS;
    fail_unless (fabs (total - 1.0) < 1e-9);
    /* serialisable, so gst-launch-1.0 -m prints the label names */
    text = gst_structure_to_string (s);
    fail_unless (strstr (text, "coverage=(GValueArray)< ") != NULL, "%s", text);
    fail_unless (strstr (text,
            "labels=(GValueArray)< background, red, green, blue >") != NULL,
        "%s", text);
    g_free (text);
    gst_message_unref (msg);
    n++;
  }
  fail_unless_equals_int (n, 3);

  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* ---- stream events and state changes ------------------------------------ */

GST_START_TEST (test_flush_eos_and_caps_change)
{
  GstHarness *h = harness_for (make_clipseg ("inference-interval", 4, NULL),
      RGBX_CAPS);
  GstSegment segment;
  GstClipsegMeta *meta;
  GstVideoMeta *vmeta;
  GstBuffer *out, *in;
  GstEvent *event;

  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (0, FALSE)));
  gst_buffer_unref (gst_harness_push_and_pull (h, make_frame (1, FALSE)));

  /* a flush forgets the result: the next frame is inferred afresh */
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  meta = push_inferred (h, 2, &out);
  fail_unless_equals_uint64 (meta->source_pts, 2 * FRAME_DURATION);
  gst_buffer_unref (out);

  /* new caps: new inference size, inferred at once */
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBx,width=96,height=64,framerate=30/1");
  in = gst_buffer_new_allocate (NULL, 96 * 64 * 4, NULL);
  gst_buffer_memset (in, 0, 90, 96 * 64 * 4);
  out = gst_harness_push_and_pull (h, in);
  meta = get_meta (out);
  fail_unless (!meta->reused);
  vmeta = label_map_info (meta);
  fail_unless_equals_int (vmeta->width, 72);
  fail_unless_equals_int (vmeta->height, 48);
  fail_unless_equals_int (meta->region.w, 96);
  gst_buffer_unref (out);

  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  while ((event = gst_harness_try_pull_event (h))) {
    gboolean eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;

    gst_event_unref (event);
    if (eos)
      break;
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* State changes while the slow model infers, in both processing modes. */
GST_START_TEST (test_state_cycling_during_inference)
{
  const gchar *modes[] = { "latest", "sync" };
  guint m, i;

  for (m = 0; m < G_N_ELEMENTS (modes); m++) {
    gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
        "video/x-raw,width=64,height=48 ! clipseg model=%s "
        "labels=\"red, green\" templates=single background=\"\" "
        "processing=%s ! fakesink", slow_model (), modes[m]);
    GstElement *pipeline = gst_parse_launch (desc, NULL);

    fail_unless (pipeline != NULL);
    for (i = 0; i < 3; i++) {
      fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
          GST_STATE_CHANGE_FAILURE);
      fail_unless_equals_int (gst_element_get_state (pipeline, NULL, NULL,
              GST_CLOCK_TIME_NONE), GST_STATE_CHANGE_SUCCESS);
      g_usleep (G_USEC_PER_SEC / 10);
      fail_unless_equals_int (gst_element_set_state (pipeline,
              i == 1 ? GST_STATE_READY : GST_STATE_NULL),
          GST_STATE_CHANGE_SUCCESS);
    }
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);
    g_free (desc);
  }
}

GST_END_TEST;

/* ---- errors ------------------------------------------------------------- */

GST_START_TEST (test_missing_model_is_an_error)
{
  check_start_fails (make_clipseg ("model", "/nonexistent/clip", NULL), TRUE,
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ);
  check_start_fails (make_clipseg ("model", "", NULL), TRUE,
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND);
}

GST_END_TEST;

GST_START_TEST (test_corrupt_model_is_an_error)
{
  const gchar *files[] = { "config.json", "vocab.json", "merges.txt" };
  gchar *dir = make_temp_dir ();
  gchar *contents, *path;
  gsize size;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (files); i++) {
    path = g_build_filename (TEST_MODEL, files[i], NULL);
    fail_unless (g_file_get_contents (path, &contents, &size, NULL));
    g_free (path);
    path = g_build_filename (dir, files[i], NULL);
    fail_unless (g_file_set_contents (path, contents, size, NULL));
    g_free (path);
    g_free (contents);
  }
  /* the weights cut short */
  path = g_build_filename (TEST_MODEL, "model.safetensors", NULL);
  fail_unless (g_file_get_contents (path, &contents, &size, NULL));
  g_free (path);
  path = g_build_filename (dir, "model.safetensors", NULL);
  fail_unless (g_file_set_contents (path, contents, size / 2, NULL));
  g_free (path);
  g_free (contents);

  /* found out while loading, after the state change */
  check_start_fails (make_clipseg ("model", dir, NULL), FALSE,
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ);
  remove_dir (dir);
  g_free (dir);
}

GST_END_TEST;

GST_START_TEST (test_bad_labels_are_an_error)
{
  check_start_fails (make_clipseg ("labels", "red, ,blue", NULL), TRUE,
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
  check_start_fails (make_clipseg ("labels-file", "/nonexistent/classes.txt",
          NULL), TRUE, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
  check_start_fails (make_clipseg ("templates", "/nonexistent/templates.txt",
          NULL), TRUE, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
}

GST_END_TEST;

/* ---- the example application -------------------------------------------- */

GST_START_TEST (test_read_meta_app)
{
  gchar *dir = make_temp_dir ();
  gchar *argv[] = { (gchar *) READ_META, (gchar *) "--masks", dir,
    (gchar *) "videotestsrc num-buffers=6 ! video/x-raw,width=64,height=48 ! "
        "clipseg model=" TEST_MODEL " labels=\"red, green\" templates=single "
        "background=\"\" processing=sync inference-interval=2 ! "
        "appsink name=sink sync=false", NULL
  };
  gchar *out = NULL, *err = NULL, *path, *labels;
  gint status;
  guint i;

  fail_unless (g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
          &out, &err, &status, NULL));
  fail_unless (g_spawn_check_wait_status (status, NULL), "%s", err);
  fail_unless (strstr (out,
          "frames=6 with-meta=6 inferred=3 results=3 ") != NULL, "%s", out);
  fail_unless (strstr (out, "reused=1") != NULL);
  for (i = 0; i < 6; i++) {
    path = g_strdup_printf ("%s/mask-%05u.png", dir, i);
    fail_unless (g_file_test (path, G_FILE_TEST_IS_REGULAR), "%s", path);
    g_free (path);
  }
  path = g_build_filename (dir, "labels.txt", NULL);
  fail_unless (g_file_get_contents (path, &labels, NULL, NULL));
  fail_unless_equals_string (labels, "background\nred\ngreen");

  g_free (labels);
  g_free (path);
  g_free (out);
  g_free (err);
  remove_dir (dir);
  g_free (dir);
}

GST_END_TEST;

static Suite *
clipseg_suite (void)
{
  Suite *s = suite_create ("clipseg");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps_every_format);
  tcase_add_test (tc, test_caps_overlay_composition_feature);
  tcase_add_test (tc, test_property_defaults);
  tcase_add_test (tc, test_property_flags);
  tcase_add_test (tc, test_blurbs_state_the_defaults);
  tcase_add_test (tc, test_defaults_are_the_engines);
  tcase_add_test (tc, test_property_round_trip);
  tcase_add_test (tc, test_precision);
  tcase_add_test (tc, test_meta_fields);
  tcase_add_test (tc, test_meta_survives_copy);
  tcase_add_test (tc, test_meta_survives_videoconvert_videoscale);
  tcase_add_test (tc, test_interval_infers_every_nth_frame);
  tcase_add_test (tc, test_latest_never_blocks);
  tcase_add_test (tc, test_latest_label_and_caps_changes_never_block);
  tcase_add_test (tc, test_latest_ignores_qos);
  tcase_add_test (tc, test_turns_infer_the_newest_frame);
  tcase_add_test (tc, test_turns_are_fair);
  tcase_add_test (tc, test_elements_share_text_queries);
  tcase_add_test (tc, test_live_defaults_are_light);
  tcase_add_test (tc, test_auto_follows_liveness);
  tcase_add_test (tc, test_qos_skips_inference_not_frames);
  tcase_add_test (tc, test_latency_reports_inference_time);
  tcase_add_test (tc, test_smoothing_is_an_ema);
  tcase_add_test (tc, test_runtime_property_changes);
  tcase_add_test (tc, test_refinement_properties);
  tcase_add_test (tc, test_every_mode_runs);
  tcase_add_test (tc, test_runtime_bad_labels_keep_previous);
  tcase_add_test (tc, test_model_swap_while_playing);
  tcase_add_test (tc, test_eva02_model);
  tcase_add_test (tc, test_runtime_bad_windows_warn_and_continue);
  tcase_add_test (tc, test_long_inference_is_cancelled);
  tcase_add_test (tc, test_overlay_blend_changes_only_labelled_pixels);
  tcase_add_test (tc, test_overlay_blend_yuv);
  tcase_add_test (tc, test_overlay_colors_and_alpha);
  tcase_add_test (tc, test_overlay_composition_when_downstream_draws);
  tcase_add_test (tc, test_overlay_auto_blends_for_plain_downstream);
  tcase_add_test (tc, test_messages_per_inference);
  tcase_add_test (tc, test_flush_eos_and_caps_change);
  tcase_add_test (tc, test_state_cycling_during_inference);
  tcase_add_test (tc, test_missing_model_is_an_error);
  tcase_add_test (tc, test_corrupt_model_is_an_error);
  tcase_add_test (tc, test_bad_labels_are_an_error);
  tcase_add_test (tc, test_read_meta_app);

  return s;
}

GST_CHECK_MAIN (clipseg);
