/* buffer.h — internal: scratch that grows to the largest size asked for.
 *
 * A buffer is reallocated only when a request exceeds its capacity and is
 * otherwise handed back as it is, so a caller asking for the same sizes frame
 * after frame allocates nothing after the first. Contents are not kept when
 * it grows.
 */
#ifndef BUFFER_H
#define BUFFER_H

#include <glib.h>
#include <stdint.h>

struct buffer {
  float *data;
  size_t capacity;             /* in floats */
};

/* Label maps, typed as what they hold. */
struct label_buffer {
  int32_t *data;
  size_t capacity;             /* in labels */
};

/* @b's data with room for at least @n floats; aborts when memory runs out
 * (for sizes fixed by the model). */
float *buffer_reserve (struct buffer *b, size_t n);
/* The same for sizes that come from the input (frame size, label count): NULL,
 * with an INVALID error naming @what and the size, when the memory cannot be had. */
float *buffer_try_reserve (struct buffer *b, size_t n, const char *what, GError **error);
int32_t *label_buffer_try_reserve (struct label_buffer *b, size_t n, const char *what,
    GError **error);

/* Frees the data; the buffer is then empty and can grow again. */
void buffer_clear (struct buffer *b);
void label_buffer_clear (struct label_buffer *b);

#endif
