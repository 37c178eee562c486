/* GStreamer clipseg
 * clipseg-turn.c: one inference at a time in the process, in arrival order.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#include "clipseg-turn.h"

static GMutex lock;
static GCond cond;
static GQueue line = G_QUEUE_INIT;      /* of waiters' cancel flags */
static gboolean taken;

gboolean
gst_clipseg_turn_acquire (const gint * cancel)
{
  GList place = { (gpointer) cancel, NULL, NULL };
  gboolean ret;

  g_mutex_lock (&lock);
  g_queue_push_tail_link (&line, &place);
  while ((taken || line.head != &place) && !g_atomic_int_get (cancel))
    g_cond_wait (&cond, &lock);
  g_queue_unlink (&line, &place);
  ret = !g_atomic_int_get (cancel);
  if (ret)
    taken = TRUE;
  else
    g_cond_broadcast (&cond);   /* the next in line may be first now */
  g_mutex_unlock (&lock);

  return ret;
}

void
gst_clipseg_turn_release (void)
{
  g_mutex_lock (&lock);
  taken = FALSE;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

void
gst_clipseg_turn_interrupt (void)
{
  g_mutex_lock (&lock);
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}
