/* clipseg-engine.h — dense open-vocabulary segmentation with a stock CLIP checkpoint.
 *
 * The engine turns CLIP into a per-pixel classifier without training: the last
 * block of the vision tower is run in a dense mode (SCLIP's correlative
 * self-attention by default, MaskCLIP's value path, ClearCLIP's query-query
 * attention, NACLIP's neighbourhood-biased key-key attention, or unchanged
 * CLIP: enum clipseg_mode), every
 * patch feature is compared by cosine with text embeddings of the user's
 * labels, and SCLIP's sliding-window procedure turns the cosines into class
 * probabilities and a label map.
 *
 * Basic usage:
 *
 *   GError *err = NULL;
 *   struct clipseg_model *model =
 *       clipseg_model_load ("clip-vit-base-patch16/", clipseg_model_default_params (), &err);
 *   struct clipseg_labels *labels = clipseg_labels_parse_list ("sky, person|man, car", &err);
 *   char **templates = clipseg_templates_load ("imagenet80", &err);
 *   struct clipseg_queries *queries =
 *       clipseg_queries_new (model, labels, (const char *const *) templates, 2, &err);
 *   struct clipseg_state *state = clipseg_state_new (model, 2);
 *   struct clipseg_segment_params sp = clipseg_segment_default_params ();
 *   for (each frame) {
 *     // pixels: float [3, H, W], (x/255 - mean) / std with the model's mean/std
 *     clipseg_state_segment (state, pixels, H, W, queries, &sp, H, W, probs, label_map, &err);
 *   }
 *   clipseg_state_free (state);
 *   clipseg_queries_free (queries);
 *   g_strfreev (templates);
 *   clipseg_labels_free (labels);
 *   clipseg_model_unref (model);
 *
 * Thread safety: a loaded model and prepared queries are immutable and may be
 * used from any number of threads at once (the model is reference counted so
 * several owners can share it). A state is used by one thread at a time; give
 * every thread its own. Functions taking a state set the calling thread's
 * OpenMP thread count to the state's n_threads (at most OMP_THREAD_LIMIT) and
 * turn off its dynamic team sizes (OMP_DYNAMIC), which hang OpenBLAS's
 * threaded GEMMs; clipseg_queries_new does the same with its own @n_threads.
 * They may be called from inside an
 * OpenMP parallel region: when the region gives them fewer threads than asked
 * for (nested parallelism off, OMP_DYNAMIC, a thread limit), the results are
 * the same, only slower.
 *
 * Errors: functions that can fail take a GError ** and return NULL/FALSE with
 * the error set in CLIPSEG_ENGINE_ERROR; messages name the file, tensor, field
 * or value at fault. @error may be NULL; the outcome is the same. Nothing here
 * exits or aborts on bad input (only GLib's allocator aborts when memory runs
 * out). NULL for a pointer argument not documented as optional is a
 * programming error, not bad input: it is not reported through GError, and
 * where it is checked the check is g_return_val_if_fail() (or
 * g_return_if_fail()), which logs a critical and returns. Diagnostics go
 * through clipseg_log_set's callback; the default one passes warnings and
 * errors to g_log, which prints them unless the application installs its own
 * GLib log handler.
 *
 * Ownership: every pointer returned by a _new or _load function belongs to the
 * caller and is released with the matching _free or _unref. Buffers passed in
 * (pixels, probs, label maps, features) stay the caller's; the engine only
 * reads or fills them during the call.
 */
#ifndef CLIPSEG_ENGINE_H
#define CLIPSEG_ENGINE_H

#include <glib.h>
#include <stdint.h>

#include "clipseg-tokenizer.h"

G_BEGIN_DECLS

#define CLIPSEG_ENGINE_ERROR (clipseg_engine_error_quark ())
GQuark clipseg_engine_error_quark (void);

enum clipseg_engine_error {
  CLIPSEG_ENGINE_ERROR_IO,       /* a file is missing or cannot be read/mapped */
  CLIPSEG_ENGINE_ERROR_FORMAT,   /* a file is malformed (safetensors, JSON, vocabulary) */
  CLIPSEG_ENGINE_ERROR_MODEL,    /* missing/mis-shaped tensor, unknown architecture */
  CLIPSEG_ENGINE_ERROR_INVALID,  /* an argument value is out of range (labels, sizes, params) */
  CLIPSEG_ENGINE_ERROR_CANCELLED, /* the state's abort callback stopped the call */
  CLIPSEG_ENGINE_ERROR_NOT_FINITE, /* text embeddings or cosines came out NaN or infinite
                                    * (finite weights too large for float): no answer */
};

/* ---- logging ------------------------------------------------------------ */

enum clipseg_log_level {
  CLIPSEG_LOG_LEVEL_ERROR,
  CLIPSEG_LOG_LEVEL_WARNING,
  CLIPSEG_LOG_LEVEL_INFO,
  CLIPSEG_LOG_LEVEL_DEBUG,
};

typedef void (*clipseg_log_func) (enum clipseg_log_level level, const char *message,
    void *user_data);

/* Routes the engine's diagnostics (for example "label text was truncated") to
 * @func; NULL restores the default, which sends warnings and errors to
 * g_log (domain "clipseg-engine") and drops the rest. Process-wide. */
void clipseg_log_set (clipseg_log_func func, void *user_data);

/* ---- model ---------------------------------------------------------------- */

enum clipseg_activation {
  CLIPSEG_ACTIVATION_AUTO,        /* from config.json; QuickGELU for OpenAI/OpenCLIP files */
  CLIPSEG_ACTIVATION_QUICK_GELU,  /* x * sigmoid(1.702 x), OpenAI CLIP */
  CLIPSEG_ACTIVATION_GELU,        /* exact erf GELU, OpenCLIP LAION configs */
};

/* Number format of the linear layers' weights and inputs, and of the
 * attention products' operands (q, k, v and the probabilities, where the CPU
 * has AVX512-BF16). Layer norms, softmaxes, residuals, every sum and the final
 * cosines are fp32 whatever the choice. */
enum clipseg_precision {
  CLIPSEG_PRECISION_AUTO,  /* bf16 where oneDNN and the CPU's bf16 dot products
                            * (AVX512-BF16) are present, else fp32 */
  CLIPSEG_PRECISION_FP32,
  CLIPSEG_PRECISION_BF16,  /* weights and each linear's input rounded to bf16,
                            * products summed in fp32; falls back to fp32 with a
                            * logged warning where it cannot run */
};

/* "auto", "fp32", "bf16"; NULL for an invalid value. */
const char *clipseg_precision_name (enum clipseg_precision precision);
/* Parses a precision name; returns FALSE (and leaves *precision) when unknown. */
gboolean clipseg_precision_from_name (const char *name, enum clipseg_precision *precision);

struct clipseg_model_params {
  /* BPE vocabulary for a checkpoint that carries none (OpenCLIP/OpenAI safetensors
   * file): bpe_simple_vocab_16e6.txt[.gz], or a directory holding vocab.json +
   * merges.txt. NULL: look beside the checkpoint file. Not copied; read during load. */
  const char *vocab_path;
  /* Overrides the activation the checkpoint implies (AUTO keeps it). */
  enum clipseg_activation activation;
  /* AUTO by default. The environment variable CLIPSEG_DISABLE_BF16=1 makes
   * AUTO and BF16 mean FP32 (as on a CPU without bf16), CLIPSEG_DISABLE_DNNL=1
   * runs the linears with OpenBLAS in fp32 (as a build without oneDNN). */
  enum clipseg_precision precision;
};

struct clipseg_model_params clipseg_model_default_params (void);

/* Loads a Hugging Face CLIP directory (config.json, model.safetensors or
 * model.safetensors.index.json with its shards, vocab.json, merges.txt) or a
 * single safetensors file with OpenCLIP/OpenAI key names (hyperparameters
 * inferred from tensor shapes); either may instead hold EVA02-CLIP's
 * (CLIPSelf's) EVA-CLIP names, the directory then with model_type
 * "eva02-clip" as scripts/convert-checkpoint.py writes it. Every tensor must hold finite numbers (the
 * first that does not is named). F32 tensors are used in place from the mapped
 * file when aligned; F16/BF16 are converted to F32 once. With oneDNN the
 * linear weights are then packed once into its layout (bf16 or fp32) and the
 * converted F32 copies freed. Returns a model with one reference, or NULL
 * with @error set. */
struct clipseg_model *clipseg_model_load (const char *path, struct clipseg_model_params params,
    GError **error);
struct clipseg_model *clipseg_model_ref (struct clipseg_model *model);
void clipseg_model_unref (struct clipseg_model *model);

struct clipseg_model_info {
  const char *naming;         /* "huggingface", "openclip" or "eva02" */
  const char *dtype;          /* on-disk dtype of the weights: "F32", "F16", "BF16" or "mixed" */
  enum clipseg_activation activation;  /* resolved: QUICK_GELU or GELU */
  float layer_norm_eps;
  int embed_dim;              /* joint embedding width E */
  int image_size;             /* native input side in pixels (224 for ViT-B/16) */
  int patch_size;
  int vision_width, vision_layers, vision_heads, vision_mlp;
  int text_width, text_layers, text_heads, text_mlp;
  int context_length, vocab_size;
  float logit_scale;          /* exp() of the checkpoint's logit_scale (100 for OpenAI) */
  float image_mean[3], image_std[3];  /* RGB, for pixels scaled to [0,1] */
  int64_t n_params;
  enum clipseg_precision precision;   /* what the linears run in: FP32 or BF16 */
  const char *gemm_library;   /* what runs them, with its version: "oneDNN 2.6.3", "OpenBLAS 0.3.21" */
  const char *gemm_isa;       /* the instruction set it dispatches to, e.g. "avx512_core_bf16" */
  const char *attention_kernel;  /* what runs attention: "avx512-bf16" (bf16 products),
                               * "avx512" or "portable" (fp32) */
};

/* Owned by the model; valid while the model lives. */
const struct clipseg_model_info *clipseg_model_get_info (const struct clipseg_model *model);
const struct clipseg_tokenizer *clipseg_model_get_tokenizer (const struct clipseg_model *model);

/* ---- labels and templates ----------------------------------------------- */

/* A set of classes, each with one or more names (synonyms). Every name becomes
 * one query; a class's probability is the max over its queries. */
struct clipseg_labels;

/* Most names (synonyms over all classes) a label set may have, and most
 * prompts (names x templates) one set of queries encodes: LVIS's 1,203
 * classes with three synonyms each under OpenAI's 80 templates fit. They
 * bound the memory and time a label set takes; the parsers refuse more
 * names, and clipseg_queries_check_size more prompts. */
#define CLIPSEG_MAX_NAMES 4096
#define CLIPSEG_MAX_PROMPTS (4096 * 80)

/* SCLIP class-file format: one class per line, synonyms separated by exactly
 * ", "; a final newline is optional. Empty names are an error naming the line. */
struct clipseg_labels *clipseg_labels_parse_file_text (const char *text, GError **error);
/* Reads the class file @path (at most 1 MiB: the limit is checked before
 * reading, and anything but a regular file is an error naming what it is)
 * and parses it as clipseg_labels_parse_file_text does; errors name @path. */
struct clipseg_labels *clipseg_labels_load_file (const char *path, GError **error);
/* Inline list: classes separated by ',', synonyms by '|', surrounding spaces
 * trimmed ("person|man, car"). Empty names are an error naming the position. */
struct clipseg_labels *clipseg_labels_parse_list (const char *text, GError **error);
/* Adds a class at index 0 whose synonyms are @names (a background class).
 * @n_names must be positive and every name non-blank. */
void clipseg_labels_prepend_class (struct clipseg_labels *labels, const char *const *names, int n_names);
void clipseg_labels_free (struct clipseg_labels *labels);
int clipseg_labels_n_classes (const struct clipseg_labels *labels);
int clipseg_labels_n_names (const struct clipseg_labels *labels, int class_index);
const char *clipseg_labels_name (const struct clipseg_labels *labels, int class_index, int name_index);

/* Resolves a template set: "imagenet80" (OpenAI's 80 ImageNet templates),
 * "single" ("a photo of a {}."), "none" (the label itself), or the path of a
 * UTF-8 file with one template per line, each containing "{}". Returns a
 * NULL-terminated array to free with g_strfreev, or NULL with @error set. */
char **clipseg_templates_load (const char *spec, GError **error);

/* ---- class queries (text side) ------------------------------------------- */

/* Lets another thread stop a long call: polled between transformer layers
 * (clipseg_state_set_abort, clipseg_queries_encode_step_abortable). */
typedef gboolean (*clipseg_abort_func) (void *user_data);

/* Text embeddings of every name of @labels, one row per name in label order:
 * each template filled with the name is encoded, L2-normalised, averaged over
 * templates and renormalised. Immutable once made. */
struct clipseg_queries;

/* Fails with CLIPSEG_ENGINE_ERROR_NOT_FINITE when an embedding comes out NaN
 * or infinite. */
struct clipseg_queries *clipseg_queries_new (struct clipseg_model *model,
    const struct clipseg_labels *labels, const char *const *templates, int n_threads,
    GError **error);
/* Whether @labels under @templates stay within CLIPSEG_MAX_NAMES and
 * CLIPSEG_MAX_PROMPTS (an INVALID error saying the counts otherwise); the
 * constructors check the same, callers can check ahead at once. */
gboolean clipseg_queries_check_size (const struct clipseg_labels *labels,
    const char *const *templates, GError **error);

/* The same, encoded a few prompts at a time, for a caller that cannot wait
 * for a whole label set (a live stream): _new_deferred only copies the names
 * and templates; each _encode_step then tokenizes and encodes up to
 * @max_prompts more prompts, template by
 * template (every name's first template, then every name's second, ...), the
 * first step at least every name's first template. After a step each query
 * is the normalised mean of the templates encoded for its name so far, so
 * after whole templates the queries equal clipseg_queries_new's with those
 * templates, and after the last step its result. Returns the prompts still to
 * encode (0: complete). Until the first step the embeddings are zero. A step
 * changes the queries: not while another thread uses them. @model must
 * outlive the queries. Both fail with CLIPSEG_ENGINE_ERROR_INVALID, saying
 * "out of memory", when the prompts of that many names and templates cannot
 * be allocated. */
struct clipseg_queries *clipseg_queries_new_deferred (struct clipseg_model *model,
    const struct clipseg_labels *labels, const char *const *templates, GError **error);
int clipseg_queries_encode_step (struct clipseg_queries *queries, int max_prompts,
    int n_threads);
/* The same, polling @abort (as clipseg_state_set_abort's, thread-safe)
 * between layers: when it returns TRUE the step stops within one layer's
 * time and changes nothing (the prompts stay pending). A first step of
 * thousands of names takes seconds. */
int clipseg_queries_encode_step_abortable (struct clipseg_queries *queries, int max_prompts,
    int n_threads, clipseg_abort_func abort, void *user_data);
int clipseg_queries_n_pending (const struct clipseg_queries *queries);

void clipseg_queries_free (struct clipseg_queries *queries);
int clipseg_queries_n_queries (const struct clipseg_queries *queries);
int clipseg_queries_n_classes (const struct clipseg_queries *queries);
int clipseg_queries_embed_dim (const struct clipseg_queries *queries);
/* [Q, E], row-major, each row unit length. */
const float *clipseg_queries_embeddings (const struct clipseg_queries *queries);
/* [Q]: the class index of each query. */
const int *clipseg_queries_class_index (const struct clipseg_queries *queries);

/* ---- per-thread state and the vision side ------------------------------- */

/* How the last vision block mixes tokens (all earlier blocks are stock CLIP;
 * SC-CLIP also reads their outputs). SCLIP and MaskCLIP keep the block's
 * residual connection and MLP; ClearCLIP, NACLIP and SC-CLIP drop both, so
 * the block's output is out_proj of the mixing. */
enum clipseg_mode {
  CLIPSEG_MODE_VANILLA,   /* unchanged CLIP */
  CLIPSEG_MODE_MASKCLIP,  /* attention replaced by out_proj(V) */
  CLIPSEG_MODE_SCLIP,     /* softmax(QQ^T/sqrt d) + softmax(KK^T/sqrt d) */
  CLIPSEG_MODE_CLEARCLIP, /* softmax(QQ^T/sqrt d), no residual, no MLP */
  CLIPSEG_MODE_NACLIP,    /* softmax(KK^T/sqrt d + Gaussian(sigma 5 patches)), no residual, no MLP */
  CLIPSEG_MODE_SCCLIP,    /* SC-CLIP: LOF anomaly fixing, block-9 similarity prior and aggregation
                           * + softmax(KK^T/sqrt d), halved; no residual, no MLP, + 0.3 CLS;
                           * block-4 aggregation; multi-level fusion of blocks 4-10 */
  CLIPSEG_MODE_COUNT,
};

/* "vanilla", "maskclip", "sclip", "clearclip", "naclip", "scclip"; NULL for an invalid mode. */
const char *clipseg_mode_name (enum clipseg_mode mode);
/* Parses a mode name; returns FALSE (and leaves *mode) when unknown. */
gboolean clipseg_mode_from_name (const char *name, enum clipseg_mode *mode);

struct clipseg_state;

/* Most threads a state or clipseg_queries_new uses; more are capped to it. */
#define CLIPSEG_MAX_THREADS 1024

/* A state for one thread, holding a reference to @model. Scratch buffers are
 * sized on first use and reused while the input size stays the same.
 * @n_threads <= 0 means all cores; at most CLIPSEG_MAX_THREADS are used. */
struct clipseg_state *clipseg_state_new (struct clipseg_model *model, int n_threads);
void clipseg_state_free (struct clipseg_state *state);

/* Lets another thread stop a long call on @state: clipseg_state_segment and
 * clipseg_state_encode_dense poll @abort (from their worker threads too, so it
 * must be thread-safe, e.g. read an atomic flag) between transformer layers
 * and fail with CLIPSEG_ENGINE_ERROR_CANCELLED within one layer's time of it
 * returning TRUE. NULL: never stop (the default). */
void clipseg_state_set_abort (struct clipseg_state *state, clipseg_abort_func abort,
    void *user_data);

/* Dense patch features of one image. @pixels: normalised float [3, H, W] with
 * H and W multiples of the patch size (positional embeddings are interpolated
 * when the grid differs from the checkpoint's). @features: [(H/p)·(W/p), E],
 * row-major patch order, each row unit length. */
gboolean clipseg_state_encode_dense (struct clipseg_state *state, const float *pixels,
    int height, int width, enum clipseg_mode mode, float *features, GError **error);

struct clipseg_segment_params {
  enum clipseg_mode mode;
  int crop;           /* window side in pixels; 0 = one whole-image pass */
  int stride;         /* window step in pixels (ignored when crop is 0) */
  float logit_scale;  /* multiplies cosines before the softmax over queries */
  float prob_thd;     /* pixels whose best probability is below go to class 0 */
  float area_thd;     /* foreground classes covering <= this share get probability 0 (their
                       * pixels go to the next most probable class); 0 = off */
  /* MaskCLIP's refinements of each window's patch-grid cosines (mode maskclip
   * only; 0 = off, as in every MaskCLIP config). Prompt denoising first:
   * queries whose softmax(100·cosine) over queries stays below pd_thresh at
   * every patch of the window get cosine -100 there. Then key smoothing:
   * P = softmax(100·cosine) over queries, and each patch whose best P is
   * below ks_thresh takes Σ_j W[i,j]·P[j,:], W = Kn Knᵀ with Kn the last
   * block's out_proj(K) of the window's patches, each channel L2-normalised
   * over the patches (MaskCLIP's code); the other patches keep P. From there
   * on these scores take the cosines' place (logit_scale, softmax): the label
   * map is MaskCLIP's. MaskCLIP's setting: ks_thresh 1, pd_thresh 0.5. */
  float ks_thresh;    /* in [0, 1] */
  float pd_thresh;    /* in [0, 1] */
  /* PAMR (SCLIP's and NACLIP's pamr.py): iterations of pixel-adaptive
   * refinement of the cosines at the output size before the softmax, with
   * affinities of the pixels resized to the output size to their 8
   * neighbours at distances 8 and 16 (replicate padding). 0 = off (SCLIP's
   * default); NACLIP ships 10. At most CLIPSEG_MAX_PAMR_STEPS. */
  int pamr_steps;
};

#define CLIPSEG_MAX_PAMR_STEPS 100

/* SCLIP's defaults: sclip, crop 224, stride 112, logit_scale 40, no thresholds,
 * no refinement. */
struct clipseg_segment_params clipseg_segment_default_params (void);

/* Whether @params suit @model whatever the image: a valid mode, a crop of 0 or
 * at least the patch size with a stride between 1 and the crop, a positive
 * logit scale, thresholds in range. clipseg_state_segment checks the same;
 * callers taking settings from users can check them ahead. */
gboolean clipseg_segment_params_check (const struct clipseg_model *model,
    const struct clipseg_segment_params *params, GError **error);

/* Whether one @height x @width image can be segmented with @params on
 * @n_threads threads (as clipseg_state_new resolves them): the params check,
 * sides of at least one patch, at most CLIPSEG_MAX_WINDOW_TOKENS tokens per
 * window (attention time grows with their square: a 4096x5456 whole-image pass
 * of ViT-B/16 would take minutes per frame; CLIP methods use up to 1025) and
 * the scratch of one window's forward (activations, and attention tiles for
 * every thread, linear in the tokens) within CLIPSEG_MAX_WINDOW_BYTES. Callers taking sizes from users (an
 * element's resolution and window) can check them ahead and fall back to
 * sliding windows. */
#define CLIPSEG_MAX_WINDOW_TOKENS (1 << 14)
#define CLIPSEG_MAX_WINDOW_BYTES (G_GUINT64_CONSTANT (4) << 30)
gboolean clipseg_segment_size_check (const struct clipseg_model *model, int n_threads,
    int height, int width, const struct clipseg_segment_params *params, GError **error);

/* Segments one image of any size (sides >= the patch size). Windows of @crop
 * with @stride as SCLIP slides them, batched into the same matrix products;
 * per-window cosines upsampled bilinearly and averaged over overlaps, resized
 * to @out_height x @out_width, scaled, softmaxed over all queries and reduced
 * to classes by the max over synonyms. @probs (may be NULL): [C, out_h, out_w]
 * class probabilities after the area threshold. @labels (may be NULL):
 * [out_h, out_w] argmax class after both thresholds. Fails with
 * CLIPSEG_ENGINE_ERROR_INVALID when out_h·out_w exceeds INT_MAX,
 * clipseg_segment_size_check fails or the scratch that the image, output size
 * and query count ask for cannot be allocated ("out of memory"), with
 * CLIPSEG_ENGINE_ERROR_CANCELLED when the abort callback stops it, and with
 * CLIPSEG_ENGINE_ERROR_NOT_FINITE when the queries' embeddings or the cosines
 * are NaN or infinite (never a label map from them). */
gboolean clipseg_state_segment (struct clipseg_state *state, const float *pixels, int height,
    int width, const struct clipseg_queries *queries, const struct clipseg_segment_params *params,
    int out_height, int out_width, float *probs, int32_t *labels, GError **error);

/* Most classes clipseg_probs_to_labels decides on without allocating: a
 * label set's (one name each at most) and a background class its caller adds. */
#define CLIPSEG_MAX_CLASSES (CLIPSEG_MAX_NAMES + 1)

/* SCLIP's decision on class probabilities [C, n_pixels], shared by every caller
 * that post-processes probabilities itself (e.g. after temporal smoothing):
 * with @area_thd > 0, foreground classes whose argmax area is <= area_thd of
 * all foreground argmax pixels get probability 0 everywhere (in place); then
 * @labels = argmax, or 0 where the best probability is below @prob_thd.
 * With @n_classes up to CLIPSEG_MAX_CLASSES it allocates nothing, so a
 * caller running it on every frame allocates nothing for it. */
void clipseg_probs_to_labels (float *probs, int n_classes, int n_pixels, float prob_thd,
    float area_thd, int32_t *labels);

/* The size SCLIP resizes an image to: the short side becomes @short_side unless
 * the long side would exceed @long_max (mmcv's keep-ratio rescale, rounding half
 * up). */
void clipseg_resize_dims (int width, int height, int short_side, int long_max, int *out_width,
    int *out_height);

G_END_DECLS

#endif
