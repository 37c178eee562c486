/* engine-log.h — internal: diagnostics through clipseg_log_set's callback, and errors. */
#ifndef ENGINE_LOG_H
#define ENGINE_LOG_H

#include "clipseg-engine.h"

void engine_log (enum clipseg_log_level level, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Sets @error (when it is not NULL and not set yet) in CLIPSEG_ENGINE_ERROR with
 * @code and the message "@where: <text>", or just the text when @where is NULL.
 * Returns FALSE, so a check can end with `return engine_fail (...)`. */
gboolean engine_fail (GError **error, enum clipseg_engine_error code, const char *where,
    const char *format, ...) G_GNUC_PRINTF (4, 5);

#endif
