/* gemm.c — which library runs the linears, in which precision, and the
 * packed-linear calls that route to it. */
#include <string.h>

#include "engine-log.h"
#include "gemm-backend.h"

static gboolean
env_set (const char *name)
{
  const char *v = g_getenv (name);

  return v && v[0] && strcmp (v, "0") != 0;
}

void
gemm_resolve (enum clipseg_precision asked, struct gemm_config *config)
{
  const char *why_not = NULL;
  gboolean native_bf16 = FALSE;

  memset (config, 0, sizeof *config);
#ifdef HAVE_DNNL
  config->dnnl = !env_set ("CLIPSEG_DISABLE_DNNL");
  if (config->dnnl)
    native_bf16 = gemm_dnnl_describe (&config->library, &config->isa);
#endif
  if (!config->dnnl)
    gemm_openblas_describe (&config->library, &config->isa);

  if (!config->dnnl)
    why_not = "this build runs the linears with OpenBLAS, which has no bf16 GEMM "
        "(oneDNN missing at build time or CLIPSEG_DISABLE_DNNL set)";
  else if (!native_bf16)
    why_not = "the CPU has no native bf16 dot products (AVX512-BF16)";
  else if (env_set ("CLIPSEG_DISABLE_BF16"))
    why_not = "CLIPSEG_DISABLE_BF16 is set";

  config->precision = why_not ? CLIPSEG_PRECISION_FP32 : CLIPSEG_PRECISION_BF16;
  if (asked == CLIPSEG_PRECISION_FP32)
    config->precision = CLIPSEG_PRECISION_FP32;
  else if (asked == CLIPSEG_PRECISION_BF16 && why_not)
    engine_log (CLIPSEG_LOG_LEVEL_WARNING, "bf16 precision asked for but %s: the linears "
        "run in fp32 with %s", why_not, config->library);
}

gboolean
gemm_borrows_weights (const struct gemm_config *config)
{
  return !config->dnnl;
}

struct packed_linear *
packed_linear_new (const struct gemm_config *config, const struct linear_rows *parts,
    int n_parts, int K, enum gemm_epilogue epilogue, GError **error)
{
  int N = 0;

  for (int i = 0; i < n_parts; i++)
    N += parts[i].n;
#ifdef HAVE_DNNL
  if (config->dnnl) {
    /* oneDNN takes one [N, K] matrix: parts that are not already adjacent
     * rows of one buffer (Hugging Face's separate q, k, v) are stacked */
    gboolean adjacent = TRUE, biased = parts[0].b != NULL;
    float *w = NULL, *b = NULL;
    struct packed_linear *pl;

    for (int i = 1; i < n_parts; i++) {
      adjacent = adjacent && parts[i].w == parts[i - 1].w + (size_t) parts[i - 1].n * K
          && (!biased || parts[i].b == parts[i - 1].b + parts[i - 1].n);
      g_assert ((parts[i].b != NULL) == biased);
    }
    if (!adjacent) {
      size_t row = 0;

      w = g_new (float, (size_t) N * K);
      b = biased ? g_new (float, N) : NULL;
      for (int i = 0; i < n_parts; row += parts[i].n, i++) {
        memcpy (w + row * K, parts[i].w, (size_t) parts[i].n * K * sizeof *w);
        if (biased)
          memcpy (b + row, parts[i].b, parts[i].n * sizeof *b);
      }
    }
    pl = gemm_dnnl_pack (w ? w : parts[0].w, w ? b : parts[0].b, N, K, epilogue,
        config->precision == CLIPSEG_PRECISION_BF16, error);
    g_free (w);
    g_free (b);
    return pl;
  }
#endif
  g_assert (config->precision == CLIPSEG_PRECISION_FP32);
  return gemm_openblas_pack (parts, n_parts, N, K, epilogue);
}

void
packed_linear_free (struct packed_linear *pl)
{
  if (pl)
    pl->free (pl);
}

void
packed_linear_run (const struct packed_linear *pl, const float *x, int ldx, float *y, int ldy,
    int M, gboolean accumulate)
{
  if (M > 0)
    pl->run (pl, x, ldx, y, ldy, M, accumulate);
}
