/* GStreamer clipseg
 * clipseg-infer.c: the inference worker of the clipseg element.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * One worker thread per element owns the engine state, the text queries and
 * the smoothing history, so none of them needs a lock. The streaming thread
 * hands it frames: it reserves input planes, fills them, submits, and either
 * waits (sync) or goes on (latest). A submitted frame waits for the worker's
 * turn (clipseg-turn.h) and for the running inference, if any; until it
 * starts, the next frame takes its place, so what the worker infers is the
 * newest frame at the moment it can run. Results are immutable and reference
 * counted, so every buffer carries the newest one without copying.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "clipseg-infer.h"
#include "clipseg-shared-queries.h"
#include "clipseg-turn.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN (gst_clipseg_debug);
#define GST_CAT_DEFAULT gst_clipseg_debug

/* Who holds the next frame's planes. */
typedef enum
{
  SLOT_IDLE,                    /* nobody: free to reserve */
  SLOT_FILLING,                 /* the streaming thread, until it submits */
  SLOT_QUEUED,                  /* a job waits to start; a newer frame may replace it */
} GstClipsegSlot;

/* Input planes of one frame. There are two: the worker infers from one while
 * the streaming thread fills the other, so the next inference starts the
 * moment one ends, on the newest frame that came meanwhile. */
typedef struct
{
  gfloat *planes;               /* [3, height, width] */
  gint width, height;
} GstClipsegFrame;

struct _GstClipsegInfer
{
  GMutex lock;
  GCond cond;
  GThread *thread;
  gint cancel;                  /* atomic: stop waiting for a turn, stop working */
  gint stale;                   /* atomic: the running inference's epoch is over */

  /* under lock */
  gboolean quit;
  GstClipsegFrame frames[2];
  gint next;                    /* frames[next] is the one to fill and queue */
  GstClipsegSlot slot;          /* of frames[next] */
  gboolean running;             /* the worker infers from frames[1 - next] */
  gboolean flushing;
  guint epoch;                  /* results of jobs from older epochs are dropped */
  GstClipsegJob job;
  guint job_epoch;
  struct clipseg_labels *pending_labels;
  gchar **pending_templates;
  gboolean pending_background;
  GstClipsegResult *newest;
  GError *error;
  GstClockTime average_time;

  /* worker thread only */
  struct clipseg_state *state;
  struct clipseg_model *model;
  gint n_threads;
  GstClipsegSharedQueries *shared;
  struct clipseg_queries *queries;      /* shared's, read and stepped in turns */
  gint pending;                 /* its prompts left to encode, as of our last turn */
  gboolean has_background;
  guint n_labels;
  gchar **names;
  gsize n_alloc;                /* floats in probs and smoothed */
  gint width, height;           /* of the frame being inferred */
  const gfloat *planes;
  gint alloc_width, alloc_height;
  gfloat *probs;
  gfloat *smoothed;
  gfloat *scratch;
  gint32 *labels;
  gboolean history;             /* smoothed holds the past of this epoch */
  guint history_epoch;
  guint64 n_results;
  gdouble prompt_time;          /* seconds to encode one prompt, 0 = unknown */
  gboolean step_next;           /* encode before the next inference */
};

/* ---- shared models ------------------------------------------------------ */

typedef struct
{
  struct clipseg_model *model;
  guint users;
} SharedModel;

static GMutex shared_models_lock;
static GHashTable *shared_models;       /* path -> SharedModel */

static void
shared_model_free (gpointer data)
{
  SharedModel *shared = data;

  clipseg_model_unref (shared->model);
  g_free (shared);
}

struct clipseg_model *
gst_clipseg_shared_model_acquire (const gchar * path,
    enum clipseg_precision precision, GError ** error)
{
  gchar *key = g_strdup_printf ("%s\n%s", path,
      clipseg_precision_name (precision));
  SharedModel *shared;

  g_mutex_lock (&shared_models_lock);
  if (!shared_models)
    shared_models = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
        shared_model_free);

  shared = g_hash_table_lookup (shared_models, key);
  if (!shared) {
    struct clipseg_model_params params = clipseg_model_default_params ();
    struct clipseg_model *model;

    params.precision = precision;
    model = clipseg_model_load (path, params, error);
    if (!model) {
      g_mutex_unlock (&shared_models_lock);
      g_free (key);
      return NULL;
    }
    shared = g_new0 (SharedModel, 1);
    shared->model = model;
    g_hash_table_insert (shared_models, g_steal_pointer (&key), shared);
  }
  shared->users++;
  g_mutex_unlock (&shared_models_lock);
  g_free (key);

  return shared->model;
}

static gboolean
shared_model_is (gpointer key, gpointer value, gpointer user_data)
{
  SharedModel *shared = value;

  return shared->model == user_data && --shared->users == 0;
}

void
gst_clipseg_shared_model_release (struct clipseg_model *model)
{
  g_mutex_lock (&shared_models_lock);
  g_hash_table_foreach_remove (shared_models, shared_model_is, model);
  g_mutex_unlock (&shared_models_lock);
}

/* ---- results ------------------------------------------------------------ */

static void
gst_clipseg_result_clear (GstClipsegResult * result)
{
  g_strfreev (result->labels);
  g_free (result->coverage);
  g_free (result->score);
  g_free (result->boxes);
  gst_clear_buffer (&result->label_map);
  gst_clear_buffer (&result->probabilities);
}

GstClipsegResult *
gst_clipseg_result_ref (GstClipsegResult * result)
{
  return g_atomic_rc_box_acquire (result);
}

void
gst_clipseg_result_unref (GstClipsegResult * result)
{
  g_atomic_rc_box_release_full (result,
      (GDestroyNotify) gst_clipseg_result_clear);
}

/* Coverage, mean probability and bounding box of every label. */
static void
gst_clipseg_result_measure (GstClipsegResult * result, const gfloat * probs)
{
  gsize n_pixels = (gsize) result->width * result->height;
  gint *x0 = g_new (gint, result->n_labels);
  gint *y0 = g_new (gint, result->n_labels);
  gint *x1 = g_new0 (gint, result->n_labels);
  gint *y1 = g_new0 (gint, result->n_labels);
  guint64 *count = g_new0 (guint64, result->n_labels);
  guint k;
  gint x, y;

  for (k = 0; k < result->n_labels; k++) {
    x0[k] = result->width;
    y0[k] = result->height;
  }
  for (y = 0; y < result->height; y++) {
    for (x = 0; x < result->width; x++) {
      gsize i = (gsize) y * result->width + x;

      k = result->map[i];
      count[k]++;
      result->score[k] += probs[k * n_pixels + i];
      x0[k] = MIN (x0[k], x);
      y0[k] = MIN (y0[k], y);
      x1[k] = MAX (x1[k], x + 1);
      y1[k] = MAX (y1[k], y + 1);
    }
  }
  for (k = 0; k < result->n_labels; k++) {
    if (count[k] == 0)
      continue;
    result->coverage[k] = (gdouble) count[k] / n_pixels;
    result->score[k] /= count[k];
    result->boxes[k].x = x0[k];
    result->boxes[k].y = y0[k];
    result->boxes[k].w = x1[k] - x0[k];
    result->boxes[k].h = y1[k] - y0[k];
  }

  g_free (x0);
  g_free (y0);
  g_free (x1);
  g_free (y1);
  g_free (count);
}

static GstClipsegResult *
gst_clipseg_result_new (GstClipsegInfer * infer, const GstClipsegJob * job,
    GstClockTime inference_time)
{
  GstClipsegResult *result = g_atomic_rc_box_new0 (GstClipsegResult);
  gsize n_pixels = (gsize) infer->width * infer->height;
  gsize offset[GST_VIDEO_MAX_PLANES] = { 0, };
  gint stride[GST_VIDEO_MAX_PLANES] = { infer->width, };
  guint8 *map = g_malloc (n_pixels);
  gsize i;

  result->id = ++infer->n_results;
  result->serial = job->serial;
  result->pts = job->pts;
  result->inference_time = inference_time;
  result->n_labels = infer->n_labels;
  result->labels = g_strdupv (infer->names);
  result->coverage = g_new0 (gdouble, infer->n_labels);
  result->score = g_new0 (gdouble, infer->n_labels);
  result->boxes = g_new0 (GstVideoRectangle, infer->n_labels);
  result->width = infer->width;
  result->height = infer->height;

  for (i = 0; i < n_pixels; i++)
    map[i] = infer->labels[i];
  result->map = map;
  result->label_map = gst_buffer_new_wrapped (map, n_pixels);
  gst_buffer_add_video_meta_full (result->label_map, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_GRAY8, infer->width, infer->height, 1, offset, stride);

  if (job->want_probabilities) {
    gsize size = infer->n_labels * n_pixels * sizeof (gfloat);

    result->probabilities =
        gst_buffer_new_wrapped (g_memdup2 (infer->smoothed, size), size);
  }

  gst_clipseg_result_measure (result, infer->smoothed);

  return result;
}

/* ---- worker ------------------------------------------------------------- */

static gboolean
gst_clipseg_infer_update_queries (GstClipsegInfer * infer,
    struct clipseg_labels *labels, gboolean has_background,
    gchar ** templates, GError ** error)
{
  GstClipsegSharedQueries *shared;
  gint n_classes = clipseg_labels_n_classes (labels);
  gint offset = has_background ? 0 : 1;
  gint c;

  shared = gst_clipseg_shared_queries_acquire (infer->model, labels, templates,
      error);
  if (!shared)
    return FALSE;

  g_clear_pointer (&infer->shared, gst_clipseg_shared_queries_release);
  g_strfreev (infer->names);
  infer->shared = shared;
  infer->queries = gst_clipseg_shared_queries_get (shared);
  infer->has_background = has_background;
  infer->n_labels = n_classes + offset;
  infer->names = g_new0 (gchar *, infer->n_labels + 1);
  infer->names[0] = g_strdup ("background");
  for (c = 1 - offset; c < n_classes; c++)
    infer->names[c + offset] = g_strdup (clipseg_labels_name (labels, c, 0));
  infer->history = FALSE;

  GST_INFO ("new label set: %d classes, %d names", n_classes,
      clipseg_queries_n_queries (infer->queries));
  return TRUE;
}

static void
gst_clipseg_infer_ensure_buffers (GstClipsegInfer * infer, gsize n_pixels)
{
  gsize n = infer->n_labels * n_pixels;

  if (n == infer->n_alloc && infer->alloc_width == infer->width
      && infer->alloc_height == infer->height)
    return;

  infer->probs = g_renew (gfloat, infer->probs, n);
  infer->smoothed = g_renew (gfloat, infer->smoothed, n);
  infer->scratch = g_renew (gfloat, infer->scratch, n);
  infer->labels = g_renew (gint32, infer->labels, n_pixels);
  infer->n_alloc = n;
  infer->alloc_width = infer->width;
  infer->alloc_height = infer->height;
  infer->history = FALSE;
}

/* Exponential moving average of the class probabilities: the past keeps the
 * weight @smoothing, the new frame the rest. */
static void
gst_clipseg_infer_smooth (GstClipsegInfer * infer, gdouble smoothing,
    guint epoch)
{
  gsize i;

  if (!infer->history || infer->history_epoch != epoch || smoothing <= 0.0) {
    memcpy (infer->smoothed, infer->probs, infer->n_alloc * sizeof (gfloat));
  } else {
    gfloat past = smoothing;
    gfloat now = 1.0 - smoothing;

    for (i = 0; i < infer->n_alloc; i++)
      infer->smoothed[i] = past * infer->smoothed[i] + now * infer->probs[i];
  }
  infer->history = TRUE;
  infer->history_epoch = epoch;
}

/* Polled by the engine between layers: a flush, caps change or state change
 * ends an inference whose result nobody will see within a layer's time. */
static gboolean
gst_clipseg_infer_should_abort (void *data)
{
  GstClipsegInfer *infer = data;

  return g_atomic_int_get (&infer->cancel) || g_atomic_int_get (&infer->stale);
}

/* Polled by label encoding: a first step of thousands of names takes
 * seconds, and a state change must not wait for it. */
static gboolean
gst_clipseg_infer_should_quit (void *data)
{
  GstClipsegInfer *infer = data;

  return g_atomic_int_get (&infer->cancel);
}

static GstClipsegResult *
gst_clipseg_infer_run (GstClipsegInfer * infer, const GstClipsegJob * job,
    guint epoch, GError ** error)
{
  struct clipseg_segment_params params = job->params;
  gsize n_pixels = (gsize) infer->width * infer->height;
  gsize offset = infer->has_background ? 0 : n_pixels;
  gint64 start;
  GstClockTime elapsed;

  if (!infer->queries) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "no labels to segment");
    return NULL;
  }
  gst_clipseg_infer_ensure_buffers (infer, n_pixels);

  /* Thresholds come after smoothing, so the engine returns raw probabilities. */
  params.prob_thd = 0.0;
  params.area_thd = 0.0;
  GST_DEBUG ("inferring frame %" G_GUINT64_FORMAT, job->serial);
  start = g_get_monotonic_time ();
  if (!clipseg_state_segment (infer->state, infer->planes, infer->height,
          infer->width, infer->queries, &params, infer->height, infer->width,
          infer->probs + offset, NULL, error)) {
    if (g_error_matches (*error, CLIPSEG_ENGINE_ERROR,
            CLIPSEG_ENGINE_ERROR_CANCELLED)) {
      GST_DEBUG ("inference of frame %" G_GUINT64_FORMAT " cancelled after %"
          G_GINT64_FORMAT " us", job->serial, g_get_monotonic_time () - start);
      g_clear_error (error);
    }
    return NULL;
  }
  elapsed = (g_get_monotonic_time () - start) * GST_USECOND;

  /* Without background words label 0 is a class nobody wins: only the
   * probability threshold sends pixels there. */
  if (offset)
    memset (infer->probs, 0, offset * sizeof (gfloat));

  gst_clipseg_infer_smooth (infer, job->smoothing, epoch);
  memcpy (infer->scratch, infer->smoothed, infer->n_alloc * sizeof (gfloat));
  clipseg_probs_to_labels (infer->scratch, infer->n_labels, n_pixels,
      job->params.prob_thd, job->params.area_thd, infer->labels);

  GST_LOG ("inferred frame %" G_GUINT64_FORMAT " (%dx%d) in %" GST_TIME_FORMAT,
      job->serial, infer->width, infer->height, GST_TIME_ARGS (elapsed));
  return gst_clipseg_result_new (infer, job, elapsed);
}

static void
gst_clipseg_infer_publish (GstClipsegInfer * infer, GstClipsegResult * result,
    guint epoch, GError * error)
{
  if (error) {
    GST_WARNING ("inference failed: %s", error->message);
    if (!infer->error)
      infer->error = error;
    else
      g_error_free (error);
  }
  if (!result)
    return;

  if (infer->average_time == GST_CLOCK_TIME_NONE)
    infer->average_time = result->inference_time;
  else
    infer->average_time =
        (3 * infer->average_time + result->inference_time) / 4;

  if (epoch == infer->epoch) {
    g_clear_pointer (&infer->newest, gst_clipseg_result_unref);
    infer->newest = result;
  } else {
    gst_clipseg_result_unref (result);
  }
}

/* Prompts encoded between two looks at the cancel flag: a fraction of a
 * second even for ViT-L/14's text tower, so a state change never waits for
 * a whole label set. */
#define ENCODE_CHUNK 32

/* Encodes the next prompts of the label set: all of them for a frame that
 * waits, else every name's first template at first, then an eighth of an
 * inference's time of them, so that inferences go on at 8/9 of their rate
 * while the masks sharpen. Called in a turn and returns with the lock held,
 * released while encoding. */
static void
gst_clipseg_infer_encode_step (GstClipsegInfer * infer)
{
  gint budget = 1, before = clipseg_queries_n_pending (infer->queries), left;
  gint64 start;

  if (infer->slot == SLOT_QUEUED && infer->job.waits)
    budget = G_MAXINT;
  else if (infer->prompt_time > 0
      && GST_CLOCK_TIME_IS_VALID (infer->average_time))
    budget = MAX (1, infer->average_time / (8 * infer->prompt_time *
            GST_SECOND));
  g_mutex_unlock (&infer->lock);
  start = g_get_monotonic_time ();
  left = before;
  do {
    gint chunk = MIN (budget - (before - left), ENCODE_CHUNK);

    left = clipseg_queries_encode_step_abortable (infer->queries,
        MAX (chunk, 1), infer->n_threads, gst_clipseg_infer_should_quit, infer);
  } while (left > 0 && before - left < budget
      && !g_atomic_int_get (&infer->cancel));
  if (left < before)
    infer->prompt_time = (g_get_monotonic_time () - start) / 1e6 /
        (before - left);
  g_mutex_lock (&infer->lock);
  GST_DEBUG ("encoded %d prompts, %d to go", before - left, left);
}

/* Takes the pending label set and encodes its first template, unless
 * another element has; called and returns with the lock held, released
 * while encoding. */
static void
gst_clipseg_infer_encode (GstClipsegInfer * infer)
{
  struct clipseg_labels *labels = g_steal_pointer (&infer->pending_labels);
  gchar **templates = g_steal_pointer (&infer->pending_templates);
  GError *error = NULL;

  if (!gst_clipseg_infer_update_queries (infer, labels,
          infer->pending_background, templates, &error))
    gst_clipseg_infer_publish (infer, NULL, 0, error);
  else if (clipseg_queries_n_pending (infer->queries) > 0)
    gst_clipseg_infer_encode_step (infer);
  clipseg_labels_free (labels);
  g_strfreev (templates);
}

static gboolean
gst_clipseg_infer_encoding (GstClipsegInfer * infer)
{
  return infer->queries && infer->pending > 0;
}

/* In latest mode inferences and encoding steps alternate, so masks come
 * with the templates encoded so far while the rest follow; a frame that
 * waits for its result gets the whole label set. */
static gboolean
gst_clipseg_infer_step_now (GstClipsegInfer * infer)
{
  if (!gst_clipseg_infer_encoding (infer))
    return FALSE;
  return infer->slot != SLOT_QUEUED || infer->job.waits || infer->step_next;
}

/* Runs the queued job, if it is still there; called and returns with the
 * lock held, released while inferring. */
static void
gst_clipseg_infer_run_queued (GstClipsegInfer * infer)
{
  GstClipsegResult *result;
  GstClipsegFrame *frame;
  GError *error = NULL;
  GstClipsegJob job;
  guint epoch;

  /* the streaming thread is replacing the frame: a conversion's wait */
  while (infer->slot == SLOT_FILLING)
    g_cond_wait (&infer->cond, &infer->lock);
  if (infer->slot != SLOT_QUEUED)
    return;

  frame = &infer->frames[infer->next];
  infer->planes = frame->planes;
  infer->width = frame->width;
  infer->height = frame->height;
  infer->next = 1 - infer->next;
  infer->slot = SLOT_IDLE;
  infer->running = TRUE;
  g_atomic_int_set (&infer->stale, FALSE);
  job = infer->job;
  epoch = infer->job_epoch;
  g_mutex_unlock (&infer->lock);
  result = gst_clipseg_infer_run (infer, &job, epoch, &error);
  g_mutex_lock (&infer->lock);
  gst_clipseg_infer_publish (infer, result, epoch, error);
  infer->running = FALSE;
}

static gpointer
gst_clipseg_infer_loop (gpointer data)
{
  GstClipsegInfer *infer = data;

  g_mutex_lock (&infer->lock);
  while (TRUE) {
    gboolean turn;

    while (!infer->quit && !infer->pending_labels
        && infer->slot != SLOT_QUEUED && !gst_clipseg_infer_encoding (infer))
      g_cond_wait (&infer->cond, &infer->lock);
    if (infer->quit)
      break;

    g_mutex_unlock (&infer->lock);
    turn = gst_clipseg_turn_acquire (&infer->cancel);
    g_mutex_lock (&infer->lock);
    if (!turn)
      continue;

    /* labels first: a queued frame needs the queries of its label set */
    if (infer->pending_labels) {
      gst_clipseg_infer_encode (infer);
    } else if (gst_clipseg_infer_step_now (infer)) {
      gst_clipseg_infer_encode_step (infer);
      infer->step_next = FALSE;
    } else {
      gst_clipseg_infer_run_queued (infer);
      infer->step_next = TRUE;
    }
    /* other workers' steps advance shared queries too */
    if (infer->queries)
      infer->pending = clipseg_queries_n_pending (infer->queries);
    gst_clipseg_turn_release ();
    g_cond_broadcast (&infer->cond);
  }
  g_mutex_unlock (&infer->lock);

  return NULL;
}

/* ---- API ---------------------------------------------------------------- */

GstClipsegInfer *
gst_clipseg_infer_new (struct clipseg_model *model, gint n_threads)
{
  GstClipsegInfer *infer = g_new0 (GstClipsegInfer, 1);

  g_mutex_init (&infer->lock);
  g_cond_init (&infer->cond);
  infer->model = model;
  infer->n_threads = n_threads;
  infer->state = clipseg_state_new (model, n_threads);
  clipseg_state_set_abort (infer->state, gst_clipseg_infer_should_abort, infer);
  infer->average_time = GST_CLOCK_TIME_NONE;
  infer->thread = g_thread_new ("clipseg-infer", gst_clipseg_infer_loop, infer);

  return infer;
}

void
gst_clipseg_infer_free (GstClipsegInfer * infer)
{
  g_mutex_lock (&infer->lock);
  infer->quit = TRUE;
  g_atomic_int_set (&infer->cancel, TRUE);
  g_cond_broadcast (&infer->cond);
  g_mutex_unlock (&infer->lock);
  gst_clipseg_turn_interrupt ();
  g_thread_join (infer->thread);

  g_clear_pointer (&infer->newest, gst_clipseg_result_unref);
  g_clear_error (&infer->error);
  g_clear_pointer (&infer->pending_labels, clipseg_labels_free);
  g_strfreev (infer->pending_templates);
  g_clear_pointer (&infer->shared, gst_clipseg_shared_queries_release);
  g_strfreev (infer->names);
  clipseg_state_free (infer->state);
  g_free (infer->frames[0].planes);
  g_free (infer->frames[1].planes);
  g_free (infer->probs);
  g_free (infer->smoothed);
  g_free (infer->scratch);
  g_free (infer->labels);
  g_mutex_clear (&infer->lock);
  g_cond_clear (&infer->cond);
  g_free (infer);
}

void
gst_clipseg_infer_set_labels (GstClipsegInfer * infer,
    struct clipseg_labels *labels, gboolean has_background, gchar ** templates)
{
  g_mutex_lock (&infer->lock);
  g_clear_pointer (&infer->pending_labels, clipseg_labels_free);
  g_strfreev (infer->pending_templates);
  infer->pending_labels = labels;
  infer->pending_templates = templates;
  infer->pending_background = has_background;
  g_cond_broadcast (&infer->cond);
  g_mutex_unlock (&infer->lock);
}

gfloat *
gst_clipseg_infer_reserve (GstClipsegInfer * infer, gint width, gint height)
{
  GstClipsegFrame *frame;

  g_mutex_lock (&infer->lock);
  g_assert (infer->slot != SLOT_FILLING);
  frame = &infer->frames[infer->next];
  if (width != frame->width || height != frame->height) {
    frame->planes = g_renew (gfloat, frame->planes, 3 * width * height);
    frame->width = width;
    frame->height = height;
  }
  infer->slot = SLOT_FILLING;
  g_mutex_unlock (&infer->lock);

  return frame->planes;
}

void
gst_clipseg_infer_submit (GstClipsegInfer * infer, const GstClipsegJob * job)
{
  g_mutex_lock (&infer->lock);
  g_assert (infer->slot == SLOT_FILLING);
  infer->job = *job;
  infer->job_epoch = infer->epoch;
  infer->slot = SLOT_QUEUED;
  g_cond_broadcast (&infer->cond);
  g_mutex_unlock (&infer->lock);
}

gboolean
gst_clipseg_infer_wait (GstClipsegInfer * infer)
{
  gboolean ret;

  g_mutex_lock (&infer->lock);
  while ((infer->slot != SLOT_IDLE || infer->running) && !infer->flushing)
    g_cond_wait (&infer->cond, &infer->lock);
  ret = !infer->flushing;
  g_mutex_unlock (&infer->lock);

  return ret;
}

GstClipsegResult *
gst_clipseg_infer_get_result (GstClipsegInfer * infer)
{
  GstClipsegResult *result = NULL;

  g_mutex_lock (&infer->lock);
  if (infer->newest)
    result = gst_clipseg_result_ref (infer->newest);
  g_mutex_unlock (&infer->lock);

  return result;
}

gboolean
gst_clipseg_infer_has_result (GstClipsegInfer * infer)
{
  gboolean ret;

  g_mutex_lock (&infer->lock);
  ret = infer->newest != NULL;
  g_mutex_unlock (&infer->lock);

  return ret;
}

/* A new epoch: the newest result and a frame still queued belong to the
 * old one. Called with the lock held. */
static void
gst_clipseg_infer_forget (GstClipsegInfer * infer)
{
  infer->epoch++;
  g_atomic_int_set (&infer->stale, TRUE);
  g_clear_pointer (&infer->newest, gst_clipseg_result_unref);
  if (infer->slot == SLOT_QUEUED)
    infer->slot = SLOT_IDLE;
  g_cond_broadcast (&infer->cond);
}

void
gst_clipseg_infer_reset (GstClipsegInfer * infer)
{
  g_mutex_lock (&infer->lock);
  gst_clipseg_infer_forget (infer);
  g_mutex_unlock (&infer->lock);
}

void
gst_clipseg_infer_set_flushing (GstClipsegInfer * infer, gboolean flushing)
{
  g_mutex_lock (&infer->lock);
  infer->flushing = flushing;
  if (flushing)
    gst_clipseg_infer_forget (infer);
  g_cond_broadcast (&infer->cond);
  g_mutex_unlock (&infer->lock);
}

GError *
gst_clipseg_infer_take_error (GstClipsegInfer * infer)
{
  GError *error;

  g_mutex_lock (&infer->lock);
  error = g_steal_pointer (&infer->error);
  g_mutex_unlock (&infer->lock);

  return error;
}

GstClockTime
gst_clipseg_infer_get_average_time (GstClipsegInfer * infer)
{
  GstClockTime time;

  g_mutex_lock (&infer->lock);
  time = infer->average_time;
  g_mutex_unlock (&infer->lock);

  return time;
}
