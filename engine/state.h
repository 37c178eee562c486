/* state.h — internal: one thread's state, aggregating the scratch each
 * module owns and grows (vision.h, segment.h), each with its own promise of
 * no allocation per frame.
 */
#ifndef STATE_H
#define STATE_H

#include "clipseg-engine.h"
#include "segment.h"
#include "vision.h"

struct clipseg_state {
  struct clipseg_model *model;
  int n_threads;
  clipseg_abort_func abort;    /* NULL: never stop */
  void *abort_data;
  struct vision_cache vision;
  struct segment_scratch segment;
};

/* TRUE, with a CANCELLED error, once @st's abort callback asks to stop. */
gboolean engine_aborted (const struct clipseg_state *st, GError **error);

#endif
