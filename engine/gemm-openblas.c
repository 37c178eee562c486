/* gemm-openblas.c — the fp32 fallback: cblas_sgemm on the weights as the
 * checkpoint stores them, then the bias and the activation. */
#include <string.h>

#include <cblas.h>

#include "gemm-backend.h"
#include "kernels.h"

struct openblas_linear
{
  struct packed_linear base;
  int n_parts;
  struct linear_rows parts[];
};

static void
openblas_run (const struct packed_linear *pl, const float *x, int ldx, float *y, int ldy, int M,
    gboolean accumulate)
{
  const struct openblas_linear *ol = (const struct openblas_linear *) pl;
  int column = 0;

  for (int i = 0; i < ol->n_parts; column += ol->parts[i].n, i++)
    linear (x, ldx, ol->parts[i].w, ol->parts[i].b, y + column, ldy, M, ol->parts[i].n,
        pl->K, accumulate ? 1.0f : 0.0f);
  /* the activation only ever follows a linear that does not accumulate */
  g_assert (!accumulate || pl->epilogue == GEMM_EPILOGUE_NONE);
  if (pl->epilogue == GEMM_EPILOGUE_QUICK_GELU)
    activation (y, ldy, M, pl->N, CLIPSEG_ACTIVATION_QUICK_GELU);
  else if (pl->epilogue == GEMM_EPILOGUE_GELU)
    activation (y, ldy, M, pl->N, CLIPSEG_ACTIVATION_GELU);
}

static void
openblas_free (struct packed_linear *pl)
{
  g_free (pl);
}

struct packed_linear *
gemm_openblas_pack (const struct linear_rows *parts, int n_parts, int N, int K,
    enum gemm_epilogue epilogue)
{
  struct openblas_linear *ol = g_malloc (sizeof *ol + n_parts * sizeof ol->parts[0]);

  ol->base = (struct packed_linear) { openblas_run, openblas_free, N, K, epilogue };
  ol->n_parts = n_parts;
  memcpy (ol->parts, parts, n_parts * sizeof *parts);
  return &ol->base;
}

void
gemm_openblas_describe (const char **library, const char **isa)
{
  static char *name, *core;

  /* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
  if (g_once_init_enter (&name)) {
    char **words = g_strsplit (openblas_get_config (), " ", 3);
    char *n = g_strjoin (" ", words[0], words[1] ? words[1] : "", NULL);

    core = g_ascii_strdown (openblas_get_corename (), -1);
    g_strfreev (words);
    g_once_init_leave (&name, n);
  }
  *library = name;
  *isa = core;
}
