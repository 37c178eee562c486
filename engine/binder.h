/* binder.h — internal: looking tensors up by name and binding them with their
 * shapes checked, shared by the CLIP namings (checkpoint.c) and EVA02's
 * vision tower (eva02-bind.c). Every function that returns NULL or FALSE
 * has set b->error, naming the checkpoint or the tensor's file. */
#ifndef BINDER_H
#define BINDER_H

#include "checkpoint.h"

struct binder {
  const struct safetensors *st;
  GPtrArray *owned;            /* converted buffers, g_free'd with the model */
  GError **error;
  const char *source;          /* checkpoint path for "missing tensor" errors */
  unsigned dtypes_seen;        /* bit per st_dtype */
  int64_t n_params;
};

/* The tensor @name, or NULL when the checkpoint lacks it. */
const struct st_tensor *bind_require (struct binder *b, const char *name);
gboolean check_shape (struct binder *b, const struct st_tensor *t, int n_dims, const int64_t *shape);
/* @t's values as finite floats (F32 in place when aligned, else converted). */
const float *tensor_floats (struct binder *b, const struct st_tensor *t);

/* The tensor @name with exactly @n_dims dimensions of sizes @shape. */
const float *bind_shape (struct binder *b, const char *name, int n_dims, const int64_t *shape);
const float *bind1 (struct binder *b, const char *name, int64_t d0);
const float *bind2 (struct binder *b, const char *name, int64_t d0, int64_t d1);
/* "<prefix>.weight" and "<prefix>.bias", both [D]: returns the weight. */
const float *bind_ln (struct binder *b, const char *prefix, int D, const float **bias);

/* printf(@block_format, @layer) followed by @part and @suffix; g_free it. */
char *block_key (const char *block_format, int layer, const char *part, const char *suffix);
/* "<part>.weight" [rows(, cols)] and "<part>.bias" [rows] of block @layer. */
gboolean bind_pair (struct binder *b, const char *fmt, int layer, const char *part, int rows,
    int cols, const float **w, const float **bias);
/* Blocks of @fmt counted by their "<ln1>.weight". */
gboolean count_layers (struct binder *b, const char *fmt, const char *ln1, int *layers);

/* Dimension @dim of the @n_dims-dimensional tensor @name, or -1. */
int64_t bind_dim (struct binder *b, const char *name, int n_dims, int dim);
/* The side g0 of a square grid when @n_pos = 1 + g0². */
gboolean bind_grid (struct binder *b, const char *name, int64_t n_pos, int *grid);
/* Heads of a tower of @width: the config's (or @transformers_default) when
 * @cfg is not NULL, else width / 64 as OpenAI's build_model infers them. */
gboolean bind_heads (struct binder *b, const char *tower, int width, int stated,
    int transformers_default, const struct clip_hf_config *cfg, int *heads);

#endif
