/* buffer.c — scratch that grows to the largest size asked for. */
#include "buffer.h"
#include "engine-log.h"

/* Grows *@data to @n elements of @size bytes unless it holds them already. */
static void *
reserve (void **data, size_t *capacity, size_t n, size_t size, const char *what, GError **error)
{
  if (n > *capacity) {
    g_free (*data);
    *data = n <= G_MAXSIZE / size ? g_try_malloc (n * size) : NULL;
    *capacity = *data ? n : 0;
    if (!*data)
      engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
          "out of memory: the %s would take %.0f MB", what, n * (double) size / 1e6);
  }
  return *data;
}

float *
buffer_try_reserve (struct buffer *b, size_t n, const char *what, GError **error)
{
  return reserve ((void **) &b->data, &b->capacity, n, sizeof *b->data, what, error);
}

int32_t *
label_buffer_try_reserve (struct label_buffer *b, size_t n, const char *what, GError **error)
{
  return reserve ((void **) &b->data, &b->capacity, n, sizeof *b->data, what, error);
}

float *
buffer_reserve (struct buffer *b, size_t n)
{
  float *data = buffer_try_reserve (b, n, "scratch", NULL);

  if (!data && n)
    g_error ("out of memory: %zu bytes of scratch", n * sizeof (float));
  return data;
}

void
buffer_clear (struct buffer *b)
{
  g_clear_pointer (&b->data, g_free);
  b->capacity = 0;
}

void
label_buffer_clear (struct label_buffer *b)
{
  g_clear_pointer (&b->data, g_free);
  b->capacity = 0;
}
