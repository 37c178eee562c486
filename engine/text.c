/* text.c — the text tower and class queries built from label names and templates. */
#include <limits.h>
#include <string.h>

#include <omp.h>

#include "engine-log.h"
#include "finite.h"
#include "kernels.h"
#include "model.h"
#include "threads.h"
#include "transformer.h"

/* Token rows per forward: bounds scratch to about ten MB at ViT-L width,
 * and a layer's time, between two polls of the abort callback, to a tenth
 * of a second at ViT-B width. */
#define TEXT_CHUNK_TOKENS 1024

struct prompt
{
  int query;                    /* which query it belongs to */
  int n_ids;                    /* up to and including the first end token */
  int32_t *ids;
};

struct clipseg_queries
{
  int n_queries, n_classes, embed_dim;
  float *embeddings;            /* [Q, E] */
  int *class_index;             /* [Q] */

  /* encoding, template by template; prompt i is template i / Q filled with
   * name i % Q, tokenized only when its step comes (a label set at the
   * prompt cap would hold hundreds of MB of tokens and take seconds) */
  struct clipseg_model *model;
  int n_templates, prompts_done;
  char **names;                 /* [Q] */
  char **templates;             /* [n_templates] */
  float *sums;                  /* [Q, E] unit embeddings summed over templates done */
};

static char *
fill_template (const char *template, const char *name)
{
  char **parts = g_strsplit (template, "{}", -1);
  char *text = g_strjoinv (name, parts);

  g_strfreev (parts);
  return text;
}

/* Tokens after the first end token cannot influence it through causal
 * attention, so the sequence stops there (and is pooled there). */
static void
tokenize_prompt (const struct clipseg_model *m, const char *text, struct prompt *p)
{
  int ctx = m->w.text.context;
  int32_t end = clipseg_tokenizer_end_id (m->tokenizer);
  gboolean truncated = FALSE;

  p->ids = g_new (int32_t, ctx);
  p->n_ids = clipseg_tokenizer_encode (m->tokenizer, text, p->ids, ctx, &truncated);
  if (truncated)
    engine_log (CLIPSEG_LOG_LEVEL_WARNING,
        "text \"%s\" is longer than the %d-token context and was truncated", text, ctx);
  for (int i = 0; i < p->n_ids; i++) {
    if (p->ids[i] == end) {
      p->n_ids = i + 1;
      break;
    }
  }
}

static int
compare_length (gconstpointer a, gconstpointer b)
{
  const struct prompt *x = a, *y = b;

  return x->n_ids - y->n_ids;
}

/* Polled between layers: a caller can stop a long step. */
struct text_abort
{
  clipseg_abort_func func;
  void *user_data;
};

static gboolean
text_aborted (const struct text_abort *abort)
{
  return abort->func && abort->func (abort->user_data);
}

/* row[D] = the token embedding of @id, converted from how it is stored */
static void
token_row (const struct clip_text *t, int32_t id, float *row)
{
  int D = t->tower.width;
  const guint8 *src = t->tok_emb + (size_t) id * D * st_dtype_size (t->tok_dtype);

  if (t->tok_dtype == ST_DTYPE_F16)
    half_to_float_n (src, row, D);
  else if (t->tok_dtype == ST_DTYPE_BF16)
    bf16_to_float_n (src, row, D);
  else
    memcpy (row, src, D * sizeof *row);
}

/* Encodes prompts[0..n) (all padded to the longest, causality makes padding
 * harmless) and writes their L2-normalised embeddings to out [n, E]; FALSE
 * when @abort stopped it. */
static gboolean
encode_chunk (const struct clipseg_model *m, const struct prompt *prompts, int n, int n_threads,
    const struct text_abort *abort, float *out)
{
  const struct clip_text *t = &m->w.text;
  int D = t->tower.width, E = m->w.embed_dim, L = prompts[n - 1].n_ids, T = n * L;
  float *x = g_new (float, (size_t) T * D);
  float *pooled = g_new (float, (size_t) n * D);
  float *mem = g_new (float, block_scratch_size (T, L, D, t->tower.heads, t->tower.mlp, n_threads));
  struct block_scratch s;

  block_scratch_init (&s, mem, T, L, D, t->tower.heads, t->tower.mlp, n_threads, m->w.attention);
  /* x = token embedding + position embedding; padding repeats the end token */
  for (int p = 0; p < n; p++) {
    for (int i = 0; i < L; i++) {
      int32_t id = prompts[p].ids[MIN (i, prompts[p].n_ids - 1)];
      float *row = x + ((size_t) p * L + i) * D;

      token_row (t, id, row);
      for (int j = 0; j < D; j++)
        row[j] += t->pos_emb[(size_t) i * D + j];
    }
  }
  for (int l = 0; l < t->tower.layers; l++) {
    if (text_aborted (abort)) {
      g_free (mem);
      g_free (pooled);
      g_free (x);
      return FALSE;
    }
    transformer_block (&t->tower.blocks[l], &t->tower, m->w.ln_eps, &mixing_causal, x, n, L, &s);
  }
  /* pool at the end token, then ln_final and the projection */
  for (int p = 0; p < n; p++)
    memcpy (pooled + (size_t) p * D, x + ((size_t) p * L + prompts[p].n_ids - 1) * D,
        D * sizeof (float));
  layer_norm (pooled, D, t->ln_final_w, t->ln_final_b, m->w.ln_eps, pooled, D, n, D);
  packed_linear_run (t->proj, pooled, D, out, E, n, FALSE);
  l2_normalize_rows (out, E, n, E);
  g_free (mem);
  g_free (pooled);
  g_free (x);
  return TRUE;
}

/* Splits length-sorted prompts into chunks of at most @budget tokens (padded);
 * returns the number of chunks, their starts in @starts (n + 1 entries max). */
static int
plan_chunks (const struct prompt *prompts, int n, int budget, int *starts)
{
  int n_chunks = 0;

  for (int start = 0; start < n; n_chunks++) {
    int end = start + 1;

    while (end < n && (end + 1 - start) * prompts[end].n_ids <= budget)
      end++;
    starts[n_chunks] = start;
    start = end;
  }
  starts[n_chunks] = n;
  return n_chunks;
}

/* Embeds every prompt and adds the embeddings to @sums, unless @abort stops
 * it first (then @sums is untouched and FALSE returned); prompts are sorted
 * by length so chunks pad little. With enough chunks, each thread encodes
 * whole chunks on its own (layers of a few hundred short tokens are too
 * small to share well); otherwise the threads share every layer of one
 * chunk. */
static gboolean
encode_prompts (const struct clipseg_model *m, struct prompt *prompts, int n, int n_threads,
    const struct text_abort *abort, float *sums)
{
  int E = m->w.embed_dim, total = 0, budget, n_chunks;
  float *out = g_new (float, (size_t) n * E);
  int *starts = g_new (int, n + 1);
  gboolean ok = TRUE;

  qsort (prompts, n, sizeof *prompts, compare_length);
  for (int p = 0; p < n; p++)
    total += prompts[p].n_ids;
  /* about four chunks per thread for balance, never beyond the scratch bound */
  budget = CLAMP (total / (4 * n_threads), 256, TEXT_CHUNK_TOKENS);
  n_chunks = plan_chunks (prompts, n, budget, starts);
  if (n_chunks >= n_threads && n_threads > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(n_threads) reduction(&&:ok)
    for (int c = 0; c < n_chunks; c++)
      ok = encode_chunk (m, prompts + starts[c], starts[c + 1] - starts[c], 1, abort,
          out + (size_t) starts[c] * E) && ok;
  } else {
    for (int c = 0; c < n_chunks && ok; c++)
      ok = encode_chunk (m, prompts + starts[c], starts[c + 1] - starts[c], n_threads, abort,
          out + (size_t) starts[c] * E);
  }
  for (int p = 0; p < n && ok; p++)
    for (int j = 0; j < E; j++)
      sums[(size_t) prompts[p].query * E + j] += out[(size_t) p * E + j];
  g_free (starts);
  g_free (out);
  return ok;
}

gboolean
clipseg_queries_check_size (const struct clipseg_labels *labels, const char *const *templates,
    GError **error)
{
  int64_t n_names = 0, n_templates = g_strv_length ((char **) templates);

  for (int c = 0; c < clipseg_labels_n_classes (labels); c++)
    n_names += clipseg_labels_n_names (labels, c);
  if (n_names <= CLIPSEG_MAX_NAMES && n_names * n_templates <= CLIPSEG_MAX_PROMPTS)
    return TRUE;
  return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL, "labels: %" G_GINT64_FORMAT
      " names under %" G_GINT64_FORMAT " templates make %" G_GINT64_FORMAT " prompts; a label "
      "set may have at most %d names and %d prompts", n_names, n_templates,
      n_names * n_templates, CLIPSEG_MAX_NAMES, CLIPSEG_MAX_PROMPTS);
}

struct clipseg_queries *
clipseg_queries_new_deferred (struct clipseg_model *model, const struct clipseg_labels *labels,
    const char *const *templates, GError **error)
{
  int n_classes = clipseg_labels_n_classes (labels), n_templates, Q = 0, E = model->w.embed_dim;
  struct clipseg_queries *q;

  g_return_val_if_fail (templates != NULL, NULL);
  n_templates = (int) g_strv_length ((char **) templates);
  if (n_templates == 0) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID, "no templates");
    return NULL;
  }
  for (int c = 0; c < n_classes; c++)
    Q += clipseg_labels_n_names (labels, c);
  if (Q == 0) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID, "labels: no names");
    return NULL;
  }

  if (!clipseg_queries_check_size (labels, templates, error))
    return NULL;

  q = g_new0 (struct clipseg_queries, 1);
  q->n_queries = Q;
  q->n_classes = n_classes;
  q->embed_dim = E;
  q->embeddings = g_new0 (float, (size_t) Q * E);
  q->sums = g_new0 (float, (size_t) Q * E);
  q->class_index = g_new (int, Q);
  q->model = model;
  q->n_templates = n_templates;
  q->templates = g_strdupv ((char **) templates);
  q->names = g_new0 (char *, Q + 1);
  for (int c = 0, query = 0; c < n_classes; c++) {
    for (int s = 0; s < clipseg_labels_n_names (labels, c); s++, query++) {
      q->class_index[query] = c;
      q->names[query] = g_strdup (clipseg_labels_name (labels, c, s));
    }
  }
  return q;
}

/* The @n prompts from prompt @first on, tokenized. */
static struct prompt *
tokenize_block (const struct clipseg_queries *q, int first, int n)
{
  struct prompt *block = g_new (struct prompt, n);

  for (int i = 0; i < n; i++) {
    int index = first + i;
    char *text = fill_template (q->templates[index / q->n_queries],
        q->names[index % q->n_queries]);

    block[i].query = index % q->n_queries;
    tokenize_prompt (q->model, text, &block[i]);
    g_free (text);
  }
  return block;
}

int
clipseg_queries_encode_step_abortable (struct clipseg_queries *q, int max_prompts, int n_threads,
    clipseg_abort_func abort, void *user_data)
{
  int Q = q->n_queries, E = q->embed_dim, left = clipseg_queries_n_pending (q);
  /* the first step gives every name its first template */
  int n = CLAMP (MAX (max_prompts, Q - q->prompts_done), 1, left);
  const struct text_abort stop = { abort, user_data };
  struct prompt *block;
  gboolean done;

  if (left == 0 || text_aborted (&stop))
    return left;
  n_threads = engine_use_threads (n_threads);
  block = tokenize_block (q, q->prompts_done, n);
  done = encode_prompts (q->model, block, n, n_threads, &stop, q->sums);
  for (int i = 0; i < n; i++)
    g_free (block[i].ids);
  g_free (block);
  if (!done)
    return left;
  q->prompts_done += n;
  /* each query: the normalised mean of its normalised template embeddings
   * (normalising the sum is the same) */
  memcpy (q->embeddings, q->sums, (size_t) Q * E * sizeof (float));
  l2_normalize_rows (q->embeddings, E, Q, E);
  return left - n;
}

int
clipseg_queries_encode_step (struct clipseg_queries *q, int max_prompts, int n_threads)
{
  return clipseg_queries_encode_step_abortable (q, max_prompts, n_threads, NULL, NULL);
}

int
clipseg_queries_n_pending (const struct clipseg_queries *queries)
{
  return queries->n_templates * queries->n_queries - queries->prompts_done;
}

struct clipseg_queries *
clipseg_queries_new (struct clipseg_model *model, const struct clipseg_labels *labels,
    const char *const *templates, int n_threads, GError **error)
{
  struct clipseg_queries *q = clipseg_queries_new_deferred (model, labels, templates, error);

  if (q)
    clipseg_queries_encode_step (q, INT_MAX, n_threads);
  if (q && !engine_check_finite (q->embeddings, (size_t) q->n_queries * q->embed_dim,
          "text embeddings", error))
    g_clear_pointer (&q, clipseg_queries_free);
  return q;
}

void
clipseg_queries_free (struct clipseg_queries *queries)
{
  if (!queries)
    return;
  g_strfreev (queries->names);
  g_strfreev (queries->templates);
  g_free (queries->sums);
  g_free (queries->embeddings);
  g_free (queries->class_index);
  g_free (queries);
}

int
clipseg_queries_n_queries (const struct clipseg_queries *queries)
{
  return queries->n_queries;
}

int
clipseg_queries_n_classes (const struct clipseg_queries *queries)
{
  return queries->n_classes;
}

int
clipseg_queries_embed_dim (const struct clipseg_queries *queries)
{
  return queries->embed_dim;
}

const float *
clipseg_queries_embeddings (const struct clipseg_queries *queries)
{
  return queries->embeddings;
}

const int *
clipseg_queries_class_index (const struct clipseg_queries *queries)
{
  return queries->class_index;
}
