/* text.c — the text tower and class queries built from label names and templates. */
#include <limits.h>
#include <string.h>

#include <omp.h>

#include "engine-log.h"
#include "kernels.h"
#include "model.h"
#include "threads.h"
#include "transformer.h"

/* Token rows per forward: bounds scratch to a few tens of MB at ViT-L width. */
#define TEXT_CHUNK_TOKENS 4096

struct prompt {
  int query;                   /* which query it belongs to */
  int n_ids;                   /* up to and including the first end token */
  int32_t *ids;
};

struct clipseg_queries {
  int n_queries, n_classes, embed_dim;
  float *embeddings;           /* [Q, E] */
  int *class_index;            /* [Q] */

  /* encoding, template by template */
  struct clipseg_model *model;
  int n_templates, prompts_done;
  struct prompt *prompts;      /* [n_templates, Q]: template-major */
  float *sums;                 /* [Q, E] unit embeddings summed over templates done */
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
 * attention, so the sequence stops there (and is pooled there). FALSE when
 * there is no memory for the ids. */
static gboolean
tokenize_prompt (const struct clipseg_model *m, const char *text, struct prompt *p)
{
  int ctx = m->w.text.context;
  int32_t end = clipseg_tokenizer_end_id (m->tokenizer);
  gboolean truncated = FALSE;

  p->ids = g_try_new (int32_t, ctx);
  if (!p->ids)
    return FALSE;
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
  return TRUE;
}

static int
compare_length (gconstpointer a, gconstpointer b)
{
  const struct prompt *x = a, *y = b;

  return x->n_ids - y->n_ids;
}

/* Encodes prompts[0..n) (all padded to the longest, causality makes padding
 * harmless) and writes their L2-normalised embeddings to out [n, E]. */
static void
encode_chunk (const struct clipseg_model *m, const struct prompt *prompts, int n, int n_threads,
    float *out)
{
  const struct clip_text *t = &m->w.text;
  int D = t->tower.width, E = m->w.embed_dim, L = prompts[n - 1].n_ids, T = n * L;
  float *x = g_new (float, (size_t) T * D);
  float *pooled = g_new (float, (size_t) n * D);
  float *mem = g_new (float, block_scratch_size (T, L, D, t->tower.heads, t->tower.mlp, n_threads));
  struct block_scratch s;

  block_scratch_init (&s, mem, T, L, D, t->tower.heads, t->tower.mlp, n_threads,
      m->w.attention);
  /* x = token embedding + position embedding; padding repeats the end token */
  for (int p = 0; p < n; p++) {
    for (int i = 0; i < L; i++) {
      int32_t id = prompts[p].ids[MIN (i, prompts[p].n_ids - 1)];
      float *row = x + ((size_t) p * L + i) * D;

      for (int j = 0; j < D; j++)
        row[j] = t->tok_emb[(size_t) id * D + j] + t->pos_emb[(size_t) i * D + j];
    }
  }
  for (int l = 0; l < t->tower.layers; l++)
    transformer_block (&t->tower.blocks[l], &t->tower, m->w.ln_eps, &mixing_causal, x, n, L, &s);
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

/* Embeds every prompt; prompts are sorted by length so chunks pad little.
 * With enough chunks, each thread encodes whole chunks on its own (layers of
 * a few hundred short tokens are too small to share well); otherwise the
 * threads share every layer of one chunk. */
static void
encode_prompts (const struct clipseg_model *m, struct prompt *prompts, int n, int n_threads,
    float *sums)
{
  int E = m->w.embed_dim, total = 0, budget, n_chunks;
  float *out = g_new (float, (size_t) n * E);
  int *starts = g_new (int, n + 1);

  qsort (prompts, n, sizeof *prompts, compare_length);
  for (int p = 0; p < n; p++)
    total += prompts[p].n_ids;
  /* about four chunks per thread for balance, never beyond the scratch bound */
  budget = CLAMP (total / (4 * n_threads), 256, TEXT_CHUNK_TOKENS);
  n_chunks = plan_chunks (prompts, n, budget, starts);
  if (n_chunks >= n_threads && n_threads > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(n_threads)
    for (int c = 0; c < n_chunks; c++)
      encode_chunk (m, prompts + starts[c], starts[c + 1] - starts[c], 1,
          out + (size_t) starts[c] * E);
  } else {
    for (int c = 0; c < n_chunks; c++)
      encode_chunk (m, prompts + starts[c], starts[c + 1] - starts[c], n_threads,
          out + (size_t) starts[c] * E);
  }
  for (int p = 0; p < n; p++)
    for (int j = 0; j < E; j++)
      sums[(size_t) prompts[p].query * E + j] += out[(size_t) p * E + j];
  g_free (starts);
  g_free (out);
}

struct clipseg_queries *
clipseg_queries_new_deferred (struct clipseg_model *model, const struct clipseg_labels *labels,
    const char *const *templates, GError **error)
{
  int n_classes = clipseg_labels_n_classes (labels), n_templates, Q = 0, E = model->w.embed_dim;
  struct clipseg_queries *q;
  gboolean ok;

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

  q = g_new0 (struct clipseg_queries, 1);
  q->n_queries = Q;
  q->n_classes = n_classes;
  q->embed_dim = E;
  q->model = model;
  /* the label count sizes these: a failed allocation is the caller's error, not an abort */
  q->embeddings = g_try_new0 (float, (size_t) Q * E);
  q->sums = g_try_new0 (float, (size_t) Q * E);
  q->class_index = g_try_new (int, Q);
  q->prompts = g_try_new0 (struct prompt, (size_t) Q * n_templates);
  ok = q->embeddings && q->sums && q->class_index && q->prompts;
  if (ok)
    q->n_templates = n_templates;   /* from here clipseg_queries_free frees each prompt */
  for (int c = 0, query = 0; c < n_classes && ok; c++) {
    for (int s = 0; s < clipseg_labels_n_names (labels, c) && ok; s++, query++) {
      q->class_index[query] = c;
      for (int k = 0; k < n_templates && ok; k++) {
        struct prompt *p = &q->prompts[(size_t) k * Q + query];
        char *text = fill_template (templates[k], clipseg_labels_name (labels, c, s));

        p->query = query;
        ok = tokenize_prompt (model, text, p);
        g_free (text);
      }
    }
  }
  if (ok)
    return q;
  engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL, "out of memory: %d names x %d templates "
      "would take %.0f MB of prompts", Q, n_templates,
      (double) Q * n_templates * (sizeof (struct prompt) + model->w.text.context * sizeof (int32_t)) / 1e6);
  clipseg_queries_free (q);
  return NULL;
}

int
clipseg_queries_encode_step (struct clipseg_queries *q, int max_prompts, int n_threads)
{
  int Q = q->n_queries, E = q->embed_dim, left = clipseg_queries_n_pending (q);
  /* the first step gives every name its first template */
  int n = CLAMP (MAX (max_prompts, Q - q->prompts_done), 1, left);
  struct prompt *block = q->prompts + q->prompts_done;

  if (left == 0)
    return 0;
  n_threads = engine_use_threads (n_threads);
  encode_prompts (q->model, block, n, n_threads, q->sums);
  for (int i = 0; i < n; i++)
    g_clear_pointer (&block[i].ids, g_free);
  q->prompts_done += n;
  /* each query: the normalised mean of its normalised template embeddings
   * (normalising the sum is the same) */
  memcpy (q->embeddings, q->sums, (size_t) Q * E * sizeof (float));
  l2_normalize_rows (q->embeddings, E, Q, E);
  return left - n;
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
  return q;
}

void
clipseg_queries_free (struct clipseg_queries *queries)
{
  if (!queries)
    return;
  for (size_t i = 0; i < (size_t) queries->n_templates * queries->n_queries; i++)
    g_free (queries->prompts[i].ids);
  g_free (queries->prompts);
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
