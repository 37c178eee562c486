/* GStreamer clipseg
 * clipseg-shared-queries.h: text queries shared by the elements of a process.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_SHARED_QUERIES_H__
#define __GST_CLIPSEG_SHARED_QUERIES_H__

#include <glib.h>

#include "clipseg-engine.h"

G_BEGIN_DECLS

/* Elements with the same model, label set and templates (several cameras
 * looking for the same things) share one set of queries, so the text tower
 * encodes them once: each worker's encoding steps advance the same queries.
 * The queries are only read or stepped inside a turn (clipseg-turn.h), which
 * keeps any two workers from doing so at once. */
typedef struct _GstClipsegSharedQueries GstClipsegSharedQueries;

/* The queries of @labels with @templates, deferred (see
 * clipseg_queries_new_deferred) when they are new; NULL with @error set. */
GstClipsegSharedQueries *gst_clipseg_shared_queries_acquire
    (struct clipseg_model *model, const struct clipseg_labels *labels,
    gchar ** templates, GError ** error);
void gst_clipseg_shared_queries_release (GstClipsegSharedQueries * shared);

struct clipseg_queries *gst_clipseg_shared_queries_get
    (GstClipsegSharedQueries * shared);

G_END_DECLS

#endif /* __GST_CLIPSEG_SHARED_QUERIES_H__ */
