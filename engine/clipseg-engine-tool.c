/* clipseg-engine — every stage of the engine on .npy files, so any reference
 * implementation can check it:
 *
 *   clipseg-engine info MODEL
 *   clipseg-engine tokenize MODEL TEXT...
 *   clipseg-engine text MODEL --labels-file FILE [--templates T] --out OUT.npy
 *   clipseg-engine dense MODEL --input X.npy --mode M --out F.npy
 *   clipseg-engine segment MODEL --input X.npy --labels-file FILE --out P.npy [--pred L.npy] ...
 *       [--key-smoothing T] [--prompt-denoising T] [--pamr-steps N]
 *
 * MODEL is a Hugging Face CLIP directory, an OpenCLIP/OpenAI safetensors file or
 * an EVA02-CLIP (CLIPSelf) directory from scripts/convert-checkpoint.py.
 * Errors go to stderr and the exit status is 1 (2 for bad usage).
 */
#include <stdio.h>
#include <string.h>

#include "clipseg-engine.h"
#include "npy.h"

struct options
{
  char *vocab;
  char *precision;
  int threads;
  char *labels_file;
  char *templates;
  char *input;
  char *out;
  char *pred;
  char *mode;
  int crop;
  int stride;
  double logit_scale;
  double prob_thd;
  double area_thd;
  double ks_thresh;
  double pd_thresh;
  int pamr_steps;
};

static struct options opt = {
  .threads = 0,.crop = 224,.stride = 112,.logit_scale = 40.0,.prob_thd = 0.0,.area_thd = 0.0,
};

static const GOptionEntry common_entries[] = {
  {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &opt.vocab,
        "BPE vocabulary for a checkpoint file without one beside it (bpe_simple_vocab_16e6.txt[.gz] or a directory with vocab.json + merges.txt)",
      "PATH"},
  {"threads", 0, 0, G_OPTION_ARG_INT, &opt.threads, "Threads to use (default: all cores)", "N"},
  {"precision", 0, 0, G_OPTION_ARG_STRING, &opt.precision,
        "Linear layers in auto (default: bf16 where oneDNN and the CPU support it), fp32 or bf16",
      "P"},
  {NULL}
};

static const GOptionEntry text_entries[] = {
  {"labels-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.labels_file,
      "Classes, one per line, synonyms separated by \", \"", "FILE"},
  {"templates", 0, 0, G_OPTION_ARG_STRING, &opt.templates,
      "imagenet80 (default), single, none, or a file with one template per line", "T"},
  {NULL}
};

static const GOptionEntry out_entries[] = {
  {"out", 0, 0, G_OPTION_ARG_FILENAME, &opt.out, "Output array", "OUT.npy"},
  {NULL}
};

#define MODE_USAGE "--mode must be vanilla, maskclip, sclip, clearclip, naclip or scclip"

static const GOptionEntry image_entries[] = {
  {"input", 0, 0, G_OPTION_ARG_FILENAME, &opt.input, "Normalised pixels, float32 [3, H, W]",
      "X.npy"},
  {"mode", 0, 0, G_OPTION_ARG_STRING, &opt.mode,
      "Dense mode: vanilla, maskclip, sclip (default), clearclip, naclip or scclip", "M"},
  {NULL}
};

static const GOptionEntry segment_entries[] = {
  {"pred", 0, 0, G_OPTION_ARG_FILENAME, &opt.pred, "Label map, int32 [H, W]", "L.npy"},
  {"crop", 0, 0, G_OPTION_ARG_INT, &opt.crop,
      "Window side in pixels, 0 = whole image (default 224)", "PX"},
  {"stride", 0, 0, G_OPTION_ARG_INT, &opt.stride, "Window stride in pixels (default 112)", "PX"},
  {"logit-scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt.logit_scale,
      "Cosine scale before the softmax (default 40)", "S"},
  {"prob-thd", 0, 0, G_OPTION_ARG_DOUBLE, &opt.prob_thd,
      "Pixels less probable than this go to class 0 (default 0)", "P"},
  {"area-thd", 0, 0, G_OPTION_ARG_DOUBLE, &opt.area_thd,
        "Classes covering at most this share of the foreground go to class 0 (default 0 = off)",
      "A"},
  {"key-smoothing", 0, 0, G_OPTION_ARG_DOUBLE, &opt.ks_thresh,
        "MaskCLIP's key smoothing of patches less probable than this, mode maskclip only (default 0 = off; MaskCLIP's setting 1)",
      "T"},
  {"prompt-denoising", 0, 0, G_OPTION_ARG_DOUBLE, &opt.pd_thresh,
        "MaskCLIP's prompt denoising of labels no patch gives this probability, mode maskclip only (default 0 = off; MaskCLIP's setting 0.5)",
      "T"},
  {"pamr-steps", 0, 0, G_OPTION_ARG_INT, &opt.pamr_steps,
        "PAMR refinement steps on the output-size logits (default 0 = off; NACLIP's setting 10)",
      "N"},
  {NULL}
};

static int
fail (GError *error)
{
  fprintf (stderr, "clipseg-engine: %s\n", error->message);
  g_error_free (error);
  return 1;
}

static int
usage (const char *what)
{
  fprintf (stderr, "clipseg-engine: %s (see --help)\n", what);
  return 2;
}

static struct clipseg_model *
load_model (const char *path, GError **error)
{
  struct clipseg_model_params params = clipseg_model_default_params ();

  params.vocab_path = opt.vocab;
  if (opt.precision && !clipseg_precision_from_name (opt.precision, &params.precision)) {
    g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
        "--precision must be auto, fp32 or bf16, not '%s'", opt.precision);
    return NULL;
  }
  return clipseg_model_load (path, params, error);
}

static const char *
activation_name (enum clipseg_activation act)
{
  return act == CLIPSEG_ACTIVATION_GELU ? "gelu" : "quick_gelu";
}

static int
cmd_info (struct clipseg_model *model, int argc, char **argv)
{
  const struct clipseg_model_info *i = clipseg_model_get_info (model);

  printf ("naming: %s\ndtype: %s\nactivation: %s\nlayer_norm_eps: %g\n", i->naming, i->dtype,
      activation_name (i->activation), i->layer_norm_eps);
  printf ("embed_dim: %d\nimage_size: %d\npatch_size: %d\n", i->embed_dim, i->image_size,
      i->patch_size);
  printf ("vision_width: %d\nvision_layers: %d\nvision_heads: %d\nvision_mlp: %d\n",
      i->vision_width, i->vision_layers, i->vision_heads, i->vision_mlp);
  printf ("text_width: %d\ntext_layers: %d\ntext_heads: %d\ntext_mlp: %d\n", i->text_width,
      i->text_layers, i->text_heads, i->text_mlp);
  printf ("context_length: %d\nvocab_size: %d\nlogit_scale: %g\nparameters: %" G_GINT64_FORMAT "\n",
      i->context_length, i->vocab_size, i->logit_scale, i->n_params);
  printf ("image_mean: %g %g %g\nimage_std: %g %g %g\n", i->image_mean[0], i->image_mean[1],
      i->image_mean[2], i->image_std[0], i->image_std[1], i->image_std[2]);
  printf ("precision: %s\ngemm: %s\nisa: %s\nattention: %s\n",
      clipseg_precision_name (i->precision), i->gemm_library, i->gemm_isa, i->attention_kernel);
  return 0;
}

static int
cmd_tokenize (struct clipseg_model *model, int argc, char **argv)
{
  const struct clipseg_tokenizer *tok = clipseg_model_get_tokenizer (model);
  int ctx = clipseg_model_get_info (model)->context_length;
  int32_t *ids = g_new (int32_t, ctx);

  if (argc < 1) {
    g_free (ids);
    return usage ("tokenize needs at least one TEXT");
  }
  for (int a = 0; a < argc; a++) {
    gboolean truncated = FALSE;
    int n = clipseg_tokenizer_encode (tok, argv[a], ids, ctx, &truncated);

    for (int i = 0; i < n; i++)
      printf ("%s%d", i ? " " : "", ids[i]);
    printf ("\n");
    if (truncated)
      fprintf (stderr, "clipseg-engine: warning: text %d is longer than the %d-token context; "
          "truncated\n", a + 1, ctx);
  }
  g_free (ids);
  return 0;
}

static struct clipseg_queries *
make_queries (struct clipseg_model *model, GError **error)
{
  struct clipseg_labels *labels = NULL;
  struct clipseg_queries *queries = NULL;
  char **templates = NULL;

  labels = clipseg_labels_load_file (opt.labels_file, error);
  if (labels)
    templates = clipseg_templates_load (opt.templates ? opt.templates : "imagenet80", error);
  if (templates)
    queries =
        clipseg_queries_new (model, labels, (const char *const *) templates, opt.threads, error);
  g_strfreev (templates);
  clipseg_labels_free (labels);
  return queries;
}

static int
cmd_text (struct clipseg_model *model, int argc, char **argv)
{
  GError *error = NULL;
  struct clipseg_queries *q;
  gboolean ok;

  if (!opt.labels_file || !opt.out)
    return usage ("text needs --labels-file and --out");
  if (!(q = make_queries (model, &error)))
    return fail (error);
  ok = npy_write (opt.out, NPY_FLOAT32, 2,
      (int64_t[]) { clipseg_queries_n_queries (q), clipseg_queries_embed_dim (q) },
      clipseg_queries_embeddings (q), &error);
  clipseg_queries_free (q);
  return ok ? 0 : fail (error);
}

static gboolean
read_pixels (struct npy_array *x, GError **error)
{
  const char *problem = NULL;

  if (!npy_read (opt.input, x, error))
    return FALSE;
  if (x->dtype != NPY_FLOAT32)
    problem = "its dtype is int32";
  else if (x->n_dims != 3)
    problem = "its rank is not 3";
  else if (x->shape[0] != 3)
    problem = "its first dimension is not 3";
  else if (x->shape[1] > G_MAXINT / 4 || x->shape[2] > G_MAXINT / 4)
    problem = "it is too large";
  if (!problem)
    return TRUE;
  g_set_error (error, CLIPSEG_ENGINE_ERROR, CLIPSEG_ENGINE_ERROR_INVALID,
      "%s: expected float32 pixels of shape [3, H, W], but %s (rank %d)", opt.input, problem,
      x->n_dims);
  npy_array_clear (x);
  return FALSE;
}

static gboolean
parse_mode (enum clipseg_mode *mode)
{
  *mode = CLIPSEG_MODE_SCLIP;
  return !opt.mode || clipseg_mode_from_name (opt.mode, mode);
}

static int
cmd_dense (struct clipseg_model *model, int argc, char **argv)
{
  GError *error = NULL;
  struct npy_array x;
  struct clipseg_state *st;
  enum clipseg_mode mode;
  int p = clipseg_model_get_info (model)->patch_size, E = clipseg_model_get_info (model)->embed_dim;
  int64_t n;
  float *features;
  gboolean ok;

  if (!opt.input || !opt.out)
    return usage ("dense needs --input and --out");
  if (!parse_mode (&mode))
    return usage (MODE_USAGE);
  if (!read_pixels (&x, &error))
    return fail (error);
  n = (x.shape[1] / p) * (x.shape[2] / p);
  features = g_new (float, MAX (n, 1) * E);
  st = clipseg_state_new (model, opt.threads);
  ok = clipseg_state_encode_dense (st, x.data, (int) x.shape[1], (int) x.shape[2], mode, features,
      &error)
  && npy_write (opt.out, NPY_FLOAT32, 2, (int64_t[]) { n, E }, features, &error);
  clipseg_state_free (st);
  g_free (features);
  npy_array_clear (&x);
  return ok ? 0 : fail (error);
}

static int
cmd_segment (struct clipseg_model *model, int argc, char **argv)
{
  GError *error = NULL;
  struct npy_array x = { 0 };
  struct clipseg_queries *q = NULL;
  struct clipseg_state *st = NULL;
  struct clipseg_segment_params sp = clipseg_segment_default_params ();
  float *probs = NULL;
  int32_t *labels = NULL;
  int H, W, C;
  gboolean ok;

  if (!opt.input || !opt.out || !opt.labels_file)
    return usage ("segment needs --input, --labels-file and --out");
  if (!parse_mode (&sp.mode))
    return usage (MODE_USAGE);
  sp.crop = opt.crop, sp.stride = opt.stride;
  sp.logit_scale = (float) opt.logit_scale;
  sp.prob_thd = (float) opt.prob_thd, sp.area_thd = (float) opt.area_thd;
  sp.ks_thresh = (float) opt.ks_thresh, sp.pd_thresh = (float) opt.pd_thresh;
  sp.pamr_steps = opt.pamr_steps;
  ok = read_pixels (&x, &error) && (q = make_queries (model, &error));
  if (ok) {
    H = (int) x.shape[1], W = (int) x.shape[2], C = clipseg_queries_n_classes (q);
    probs = g_new (float, (size_t) C * H * W);
    labels = g_new (int32_t, (size_t) H * W);
    st = clipseg_state_new (model, opt.threads);
    ok = clipseg_state_segment (st, x.data, H, W, q, &sp, H, W, probs, labels, &error)
    && npy_write (opt.out, NPY_FLOAT32, 3, (int64_t[]) { C, H, W }, probs, &error)
    && (!opt.pred || npy_write (opt.pred, NPY_INT32, 2, (int64_t[]) { H, W }, labels, &error));
  }
  clipseg_state_free (st);
  clipseg_queries_free (q);
  g_free (probs);
  g_free (labels);
  npy_array_clear (&x);
  return ok ? 0 : fail (error);
}

struct command
{
  const char *name;
  const char *args;
  int (*run) (struct clipseg_model * model, int argc, char **argv);
  const GOptionEntry *entries[4];
};

static const struct command commands[] = {
  {"info", "MODEL", cmd_info, {NULL}},
  {"tokenize", "MODEL TEXT...", cmd_tokenize, {NULL}},
  {"text", "MODEL --labels-file FILE --out OUT.npy", cmd_text, {text_entries, out_entries}},
  {"dense", "MODEL --input X.npy --out F.npy", cmd_dense, {image_entries, out_entries}},
  {"segment", "MODEL --input X.npy --labels-file FILE --out P.npy", cmd_segment,
      {image_entries, text_entries, segment_entries, out_entries}},
};

static void
print_commands (FILE * f)
{
  fprintf (f, "usage: clipseg-engine COMMAND MODEL [OPTIONS]\n\ncommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (f, "  %s %s\n", commands[i].name, commands[i].args);
  fprintf (f, "\n'clipseg-engine COMMAND --help' lists a command's options.\n");
}

/* The command may follow the global options ("--vocab PATH info MODEL"). */
static int
find_command (int argc, char **argv, const struct command **cmd)
{
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') {
      for (const GOptionEntry * e = common_entries; e->long_name; e++)
        if (g_str_has_prefix (argv[i] + 2, e->long_name)
            && argv[i][2 + strlen (e->long_name)] == '\0')
          i++;
      continue;
    }
    for (guint c = 0; c < G_N_ELEMENTS (commands); c++)
      if (strcmp (argv[i], commands[c].name) == 0)
        *cmd = &commands[c];
    return i;
  }
  return -1;
}

int
main (int argc, char **argv)
{
  const struct command *cmd = NULL;
  GOptionContext *ctx;
  GError *error = NULL;
  struct clipseg_model *model;
  char *summary;
  int status, at;

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    print_commands (argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  at = find_command (argc, argv, &cmd);
  if (!cmd) {
    print_commands (stderr);
    return usage ("unknown or missing command");
  }
  summary = g_strdup_printf ("%s %s", cmd->name, cmd->args);
  ctx = g_option_context_new (summary);
  g_free (summary);
  g_option_context_add_main_entries (ctx, common_entries, NULL);
  for (int i = 0; i < 4 && cmd->entries[i]; i++)
    g_option_context_add_main_entries (ctx, cmd->entries[i], NULL);
  memmove (argv + at, argv + at + 1, (argc - at) * sizeof *argv);
  argc--;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_option_context_free (ctx);
    fprintf (stderr, "clipseg-engine: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  g_option_context_free (ctx);
  if (argc < 2)
    return usage ("missing MODEL");
  if (!(model = load_model (argv[1], &error)))
    return fail (error);
  status = cmd->run (model, argc - 2, argv + 2);
  clipseg_model_unref (model);
  return status;
}
