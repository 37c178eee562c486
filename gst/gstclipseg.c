/* GStreamer clipseg
 * gstclipseg.c: open-vocabulary dense segmentation of video with CLIP.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

/**
 * SECTION:element-clipseg
 * @title: clipseg
 * @short_description: segments video by free-text labels with a dense CLIP
 *
 * clipseg labels every pixel of a video with one of a list of free-text
 * classes, with no training: a stock CLIP checkpoint runs with a dense last
 * block (SCLIP's correlative self-attention by default) and every patch is
 * compared with text embeddings of the labels. Inference runs on a worker
 * thread, on every #GstClipseg:inference-interval th frame. With
 * #GstClipseg:processing `sync` every such frame waits for its own result;
 * with `latest` (the default for live sources) the streaming thread never
 * waits: not for the model's text encoding of the labels, not for the first
 * inference, not after a label, caps or size change. The worker takes the
 * newest frame whenever it is free, and the video keeps its pace.
 *
 * The model loads on a thread of its own when the element starts (seconds
 * for a real CLIP); in `latest` mode frames pass meanwhile, in `sync` mode the
 * first frame waits for it. A model that cannot be found fails the state
 * change; one that fails to load posts an error when the loader finds out.
 * A #GstClipseg:model set while running (ViT-B/16 to ViT-L/14, say) loads the
 * same way while the old model keeps segmenting, and replaces it between two
 * frames (an info message names it); if it fails to load, a warning says why
 * and the old model stays. Properties read back what runs: the model in use,
 * and after a rejected label set the labels that still run.
 * The text queries are encoded on the worker, when the model is loaded and
 * when the labels change: in `latest` mode with the first template at once,
 * so that masks come after seconds, not the minute 80 templates can take
 * with a real CLIP, and the other templates in steps between inferences (the
 * masks sharpen as they arrive); in `sync` mode with every template before the
 * first inference, so that files segment the same every time. All clipseg
 * elements of a process take turns on the engine, one
 * inference or encoding at a time, in arrival order: each run uses every core
 * it is given, so N streams share the cores instead of oversubscribing them,
 * and each gets an equal share of the inferences.
 *
 * Every buffer carries the newest result as a #GstClipsegMeta (label map,
 * label names, per-label coverage and score, flagged as reused when it was
 * computed on an earlier frame), the same as a #GstCustomMeta named
 * "GstClipsegResultMeta" for language bindings (gstclipsegresultmeta.h) and
 * one #GstVideoRegionOfInterestMeta per label present (other than 0), whose
 * id is the label index and whose "clipseg" parameter names the label. In `latest` mode, buffers that pass before
 * the first result (after a start, flush or caps change) carry no
 * #GstClipsegMeta and no region of interest; after a label change the
 * previous result, whose #GstClipsegMeta names its labels, is carried until
 * the first one with the new labels. Label 0 is "background": the
 * #GstClipseg:background words when there are any, otherwise the pixels whose
 * best probability is below #GstClipseg:threshold. Labels 1..N follow the
 * order of #GstClipseg:labels.
 *
 * With #GstClipseg:overlay the labelled pixels are also drawn: blended into
 * the frame or attached as a #GstVideoOverlayCompositionMeta when downstream
 * supports it. With #GstClipseg:post-messages an element message named
 * `clipseg` is posted for every new result, with the first buffer that
 * carries it (a result overtaken before any buffer carried it, as can happen
 * with `latest`, is not posted), with the fields `timestamp`,
 * `stream-time`, `running-time`, `duration` (of the buffer that first carries
 * the result), `source-timestamp` (of the frame inferred), `inferred`,
 * `reused`, `inference-ms`, `labels` (an array of strings), `coverage` and
 * `score` (arrays of doubles, one per label).
 *
 * ## Example launch lines
 *
 * Camera (pipelines/camera.sh):
 * |[
 * gst-launch-1.0 -e v4l2src device=/dev/video0 ! videoconvert ! \
 *     clipseg labels="person, chair|seat, screen|monitor" overlay=auto ! \
 *     videoconvert ! autovideosink
 * ]|
 *
 * Annotating a file into a new MP4 (pipelines/annotate.sh):
 * |[
 * gst-launch-1.0 -e filesrc location=in.mp4 ! qtdemux ! h264parse ! \
 *     avdec_h264 ! videoconvert ! \
 *     clipseg labels="person, car|truck, bicycle" overlay=blend processing=sync ! \
 *     progressreport update-freq=1 ! videoconvert ! x264enc ! mp4mux ! \
 *     filesink location=out.mp4
 * ]|
 *
 * Exporting the label maps as a PNG sequence and the results as JSON lines
 * (pipelines/export-masks.sh), with the plugin's clipsegmask and
 * clipsegjsonsink:
 * |[
 * gst-launch-1.0 -e filesrc location=in.mp4 ! qtdemux ! h264parse ! \
 *     avdec_h264 ! videoconvert ! \
 *     clipseg labels="person, car|truck, bicycle" processing=sync ! tee name=t \
 *   t. ! queue ! clipsegmask ! pngenc ! multifilesink location=mask-%05d.png \
 *   t. ! queue ! clipsegjsonsink location=frames.jsonl
 * ]|
 *
 * Frame skipping with the newest result on every buffer:
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=300 ! \
 *     clipseg labels="stripes, noise" inference-interval=5 processing=latest ! \
 *     fakesink
 * ]|
 */

/* sched_getaffinity, for the CPUs n-threads may use */
#define _GNU_SOURCE

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstclipseg.h"
#include "gstclipsegmeta.h"
#include "gstclipsegresultmeta.h"
#include "clipseg-infer.h"
#include "clipseg-known-classes.h"
#include "clipseg-overlay.h"
#include "clipseg-pixels.h"

#include <sched.h>
#include <string.h>

GST_DEBUG_CATEGORY (gst_clipseg_debug);
#define GST_CAT_DEFAULT gst_clipseg_debug

/* ---- enums -------------------------------------------------------------- */

typedef enum
{
  GST_CLIPSEG_MODE_VANILLA = CLIPSEG_MODE_VANILLA,
  GST_CLIPSEG_MODE_MASKCLIP = CLIPSEG_MODE_MASKCLIP,
  GST_CLIPSEG_MODE_SCLIP = CLIPSEG_MODE_SCLIP,
  GST_CLIPSEG_MODE_CLEARCLIP = CLIPSEG_MODE_CLEARCLIP,
  GST_CLIPSEG_MODE_NACLIP = CLIPSEG_MODE_NACLIP,
  GST_CLIPSEG_MODE_SCCLIP = CLIPSEG_MODE_SCCLIP,
} GstClipsegMode;

typedef enum
{
  GST_CLIPSEG_PROCESSING_SYNC,
  GST_CLIPSEG_PROCESSING_LATEST,
  GST_CLIPSEG_PROCESSING_AUTO,
} GstClipsegProcessing;

typedef enum
{
  GST_CLIPSEG_OVERLAY_NONE,
  GST_CLIPSEG_OVERLAY_AUTO,
  GST_CLIPSEG_OVERLAY_BLEND,
  GST_CLIPSEG_OVERLAY_COMPOSITION,
} GstClipsegOverlayMode;

#define GST_TYPE_CLIPSEG_MODE (gst_clipseg_mode_get_type ())
static GType
gst_clipseg_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_MODE_VANILLA, "Unchanged CLIP (the baseline)", "vanilla"},
    {GST_CLIPSEG_MODE_MASKCLIP, "MaskCLIP: value path of the last block",
        "maskclip"},
    {GST_CLIPSEG_MODE_SCLIP, "SCLIP: correlative self-attention", "sclip"},
    {GST_CLIPSEG_MODE_CLEARCLIP,
          "ClearCLIP: query-query attention, no residual or MLP in the last block",
        "clearclip"},
    {GST_CLIPSEG_MODE_NACLIP,
          "NACLIP: key-key attention with a Gaussian neighbourhood, no residual or MLP in the last block",
        "naclip"},
    {GST_CLIPSEG_MODE_SCCLIP,
          "SC-CLIP: anomaly fixing, intermediate-similarity attention and aggregation, multi-level fusion",
        "scclip"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegMode", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

typedef enum
{
  GST_CLIPSEG_PRECISION_AUTO = CLIPSEG_PRECISION_AUTO,
  GST_CLIPSEG_PRECISION_FP32 = CLIPSEG_PRECISION_FP32,
  GST_CLIPSEG_PRECISION_BF16 = CLIPSEG_PRECISION_BF16,
} GstClipsegPrecision;

#define GST_TYPE_CLIPSEG_PRECISION (gst_clipseg_precision_get_type ())
static GType
gst_clipseg_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_PRECISION_AUTO,
        "bf16 where the CPU has bf16 dot products and oneDNN is built in, "
          "else fp32", "auto"},
    {GST_CLIPSEG_PRECISION_FP32, "32-bit floats throughout", "fp32"},
    {GST_CLIPSEG_PRECISION_BF16,
        "Linear layers in bfloat16 (fp32 sums; norms, softmax and cosines "
          "fp32); fp32 with a warning where it cannot run", "bf16"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegPrecision", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define GST_TYPE_CLIPSEG_PROCESSING (gst_clipseg_processing_get_type ())
static GType
gst_clipseg_processing_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_PROCESSING_SYNC,
        "The inferred frame waits for its own result", "sync"},
    {GST_CLIPSEG_PROCESSING_LATEST,
          "Never wait: the worker infers the newest frame whenever it is free",
        "latest"},
    {GST_CLIPSEG_PROCESSING_AUTO,
        "latest for live sources, sync otherwise", "auto"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegProcessing", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

#define GST_TYPE_CLIPSEG_OVERLAY_MODE (gst_clipseg_overlay_mode_get_type ())
static GType
gst_clipseg_overlay_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIPSEG_OVERLAY_NONE, "Do not draw", "none"},
    {GST_CLIPSEG_OVERLAY_AUTO,
        "Attach a composition when downstream supports it, else blend", "auto"},
    {GST_CLIPSEG_OVERLAY_BLEND, "Blend into the frame", "blend"},
    {GST_CLIPSEG_OVERLAY_COMPOSITION,
        "Attach a GstVideoOverlayCompositionMeta", "composition"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType _type = g_enum_register_static ("GstClipsegOverlayMode", values);
    g_once_init_leave (&type, _type);
  }
  return type;
}

/* ---- properties --------------------------------------------------------- */

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_LABELS,
  PROP_LABELS_FILE,
  PROP_BACKGROUND,
  PROP_TEMPLATES,
  PROP_MODE,
  PROP_RESOLUTION,
  PROP_WINDOW,
  PROP_STRIDE,
  PROP_LOGIT_SCALE,
  PROP_THRESHOLD,
  PROP_AREA_THRESHOLD,
  PROP_KEY_SMOOTHING,
  PROP_PROMPT_DENOISING,
  PROP_PAMR_STEPS,
  PROP_INFERENCE_INTERVAL,
  PROP_PROCESSING,
  PROP_SMOOTHING,
  PROP_N_THREADS,
  PROP_PRECISION,
  PROP_OVERLAY,
  PROP_OVERLAY_ALPHA,
  PROP_COLORS,
  PROP_POST_MESSAGES,
  PROP_ATTACH_PROBABILITIES,
  PROP_QOS,
};

/* SCLIP's stuff words for open-vocabulary benchmarks without a background class */
#define DEFAULT_BACKGROUND "sky, wall, tree, wood, grass, road, sea, river, " \
    "mountain, sands, desk, bed, building, cloud, lamp, door, window, " \
    "wardrobe, ceiling, shelf, curtain, stair, floor, hill, rail, fence"
#define DEFAULT_TEMPLATES "imagenet80"
#define DEFAULT_RESOLUTION 0
#define RESOLUTION_MIN_DEFAULT 128
#define DEFAULT_WINDOW -1
#define DEFAULT_STRIDE 0
/* what the element shares with the engine's segmentation takes its defaults */
#define ENGINE_DEFAULT(field) (clipseg_segment_default_params ().field)
#define DEFAULT_MODE ((GstClipsegMode) ENGINE_DEFAULT (mode))
#define DEFAULT_LOGIT_SCALE ENGINE_DEFAULT (logit_scale)
#define DEFAULT_THRESHOLD ENGINE_DEFAULT (prob_thd)
#define DEFAULT_AREA_THRESHOLD ENGINE_DEFAULT (area_thd)
#define DEFAULT_KEY_SMOOTHING ENGINE_DEFAULT (ks_thresh)
#define DEFAULT_PROMPT_DENOISING ENGINE_DEFAULT (pd_thresh)
#define DEFAULT_PAMR_STEPS ENGINE_DEFAULT (pamr_steps)
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_PROCESSING GST_CLIPSEG_PROCESSING_AUTO
#define DEFAULT_SMOOTHING 0.5
#define DEFAULT_N_THREADS 0
#define DEFAULT_PRECISION GST_CLIPSEG_PRECISION_AUTO
#define DEFAULT_OVERLAY GST_CLIPSEG_OVERLAY_NONE
#define DEFAULT_OVERLAY_ALPHA 0.5
#define DEFAULT_POST_MESSAGES FALSE
#define DEFAULT_ATTACH_PROBABILITIES FALSE
#define DEFAULT_QOS TRUE

/* SCLIP's keep-ratio resize: Resize(scale=(2048, S)) */
#define LONG_SIDE_MAX 2048
/* most pixels the resolution, window and stride properties take */
#define SIDE_MAX 4096

#define FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, I420, NV12 }"
#define OVERLAY_FEATURE GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION
#define SYSMEM_OVERLAY_FEATURES \
    GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY ", " OVERLAY_FEATURE
#define GST_CLIPSEG_CAPS \
    GST_VIDEO_CAPS_MAKE (FORMATS) ";" \
    GST_VIDEO_CAPS_MAKE_WITH_FEATURES (SYSMEM_OVERLAY_FEATURES, FORMATS) ";" \
    GST_VIDEO_CAPS_MAKE_WITH_FEATURES (OVERLAY_FEATURE, FORMATS)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_CLIPSEG_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_CLIPSEG_CAPS));

/* The label properties, as set or as last accepted. */
typedef struct
{
  gchar *labels;
  gchar *labels_file;
  gchar *background;
  gchar *templates;
} GstClipsegLabelProps;

/* What one frame needs from the properties, read at once under the lock. */
typedef struct
{
  guint interval;
  GstClipsegOverlayMode overlay;
  gboolean post_messages;
  gboolean qos;
  gboolean labels_dirty;
  gint short_side;
  GstClockTime earliest;
  guint cookie;
  GstClipsegJob job;
} GstClipsegSnapshot;

struct _GstClipseg
{
  GstVideoFilter parent;

  /* properties, under the object lock */
  gchar *model_path;
  gchar *labels;
  gchar *labels_file;
  gchar *background;
  gchar *templates;
  GstClipsegMode mode;
  gint resolution;
  gint window;
  gint stride;
  gdouble logit_scale;
  gdouble threshold;
  gdouble area_threshold;
  gdouble key_smoothing;
  gdouble prompt_denoising;
  guint pamr_steps;
  guint interval;
  GstClipsegProcessing processing;
  gdouble smoothing;
  gint n_threads;
  GstClipsegPrecision precision;
  GstClipsegOverlayMode overlay;
  gdouble overlay_alpha;
  gchar *colors_text;
  GArray *colors;
  gboolean post_messages;
  gboolean attach_probabilities;
  gboolean qos;
  gboolean labels_dirty;        /* label properties changed while running */
  GstClipsegLabelProps accepted;        /* the label properties that run */
  guint cookie;                 /* changes with the palette */
  GstClockTime earliest;        /* from QoS: running time already late */
  gint live;                    /* upstream is live: -1 unknown */
  GstClockTime reported_latency;
  gboolean flushing;            /* no waiting for the model load */
  gboolean loaded, load_failed; /* model and infer are set (or failed) */
  GCond loaded_cond;
  GstClipsegInfer *infer;       /* once loaded, until stop */
  struct clipseg_model *model;  /* likewise; read without the lock once loaded */
  GThread *loader;              /* from start to stop */
  gboolean started;             /* between start and stop */
  gchar *model_in_use;          /* while started: the path of infer's model */
  GThread *swapper;             /* loads a model set while started */
  gboolean swapping;            /* the swapper has not finished */
  struct clipseg_model *next_model;     /* loaded by the swapper, not in use */
  GstClipsegInfer *next_infer;
  gchar *next_path;
  gboolean segmenting;          /* the worker has a label set */

  /* streaming thread */
  GstClipsegPixels pixels;
  gint short_side;              /* the pixels were set up for */
  GstClipsegOverlay overlay_cache;
  guint32 palette[GST_CLIPSEG_MAX_LABELS];
  gint check_composition;       /* atomic: set from upstream events too */
  gboolean downstream_composition;
  guint64 frame_count;
  guint64 posted_id;            /* newest result announced on the bus */
  gchar *warned_windows;        /* why the windows last fell back, or NULL */
  gboolean warned_not_finite;   /* since start() */
};

#define gst_clipseg_parent_class parent_class
G_DEFINE_TYPE (GstClipseg, gst_clipseg, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (clipseg, "clipseg", GST_RANK_NONE,
    GST_TYPE_CLIPSEG);

/* ---- engine logging ----------------------------------------------------- */

static void
gst_clipseg_engine_log (enum clipseg_log_level level, const char *message,
    void *user_data)
{
  static const GstDebugLevel levels[] = {
    [CLIPSEG_LOG_LEVEL_ERROR] = GST_LEVEL_ERROR,
    [CLIPSEG_LOG_LEVEL_WARNING] = GST_LEVEL_WARNING,
    [CLIPSEG_LOG_LEVEL_INFO] = GST_LEVEL_INFO,
    [CLIPSEG_LOG_LEVEL_DEBUG] = GST_LEVEL_DEBUG,
  };

  GST_CAT_LEVEL_LOG (gst_clipseg_debug, levels[level], NULL, "engine: %s",
      message);
}

/* ---- model and labels --------------------------------------------------- */

/* The model installed beside this plugin, wherever the installation is
 * now, or NULL. */
static gchar *
gst_clipseg_model_beside_plugin (void)
{
  GstPlugin *plugin = gst_registry_find_plugin (gst_registry_get (), "clipseg");
  const gchar *file = plugin ? gst_plugin_get_filename (plugin) : NULL;
  gchar *dir, *relative, *path = NULL;

  if (file) {
    dir = g_path_get_dirname (file);
    relative = g_build_filename (dir, GST_CLIPSEG_MODEL_FROM_PLUGIN_DIR, NULL);
    path = g_canonicalize_filename (relative, NULL);
    g_free (relative);
    g_free (dir);
    if (!g_file_test (path, G_FILE_TEST_IS_DIR))
      g_clear_pointer (&path, g_free);
  }
  gst_clear_object (&plugin);
  return path;
}

static gchar *
gst_clipseg_default_model (void)
{
  gchar *beside = gst_clipseg_model_beside_plugin ();

  if (beside)
    return beside;
  if (g_file_test (GST_CLIPSEG_MODEL_INSTALL_DIR, G_FILE_TEST_IS_DIR))
    return g_strdup (GST_CLIPSEG_MODEL_INSTALL_DIR);
  return g_strdup (GST_CLIPSEG_MODEL_SOURCE_DIR);
}

/* Splits "sky, wall, tree" into trimmed words, dropping empty ones. */
static gchar **
gst_clipseg_split_words (const gchar * text)
{
  gchar **parts = g_strsplit (text ? text : "", ",", -1);
  GPtrArray *words = g_ptr_array_new ();
  guint i;

  for (i = 0; parts[i]; i++) {
    if (*g_strstrip (parts[i]) != '\0')
      g_ptr_array_add (words, g_strdup (parts[i]));
  }
  g_ptr_array_add (words, NULL);
  g_strfreev (parts);

  return (gchar **) g_ptr_array_free (words, FALSE);
}

static struct clipseg_labels *
gst_clipseg_parse_classes (const gchar * labels, const gchar * labels_file,
    GError ** error)
{
  if (labels_file && *labels_file)
    return clipseg_labels_load_file (labels_file, error);
  if (labels && *labels)
    return clipseg_labels_parse_list (labels, error);

  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
      "no labels: set the labels or labels-file property");
  return NULL;
}

/* Whether a label property is set: without, frames pass untouched (and
 * the labels are no longer waiting to be loaded). */
static gboolean
gst_clipseg_labels_given (GstClipseg * self)
{
  gboolean given;

  GST_OBJECT_LOCK (self);
  given = (self->labels_file && *self->labels_file)
      || (self->labels && *self->labels);
  if (!given)
    self->labels_dirty = FALSE;
  GST_OBJECT_UNLOCK (self);
  return given;
}

/* The shipped world model knows twelve words: labels it has never seen
 * would silently come out as whatever is closest. */
static void
gst_clipseg_check_known (GstClipseg * self, const gchar * model_path,
    const struct clipseg_labels *set)
{
  gchar **known = gst_clipseg_known_classes_load (model_path);
  gchar **unknown, *unknown_text, *known_text;

  unknown = known ? gst_clipseg_known_classes_unknown ((const gchar * const *)
      known, set) : NULL;
  if (!unknown) {
    g_strfreev (known);
    return;
  }
  unknown_text = g_strjoinv ("\", \"", unknown);
  known_text = g_strjoinv (", ", known);
  GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
      ("The model knows only %u classes (%s): \"%s\" will not be found. "
          "For other labels give a real CLIP checkpoint as the model "
          "property: scripts/get-model.sh fetches openai/clip-vit-base-patch16 "
          "and prints the model= value.",
          g_strv_length (known), known_text, unknown_text),
      ("the model lists the classes it was trained on in classes.txt"));
  g_free (known_text);
  g_free (unknown_text);
  g_strfreev (unknown);
  g_strfreev (known);
}

static void
gst_clipseg_label_props_clear (GstClipsegLabelProps * props)
{
  g_clear_pointer (&props->labels, g_free);
  g_clear_pointer (&props->labels_file, g_free);
  g_clear_pointer (&props->background, g_free);
  g_clear_pointer (&props->templates, g_free);
}

/* Remembers @props (taken) as the label properties that run. */
static void
gst_clipseg_accept_labels (GstClipseg * self, GstClipsegLabelProps * props)
{
  GST_OBJECT_LOCK (self);
  gst_clipseg_label_props_clear (&self->accepted);
  self->accepted = *props;
  GST_OBJECT_UNLOCK (self);
  memset (props, 0, sizeof (*props));
}

/* After a rejected label set the properties read back the set that still
 * runs, unless they were set again meanwhile. */
static void
gst_clipseg_restore_labels (GstClipseg * self)
{
  GstClipsegLabelProps *ok = &self->accepted;

  GST_OBJECT_LOCK (self);
  if (!self->labels_dirty) {
    g_free (self->labels);
    g_free (self->labels_file);
    g_free (self->background);
    g_free (self->templates);
    self->labels = g_strdup (ok->labels);
    self->labels_file = g_strdup (ok->labels_file);
    self->background = g_strdup (ok->background);
    self->templates = g_strdup (ok->templates);
  }
  GST_OBJECT_UNLOCK (self);
}

/* Parses the label properties and hands them to @infer's worker, which
 * encodes them before its next inference, checked against what its model
 * at @model_path knows; with no @infer, only checks them. */
static gboolean
gst_clipseg_load_labels (GstClipseg * self, GstClipsegInfer * infer,
    const gchar * model_path, GError ** error)
{
  struct clipseg_labels *set;
  GstClipsegLabelProps props;
  gchar **words = NULL, **template_set = NULL;
  guint n_words, n_labels;

  GST_OBJECT_LOCK (self);
  props.labels = g_strdup (self->labels);
  props.labels_file = g_strdup (self->labels_file);
  props.background = g_strdup (self->background);
  props.templates = g_strdup (self->templates);
  self->labels_dirty = FALSE;
  GST_OBJECT_UNLOCK (self);

  set = gst_clipseg_parse_classes (props.labels, props.labels_file, error);
  if (!set)
    goto out;

  if (model_path)
    gst_clipseg_check_known (self, model_path, set);
  words = gst_clipseg_split_words (props.background);
  n_words = g_strv_length (words);
  if (n_words > 0)
    clipseg_labels_prepend_class (set, (const char *const *) words, n_words);
  n_labels = clipseg_labels_n_classes (set) + (n_words > 0 ? 0 : 1);
  if (n_labels > GST_CLIPSEG_MAX_LABELS) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "%u labels (background included), at most %d are supported",
        n_labels, GST_CLIPSEG_MAX_LABELS);
    g_clear_pointer (&set, clipseg_labels_free);
    goto out;
  }

  template_set = clipseg_templates_load (props.templates, error);
  if (!template_set || !clipseg_queries_check_size (set,
          (const char *const *) template_set, error)) {
    g_clear_pointer (&set, clipseg_labels_free);
    g_clear_pointer (&template_set, g_strfreev);
    goto out;
  }

  /* the worker owns them from here on */
  if (infer) {
    gst_clipseg_infer_set_labels (infer, set, n_words > 0, template_set);
    GST_OBJECT_LOCK (self);
    self->segmenting = TRUE;
    GST_OBJECT_UNLOCK (self);
  } else {
    clipseg_labels_free (set);
    g_strfreev (template_set);
  }

out:
  g_strfreev (words);
  if (set)
    gst_clipseg_accept_labels (self, &props);
  gst_clipseg_label_props_clear (&props);
  return set != NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Loads (or shares) the model at @path and starts a worker on it, with the
 * precision and threads the properties ask for now. */
static struct clipseg_model *
gst_clipseg_open_model (GstClipseg * self, const gchar * path,
    GstClipsegInfer ** infer, GError ** error)
{
  struct clipseg_model *model;
  const struct clipseg_model_info *info;
  GstClipsegPrecision precision;
  gint n_threads;

  GST_OBJECT_LOCK (self);
  n_threads = self->n_threads;
  precision = self->precision;
  GST_OBJECT_UNLOCK (self);

  model = gst_clipseg_shared_model_acquire (path,
      (enum clipseg_precision) precision, error);
  if (!model)
    return NULL;
  info = clipseg_model_get_info (model);
  GST_INFO_OBJECT (self, "model %s loaded: %s, %s, %s, attention %s", path,
      clipseg_precision_name (info->precision), info->gemm_library,
      info->gemm_isa, info->attention_kernel);
  *infer = gst_clipseg_infer_new (model, n_threads);
  return model;
}

static void
gst_clipseg_close_model (struct clipseg_model *model, GstClipsegInfer * infer)
{
  if (infer)
    gst_clipseg_infer_free (infer);
  if (model)
    gst_clipseg_shared_model_release (model);
}

/* Frees what start() set up, once the model loads are over. */
static void
gst_clipseg_release (GstClipseg * self)
{
  GstClipsegInfer *infer, *next_infer;
  struct clipseg_model *next_model;
  GThread *swapper;

  GST_OBJECT_LOCK (self);
  self->started = FALSE;        /* no new swapper, the running one ends */
  swapper = g_steal_pointer (&self->swapper);
  GST_OBJECT_UNLOCK (self);
  if (swapper)
    g_thread_join (swapper);
  if (self->loader)
    g_thread_join (g_steal_pointer (&self->loader));
  GST_OBJECT_LOCK (self);
  infer = g_steal_pointer (&self->infer);
  next_infer = g_steal_pointer (&self->next_infer);
  next_model = g_steal_pointer (&self->next_model);
  g_clear_pointer (&self->next_path, g_free);
  g_clear_pointer (&self->model_in_use, g_free);
  self->loaded = FALSE;
  self->segmenting = FALSE;
  GST_OBJECT_UNLOCK (self);

  gst_clipseg_close_model (next_model, next_infer);
  gst_clipseg_close_model (g_steal_pointer (&self->model), infer);
  gst_clipseg_pixels_clear (&self->pixels);
  gst_clipseg_overlay_clear (&self->overlay_cache);
  self->short_side = 0;
}

static gboolean
gst_clipseg_stop (GstBaseTransform * trans)
{
  gst_clipseg_release (GST_CLIPSEG (trans));
  return TRUE;
}

/* The loader thread: loading a real CLIP takes seconds, during which a live
 * stream's frames pass on (sync frames wait for it). The labels go to the
 * worker before anyone can see it, so no inference runs without them. */
static gpointer
gst_clipseg_load (gpointer data)
{
  GstClipseg *self = data;
  struct clipseg_model *model;
  GstClipsegInfer *infer = NULL;
  GError *error = NULL;
  gchar *path;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->model_in_use);
  GST_OBJECT_UNLOCK (self);

  model = gst_clipseg_open_model (self, path, &infer, &error);
  if (!model) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the model \"%s\".", path), ("%s", error->message));
  } else if (gst_clipseg_labels_given (self)
      && !gst_clipseg_load_labels (self, infer, path, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid labels."),
        ("%s", error->message));
  }

  GST_OBJECT_LOCK (self);
  self->model = model;
  self->infer = infer;
  self->loaded = TRUE;
  self->load_failed = error != NULL;
  if (infer && self->flushing)
    gst_clipseg_infer_set_flushing (infer, TRUE);
  g_cond_broadcast (&self->loaded_cond);
  GST_OBJECT_UNLOCK (self);

  g_clear_error (&error);
  g_free (path);
  return NULL;
}

static gboolean
gst_clipseg_start (GstBaseTransform * trans)
{
  GstClipseg *self = GST_CLIPSEG (trans);
  GError *error = NULL;
  gchar *path;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->model_path);
  self->earliest = GST_CLOCK_TIME_NONE;
  self->live = -1;
  self->reported_latency = 0;
  self->warned_not_finite = FALSE;
  self->loaded = FALSE;
  self->flushing = FALSE;
  GST_OBJECT_UNLOCK (self);

  /* what can be found out at once fails the state change; the rest of the
   * model's errors come from the loader */
  if (!path || !*path)
    goto no_model;
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    goto model_missing;
  if (!gst_clipseg_labels_given (self))
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS, ("No labels: frames pass "
            "through untouched until the labels or labels-file property is "
            "set."), (NULL));
  else if (!gst_clipseg_load_labels (self, NULL, NULL, &error))
    goto bad_labels;

  self->frame_count = 0;
  self->posted_id = 0;
  GST_OBJECT_LOCK (self);
  self->model_in_use = g_steal_pointer (&path);
  self->started = TRUE;
  GST_OBJECT_UNLOCK (self);
  self->loader = g_thread_new ("clipseg-load", gst_clipseg_load, self);
  return TRUE;

  /* ERRORS */
no_model:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model was given."),
        ("set the model property to a CLIP checkpoint"));
    g_free (path);
    return FALSE;
  }
model_missing:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the model \"%s\".", path),
        ("%s: no such file or directory", path));
    g_free (path);
    return FALSE;
  }
bad_labels:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid labels."),
        ("%s", error->message));
    g_error_free (error);
    g_free (path);
    return FALSE;
  }
}

/* Whether the model is loaded; @wait: until it is, unless flushing. */
static gboolean
gst_clipseg_model_ready (GstClipseg * self, gboolean wait)
{
  gboolean ready;

  GST_OBJECT_LOCK (self);
  while (wait && !self->loaded && !self->flushing)
    g_cond_wait (&self->loaded_cond, GST_OBJECT_GET_LOCK (self));
  ready = self->loaded && !self->load_failed;
  GST_OBJECT_UNLOCK (self);

  return ready;
}

/* Stops waits for the model load and for inferences, or allows them again. */
static void
gst_clipseg_set_flushing (GstClipseg * self, gboolean flushing)
{
  GST_OBJECT_LOCK (self);
  self->flushing = flushing;
  if (self->infer)
    gst_clipseg_infer_set_flushing (self->infer, flushing);
  g_cond_broadcast (&self->loaded_cond);
  GST_OBJECT_UNLOCK (self);
}

/* ---- model swap --------------------------------------------------------- */

/* The model path set while started that neither runs nor waits to, or NULL:
 * then the swapper is done. */
static gchar *
gst_clipseg_next_swap_path (GstClipseg * self)
{
  const gchar *newest;
  gchar *path = NULL;

  GST_OBJECT_LOCK (self);
  newest = self->next_path ? self->next_path : self->model_in_use;
  if (self->started && g_strcmp0 (self->model_path, newest) != 0)
    path = g_strdup (self->model_path);
  else
    self->swapping = FALSE;
  GST_OBJECT_UNLOCK (self);

  return path;
}

/* Loads @path with the current labels for the streaming thread to swap in;
 * on failure the model that runs stays, and so does the property. */
static void
gst_clipseg_load_next (GstClipseg * self, const gchar * path)
{
  struct clipseg_model *model, *dropped_model = NULL;
  GstClipsegInfer *infer = NULL, *dropped_infer = NULL;
  GError *error = NULL;
  gchar *keep;

  model = gst_clipseg_open_model (self, path, &infer, &error);
  if (model && gst_clipseg_labels_given (self)
      && !gst_clipseg_load_labels (self, infer, path, &error)) {
    gst_clipseg_close_model (model, g_steal_pointer (&infer));
    model = NULL;
  }

  GST_OBJECT_LOCK (self);
  keep = g_strdup (self->next_path ? self->next_path : self->model_in_use);
  if (model) {
    dropped_model = self->next_model;
    dropped_infer = self->next_infer;
    self->next_model = model;
    self->next_infer = infer;
    g_free (self->next_path);
    self->next_path = g_strdup (path);
  } else if (g_strcmp0 (self->model_path, path) == 0) {
    g_free (self->model_path);
    self->model_path = g_strdup (keep);
  }
  GST_OBJECT_UNLOCK (self);

  gst_clipseg_close_model (dropped_model, dropped_infer);
  if (error) {
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
        ("Could not load the model \"%s\", keeping \"%s\".", path, keep),
        ("%s", error->message));
    g_error_free (error);
  }
  g_free (keep);
}

/* The swapper thread: loads each model path set while started, the newest
 * last, while the old model keeps running. */
static gpointer
gst_clipseg_swap_models (gpointer data)
{
  GstClipseg *self = data;
  gchar *path;

  while ((path = gst_clipseg_next_swap_path (self))) {
    gst_clipseg_load_next (self, path);
    g_free (path);
  }
  return NULL;
}

/* Called with the object lock held, after the model property changed. */
static void
gst_clipseg_request_swap (GstClipseg * self)
{
  if (!self->started || self->swapping)
    return;                     /* a running swapper reads the new path */
  if (self->swapper)
    g_thread_join (self->swapper);      /* it has finished */
  self->swapping = TRUE;
  self->swapper = g_thread_new ("clipseg-swap", gst_clipseg_swap_models, self);
}

/* Puts a model the swapper loaded to work, between two frames so that no
 * frame sees both. The new worker has no result yet: until its first one,
 * frames pass as after a start. */
static void
gst_clipseg_swap_in (GstClipseg * self)
{
  struct clipseg_model *old_model;
  GstClipsegInfer *old_infer;
  gchar *path;

  GST_OBJECT_LOCK (self);
  if (!self->next_model) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  old_model = self->model;
  old_infer = self->infer;
  self->model = g_steal_pointer (&self->next_model);
  self->infer = g_steal_pointer (&self->next_infer);
  g_free (self->model_in_use);
  self->model_in_use = g_steal_pointer (&self->next_path);
  if (self->flushing)
    gst_clipseg_infer_set_flushing (self->infer, TRUE);
  path = g_strdup (self->model_in_use);
  GST_OBJECT_UNLOCK (self);

  gst_clipseg_close_model (old_model, old_infer);
  self->short_side = 0;         /* the pixels follow the new model's size */
  g_clear_pointer (&self->warned_windows, g_free);
  GST_ELEMENT_INFO (self, RESOURCE, SETTINGS,
      ("Now segmenting with the model \"%s\".", path), (NULL));
  g_free (path);
}

static GstStateChangeReturn
gst_clipseg_change_state (GstElement * element, GstStateChange transition)
{
  GstClipseg *self = GST_CLIPSEG (element);

  /* A frame waiting for its inference must not hold up the pad
   * deactivation that comes next. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    gst_clipseg_set_flushing (self, TRUE);

  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

/* Whether upstream is live, asked once if no LATENCY query told us yet. */
static gint
gst_clipseg_upstream_live (GstClipseg * self)
{
  GstQuery *query;
  gboolean live;
  gint ret;

  GST_OBJECT_LOCK (self);
  ret = self->live;
  GST_OBJECT_UNLOCK (self);
  if (ret >= 0)
    return ret;

  /* unanswered: treated as not live */
  live = FALSE;
  query = gst_query_new_latency ();
  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    gst_query_parse_latency (query, &live, NULL, NULL);
  gst_query_unref (query);
  GST_OBJECT_LOCK (self);
  ret = self->live = live;
  GST_OBJECT_UNLOCK (self);
  GST_DEBUG_OBJECT (self, "upstream live: %d", ret);

  return ret;
}

/* A live source with the default resolution and window gets one pass over
 * the whole frame at the model's native size: a ViT-B/16 then refreshes the
 * masks at 2-3 Hz on two cores instead of under 1 Hz in six windows at 1.5
 * times the size (tests/bench/quality.md has what it costs). */
static gboolean
gst_clipseg_light_live (gint resolution, gint window, gint live)
{
  return live == 1 && resolution == DEFAULT_RESOLUTION
      && window == DEFAULT_WINDOW;
}

/* The size the engine sees: SCLIP's keep-ratio resize to short side S. */
static gint
gst_clipseg_short_side (GstClipseg * self, gint resolution, gboolean light)
{
  gint native = clipseg_model_get_info (self->model)->image_size;

  if (resolution > 0)
    return resolution;
  /* SCLIP runs 224-pixel CLIPs at 336: 1.5 times the native size. Small
   * models need more: the shipped 64-pixel one segments best from 128 up
   * (tests/bench/quality.md). */
  return MAX (light ? native : native * 3 / 2, RESOLUTION_MIN_DEFAULT);
}

static void
gst_clipseg_setup_pixels (GstClipseg * self, const GstVideoInfo * info,
    gint short_side)
{
  const struct clipseg_model_info *model_info =
      clipseg_model_get_info (self->model);
  gint width, height;

  clipseg_resize_dims (GST_VIDEO_INFO_WIDTH (info),
      GST_VIDEO_INFO_HEIGHT (info), short_side, LONG_SIDE_MAX, &width, &height);
  width = MAX (width, model_info->patch_size);
  height = MAX (height, model_info->patch_size);
  gst_clipseg_pixels_init (&self->pixels, info, width, height,
      model_info->image_mean, model_info->image_std);
  self->short_side = short_side;
  GST_INFO_OBJECT (self, "inference at %dx%d", width, height);
}

static gboolean
gst_clipseg_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstClipseg *self = GST_CLIPSEG (filter);

  /* the next frame sets the pixels up for the new size (once the model is
   * loaded) and drops the result of the old one */
  self->short_side = 0;
  gst_clipseg_overlay_clear (&self->overlay_cache);
  g_atomic_int_set (&self->check_composition, TRUE);
  self->frame_count = 0;

  return TRUE;
}

/* ---- caps --------------------------------------------------------------- */

/* The same caps in system memory, with the overlay composition feature
 * (@add: both spellings sinks use) or without it. */
static GstCaps *
gst_clipseg_caps_set_overlay_feature (GstCaps * caps, gboolean add)
{
  GstCaps *result = gst_caps_new_empty ();
  guint i;

  for (i = 0; i < gst_caps_get_size (caps); i++) {
    GstStructure *s = gst_caps_get_structure (caps, i);
    GstCapsFeatures *features = gst_caps_get_features (caps, i);

    if (gst_caps_features_is_any (features))
      continue;
    if (add) {
      gst_caps_append_structure_full (result, gst_structure_copy (s),
          gst_caps_features_from_string (SYSMEM_OVERLAY_FEATURES));
      gst_caps_append_structure_full (result, gst_structure_copy (s),
          gst_caps_features_from_string (OVERLAY_FEATURE));
    } else {
      gst_caps_append_structure (result, gst_structure_copy (s));
    }
  }

  return result;
}

/* Downstream may get the overlay composition caps feature whether upstream
 * had it or not; the pixels are the same. */
static GstCaps *
gst_clipseg_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstCaps *result = gst_caps_copy (caps);

  gst_caps_append (result, gst_clipseg_caps_set_overlay_feature (caps,
          direction == GST_PAD_SINK));
  if (filter) {
    GstCaps *tmp = result;

    result = gst_caps_intersect_full (filter, tmp, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (tmp);
  }

  return result;
}

/* Prefer the overlay composition feature, as overlay elements do: it lets
 * a sink that can draw compositions do so. */
static GstCaps *
gst_clipseg_fixate_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * othercaps)
{
  GstCaps *preferred = gst_caps_new_empty ();
  guint i;

  for (i = 0; i < gst_caps_get_size (othercaps); i++) {
    GstCapsFeatures *features = gst_caps_get_features (othercaps, i);

    if (features && gst_caps_features_contains (features, OVERLAY_FEATURE))
      gst_caps_append_structure_full (preferred,
          gst_structure_copy (gst_caps_get_structure (othercaps, i)),
          gst_caps_features_copy (features));
  }
  if (gst_caps_is_empty (preferred)) {
    gst_caps_unref (preferred);
    return GST_BASE_TRANSFORM_CLASS (parent_class)->fixate_caps (trans,
        direction, caps, othercaps);
  }

  gst_caps_unref (othercaps);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->fixate_caps (trans,
      direction, caps, preferred);
}

/* Asks downstream whether it draws GstVideoOverlayCompositionMeta itself:
 * the caps feature and the meta in the allocation answer. */
static gboolean
gst_clipseg_downstream_takes_composition (GstClipseg * self)
{
  GstPad *srcpad = GST_BASE_TRANSFORM_SRC_PAD (self);
  GstCaps *caps = gst_pad_get_current_caps (srcpad);
  gboolean ret = FALSE;

  if (caps && gst_caps_features_contains (gst_caps_get_features (caps, 0),
          OVERLAY_FEATURE)) {
    GstQuery *query = gst_query_new_allocation (caps, FALSE);

    if (gst_pad_peer_query (srcpad, query))
      ret = gst_query_find_allocation_meta (query,
          GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
    gst_query_unref (query);
  }
  gst_clear_caps (&caps);

  GST_DEBUG_OBJECT (self, "downstream draws compositions: %d", ret);
  return ret;
}

/* ---- events and queries ------------------------------------------------- */

static gboolean
gst_clipseg_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstClipseg *self = GST_CLIPSEG (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      gst_clipseg_set_flushing (self, TRUE);
      break;
    case GST_EVENT_FLUSH_STOP:
      gst_clipseg_set_flushing (self, FALSE);
      GST_OBJECT_LOCK (self);
      self->earliest = GST_CLOCK_TIME_NONE;
      GST_OBJECT_UNLOCK (self);
      self->frame_count = 0;
      break;
    default:
      break;
  }

  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* QoS is ours, not GstBaseTransform's: a late frame skips its inference but
 * is never dropped. A RECONFIGURE may mean downstream now draws compositions
 * or no longer does, even with the same caps (an in-place filter gets no
 * allocation query then), so ask again. */
static gboolean
gst_clipseg_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstClipseg *self = GST_CLIPSEG (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE)
    g_atomic_int_set (&self->check_composition, TRUE);
  if (GST_EVENT_TYPE (event) == GST_EVENT_QOS) {
    GstClockTimeDiff diff;
    GstClockTime timestamp;

    gst_event_parse_qos (event, NULL, NULL, &diff, &timestamp);
    GST_OBJECT_LOCK (self);
    /* as GstBaseTransform: frames up to timestamp + diff are late */
    if (GST_CLOCK_TIME_IS_VALID (timestamp))
      self->earliest = MAX ((GstClockTimeDiff) timestamp + diff, 0);
    GST_OBJECT_UNLOCK (self);
  }

  return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
}

static gboolean
gst_clipseg_resolves_sync (GstClipsegProcessing processing, gint live)
{
  if (processing == GST_CLIPSEG_PROCESSING_AUTO)
    return live != 1;
  return processing == GST_CLIPSEG_PROCESSING_SYNC;
}

/* In sync mode the inferred frames leave late by the inference time; report
 * its moving average (the latest mode adds nothing). */
static gboolean
gst_clipseg_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstClipseg *self = GST_CLIPSEG (trans);
  GstClockTime min, max, extra = 0;
  gboolean live;

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query))
    return FALSE;
  if (direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return TRUE;

  gst_query_parse_latency (query, &live, &min, &max);
  GST_OBJECT_LOCK (self);
  self->live = live;
  if (self->infer && gst_clipseg_resolves_sync (self->processing, live)) {
    extra = gst_clipseg_infer_get_average_time (self->infer);
    if (!GST_CLOCK_TIME_IS_VALID (extra))
      extra = 0;
  }
  self->reported_latency = extra;
  GST_OBJECT_UNLOCK (self);

  if (GST_CLOCK_TIME_IS_VALID (max))
    max += extra;
  gst_query_set_latency (query, live, min + extra, max);
  GST_DEBUG_OBJECT (self, "added latency %" GST_TIME_FORMAT,
      GST_TIME_ARGS (extra));

  return TRUE;
}

/* Posts a LATENCY message when the inference time moved by more than a
 * quarter from what the last query reported. */
static void
gst_clipseg_check_latency (GstClipseg * self)
{
  GstClockTime average = gst_clipseg_infer_get_average_time (self->infer);
  GstClockTime reported;

  GST_OBJECT_LOCK (self);
  reported = self->reported_latency;
  GST_OBJECT_UNLOCK (self);

  if (GST_CLOCK_TIME_IS_VALID (average) &&
      ABS (GST_CLOCK_DIFF (reported,
              average)) > (GstClockTimeDiff) average / 4) {
    GST_OBJECT_LOCK (self);
    self->reported_latency = average;
    GST_OBJECT_UNLOCK (self);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

/* ---- per frame ---------------------------------------------------------- */

/* Windows of side @crop (0: the whole frame) with the stride property's
 * value @stride (0: half the window). */
static void
gst_clipseg_set_windows (struct clipseg_segment_params *p, gint crop,
    gint stride)
{
  p->crop = crop;
  p->stride = stride > 0 ? stride : MAX (1, crop / 2);
}

static void
gst_clipseg_snapshot (GstClipseg * self, GstClipsegSnapshot * s, gint live)
{
  const struct clipseg_model_info *info = clipseg_model_get_info (self->model);
  struct clipseg_segment_params *p = &s->job.params;
  gboolean light;

  GST_OBJECT_LOCK (self);
  light = gst_clipseg_light_live (self->resolution, self->window, live);
  s->interval = self->interval;
  s->overlay = self->overlay;
  s->post_messages = self->post_messages;
  s->qos = self->qos;
  s->labels_dirty = self->labels_dirty;
  s->short_side = gst_clipseg_short_side (self, self->resolution, light);
  s->earliest = self->earliest;
  s->cookie = self->cookie;

  *p = clipseg_segment_default_params ();
  p->mode = (enum clipseg_mode) self->mode;
  gst_clipseg_set_windows (p, self->window >= 0 ? self->window : light ? 0 :
      info->image_size, self->stride);
  p->logit_scale = self->logit_scale;
  p->prob_thd = self->threshold;
  p->area_thd = self->area_threshold;
  /* MaskCLIP's refinements only exist in its mode (see the properties) */
  if (p->mode == CLIPSEG_MODE_MASKCLIP) {
    p->ks_thresh = self->key_smoothing;
    p->pd_thresh = self->prompt_denoising;
  }
  p->pamr_steps = self->pamr_steps;
  s->job.smoothing = self->smoothing;
  s->job.want_probabilities = self->attach_probabilities;
  GST_OBJECT_UNLOCK (self);
}

/* Windows the engine rejects for this model or frame size (a window below
 * the patch size, a stride beyond the window, or a whole-frame pass whose
 * scratch would not fit, such as window 0 at resolution 4096) would stop a
 * running pipeline over a property change: say so once per reason and
 * segment with sliding windows of the model's size. */
static void
gst_clipseg_check_windows (GstClipseg * self, GstClipsegSnapshot * s)
{
  const struct clipseg_model_info *info = clipseg_model_get_info (self->model);
  struct clipseg_segment_params *p = &s->job.params;
  GError *error = NULL;

  if (clipseg_segment_size_check (self->model, self->n_threads,
          self->pixels.out_height, self->pixels.out_width, p, &error)) {
    g_clear_pointer (&self->warned_windows, g_free);
    return;
  }
  if (g_strcmp0 (error->message, self->warned_windows) != 0) {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Window %d / stride %d cannot segment %dx%d frames, using sliding "
            "windows of %d.", p->crop, p->stride, self->pixels.out_width,
            self->pixels.out_height, info->image_size), ("%s", error->message));
    g_free (self->warned_windows);
    self->warned_windows = g_strdup (error->message);
  }
  g_error_free (error);
  gst_clipseg_set_windows (p, info->image_size, DEFAULT_STRIDE);
}

static gboolean
gst_clipseg_is_late (GstClipseg * self, GstBuffer * buffer,
    const GstClipsegSnapshot * s)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime running_time;

  if (!s->qos || !GST_CLOCK_TIME_IS_VALID (s->earliest)
      || segment->format != GST_FORMAT_TIME)
    return FALSE;

  running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
  return GST_CLOCK_TIME_IS_VALID (running_time) && running_time <= s->earliest;
}

/* Hands the frame to the worker and, when @sync, waits for its result.
 * Returns FALSE when flushing. */
static gboolean
gst_clipseg_infer_frame (GstClipseg * self, GstVideoFrame * frame,
    guint64 serial, GstClipsegSnapshot * s, gboolean sync)
{
  gfloat *planes = gst_clipseg_infer_reserve (self->infer,
      self->pixels.out_width, self->pixels.out_height);

  gst_clipseg_pixels_convert (&self->pixels, frame, planes);
  s->job.waits = sync;
  s->job.serial = serial;
  s->job.pts = GST_BUFFER_PTS (frame->buffer);
  gst_clipseg_infer_submit (self->infer, &s->job);

  if (sync) {
    if (!gst_clipseg_infer_wait (self->infer))
      return FALSE;
    gst_clipseg_check_latency (self);
  }
  return TRUE;
}

static void
gst_clipseg_attach_meta (GstClipseg * self, GstVideoFrame * frame,
    const GstClipsegResult * r, guint64 serial)
{
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  GstClipsegMeta *meta;
  guint k;

  meta = gst_buffer_add_clipseg_meta (frame->buffer, r->label_map,
      (const gchar * const *) r->labels, r->coverage, r->score, width, height);
  meta->source_pts = r->pts;
  meta->reused = r->serial != serial;
  meta->inference_time = r->inference_time;
  if (r->probabilities)
    meta->probabilities = gst_buffer_ref (r->probabilities);
  gst_buffer_add_clipseg_result_meta (frame->buffer, meta);

  for (k = 1; k < r->n_labels; k++) {
    const GstVideoRectangle *box = &r->boxes[k];
    GstVideoRegionOfInterestMeta *roi;
    guint x0, y0, x1, y1;

    if (box->w == 0)
      continue;
    x0 = gst_util_uint64_scale_int (box->x, width, r->width);
    y0 = gst_util_uint64_scale_int (box->y, height, r->height);
    x1 = gst_util_uint64_scale_int (box->x + box->w, width, r->width);
    y1 = gst_util_uint64_scale_int (box->y + box->h, height, r->height);
    roi = gst_buffer_add_video_region_of_interest_meta (frame->buffer,
        r->labels[k], x0, y0, x1 - x0, y1 - y0);
    /* the label index: every region reachable by id, as one per object */
    roi->id = k;
    gst_video_region_of_interest_meta_add_param (roi,
        gst_structure_new ("clipseg", "label", G_TYPE_STRING, r->labels[k],
            "label-id", G_TYPE_UINT, k, "score", G_TYPE_DOUBLE, r->score[k],
            "coverage", G_TYPE_DOUBLE, r->coverage[k], NULL));
  }
}

/* Renderers read only the first composition meta of a buffer, so an upstream
 * overlay (e.g. textoverlay's) gets our rectangles added, as textoverlay does. */
static void
gst_clipseg_attach_composition (GstBuffer * buffer,
    GstVideoOverlayComposition * ours)
{
  GstVideoOverlayCompositionMeta *meta =
      gst_buffer_get_video_overlay_composition_meta (buffer);
  GstVideoOverlayComposition *merged;
  guint i;

  if (!meta) {
    gst_buffer_add_video_overlay_composition_meta (buffer, ours);
    return;
  }
  merged = gst_video_overlay_composition_copy (meta->overlay);
  for (i = 0; i < gst_video_overlay_composition_n_rectangles (ours); i++)
    gst_video_overlay_composition_add_rectangle (merged,
        gst_video_overlay_composition_get_rectangle (ours, i));
  gst_buffer_remove_meta (buffer, (GstMeta *) meta);
  gst_buffer_add_video_overlay_composition_meta (buffer, merged);
  gst_video_overlay_composition_unref (merged);
}

static void
gst_clipseg_draw (GstClipseg * self, GstVideoFrame * frame,
    const GstClipsegResult * r, const GstClipsegSnapshot * s)
{
  GstClipsegOverlayMode mode = s->overlay;

  if (mode == GST_CLIPSEG_OVERLAY_NONE)
    return;

  GST_OBJECT_LOCK (self);
  gst_clipseg_palette_fill (self->palette, (const gchar * const *) r->labels,
      r->n_labels, self->colors, self->overlay_alpha);
  GST_OBJECT_UNLOCK (self);

  if (mode == GST_CLIPSEG_OVERLAY_AUTO) {
    if (g_atomic_int_compare_and_exchange (&self->check_composition, TRUE,
            FALSE))
      self->downstream_composition =
          gst_clipseg_downstream_takes_composition (self);
    mode = self->downstream_composition ? GST_CLIPSEG_OVERLAY_COMPOSITION :
        GST_CLIPSEG_OVERLAY_BLEND;
  }

  if (mode == GST_CLIPSEG_OVERLAY_COMPOSITION)
    gst_clipseg_attach_composition (frame->buffer,
        gst_clipseg_overlay_get_composition (&self->overlay_cache, r,
            self->palette, s->cookie, GST_VIDEO_FRAME_WIDTH (frame),
            GST_VIDEO_FRAME_HEIGHT (frame)));
  else
    gst_clipseg_overlay_blend (&self->overlay_cache, frame, r, self->palette,
        s->cookie);
}

static void
gst_clipseg_post_result (GstClipseg * self, GstBuffer * buffer,
    const GstClipsegResult * r, guint64 serial)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime timestamp = GST_BUFFER_PTS (buffer);
  GstStructure *s;

  s = gst_structure_new ("clipseg",
      "timestamp", G_TYPE_UINT64, timestamp,
      "stream-time", G_TYPE_UINT64,
      gst_segment_to_stream_time (segment, GST_FORMAT_TIME, timestamp),
      "running-time", G_TYPE_UINT64,
      gst_segment_to_running_time (segment, GST_FORMAT_TIME, timestamp),
      "duration", G_TYPE_UINT64, GST_BUFFER_DURATION (buffer),
      "source-timestamp", G_TYPE_UINT64, r->pts,
      "inferred", G_TYPE_BOOLEAN, r->serial == serial, NULL);
  gst_clipseg_meta_set_fields (gst_buffer_get_clipseg_meta (buffer), s);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* A model whose weights overflow float gives no masks for a frame, never
 * wrong ones: the frame passes with the previous result (inferred=false),
 * and the user hears about it once. */
static void
gst_clipseg_warn_not_finite (GstClipseg * self, GError * error)
{
  if (!self->warned_not_finite)
    GST_ELEMENT_WARNING (self, LIBRARY, FAILED,
        ("The model gives no answer for some frames (not finite numbers)."),
        ("%s", error->message));
  self->warned_not_finite = TRUE;
  g_error_free (error);
}

static gboolean
gst_clipseg_segmenting (GstClipseg * self)
{
  gboolean segmenting;

  GST_OBJECT_LOCK (self);
  segmenting = self->segmenting;
  GST_OBJECT_UNLOCK (self);
  return segmenting;
}

static GstFlowReturn
gst_clipseg_transform_frame_ip (GstVideoFilter * filter, GstVideoFrame * frame)
{
  GstClipseg *self = GST_CLIPSEG (filter);
  guint64 serial = self->frame_count++;
  gint live = gst_clipseg_upstream_live (self);
  GstClipsegProcessing processing;
  GstClipsegSnapshot s;
  GstClipsegResult *result;
  GError *error = NULL;
  gboolean sync;

  GST_OBJECT_LOCK (self);
  processing = self->processing;
  GST_OBJECT_UNLOCK (self);
  sync = gst_clipseg_resolves_sync (processing, live);
  if (!gst_clipseg_model_ready (self, sync)) {
    GST_OBJECT_LOCK (self);
    if (self->load_failed) {
      GST_OBJECT_UNLOCK (self);
      return GST_FLOW_ERROR;    /* the loader posted why */
    }
    GST_OBJECT_UNLOCK (self);
    GST_LOG_OBJECT (self, "frame %" G_GUINT64_FORMAT " passes while the "
        "model loads", serial);
    return sync ? GST_FLOW_FLUSHING : GST_FLOW_OK;
  }

  gst_clipseg_swap_in (self);
  gst_clipseg_snapshot (self, &s, live);
  /* model_in_use changes only here, in swap_in */
  if (s.labels_dirty && !gst_clipseg_load_labels (self, self->infer,
          self->model_in_use, &error)) {
    if (gst_clipseg_segmenting (self))
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Invalid labels, keeping the previous ones."), ("%s",
              error->message));
    else
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Invalid labels, frames pass through untouched."), ("%s",
              error->message));
    g_clear_error (&error);
    gst_clipseg_restore_labels (self);
  }
  if (!gst_clipseg_segmenting (self))
    return GST_FLOW_OK;
  if (s.short_side != self->short_side) {
    gst_clipseg_setup_pixels (self, &filter->in_info, s.short_side);
    gst_clipseg_infer_reset (self->infer);
  }
  gst_clipseg_check_windows (self, &s);

  /* Only a frame that waits for its inference can make the video late:
   * in latest mode lateness says nothing about the masks, and skipping
   * would starve the worker. */
  if (serial % s.interval == 0) {
    if (sync && gst_clipseg_is_late (self, frame->buffer, &s)
        && gst_clipseg_infer_has_result (self->infer))
      GST_DEBUG_OBJECT (self, "frame %" G_GUINT64_FORMAT " is late, "
          "inference skipped", serial);
    else if (!gst_clipseg_infer_frame (self, frame, serial, &s, sync))
      return GST_FLOW_FLUSHING;
  }

  error = gst_clipseg_infer_take_error (self->infer);
  if (error && g_error_matches (error, CLIPSEG_ENGINE_ERROR,
          CLIPSEG_ENGINE_ERROR_NOT_FINITE))
    gst_clipseg_warn_not_finite (self, error);
  else if (error)
    goto inference_failed;

  result = gst_clipseg_infer_get_result (self->infer);
  if (!result)
    return GST_FLOW_OK;

  gst_clipseg_attach_meta (self, frame, result, serial);
  gst_clipseg_draw (self, frame, result, &s);
  if (s.post_messages && result->id != self->posted_id) {
    gst_clipseg_post_result (self, frame->buffer, result, serial);
    self->posted_id = result->id;
  }
  gst_clipseg_result_unref (result);

  return GST_FLOW_OK;

  /* ERRORS */
inference_failed:
  {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Inference failed."),
        ("%s", error->message));
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
}

/* ---- GObject ------------------------------------------------------------ */

static void
gst_clipseg_set_string (GstClipseg * self, gchar ** field, const GValue * value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
  self->labels_dirty = TRUE;
}

/* More threads than the CPUs the process may run on only wait for each
 * other (1024 on 2 cores ran 30 times slower): clamped, with a warning. */
static void
gst_clipseg_set_n_threads (GstClipseg * self, gint n_threads)
{
  cpu_set_t set;
  gint usable = G_MAXINT;

  if (sched_getaffinity (0, sizeof set, &set) == 0)
    usable = MAX (1, CPU_COUNT (&set));
  if (n_threads > usable) {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("n-threads %d is more than the %d CPUs this process may use, using "
            "%d.", n_threads, usable, usable), (NULL));
    n_threads = usable;
  }
  GST_OBJECT_LOCK (self);
  self->n_threads = n_threads;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clipseg_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstClipseg *self = GST_CLIPSEG (object);
  GError *error = NULL;

  /* posting a warning takes the object lock */
  if (prop_id == PROP_N_THREADS) {
    gst_clipseg_set_n_threads (self, g_value_get_int (value));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      gst_clipseg_request_swap (self);
      break;
    case PROP_LABELS:
      gst_clipseg_set_string (self, &self->labels, value);
      break;
    case PROP_LABELS_FILE:
      gst_clipseg_set_string (self, &self->labels_file, value);
      break;
    case PROP_BACKGROUND:
      gst_clipseg_set_string (self, &self->background, value);
      break;
    case PROP_TEMPLATES:
      gst_clipseg_set_string (self, &self->templates, value);
      break;
    case PROP_MODE:
      self->mode = g_value_get_enum (value);
      break;
    case PROP_RESOLUTION:
      self->resolution = g_value_get_int (value);
      break;
    case PROP_WINDOW:
      self->window = g_value_get_int (value);
      break;
    case PROP_STRIDE:
      self->stride = g_value_get_int (value);
      break;
    case PROP_LOGIT_SCALE:
      self->logit_scale = g_value_get_double (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_double (value);
      break;
    case PROP_AREA_THRESHOLD:
      self->area_threshold = g_value_get_double (value);
      break;
    case PROP_KEY_SMOOTHING:
      self->key_smoothing = g_value_get_double (value);
      break;
    case PROP_PROMPT_DENOISING:
      self->prompt_denoising = g_value_get_double (value);
      break;
    case PROP_PAMR_STEPS:
      self->pamr_steps = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_INTERVAL:
      self->interval = g_value_get_uint (value);
      break;
    case PROP_PROCESSING:
      self->processing = g_value_get_enum (value);
      break;
    case PROP_SMOOTHING:
      self->smoothing = g_value_get_double (value);
      break;
    case PROP_PRECISION:
      self->precision = g_value_get_enum (value);
      break;
    case PROP_OVERLAY:
      self->overlay = g_value_get_enum (value);
      break;
    case PROP_OVERLAY_ALPHA:
      self->overlay_alpha = g_value_get_double (value);
      self->cookie++;
      break;
    case PROP_COLORS:
      if (gst_clipseg_colors_set (g_value_get_string (value), &self->colors,
              &self->colors_text, &error))
        self->cookie++;
      break;
    case PROP_POST_MESSAGES:
      self->post_messages = g_value_get_boolean (value);
      break;
    case PROP_ATTACH_PROBABILITIES:
      self->attach_probabilities = g_value_get_boolean (value);
      break;
    case PROP_QOS:
      self->qos = g_value_get_boolean (value);
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
gst_clipseg_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstClipseg *self = GST_CLIPSEG (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value,
          self->model_in_use ? self->model_in_use : self->model_path);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels);
      break;
    case PROP_LABELS_FILE:
      g_value_set_string (value, self->labels_file);
      break;
    case PROP_BACKGROUND:
      g_value_set_string (value, self->background);
      break;
    case PROP_TEMPLATES:
      g_value_set_string (value, self->templates);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_RESOLUTION:
      g_value_set_int (value, self->resolution);
      break;
    case PROP_WINDOW:
      g_value_set_int (value, self->window);
      break;
    case PROP_STRIDE:
      g_value_set_int (value, self->stride);
      break;
    case PROP_LOGIT_SCALE:
      g_value_set_double (value, self->logit_scale);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_AREA_THRESHOLD:
      g_value_set_double (value, self->area_threshold);
      break;
    case PROP_KEY_SMOOTHING:
      g_value_set_double (value, self->key_smoothing);
      break;
    case PROP_PROMPT_DENOISING:
      g_value_set_double (value, self->prompt_denoising);
      break;
    case PROP_PAMR_STEPS:
      g_value_set_uint (value, self->pamr_steps);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, self->interval);
      break;
    case PROP_PROCESSING:
      g_value_set_enum (value, self->processing);
      break;
    case PROP_SMOOTHING:
      g_value_set_double (value, self->smoothing);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_OVERLAY:
      g_value_set_enum (value, self->overlay);
      break;
    case PROP_OVERLAY_ALPHA:
      g_value_set_double (value, self->overlay_alpha);
      break;
    case PROP_COLORS:
      g_value_set_string (value, self->colors_text);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_ATTACH_PROBABILITIES:
      g_value_set_boolean (value, self->attach_probabilities);
      break;
    case PROP_QOS:
      g_value_set_boolean (value, self->qos);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clipseg_finalize (GObject * object)
{
  GstClipseg *self = GST_CLIPSEG (object);

  g_free (self->model_path);
  g_free (self->model_in_use);
  g_free (self->labels);
  g_free (self->labels_file);
  g_free (self->background);
  g_free (self->templates);
  g_free (self->colors_text);
  g_free (self->warned_windows);
  gst_clipseg_label_props_clear (&self->accepted);
  g_clear_pointer (&self->colors, gst_clipseg_colors_free);
  g_cond_clear (&self->loaded_cond);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

#define PLAYING_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | \
    GST_PARAM_MUTABLE_PLAYING)
#define READY_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | \
    GST_PARAM_MUTABLE_READY)

/* A blurb with values filled in, kept for the process's life as the static
 * strings of the param specs must be. */
static const gchar *
gst_clipseg_blurb (const gchar * format, ...)
G_GNUC_PRINTF (1, 2);

     static const gchar *gst_clipseg_blurb (const gchar * format, ...)
{
  va_list args;
  gchar *text;
  const gchar *interned;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  interned = g_intern_string (text);
  g_free (text);
  return interned;
}

#define BOOLEAN_NAME(value) ((value) ? "true" : "false")

static void
gst_clipseg_install_model_properties (GObjectClass * gobject_class)
{
  gchar *default_model = gst_clipseg_default_model ();

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "CLIP checkpoint: a Hugging Face CLIP directory (config.json, "
          "model.safetensors, vocab.json, merges.txt), an EVA02-CLIP/CLIPSelf "
          "directory from scripts/convert-checkpoint.py, or an OpenCLIP/OpenAI "
          "safetensors file. Instances with the same path share one loaded "
          "model. It loads in the background from the start; live frames "
          "pass meanwhile. Set while running, the new model loads in the "
          "background and replaces the old one between two frames (a "
          "warning keeps the old one if it fails); reads back the model in "
          "use. Default: the project's model installed with the plugin "
          "(share/clipseg/model), else the one in the source tree.",
          default_model, PLAYING_FLAGS));
  g_free (default_model);
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Classes to segment, separated by commas; synonyms of one class are "
          "joined by '|' (e.g. \"person|man, car|truck, dog\"). They become "
          "labels 1, 2, ... in order. Ignored when labels-file is set. "
          "Changing them while playing re-encodes the text queries on the "
          "worker thread and restarts smoothing. Default: none (frames pass "
          "through untouched, with a warning, until labels are set).",
          NULL, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_LABELS_FILE,
      g_param_spec_string ("labels-file", "Labels file",
          "File of classes in SCLIP's format: one class per line, synonyms "
          "separated by \", \". Takes precedence over labels. Default: none.",
          NULL, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_BACKGROUND,
      g_param_spec_string ("background", "Background",
          "Comma-separated words that all mean background, label 0 (SCLIP's "
          "26 stuff words by default). Empty (background='\"\"' in a shell "
          "gst-launch-1.0 line): no background class; label 0 then marks only "
          "the pixels below threshold.", DEFAULT_BACKGROUND, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_TEMPLATES,
      g_param_spec_string ("templates", "Templates",
          "Prompt templates each label is embedded with, averaged: "
          "\"imagenet80\" (OpenAI's 80 ImageNet templates), \"single\" "
          "(\"a photo of a {}.\"), \"none\" (the label alone) or the path of "
          "a file with one template containing {} per line. "
          "Default: \"" DEFAULT_TEMPLATES "\".", DEFAULT_TEMPLATES,
          PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          gst_clipseg_blurb ("How the last vision block keeps patches "
              "local. Default: %s.", clipseg_mode_name (ENGINE_DEFAULT (mode))),
          GST_TYPE_CLIPSEG_MODE, DEFAULT_MODE, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_RESOLUTION,
      g_param_spec_int ("resolution", "Resolution",
          "Short side, in pixels, that frames are resized to for inference "
          "(keeping the aspect ratio, long side at most "
          G_STRINGIFY (LONG_SIDE_MAX) "); the label map has this size too. "
          "0: 1.5 times the model's native image size, at least "
          G_STRINGIFY (RESOLUTION_MIN_DEFAULT) " (336 for 224-pixel CLIPs, as "
          "SCLIP); for a live source with window -1 too, the native size (at "
          "least " G_STRINGIFY (RESOLUTION_MIN_DEFAULT) ") in one whole-frame "
          "pass, several times faster (a ViT-B/16 refreshes masks at 2-3 Hz "
          "on two cores) at some cost in accuracy (README). "
          "Default: " G_STRINGIFY (DEFAULT_RESOLUTION) ".", 0, SIDE_MAX,
          DEFAULT_RESOLUTION, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_WINDOW,
      g_param_spec_int ("window", "Window",
          "Side in pixels of the sliding windows the resized frame is "
          "segmented in. -1: the model's native image size, or one pass over "
          "the whole frame for a live source with resolution 0 (see "
          "resolution); 0: one pass over the whole frame. "
          "Default: " G_STRINGIFY (DEFAULT_WINDOW) ".", -1, SIDE_MAX,
          DEFAULT_WINDOW, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_STRIDE,
      g_param_spec_int ("stride", "Stride",
          "Step in pixels between sliding windows. 0: half the window. "
          "Default: " G_STRINGIFY (DEFAULT_STRIDE) ".", 0, SIDE_MAX,
          DEFAULT_STRIDE, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_LOGIT_SCALE,
      g_param_spec_double ("logit-scale", "Logit scale",
          gst_clipseg_blurb ("Factor on the patch-text cosines before the "
              "softmax over labels; higher makes decisions sharper. "
              "Default: %g (SCLIP's).", DEFAULT_LOGIT_SCALE), 0.001, 1000.0,
          DEFAULT_LOGIT_SCALE, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          gst_clipseg_blurb ("Pixels whose best class probability is below "
              "this go to label 0; 0: off. Default: %g.", DEFAULT_THRESHOLD),
          0.0, 1.0, DEFAULT_THRESHOLD, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_AREA_THRESHOLD,
      g_param_spec_double ("area-threshold", "Area threshold",
          gst_clipseg_blurb ("Labels covering at most this share of the "
              "labelled (non-0) pixels get probability 0, so their pixels go "
              "to the next most probable label (SCLIP's area_thd); 0: off. "
              "Default: %g.", DEFAULT_AREA_THRESHOLD), 0.0, 0.99,
          DEFAULT_AREA_THRESHOLD, PLAYING_FLAGS));
}

static void
gst_clipseg_install_refinement_properties (GObjectClass * gobject_class)
{
  g_object_class_install_property (gobject_class, PROP_KEY_SMOOTHING,
      g_param_spec_double ("key-smoothing", "Key smoothing",
          gst_clipseg_blurb ("MaskCLIP's key smoothing, mode maskclip only "
              "(other modes ignore it): in each window, patches whose best "
              "label probability (softmax of 100 x cosine) is below this take "
              "the key-similarity weighted sum of every patch's "
              "probabilities, which then stand in for the cosines "
              "(logit-scale 1 gives MaskCLIP's own probabilities). MaskCLIP's "
              "setting: 1 (every patch); 0: off. Default: %g.",
              DEFAULT_KEY_SMOOTHING), 0.0, 1.0, DEFAULT_KEY_SMOOTHING,
          PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_PROMPT_DENOISING,
      g_param_spec_double ("prompt-denoising", "Prompt denoising",
          gst_clipseg_blurb ("MaskCLIP's prompt denoising, mode maskclip "
              "only (other modes ignore it): in each window, labels (each "
              "name of a label on its own) whose probability (softmax of 100 "
              "x cosine) stays below this at every patch are dropped there. "
              "MaskCLIP's setting: 0.5; 0: off. Default: %g.",
              DEFAULT_PROMPT_DENOISING), 0.0, 1.0, DEFAULT_PROMPT_DENOISING,
          PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_PAMR_STEPS,
      g_param_spec_uint ("pamr-steps", "PAMR steps",
          gst_clipseg_blurb
          ("Steps of PAMR, which refines the label scores at the label map's "
              "size by each pixel's colour affinity to its neighbours 8 and 16 "
              "pixels away (SCLIP and NACLIP; NACLIP runs 10). Each step costs "
              "time in proportion to pixels x names. 0: off. Default: %d (as "
              "SCLIP).", DEFAULT_PAMR_STEPS), 0, CLIPSEG_MAX_PAMR_STEPS,
          DEFAULT_PAMR_STEPS, PLAYING_FLAGS));
}

static void
gst_clipseg_install_processing_properties (GObjectClass * gobject_class)
{
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Infer every Nth frame: 1 = every frame, 5 = frames 0, 5, 10, ... "
          "(DL Streamer's meaning). Frames in between carry the newest "
          "result, flagged as reused. "
          "Default: " G_STRINGIFY (DEFAULT_INFERENCE_INTERVAL) ".", 1,
          G_MAXUINT, DEFAULT_INFERENCE_INTERVAL, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_PROCESSING,
      g_param_spec_enum ("processing", "Processing",
          "Whether a frame chosen for inference waits for it (sync: every "
          "chosen frame carries its own result; adds the inference time to "
          "the latency) or not (latest: no frame ever waits, and the worker "
          "infers the newest chosen frame whenever it is free; frames before "
          "the first result after a start, flush or caps change carry no "
          "GstClipsegMeta; adds no latency; QoS never skips inferences). "
          "Default: auto (latest for live sources, sync otherwise).",
          GST_TYPE_CLIPSEG_PROCESSING, DEFAULT_PROCESSING, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_double ("smoothing", "Smoothing",
          "Temporal smoothing: weight of the past in an exponential moving "
          "average of the class probabilities over inferred frames, reset on "
          "caps changes, flushes and label changes. 0 = off. " "Default: "
          G_STRINGIFY (DEFAULT_SMOOTHING) ".", 0.0, 0.99, DEFAULT_SMOOTHING,
          PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Threads one inference uses. 0: all cores. More than the CPUs the "
          "process may use are clamped to them, with a warning. " "Default: "
          G_STRINGIFY (DEFAULT_N_THREADS) ".", 0, CLIPSEG_MAX_THREADS,
          DEFAULT_N_THREADS, READY_FLAGS));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Number format of the model's linear layers: bf16 runs them 2-4 "
          "times faster than fp32 with label maps nearly identical (README). "
          "The GStreamer debug log (clipseg:4) says what runs. Default: auto "
          "(bf16 on CPUs with AVX512-BF16, with oneDNN built in).",
          GST_TYPE_CLIPSEG_PRECISION, DEFAULT_PRECISION, READY_FLAGS));
  g_object_class_install_property (gobject_class, PROP_ATTACH_PROBABILITIES,
      g_param_spec_boolean ("attach-probabilities", "Attach probabilities",
          gst_clipseg_blurb ("Also attach the smoothed class probabilities "
              "(float32 planes, one per label, at the label map's size) to "
              "GstClipsegMeta. Default: %s.",
              BOOLEAN_NAME (DEFAULT_ATTACH_PROBABILITIES)),
          DEFAULT_ATTACH_PROBABILITIES, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          gst_clipseg_blurb ("Post an element message \"clipseg\" on the "
              "bus for every new result, with the first buffer that carries "
              "it (timestamps, labels, per-label coverage and score, "
              "inference time). Default: %s.",
              BOOLEAN_NAME (DEFAULT_POST_MESSAGES)), DEFAULT_POST_MESSAGES,
          PLAYING_FLAGS));
  /* shadows GstBaseTransform's qos, which would drop late frames */
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_boolean ("qos", "QoS",
          gst_clipseg_blurb
          ("In sync mode, skip the inference of frames that downstream QoS "
              "events report as late; the frames themselves always pass (latest "
              "mode never skips: its frames do not wait). Default: %s.",
              BOOLEAN_NAME (DEFAULT_QOS)), DEFAULT_QOS, PLAYING_FLAGS));
}

static void
gst_clipseg_install_overlay_properties (GObjectClass * gobject_class)
{
  g_object_class_install_property (gobject_class, PROP_OVERLAY,
      g_param_spec_enum ("overlay", "Overlay",
          "Draw the labelled pixels (label 0 stays untouched): blend them "
          "into the frame, attach them as a GstVideoOverlayCompositionMeta, "
          "or (auto) attach when downstream supports it and blend otherwise. "
          "Default: none.", GST_TYPE_CLIPSEG_OVERLAY_MODE, DEFAULT_OVERLAY,
          PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_OVERLAY_ALPHA,
      g_param_spec_double ("overlay-alpha", "Overlay alpha",
          "Opacity of the overlay colours, 0 (invisible) to 1 (opaque). "
          "Default: " G_STRINGIFY (DEFAULT_OVERLAY_ALPHA) ".", 0.0, 1.0,
          DEFAULT_OVERLAY_ALPHA, PLAYING_FLAGS));
  g_object_class_install_property (gobject_class, PROP_COLORS,
      g_param_spec_string ("colors", "Colors",
          "Overlay colours that replace the default spread-hue palette, as "
          "comma-separated LABEL=RRGGBB entries where LABEL is a label name or "
          "number (e.g. \"person=#ff0000, 2=00ff00\"). Invalid text is "
          "ignored with a warning. Default: none.", NULL, PLAYING_FLAGS));
}

static void
gst_clipseg_class_init (GstClipsegClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_clipseg_debug, "clipseg", 0,
      "open-vocabulary segmentation with CLIP");
  clipseg_log_set (gst_clipseg_engine_log, NULL);

  gobject_class->set_property = gst_clipseg_set_property;
  gobject_class->get_property = gst_clipseg_get_property;
  gobject_class->finalize = gst_clipseg_finalize;
  gst_clipseg_install_model_properties (gobject_class);
  gst_clipseg_install_refinement_properties (gobject_class);
  gst_clipseg_install_processing_properties (gobject_class);
  gst_clipseg_install_overlay_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class,
      "CLIP dense segmentation", "Filter/Analyzer/Video",
      "Labels every pixel with one of a list of free-text classes using a "
      "CLIP model, attaching the label map as metadata and optionally "
      "drawing it", "clipseg developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_clipseg_change_state);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_clipseg_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clipseg_stop);
  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_clipseg_transform_caps);
  trans_class->fixate_caps = GST_DEBUG_FUNCPTR (gst_clipseg_fixate_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clipseg_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_clipseg_src_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_clipseg_query);
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_clipseg_set_info);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_clipseg_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_MODE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_PROCESSING, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_PRECISION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIPSEG_OVERLAY_MODE, 0);
}

static void
gst_clipseg_init (GstClipseg * self)
{
  self->model_path = gst_clipseg_default_model ();
  g_cond_init (&self->loaded_cond);
  self->background = g_strdup (DEFAULT_BACKGROUND);
  self->templates = g_strdup (DEFAULT_TEMPLATES);
  self->mode = DEFAULT_MODE;
  self->resolution = DEFAULT_RESOLUTION;
  self->window = DEFAULT_WINDOW;
  self->stride = DEFAULT_STRIDE;
  self->logit_scale = DEFAULT_LOGIT_SCALE;
  self->threshold = DEFAULT_THRESHOLD;
  self->area_threshold = DEFAULT_AREA_THRESHOLD;
  self->key_smoothing = DEFAULT_KEY_SMOOTHING;
  self->prompt_denoising = DEFAULT_PROMPT_DENOISING;
  self->pamr_steps = DEFAULT_PAMR_STEPS;
  self->interval = DEFAULT_INFERENCE_INTERVAL;
  self->processing = DEFAULT_PROCESSING;
  self->smoothing = DEFAULT_SMOOTHING;
  self->n_threads = DEFAULT_N_THREADS;
  self->precision = DEFAULT_PRECISION;
  self->overlay = DEFAULT_OVERLAY;
  self->overlay_alpha = DEFAULT_OVERLAY_ALPHA;
  self->post_messages = DEFAULT_POST_MESSAGES;
  self->attach_probabilities = DEFAULT_ATTACH_PROBABILITIES;
  self->qos = DEFAULT_QOS;
  self->earliest = GST_CLOCK_TIME_NONE;
  self->live = -1;

  /* QoS skips inference instead of dropping frames: see src_event */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}
