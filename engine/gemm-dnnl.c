/* gemm-dnnl.c — linears as oneDNN matmul primitives on weights reordered
 * once into the layout the primitive chose, with bias, activation and
 * residual sum fused. */
#include <math.h>
#include <string.h>

#include <dnnl.h>
#include <omp.h>

#include "engine-log.h"
#include "gemm-backend.h"
#include "kernels.h"

/* Distinct (M, strides, accumulate, threads) per linear that keep their
 * primitive: a forward uses two or three M, the text tower a few more. A
 * shape beyond them still runs, on a primitive made for that call alone
 * (oneDNN's own primitive cache keeps that cheap). */
#define PRIMITIVES_PER_LINEAR 8

struct primitive_key
{
  int M, ldx, ldy, n_threads;
  gboolean accumulate;
};

struct cached_primitive
{
  struct primitive_key key;
  dnnl_primitive_t primitive;
  size_t scratchpad_bytes;
};

struct dnnl_linear
{
  struct packed_linear base;
  gboolean bf16;
  dnnl_memory_desc_t weights_md;        /* [K, N] in the primitive's own layout */
  void *weights;
  float *bias;                  /* [N] or NULL */
  GMutex lock;                  /* guards the cache */
  int n_cached;
  struct cached_primitive cached[PRIMITIVES_PER_LINEAR];
};

/* The process's oneDNN CPU engine; NULL when oneDNN cannot make one, which
 * packing reports (runs never start without packed linears). */
static dnnl_engine_t
cpu_engine (void)
{
  static gsize done;
  static dnnl_engine_t engine;

  if (g_once_init_enter (&done)) {
    if (dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
      engine = NULL;
    g_once_init_leave (&done, 1);
  }
  return engine;
}

/* Each thread has its own stream and its own scratch: the bf16 copy of x and
 * the primitive's scratchpad, which oneDNN would otherwise share between
 * concurrent runs of one primitive (measured: wrong bf16 results). */
struct thread_scratch
{
  dnnl_stream_t stream;
  void *data;
  size_t size;
};

static void
thread_scratch_free (gpointer p)
{
  struct thread_scratch *ts = p;

  dnnl_stream_destroy (ts->stream);
  g_aligned_free (ts->data);
  g_free (ts);
}

static GPrivate scratch_key = G_PRIVATE_INIT (thread_scratch_free);

/* NULL when oneDNN cannot make the thread's stream. */
static struct thread_scratch *
thread_scratch (size_t size)
{
  struct thread_scratch *ts = g_private_get (&scratch_key);

  if (!ts) {
    dnnl_stream_t stream;

    if (dnnl_stream_create (&stream, cpu_engine (), dnnl_stream_default_flags) != dnnl_success)
      return NULL;
    ts = g_new0 (struct thread_scratch, 1);
    ts->stream = stream;
    g_private_set (&scratch_key, ts);
  }
  if (size > ts->size) {
    g_aligned_free (ts->data);
    ts->data = g_aligned_alloc (size, 1, 64);
    ts->size = size;
  }
  return ts;
}

static size_t
round64 (size_t n)
{
  return (n + 63) & ~(size_t) 63;
}

static void
matrix_md (dnnl_memory_desc_t *md, int rows, int cols, int ld, dnnl_data_type_t type)
{
  dnnl_dims_t dims = { rows, cols }, strides = { ld, 1 };

  dnnl_memory_desc_init_by_strides (md, 2, dims, type, strides);
}

/* The matmul for @key with the packed weights' layout, or with any layout
 * (@weights_md of format "any") when packing. */
static dnnl_status_t
make_primitive_desc (const struct dnnl_linear *dl, const struct primitive_key *key,
    const dnnl_memory_desc_t *weights_md, dnnl_primitive_desc_t * pd)
{
  int N = dl->base.N, K = dl->base.K;
  dnnl_memory_desc_t src, bias, dst;
  dnnl_dims_t bias_dims = { 1, N };
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_status_t s;

  matrix_md (&src, key->M, K, key->ldx, dl->bf16 ? dnnl_bf16 : dnnl_f32);
  matrix_md (&dst, key->M, N, key->ldy, dnnl_f32);
  if (dl->bias)
    dnnl_memory_desc_init_by_tag (&bias, 2, bias_dims, dnnl_f32, dnnl_ab);
  if ((s = dnnl_matmul_desc_init (&desc, &src, weights_md, dl->bias ? &bias : NULL, &dst))
      || (s = dnnl_primitive_attr_create (&attr))
      || (s = dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user))
      || (s = dnnl_post_ops_create (&ops)))
    goto out;
  if (dl->base.epilogue == GEMM_EPILOGUE_QUICK_GELU)
    s = dnnl_post_ops_append_eltwise (ops, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f);
  else if (dl->base.epilogue == GEMM_EPILOGUE_GELU)
    s = dnnl_post_ops_append_eltwise (ops, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
  if (!s && key->accumulate)
    s = dnnl_post_ops_append_sum (ops, 1.0f);
  if (!s && !(s = dnnl_primitive_attr_set_post_ops (attr, ops)))
    s = dnnl_primitive_desc_create (pd, &desc, attr, cpu_engine (), NULL);
out:
  dnnl_post_ops_destroy (ops);
  dnnl_primitive_attr_destroy (attr);
  return s;
}

static dnnl_status_t
make_primitive (const struct dnnl_linear *dl, const struct primitive_key *key,
    struct cached_primitive *out)
{
  dnnl_primitive_desc_t pd;
  dnnl_status_t s = make_primitive_desc (dl, key, &dl->weights_md, &pd);

  if (s)
    return s;
  out->key = *key;
  out->scratchpad_bytes = dnnl_memory_desc_get_size (dnnl_primitive_desc_query_md (pd,
          dnnl_query_scratchpad_md, 0));
  s = dnnl_primitive_create (&out->primitive, pd);
  dnnl_primitive_desc_destroy (pd);
  return s;
}

/* The cached primitive for @key, made on first use; FALSE when the cache is
 * full, and then @out is a primitive the caller destroys after its run. */
static gboolean
find_primitive (struct dnnl_linear *dl, const struct primitive_key *key,
    struct cached_primitive *out, dnnl_status_t * status)
{
  gboolean cached = TRUE;

  *status = dnnl_success;
  g_mutex_lock (&dl->lock);
  for (int i = 0; i < dl->n_cached; i++) {
    const struct primitive_key *k = &dl->cached[i].key;

    if (k->M == key->M && k->ldx == key->ldx && k->ldy == key->ldy
        && k->n_threads == key->n_threads && k->accumulate == key->accumulate) {
      *out = dl->cached[i];
      g_mutex_unlock (&dl->lock);
      return TRUE;
    }
  }
  if (dl->n_cached < PRIMITIVES_PER_LINEAR) {
    *status = make_primitive (dl, key, &dl->cached[dl->n_cached]);
    if (!*status)
      *out = dl->cached[dl->n_cached++];
  } else {
    cached = FALSE;
  }
  g_mutex_unlock (&dl->lock);
  if (!cached)
    *status = make_primitive (dl, key, out);
  return cached;
}

static void
dnnl_run (const struct packed_linear *pl, const float *x, int ldx, float *y, int ldy, int M,
    gboolean accumulate)
{
  struct dnnl_linear *dl = (struct dnnl_linear *) pl;
  int N = pl->N, K = pl->K;
  struct primitive_key key;
  struct cached_primitive prim;
  struct thread_scratch *ts;
  size_t x_bytes = dl->bf16 ? round64 ((size_t) M * K * sizeof (guint16)) : 0;
  dnnl_memory_desc_t src_md, dst_md, bias_md, scratch_md;
  dnnl_dims_t bias_dims = { 1, N }, scratch_dims;
  dnnl_memory_t mem[5] = { NULL };
  int args[5] =
      { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD, DNNL_ARG_BIAS };
  dnnl_exec_arg_t exec[5];
  int n_args = dl->bias ? 5 : 4;
  gboolean cached;
  dnnl_status_t s;

  /* Inside a parallel region (one window per thread) oneDNN must neither
   * start a nested team nor split its work for threads it will not get: the
   * thread count is this implicit task's own and ends with the region. */
  if (omp_in_parallel ())
    omp_set_num_threads (1);
  key = (struct primitive_key) { M, dl->bf16 ? K : ldx, ldy, omp_get_max_threads (), accumulate };
  cached = find_primitive (dl, &key, &prim, &s);
  if (s)
    goto fail;
  if (!(ts = thread_scratch (x_bytes + round64 (prim.scratchpad_bytes)))) {
    s = dnnl_out_of_memory;
    goto out;
  }
  if (dl->bf16)
    float_to_bf16_rows (x, ldx, ts->data, M, K);
  matrix_md (&src_md, M, K, key.ldx, dl->bf16 ? dnnl_bf16 : dnnl_f32);
  matrix_md (&dst_md, M, N, ldy, dnnl_f32);
  scratch_dims[0] = (dnnl_dim_t) MAX (prim.scratchpad_bytes, 1);
  dnnl_memory_desc_init_by_tag (&scratch_md, 1, scratch_dims, dnnl_u8, dnnl_a);
  dnnl_memory_desc_init_by_tag (&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab);
  if ((s = dnnl_memory_create (&mem[0], &src_md, cpu_engine (), dl->bf16 ? ts->data : (void *) x))
      || (s = dnnl_memory_create (&mem[1], &dl->weights_md, cpu_engine (), dl->weights))
      || (s = dnnl_memory_create (&mem[2], &dst_md, cpu_engine (), y))
      || (s = dnnl_memory_create (&mem[3], &scratch_md, cpu_engine (), (char *) ts->data + x_bytes))
      || (dl->bias && (s = dnnl_memory_create (&mem[4], &bias_md, cpu_engine (), dl->bias))))
    goto out;
  for (int i = 0; i < n_args; i++)
    exec[i] = (dnnl_exec_arg_t) {
    args[i], mem[i]};
  s = dnnl_primitive_execute (prim.primitive, ts->stream, n_args, exec);
out:
  for (int i = 0; i < 5; i++)
    dnnl_memory_destroy (mem[i]);
  if (!cached)
    dnnl_primitive_destroy (prim.primitive);
  if (!s)
    return;
  /* only running out of memory gets here (the shape was accepted at packing):
   * the output is made NaN so the failure shows in every result */
fail:
  engine_log (CLIPSEG_LOG_LEVEL_ERROR, "oneDNN matmul %dx%dx%d failed (status %d)", M, N, K,
      (int) s);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      y[(size_t) i * ldy + j] = NAN;
}

static void
dnnl_free (struct packed_linear *pl)
{
  struct dnnl_linear *dl = (struct dnnl_linear *) pl;

  for (int i = 0; i < dl->n_cached; i++)
    dnnl_primitive_destroy (dl->cached[i].primitive);
  g_mutex_clear (&dl->lock);
  g_aligned_free (dl->weights);
  g_free (dl->bias);
  g_free (dl);
}

/* Reorders W [N, K] row-major (a [K, N] matrix with strides {1, K}) into
 * @dl's layout and type. */
static dnnl_status_t
reorder_weights (struct dnnl_linear *dl, const float *w)
{
  int N = dl->base.N, K = dl->base.K;
  dnnl_memory_desc_t plain_md;
  dnnl_dims_t dims = { K, N }, strides = { 1, K };
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t from = NULL, to = NULL;
  dnnl_stream_t stream = NULL;
  dnnl_status_t s;

  dnnl_memory_desc_init_by_strides (&plain_md, 2, dims, dnnl_f32, strides);
  if (!(s = dnnl_reorder_primitive_desc_create (&pd, &plain_md, cpu_engine (), &dl->weights_md,
              cpu_engine (), NULL))
      && !(s = dnnl_primitive_create (&reorder, pd))
      && !(s = dnnl_memory_create (&from, &plain_md, cpu_engine (), (void *) w))
      && !(s = dnnl_memory_create (&to, &dl->weights_md, cpu_engine (), dl->weights))
      && !(s = dnnl_stream_create (&stream, cpu_engine (), dnnl_stream_default_flags))) {
    dnnl_exec_arg_t args[2] = { {DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to} };

    s = dnnl_primitive_execute (reorder, stream, 2, args);
  }
  dnnl_stream_destroy (stream);
  dnnl_memory_destroy (to);
  dnnl_memory_destroy (from);
  dnnl_primitive_destroy (reorder);
  dnnl_primitive_desc_destroy (pd);
  return s;
}

struct packed_linear *
gemm_dnnl_pack (const float *w, const float *b, int N, int K, enum gemm_epilogue epilogue,
    gboolean bf16, GError **error)
{
  struct dnnl_linear *dl = g_new0 (struct dnnl_linear, 1);
  /* the layout does not depend on M (checked for M from 1 to 4096 on the
   * ViT and text shapes), so any M serves to ask for it */
  struct primitive_key probe = { 256, K, N, omp_get_max_threads (), FALSE };
  dnnl_memory_desc_t any_md;
  dnnl_dims_t dims = { K, N };
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t s;

  dl->base = (struct packed_linear) { dnnl_run, dnnl_free, N, K, epilogue };
  dl->bf16 = bf16;
  g_mutex_init (&dl->lock);
  if (!cpu_engine ()) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
        "oneDNN cannot create its CPU engine");
    dnnl_free (&dl->base);
    return NULL;
  }
  if (b)
    dl->bias = g_memdup2 (b, (size_t) N * sizeof *b);
  dnnl_memory_desc_init_by_tag (&any_md, 2, dims, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any);
  if (!(s = make_primitive_desc (dl, &probe, &any_md, &pd))) {
    dl->weights_md = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
    dl->weights = g_aligned_alloc (round64 (dnnl_memory_desc_get_size (&dl->weights_md)), 1, 64);
    s = reorder_weights (dl, w);
  }
  dnnl_primitive_desc_destroy (pd);
  if (!s)
    return &dl->base;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_MODEL,
      "oneDNN cannot pack a %s linear of %d inputs and %d outputs (status %d)",
      bf16 ? "bf16" : "fp32", K, N, (int) s);
  dnnl_free (&dl->base);
  return NULL;
}

static const char *
isa_name (dnnl_cpu_isa_t isa)
{
  switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_sse41:
      return "sse41";
    default:
      return "unknown";
  }
}

gboolean
gemm_dnnl_describe (const char **library, const char **isa)
{
  static char *name;
  dnnl_cpu_isa_t effective = dnnl_get_effective_cpu_isa ();

  if (g_once_init_enter (&name)) {
    const dnnl_version_t *v = dnnl_version ();

    g_once_init_leave (&name, g_strdup_printf ("oneDNN %d.%d.%d", v->major, v->minor, v->patch));
  }
  *library = name;
  *isa = isa_name (effective);
  return (effective & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}
