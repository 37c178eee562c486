/* numeric-inline.h — internal: scalar helpers the row kernels and the
 * attention share, written so loops over them vectorise. */
#ifndef NUMERIC_INLINE_H
#define NUMERIC_INLINE_H

#include <stdint.h>
#include <string.h>

/* Row kernels are compiled for AVX-512 and AVX2 as well as the baseline, and
 * the loader picks the best the CPU has: the engine ships as one binary. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define ROW_KERNEL __attribute__ ((target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ROW_KERNEL
#endif

/* Cephes-style expf: 2^n · p(r) with r = x - n·ln2 split in two parts; the
 * rounding uses the 1.5·2^23 trick so the loop vectorises without floorf. */
/* Cephes' expf: log2(e), ln 2 split in a high and a low part, and the
 * polynomial's coefficients from the highest power down; exp_nonpositive
 * (attention-avx512.c) evaluates the same polynomial in vectors. */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO 2.12194440e-4f
static const float exp_poly[6] = {
  1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
  5.0000001201e-1f
};

static inline float
exp_inline (float x)
{
  const float round_magic = 12582912.0f;
  float n, r, r2, p;
  int32_t bits;
  float scale;

  /* written so a NaN lands on -87 (comparisons with NaN are false), keeping
   * the integer conversion below defined */
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  n = (x * EXP_LOG2E + round_magic) - round_magic;
  r = x - n * EXP_LN2_HI;
  r = r + n * EXP_LN2_LO;
  r2 = r * r;
  p = exp_poly[0];
  for (int i = 1; i < 6; i++)
    p = p * r + exp_poly[i];
  p = p * r2 + r + 1.0f;
  bits = ((int32_t) n + 127) << 23;
  memcpy (&scale, &bits, sizeof scale);
  return p * scale;
}

/* The bfloat16 nearest to @x, ties to even; a NaN stays a (quiet) NaN:
 * adding 0x7fff plus the lowest kept bit rounds half to even, and a NaN's
 * payload could carry into the exponent. */
static inline uint16_t
bf16_round (float x)
{
  uint32_t u;

  memcpy (&u, &x, sizeof u);
  return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t) ((u >> 16) | 0x40u)
      : (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float
bf16_to_float (uint16_t h)
{
  uint32_t u = (uint32_t) h << 16;
  float x;

  memcpy (&x, &u, sizeof x);
  return x;
}

#endif
