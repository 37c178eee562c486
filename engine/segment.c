/* segment.c — SCLIP's segmentation procedure on top of the dense features.
 *
 * Cosines are kept pixel-major ([pixel, query]) from the window upsampling to
 * the softmax, so every inner loop runs over contiguous queries. Its scratch is
 * the state's segment_scratch (segment.h), the vision tower's the state's
 * vision_cache (vision.h); this file also holds the dense-feature entry point.
 */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "engine-log.h"
#include "finite.h"
#include "kernels.h"
#include "maskclip-refine.h"
#include "model.h"
#include "pamr.h"
#include "state.h"
#include "threads.h"

/* Windows per forward: bounded by tokens so scratch stays small for big images. */
#define SEG_CHUNK_TOKENS 2400
#define SEG_MAX_CHUNK_WINDOWS 64

struct clipseg_segment_params
clipseg_segment_default_params (void)
{
  struct clipseg_segment_params params = {
    /*.mode        = */ CLIPSEG_MODE_SCLIP,
    /*.crop        = */ 224,
    /*.stride      = */ 112,
    /*.logit_scale = */ 40.0f,
    /*.prob_thd    = */ 0.0f,
    /*.area_thd    = */ 0.0f,
    /*.ks_thresh   = */ 0.0f,
    /*.pd_thresh   = */ 0.0f,
    /*.pamr_steps  = */ 0,
  };
  return params;
}

void
clipseg_resize_dims (int width, int height, int short_side, int long_max, int *out_width,
    int *out_height)
{
  double f = (double) short_side / MIN (width, height);

  if (long_max > 0)
    f = MIN (f, (double) long_max / MAX (width, height));
  *out_width = MAX ((int) (width * f + 0.5), 1);
  *out_height = MAX ((int) (height * f + 0.5), 1);
}

/* ---- bilinear resampling (align_corners = False) ------------------------- */

/* Source row/column pair and weight for output index @dst of @out from @in,
 * as F.interpolate(mode='bilinear', size=…) computes them. */
static void
bilinear_tap (int dst, int in, int out, int *i0, int *i1, float *frac)
{
  float scale = (float) in / (float) out;
  float src = MAX (scale * ((float) dst + 0.5f) - 0.5f, 0.0f);

  *i0 = MIN ((int) src, in - 1);
  *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
  *frac = src - (float) *i0;
}

/* dst[(y0+i)·ld_rows + (x0+j)·Q + q] += bilinear(src)[i, j, q] for an
 * [ih, iw, Q] source resized to oh x ow and placed at (y0, x0). */
static void
resize_add (const float *src, int ih, int iw, int Q, float *dst, int dst_w, int y0, int x0,
    int oh, int ow)
{
#pragma omp parallel for
  for (int i = 0; i < oh; i++) {
    int ya, yb;
    float fy;

    bilinear_tap (i, ih, oh, &ya, &yb, &fy);
    for (int j = 0; j < ow; j++) {
      int xa, xb;
      float fx, w00, w01, w10, w11;
      const float *s00, *s01, *s10, *s11;
      float *d = dst + ((size_t) (y0 + i) * dst_w + x0 + j) * Q;

      bilinear_tap (j, iw, ow, &xa, &xb, &fx);
      w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx;
      s00 = src + ((size_t) ya * iw + xa) * Q, s01 = src + ((size_t) ya * iw + xb) * Q;
      s10 = src + ((size_t) yb * iw + xa) * Q, s11 = src + ((size_t) yb * iw + xb) * Q;
      for (int q = 0; q < Q; q++)
        d[q] += w00 * s00[q] + w01 * s01[q] + w10 * s10[q] + w11 * s11[q];
    }
  }
}

/* ---- windows --------------------------------------------------------------- */

/* SCLIP's slide: count = ceil((size - crop) / stride) + 1, the last window
 * shifted back to end at the border; a side shorter than the crop is one window. */
static int
window_count (int size, int crop, int stride)
{
  return MAX (size - crop + stride - 1, 0) / stride + 1;
}

static int
window_start (int index, int size, int crop, int stride)
{
  int end = MIN (index * stride + crop, size);

  return MAX (end - crop, 0);
}

struct layout
{
  int H, W;                     /* image */
  int crop, stride;             /* as given; crop 0 = whole image */
  int h, w;                     /* window (all windows have the same size) */
  int rows, cols;               /* windows down / across */
  int gh, gw;                   /* patch grid of one window */
  int up_h, up_w;               /* each window's cosines are upsampled to this */
  int sum_h, sum_w;             /* the grid they are summed on */
};

/* In whole-image mode the one window is upsampled straight to the output
 * size, as SCLIP's forward_feature does; sliding windows are upsampled to
 * their own size, summed on the image grid and resized once at the end. */
static void
plan_windows (const struct clipseg_segment_params *sp, int H, int W, int out_h, int out_w, int p,
    struct layout *lo)
{
  lo->H = H, lo->W = W, lo->crop = sp->crop, lo->stride = sp->stride;
  if (sp->crop == 0) {
    lo->h = H, lo->w = W, lo->rows = lo->cols = 1;
    lo->up_h = lo->sum_h = out_h, lo->up_w = lo->sum_w = out_w;
  } else {
    lo->h = MIN (sp->crop, H), lo->w = MIN (sp->crop, W);
    lo->rows = window_count (H, sp->crop, sp->stride);
    lo->cols = window_count (W, sp->crop, sp->stride);
    lo->up_h = lo->h, lo->up_w = lo->w, lo->sum_h = H, lo->sum_w = W;
  }
  lo->gh = lo->h / p, lo->gw = lo->w / p;
}

static struct window
window_origin (const struct layout *lo, int index)
{
  struct window win = { 0, 0 };

  if (lo->crop > 0) {
    win.y = window_start (index / lo->cols, lo->H, lo->crop, lo->stride);
    win.x = window_start (index % lo->cols, lo->W, lo->crop, lo->stride);
  }
  return win;
}

/* Windows of @N patches one per-thread forward takes. */
static int
windows_per_forward (int N)
{
  return CLAMP (SEG_CHUNK_TOKENS / (N + 1), 1, SEG_MAX_CHUNK_WINDOWS);
}

/* Encodes windows first + begin .. first + end - 1 into their rows of
 * @features (and of @keys unless NULL), at most @piece (<=
 * SEG_MAX_CHUNK_WINDOWS) windows per forward. */
static void
encode_range (struct clipseg_state *st, const float *pixels, const struct layout *lo,
    const struct vision_plan *plan, struct vision_scratch *vs, int n_threads, int first,
    int begin, int end, int piece, float *features, float *keys)
{
  int N = lo->gh * lo->gw, E = st->model->w.embed_dim, D = st->model->w.vision.tower.width;
  struct window windows[SEG_MAX_CHUNK_WINDOWS];

  for (int b = begin; b < end; b += piece) {
    int m = MIN (piece, end - b);

    for (int i = 0; i < m; i++)
      windows[i] = window_origin (lo, first + b + i);
    vision_forward (&st->model->w, plan, vs, n_threads, pixels, lo->H, lo->W, windows, m,
        features + (size_t) b * N * E, keys ? keys + (size_t) b * N * D : NULL);
  }
}

/* Encodes windows first .. first + n - 1 into @features [n·N, E]. With at least
 * one window per thread, each thread runs its own share through the whole
 * tower with single-threaded BLAS: no synchronisation until the end, which
 * keeps all cores busy even when other work competes for them. Fewer windows
 * than threads share the threads inside every layer instead. */
static void
encode_windows (struct clipseg_state *st, const float *pixels, const struct layout *lo,
    const struct vision_plan *plan, int first, int n, float *features, float *keys)
{
  int T = st->n_threads;

  if (T > 1 && n >= T) {
#pragma omp parallel num_threads(T)
    {
      /* The team can be smaller than asked for (inside another parallel
       * region, OMP_DYNAMIC, a thread limit): split among the threads that
       * actually run, whose numbers stay below T for the scratch. */
      int t = omp_get_thread_num (), team = omp_get_num_threads ();

      encode_range (st, pixels, lo, plan, &st->vision.threads[t], 1, first, n * t / team,
          n * (t + 1) / team, windows_per_forward (lo->gh * lo->gw), features, keys);
    }
  } else {
    encode_range (st, pixels, lo, plan, &st->vision.threads[0], T, first, 0, n,
        SEG_MAX_CHUNK_WINDOWS, features, keys);
  }
}

/* Runs the windows in rounds and adds each window's upsampled cosines (after
 * MaskCLIP's refinements when asked for) into @sum [sum_h, sum_w, Q]; FALSE
 * when the abort callback stopped it or the round's scratch found no memory. */
static gboolean
accumulate_windows (struct clipseg_state *st, const float *pixels, const struct layout *lo,
    const struct clipseg_queries *queries, const struct clipseg_segment_params *sp, float *sum,
    GError **error)
{
  int E = st->model->w.embed_dim, D = st->model->w.vision.tower.width;
  int Q = clipseg_queries_n_queries (queries), N = lo->gh * lo->gw, n_windows = lo->rows * lo->cols;
  int per_round = (int) MIN ((size_t) windows_per_forward (N) * st->n_threads, (size_t) n_windows);
  float *features = buffer_try_reserve (&st->segment.features, (size_t) per_round * N * E,
      "window features", error);
  float *logits = features ? buffer_try_reserve (&st->segment.logits, (size_t) per_round * N * Q,
      "window cosines", error) : NULL;
  float *keys = NULL, *refine = NULL;
  struct vision_plan plan;

  if (!logits)
    return FALSE;
  if (sp->ks_thresh > 0.0f
      && !(keys =
          buffer_try_reserve (&st->segment.keys, (size_t) per_round * N * D, "window keys", error)))
    return FALSE;
  if ((sp->ks_thresh > 0.0f || sp->pd_thresh > 0.0f)
      && !(refine = buffer_try_reserve (&st->segment.refine, maskclip_refine_scratch_size (N, Q),
              "MaskCLIP refinement scratch", error)))
    return FALSE;
  vision_plan (&st->model->w, &st->vision, lo->h, lo->w, sp->mode, st->abort, st->abort_data,
      &plan);
  for (int first = 0; first < n_windows; first += per_round) {
    int n = MIN (per_round, n_windows - first);

    encode_windows (st, pixels, lo, &plan, first, n, features, keys);
    if (engine_aborted (st, error))
      return FALSE;
    /* cosine of every patch with every query (both unit length) */
    linear (features, E, clipseg_queries_embeddings (queries), NULL, logits, Q, n * N, Q, E, 0.0f);
    for (int b = 0; b < n; b++) {
      struct window win = window_origin (lo, first + b);

      if (refine)
        maskclip_refine (logits + (size_t) b * N * Q, keys ? keys + (size_t) b * N * D : NULL, N,
            Q, D, sp->pd_thresh, sp->ks_thresh, refine);

      resize_add (logits + (size_t) b * N * Q, lo->gh, lo->gw, Q, sum, lo->sum_w, win.y, win.x,
          lo->up_h, lo->up_w);
    }
  }
  return TRUE;
}

/* Divides each pixel's summed cosines by the number of windows covering it. */
static void
average_windows (const struct layout *lo, int Q, float *sum)
{
  if (lo->crop == 0)
    return;
#pragma omp parallel for
  for (int y = 0; y < lo->H; y++) {
    int n_y = 0;

    for (int r = 0; r < lo->rows; r++) {
      int y0 = window_start (r, lo->H, lo->crop, lo->stride);
      n_y += y >= y0 && y < y0 + lo->h;
    }
    for (int x = 0; x < lo->W; x++) {
      int n_x = 0;
      float inv;
      float *v = sum + ((size_t) y * lo->W + x) * Q;

      for (int c = 0; c < lo->cols; c++) {
        int x0 = window_start (c, lo->W, lo->crop, lo->stride);
        n_x += x >= x0 && x < x0 + lo->w;
      }
      inv = 1.0f / (float) (n_y * n_x);
      for (int q = 0; q < Q; q++)
        v[q] *= inv;
    }
  }
}

/* PAMR on the cosines [oh·ow, Q] at the output size, its affinities from
 * the pixels resized to that size as SCLIP does; FALSE when the abort
 * callback stopped it between steps. */
static gboolean
refine_pamr (struct clipseg_state *st, const float *pixels, int H, int W, int steps,
    float *cosines, int oh, int ow, int Q, GError **error)
{
  size_t n = (size_t) oh * ow;
  float *image =
      buffer_try_reserve (&st->segment.refine, n * (3 + PAMR_NEIGHBOURS + Q), "PAMR scratch",
      error);
  float *affinity, *in = cosines, *out;

  if (!image)
    return FALSE;
  affinity = image + 3 * n;
  out = affinity + n * PAMR_NEIGHBOURS;
  if (H != oh || W != ow) {
    memset (image, 0, 3 * n * sizeof *image);
    for (int c = 0; c < 3; c++)
      resize_add (pixels + (size_t) c * H * W, H, W, 1, image + c * n, ow, 0, 0, oh, ow);
    pixels = image;
  }
  pamr_affinity (pixels, oh, ow, affinity);
  for (int s = 0; s < steps; s++) {
    float *t = in;

    if (engine_aborted (st, error))
      return FALSE;
    pamr_step (affinity, oh, ow, in, out, Q);
    in = out, out = t;
  }
  if (in != cosines)
    memcpy (cosines, in, n * Q * sizeof *cosines);
  return TRUE;
}

/* Softmax over all queries of logit_scale · cosine, then each class takes the
 * max over its queries: probs [C, n] (planar) from cosines [n, Q]. */
static void
classify_pixels (float *cosines, int n, const struct clipseg_queries *queries, float logit_scale,
    float *probs)
{
  int Q = clipseg_queries_n_queries (queries), C = clipseg_queries_n_classes (queries);
  const int *class_of = clipseg_queries_class_index (queries);

  softmax_rows (cosines, Q, n, Q, logit_scale);
#pragma omp parallel for
  for (int i = 0; i < n; i++) {
    const float *p = cosines + (size_t) i * Q;

    for (int c = 0; c < C; c++)
      probs[(size_t) c * n + i] = 0.0f;
    for (int q = 0; q < Q; q++) {
      float *dst = &probs[(size_t) class_of[q] * n + i];
      *dst = MAX (*dst, p[q]);
    }
  }
}

/* Foreground classes covering <= @area_thd of the foreground of the argmax
 * @labels get probability 0 everywhere. The counts live on the stack for
 * every label set (n_pixels <= INT_MAX, so 32 bits hold them); only a caller
 * with more classes than CLIPSEG_MAX_CLASSES gets them from the heap. */
static void
drop_small_classes (float *probs, int C, int n, float area_thd, const int32_t *labels)
{
  uint32_t on_stack[CLIPSEG_MAX_CLASSES];
  uint32_t *area = C <= CLIPSEG_MAX_CLASSES ? on_stack : g_new (uint32_t, C);
  int64_t total = 0;

  memset (area, 0, C * sizeof *area);
  for (int i = 0; i < n; i++)
    area[labels[i]]++;
  for (int c = 1; c < C; c++)
    total += area[c];
  for (int c = 1; c < C; c++)
    if (!((double) area[c] > (double) area_thd * (double) total))
      memset (probs + (size_t) c * n, 0, n * sizeof *probs);
  if (area != on_stack)
    g_free (area);
}

void
clipseg_probs_to_labels (float *probs, int n_classes, int n_pixels, float prob_thd,
    float area_thd, int32_t *labels)
{
  int C = n_classes, n = n_pixels;

  if (C < 1 || n < 1)
    return;
  for (int pass = area_thd > 0.0f ? 0 : 1; pass < 2; pass++) {
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
      int best = 0;

      /* the first maximum wins ties, as torch.argmax does */
      for (int c = 1; c < C; c++)
        if (probs[(size_t) c * n + i] > probs[(size_t) best * n + i])
          best = c;
      labels[i] = pass == 1 && probs[(size_t) best * n + i] < prob_thd ? 0 : best;
    }
    if (pass == 0)
      drop_small_classes (probs, C, n, area_thd, labels);
  }
}

/* MaskCLIP's thresholds and PAMR's steps in range, MaskCLIP's for its mode only. */
static gboolean
refinements_check (const struct clipseg_segment_params *sp, GError **error)
{
  if (!(sp->ks_thresh >= 0.0f && sp->ks_thresh <= 1.0f))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "key smoothing threshold %g is not in [0, 1]", sp->ks_thresh);
  if (!(sp->pd_thresh >= 0.0f && sp->pd_thresh <= 1.0f))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "prompt denoising threshold %g is not in [0, 1]", sp->pd_thresh);
  if ((sp->ks_thresh > 0.0f || sp->pd_thresh > 0.0f) && sp->mode != CLIPSEG_MODE_MASKCLIP)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "key smoothing and prompt denoising are options of mode maskclip, " "not of mode %s",
        clipseg_mode_name (sp->mode));
  if (sp->pamr_steps < 0 || sp->pamr_steps > CLIPSEG_MAX_PAMR_STEPS)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "PAMR steps %d is not in [0, %d]", sp->pamr_steps, CLIPSEG_MAX_PAMR_STEPS);
  return TRUE;
}

gboolean
clipseg_segment_params_check (const struct clipseg_model *model,
    const struct clipseg_segment_params *sp, GError **error)
{
  int p = model->w.vision.patch;

  if ((unsigned) sp->mode >= CLIPSEG_MODE_COUNT)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "dense mode %d is not a valid mode", (int) sp->mode);
  /* SC-CLIP's last block is written for CLIP's block: no RoPE, no SwiGLU */
  if (sp->mode == CLIPSEG_MODE_SCCLIP && model->w.vision.rope_seq)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "mode scclip runs on OpenAI-architecture CLIP towers, not on this "
        "EVA02 tower (its modes: vanilla, sclip, maskclip, clearclip, naclip)");
  if (sp->crop != 0 && (sp->crop < p || sp->stride < 1 || sp->stride > sp->crop))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "window %d / stride %d: the window must be 0 (whole image) or at least "
        "the patch size %d, and the stride between 1 and the window, so windows cover every pixel",
        sp->crop, sp->stride, p);
  if (!(sp->logit_scale > 0.0f) || !isfinite (sp->logit_scale))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "logit scale %g must be a positive number", sp->logit_scale);
  if (!(sp->prob_thd >= 0.0f && sp->prob_thd <= 1.0f))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "probability threshold %g is not in [0, 1]", sp->prob_thd);
  if (!(sp->area_thd >= 0.0f && sp->area_thd < 1.0f))
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "area threshold %g is not in [0, 1)", sp->area_thd);
  return refinements_check (sp, error);
}

/* Bytes one forward of one window of @L tokens takes: its residual stream,
 * patches and block scratch. */
static double
window_bytes (const struct clip_vision *v, int n_threads, int L)
{
  int p = v->patch;

  return sizeof (float) * ((double) L * v->tower.width + (double) (L - 1) * 3 * p * p
      + (double) block_scratch_size (L, L, v->tower.width, v->tower.heads,
          tower_hidden_width (&v->tower), n_threads));
}

gboolean
clipseg_segment_size_check (const struct clipseg_model *model, int n_threads, int H, int W,
    const struct clipseg_segment_params *sp, GError **error)
{
  const struct clip_vision *v = &model->w.vision;
  int p = v->patch;
  int win_h = sp->crop ? MIN (sp->crop, H) : H, win_w = sp->crop ? MIN (sp->crop, W) : W;
  double L = (double) (win_h / p) * (double) (win_w / p) + 1, bytes;

  if (!clipseg_segment_params_check (model, sp, error))
    return FALSE;
  if (H < p || W < p)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "image %dx%d (height x width) is smaller than one %d-pixel patch", H, W, p);
  if (L > CLIPSEG_MAX_WINDOW_TOKENS)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "a %dx%d window has %.0f tokens (at most %d: attention grows with "
        "their square): use sliding windows (a smaller crop)", win_h, win_w, L,
        CLIPSEG_MAX_WINDOW_TOKENS);
  n_threads = engine_resolve_threads (n_threads);
  /* key smoothing adds one window's N x N key similarities, SC-CLIP two and
   * its kept block outputs */
  bytes = window_bytes (v, n_threads, (int) L)
      + (sp->ks_thresh > 0.0f ? sizeof (float) * (L - 1) * (L - 1) : 0.0)
      + (sp->mode == CLIPSEG_MODE_SCCLIP ? sizeof (float) * (double) scclip_scratch_size (1,
          (int) L - 1, v->tower.width) : 0.0);
  if (bytes > (double) CLIPSEG_MAX_WINDOW_BYTES)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "a %dx%d window has %.0f tokens, whose forward on %d threads "
        "would take %.0f bytes of scratch (at most %" G_GUINT64_FORMAT
        "): use sliding windows (a smaller crop) or fewer threads", win_h, win_w, L, n_threads,
        bytes, (guint64) CLIPSEG_MAX_WINDOW_BYTES);
  return TRUE;
}

/* FALSE with an INVALID error naming the first NaN or infinite value of the
 * [3, height, width] pixels: they would poison every cosine of their window. */
static gboolean
check_pixels (const float *pixels, int height, int width, GError **error)
{
  size_t n = (size_t) 3 * height * width, bad = n;

#pragma omp parallel for reduction(min:bad)
  for (size_t i = 0; i < n; i++)
    if (!isfinite (pixels[i]) && i < bad)
      bad = i;
  if (bad == n)
    return TRUE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
      "pixel (channel %zu, row %zu, column %zu) is %g, not a finite number",
      bad / ((size_t) height * width), bad / width % height, bad % width, pixels[bad]);
  return FALSE;
}

static gboolean
check_segment_args (const struct clipseg_state *st, int H, int W,
    const struct clipseg_queries *queries, const struct clipseg_segment_params *sp, int out_h,
    int out_w, GError **error)
{
  if (!clipseg_segment_size_check (st->model, st->n_threads, H, W, sp, error))
    return FALSE;
  if (out_h < 1 || out_w < 1)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL, "output size %dx%d is empty",
        out_h, out_w);
  /* pixels are counted in int from here to the label map */
  if ((int64_t) out_h * out_w > G_MAXINT)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "output size %dx%d has more than %d pixels", out_h, out_w, G_MAXINT);
  if (clipseg_queries_embed_dim (queries) != st->model->w.embed_dim)
    return engine_fail (error, CLIPSEG_ENGINE_ERROR_INVALID, NULL,
        "queries are %d-dimensional but the model embeds in %d dimensions",
        clipseg_queries_embed_dim (queries), st->model->w.embed_dim);
  return engine_check_finite (clipseg_queries_embeddings (queries),
      (size_t) clipseg_queries_n_queries (queries) * clipseg_queries_embed_dim (queries),
      "text embeddings", error);
}

gboolean
clipseg_state_segment (struct clipseg_state *state, const float *pixels, int height, int width,
    const struct clipseg_queries *queries, const struct clipseg_segment_params *params,
    int out_height, int out_width, float *probs, int32_t *labels, GError **error)
{
  int Q = clipseg_queries_n_queries (queries), C = clipseg_queries_n_classes (queries);
  size_t n_out = (size_t) out_height * out_width;
  struct layout lo;
  float *sum, *cosines;

  if (!check_segment_args (state, height, width, queries, params, out_height, out_width, error)
      || !check_pixels (pixels, height, width, error))
    return FALSE;
  engine_use_threads (state->n_threads);
  plan_windows (params, height, width, out_height, out_width, state->model->w.vision.patch, &lo);

  sum = buffer_try_reserve (&state->segment.sum, (size_t) lo.sum_h * lo.sum_w * Q,
      "summed window cosines", error);
  if (!sum)
    return FALSE;
  memset (sum, 0, (size_t) lo.sum_h * lo.sum_w * Q * sizeof *sum);
  if (!accumulate_windows (state, pixels, &lo, queries, params, sum, error))
    return FALSE;
  average_windows (&lo, Q, sum);
  if (!engine_check_finite (sum, (size_t) lo.sum_h * lo.sum_w * Q, "cosines of the patches "
          "with the queries", error))
    return FALSE;
  cosines = sum;
  if (lo.sum_h != out_height || lo.sum_w != out_width) {
    cosines = buffer_try_reserve (&state->segment.resized, n_out * Q, "cosines at the output size",
        error);
    if (!cosines)
      return FALSE;
    memset (cosines, 0, n_out * Q * sizeof *cosines);
    resize_add (sum, lo.sum_h, lo.sum_w, Q, cosines, out_width, 0, 0, out_height, out_width);
  }
  if (params->pamr_steps > 0 && !refine_pamr (state, pixels, height, width, params->pamr_steps,
          cosines, out_height, out_width, Q, error))
    return FALSE;
  if (!probs)
    probs =
        buffer_try_reserve (&state->segment.probs, (size_t) C * n_out, "class probabilities",
        error);
  if (!probs)
    return FALSE;
  classify_pixels (cosines, (int) n_out, queries, params->logit_scale, probs);
  if (labels || params->area_thd > 0.0f) {
    if (!labels)
      labels = label_buffer_try_reserve (&state->segment.labels, n_out, "label map", error);
    if (!labels)
      return FALSE;
    clipseg_probs_to_labels (probs, C, (int) n_out, params->prob_thd, params->area_thd, labels);
  }
  return TRUE;
}

gboolean
clipseg_state_encode_dense (struct clipseg_state *state, const float *pixels, int height,
    int width, enum clipseg_mode mode, float *features, GError **error)
{
  int p = state->model->w.vision.patch;
  struct clipseg_segment_params whole_image = clipseg_segment_default_params ();
  struct window whole = { 0, 0 };
  struct vision_plan plan;

  whole_image.mode = mode;
  whole_image.crop = 0;
  if (!clipseg_segment_size_check (state->model, state->n_threads, height, width, &whole_image,
          error))
    return FALSE;
  if (height % p || width % p) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "image size %dx%d (height x width) is not a positive multiple of the patch size %d",
        height, width, p);
    return FALSE;
  }
  if (!check_pixels (pixels, height, width, error))
    return FALSE;
  engine_use_threads (state->n_threads);
  vision_plan (&state->model->w, &state->vision, height, width, mode, state->abort,
      state->abort_data, &plan);
  vision_forward (&state->model->w, &plan, &state->vision.threads[0], state->n_threads, pixels,
      height, width, &whole, 1, features, NULL);
  return !engine_aborted (state, error);
}

void
segment_scratch_clear (struct segment_scratch *scratch)
{
  struct buffer *buffers[] = {
    &scratch->features, &scratch->keys, &scratch->logits, &scratch->sum, &scratch->resized,
    &scratch->refine, &scratch->probs,
  };

  for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
    buffer_clear (buffers[i]);
  label_buffer_clear (&scratch->labels);
}
