/* log.c — the engine's error domain, its errors and its diagnostics callback. */
#include <stdarg.h>

#include "clipseg-engine.h"
#include "engine-log.h"

/* *INDENT-OFF* (indent cannot read the quark name) */
G_DEFINE_QUARK (clipseg-engine-error-quark, clipseg_engine_error)
/* *INDENT-ON* */

static clipseg_log_func log_func;
static void *log_user_data;
static GMutex log_lock;

void
clipseg_log_set (clipseg_log_func func, void *user_data)
{
  g_mutex_lock (&log_lock);
  log_func = func;
  log_user_data = user_data;
  g_mutex_unlock (&log_lock);
}

void
engine_log (enum clipseg_log_level level, const char *format, ...)
{
  va_list args;
  char *message;
  clipseg_log_func func;
  void *user_data;

  g_mutex_lock (&log_lock);
  func = log_func;
  user_data = log_user_data;
  g_mutex_unlock (&log_lock);

  if (!func && level > CLIPSEG_LOG_LEVEL_WARNING)
    return;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  if (func)
    func (level, message, user_data);
  else if (level == CLIPSEG_LOG_LEVEL_ERROR)
    g_log (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "%s", message);
  else
    g_log (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "%s", message);
  g_free (message);
}

gboolean
engine_fail (GError **error, enum clipseg_engine_error code, const char *where,
    const char *format, ...)
{
  va_list args;
  char *what;

  if (!error || *error)
    return FALSE;
  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  if (where)
    g_set_error (error, CLIPSEG_ENGINE_ERROR, code, "%s: %s", where, what);
  else
    g_set_error_literal (error, CLIPSEG_ENGINE_ERROR, code, what);
  g_free (what);
  return FALSE;
}
