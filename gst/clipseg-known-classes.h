/* GStreamer clipseg
 * clipseg-known-classes.h: the closed vocabulary of a model that lists it.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_KNOWN_CLASSES_H__
#define __GST_CLIPSEG_KNOWN_CLASSES_H__

#include <glib.h>

#include "clipseg-engine.h"

G_BEGIN_DECLS

/* A model trained on a few classes only (the project's world model) lists
 * them in classes.txt beside its config.json, one per line. Returns them,
 * NULL-terminated, or NULL for a model without such a list (a real CLIP,
 * which knows any word). */
gchar **gst_clipseg_known_classes_load (const gchar * model_path);

/* The names in @labels, synonyms included, that are not among @known,
 * NULL-terminated, or NULL when every name is known. */
gchar **gst_clipseg_known_classes_unknown (const gchar * const *known,
    const struct clipseg_labels *labels);

G_END_DECLS

#endif /* __GST_CLIPSEG_KNOWN_CLASSES_H__ */
