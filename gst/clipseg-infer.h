/* GStreamer clipseg
 * clipseg-infer.h: the inference worker of the clipseg element.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_INFER_H__
#define __GST_CLIPSEG_INFER_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "clipseg-engine.h"

G_BEGIN_DECLS

/* Label 0 is always "background"; the maps are bytes. */
#define GST_CLIPSEG_MAX_LABELS 256

/* One finished inference, immutable and shared by every buffer that carries
 * it (reference counted). */
typedef struct
{
  guint64 id;                   /* unique per worker, from 1 */
  guint64 serial;               /* the source frame's number in the stream */
  GstClockTime pts;             /* the source frame's timestamp */
  GstClockTime inference_time;

  guint n_labels;
  gchar **labels;               /* n_labels names, NULL-terminated */
  gdouble *coverage;            /* [n_labels] share of map pixels */
  gdouble *score;               /* [n_labels] mean probability where chosen */
  GstVideoRectangle *boxes;     /* [n_labels] in map pixels; w == 0: absent */

  gint width, height;           /* of the label map */
  GstBuffer *label_map;         /* GRAY8 with GstVideoMeta, stride = width */
  const guint8 *map;            /* label_map's bytes */
  GstBuffer *probabilities;     /* float [n_labels, height, width] or NULL */
} GstClipsegResult;

GstClipsegResult *gst_clipseg_result_ref (GstClipsegResult * result);
void gst_clipseg_result_unref (GstClipsegResult * result);

/* What one inference should do, besides the pixels. */
typedef struct
{
  guint64 serial;
  GstClockTime pts;
  struct clipseg_segment_params params;  /* thresholds applied after smoothing */
  gdouble smoothing;            /* EMA weight of the past, 0 = off */
  gboolean want_probabilities;
  gboolean waits;               /* a frame waits for it: use every template */
} GstClipsegJob;

typedef struct _GstClipsegInfer GstClipsegInfer;

/* One loaded model per path and precision, shared by every element
 * instance. */
struct clipseg_model *gst_clipseg_shared_model_acquire (const gchar * path,
    enum clipseg_precision precision, GError ** error);
void gst_clipseg_shared_model_release (struct clipseg_model *model);

GstClipsegInfer *gst_clipseg_infer_new (struct clipseg_model *model,
    gint n_threads);
void gst_clipseg_infer_free (GstClipsegInfer * infer);

/* Replaces the label set (takes ownership of both). The worker encodes the
 * text queries with the first template in its next turn, before any further
 * inference, and restarts smoothing; the newest result stays until one with
 * the new labels replaces it. The other templates follow in steps of an eighth
 * of an inference's time, between inferences, unless a job waits: that one
 * runs with all of them. */
void gst_clipseg_infer_set_labels (GstClipsegInfer * infer,
    struct clipseg_labels *labels, gboolean has_background, gchar ** templates);

/* Returns the [3, height, width] input planes of the next frame to fill.
 * They stay reserved until gst_clipseg_infer_submit; a frame submitted earlier
 * that has not started yet is replaced. The worker infers from other planes
 * meanwhile. */
gfloat *gst_clipseg_infer_reserve (GstClipsegInfer * infer, gint width,
    gint height);
void gst_clipseg_infer_submit (GstClipsegInfer * infer,
    const GstClipsegJob * job);

/* Blocks until the submitted frame is inferred; FALSE when flushing. */
gboolean gst_clipseg_infer_wait (GstClipsegInfer * infer);

/* (transfer full) (nullable): the newest finished result. */
GstClipsegResult *gst_clipseg_infer_get_result (GstClipsegInfer * infer);
gboolean gst_clipseg_infer_has_result (GstClipsegInfer * infer);

/* Forgets the newest result, drops the one in flight and restarts smoothing
 * (flush, caps change). While flushing, waits return at once. */
void gst_clipseg_infer_reset (GstClipsegInfer * infer);
void gst_clipseg_infer_set_flushing (GstClipsegInfer * infer,
    gboolean flushing);

/* The first error the worker hit, if any (transfer full). */
GError *gst_clipseg_infer_take_error (GstClipsegInfer * infer);

/* Moving average of the inference time, GST_CLOCK_TIME_NONE before the
 * first inference. */
GstClockTime gst_clipseg_infer_get_average_time (GstClipsegInfer * infer);

G_END_DECLS

#endif /* __GST_CLIPSEG_INFER_H__ */
