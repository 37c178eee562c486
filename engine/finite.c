/* finite.c — finding NaN and infinity in float arrays. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "clipseg-engine.h"
#include "engine-log.h"
#include "finite.h"

#define FINITE_BLOCK 4096

size_t
floats_find_nonfinite (const float *v, size_t n)
{
  for (size_t start = 0; start < n; start += FINITE_BLOCK) {
    size_t end = MIN (n, start + FINITE_BLOCK);
    uint32_t top = 0;

    /* all exponent bits set is NaN or infinity */
#pragma omp simd reduction(max:top)
    for (size_t i = start; i < end; i++) {
      uint32_t bits;

      memcpy (&bits, v + i, sizeof bits);
      top = MAX (top, bits & 0x7f800000u);
    }
    if (top != 0x7f800000u)
      continue;
    for (size_t i = start; i < end; i++)
      if (!isfinite (v[i]))
        return i;
  }
  return n;
}

size_t
halves_find_nonfinite (const void *v, size_t n, uint16_t exponent_mask)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t bits;

    memcpy (&bits, (const uint8_t *) v + 2 * i, sizeof bits);
    if ((bits & exponent_mask) == exponent_mask)
      return i;
  }
  return n;
}

gboolean
engine_check_finite (const float *v, size_t n, const char *what, GError **error)
{
  size_t bad = floats_find_nonfinite (v, n);

  if (bad == n)
    return TRUE;
  return engine_fail (error, CLIPSEG_ENGINE_ERROR_NOT_FINITE, NULL, "%s: element %zu of %zu is %g: "
      "the model's finite weights overflow float here, so there is no answer", what, bad, n,
      v[bad]);
}
