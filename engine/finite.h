/* finite.h — internal: finding NaN and infinity in float arrays.
 *
 * Non-finite weights or activations would turn every cosine into NaN and
 * every pixel into class 0 without a word: the loader checks every tensor,
 * segmentation checks the queries and the cosines, and each says where. */
#ifndef FINITE_H
#define FINITE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* The index of the first NaN or infinity in @v[0..n), or @n when there is
 * none. Reads at memory speed (a test of the exponent bits per block). */
size_t floats_find_nonfinite (const float *v, size_t n);

/* The same for 16-bit floats (F16 or BF16) whose exponent bits are
 * @exponent_mask (0x7c00 or 0x7f80), as mapped (any alignment). */
size_t halves_find_nonfinite (const void *v, size_t n, uint16_t exponent_mask);

/* FALSE with a CLIPSEG_ENGINE_ERROR_NOT_FINITE error naming @what and the
 * first bad element when @v[0..n) holds NaN or infinity. */
gboolean engine_check_finite (const float *v, size_t n, const char *what, GError **error);

#endif
