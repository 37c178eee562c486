/* model.h — internal: the loaded model, shared by the text and vision passes. */
#ifndef MODEL_H
#define MODEL_H

#include "checkpoint.h"
#include "clipseg-engine.h"

struct clipseg_model {
  gatomicrefcount ref_count;
  struct clipseg_model_info info;
  struct clip_weights w;
  struct gemm_config gemm;     /* what runs the linears */
  struct clipseg_tokenizer *tokenizer;
  struct safetensors *st;      /* keeps the mapped files alive */
  GPtrArray *owned;            /* converted or transposed weight buffers */
};

#endif
