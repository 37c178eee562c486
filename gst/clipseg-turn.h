/* GStreamer clipseg
 * clipseg-turn.h: one inference at a time in the process, in arrival order.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
#ifndef __GST_CLIPSEG_TURN_H__
#define __GST_CLIPSEG_TURN_H__

#include <glib.h>

G_BEGIN_DECLS

/* Every clipseg worker takes a turn before it runs the engine (an inference
 * or a text encoding) and gives it back after. Each engine run already uses
 * every core it was given, so N elements running at once would only
 * oversubscribe the cores with N thread teams; taking turns first come, first
 * served gives each of N busy workers every Nth run.
 *
 * Waits until the caller is first in line and the turn is free, or until
 * *@cancel is set (with g_atomic_int_set, then gst_clipseg_turn_interrupt):
 * returns FALSE then, without the turn. */
gboolean gst_clipseg_turn_acquire (const gint * cancel);
void gst_clipseg_turn_release (void);

/* Wakes every waiter to check its cancel flag. */
void gst_clipseg_turn_interrupt (void);

G_END_DECLS

#endif /* __GST_CLIPSEG_TURN_H__ */
