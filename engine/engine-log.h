/* engine-log.h — internal: sends one diagnostic through clipseg_log_set's callback. */
#ifndef ENGINE_LOG_H
#define ENGINE_LOG_H

#include "clipseg-engine.h"

void engine_log (enum clipseg_log_level level, const char *format, ...) G_GNUC_PRINTF (2, 3);

#endif
