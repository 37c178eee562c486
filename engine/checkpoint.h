/* checkpoint.h — internal: CLIP weights as the forward passes read them.
 *
 * Every linear weight is in PyTorch Linear layout [out, in] (y = x Wᵀ + b), so
 * one GEMM shape serves all of them; OpenAI's x @ proj matrices are transposed
 * once at load. Pointers refer either into the mapped safetensors files (F32,
 * 4-byte aligned) or into buffers the model owns (converted F16/BF16, transposed
 * projections). The forward passes run the linears through their packed form
 * (gemm.h), made by pack.c after binding; when the GEMM library keeps copies,
 * the raw linear weight and bias pointers are NULL from then on.
 * Names in comments: OpenAI/OpenCLIP key, then the Hugging Face key; EVA02's
 * vision tower (EVA-CLIP names, eva02.h) fills the same fields plus the ones
 * marked EVA02, which stay NULL or 0 for CLIP.
 */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "attention.h"
#include "clipseg-engine.h"
#include "gemm.h"
#include "safetensors.h"

/* One pre-LN residual block: x += attn(ln_1(x)); x += mlp(ln_2(x)).
 * EVA02 (visual.blocks.N.): norm1, attn.{q,k,v}_proj + q_bias, v_bias (k bias
 * zero), attn.proj as out, norm2, mlp.w1 as fc1, mlp.w2 as gate, mlp.w3 as fc2. */
struct clip_block {
  const float *ln1_w, *ln1_b;  /* [D]      resblocks.N.ln_1       | layers.N.layer_norm1 */
  const float *q_w, *k_w, *v_w;  /* [D, D] attn.in_proj_weight rows 0/1/2 | self_attn.{q,k,v}_proj.weight */
  const float *q_b, *k_b, *v_b;  /* [D]    attn.in_proj_bias chunks        | self_attn.{q,k,v}_proj.bias */
  const float *out_w, *out_b;  /* [D, D], [D]  attn.out_proj           | self_attn.out_proj */
  const float *ln2_w, *ln2_b;  /* [D]      resblocks.N.ln_2       | layers.N.layer_norm2 */
  const float *fc1_w, *fc1_b;  /* [M, D], [M]  mlp.c_fc               | mlp.fc1 */
  const float *fc2_w, *fc2_b;  /* [D, M], [D]  mlp.c_proj             | mlp.fc2 */
  const float *inner_ln_w, *inner_ln_b;  /* [D]  EVA02 attn.inner_attn_ln: on the heads, before out */
  const float *gate_w, *gate_b;  /* [M, D], [M]  EVA02 mlp.w2: SwiGLU's silu(fc1 y) · gate y */
  const float *ffn_ln_w, *ffn_ln_b;  /* [M]  EVA02 mlp.ffn_ln: on the hidden layer, before fc2 */
  struct packed_linear *qkv;   /* q|k|v: [T, D] -> [T, 3D] */
  struct packed_linear *out;   /* [T, D] -> [T, D] */
  struct packed_linear *fc1;   /* [T, D] -> [T, M], activation fused (EVA02: none) */
  struct packed_linear *gate;  /* EVA02: [T, D] -> [T, M]; NULL for CLIP */
  struct packed_linear *fc2;   /* [T, M] -> [T, D] */
};

struct clip_tower {
  int width;                   /* D */
  int layers;
  int heads;
  int mlp;                     /* M */
  gboolean swiglu;             /* EVA02's gated MLP with its layer norms */
  struct clip_block *blocks;   /* [layers] */
};

struct clip_vision {
  struct clip_tower tower;
  int patch;                   /* p */
  int grid;                    /* g0: positions are for a g0 x g0 patch grid */
  const float *patch_w;        /* [D, 3·p·p]   visual.conv1.weight | embeddings.patch_embedding.weight */
  const float *class_emb;      /* [D]          visual.class_embedding | embeddings.class_embedding */
  const float *pos_emb;        /* [1+g0², D]   visual.positional_embedding | embeddings.position_embedding.weight */
  const float *ln_pre_w, *ln_pre_b;    /* [D]  visual.ln_pre | pre_layrnorm */
  const float *ln_post_w, *ln_post_b;  /* [D]  visual.ln_post | post_layernorm */
  const float *proj_w;         /* [E, D]       visual.proj (transposed) | visual_projection.weight */
  const float *patch_b, *proj_b;  /* [D], [E]  EVA02 patch_embed.proj.bias, head.bias */
  int rope_seq;                /* EVA02: RoPE positions span this many steps per axis; 0: no RoPE */
  float ln_eps;                /* of this tower's layer norms */
  struct packed_linear *patch_embed;  /* patch_w as a linear [3·p·p] -> [D] */
  struct packed_linear *proj;  /* [D] -> [E] */
};

struct clip_text {
  struct clip_tower tower;
  int context;                 /* positions available */
  int vocab;
  const guint8 *tok_emb;       /* [V, D] in tok_dtype  token_embedding.weight | embeddings.token_embedding.weight:
                                * as stored (in the mapping when aligned), rows converted on lookup */
  enum st_dtype tok_dtype;     /* F32, F16 or BF16 */
  const float *pos_emb;        /* [ctx, D]     positional_embedding | embeddings.position_embedding.weight */
  const float *ln_final_w, *ln_final_b;  /* [D]  ln_final | final_layer_norm */
  const float *proj_w;         /* [E, D]       text_projection (transposed) | text_projection.weight */
  struct packed_linear *proj;  /* [D] -> [E] */
};

struct clip_weights {
  struct clip_vision vision;
  struct clip_text text;
  int embed_dim;
  float logit_scale;           /* exp(logit_scale) */
  float ln_eps;
  enum clipseg_activation activation;
  const char *naming;          /* "huggingface" | "openclip" | "eva02" */
  const char *dtype;           /* "F32" | "F16" | "BF16" | "mixed" */
  int64_t n_params;
  enum attention_kernel attention;  /* what runs attention: chosen at load for the linears' precision */
};

/* Hyperparameters a Hugging Face config.json states; 0 = not stated. */
struct clip_hf_config {
  const char *path;            /* the config.json read, for messages */
  int vision_heads, text_heads;
  int vision_width, text_width, vision_layers, text_layers, vision_mlp, text_mlp;
  int image_size, patch_size, context, vocab, embed_dim;
  int rope_seq;                /* EVA02 vision_config.rope_pt_hw_seq_len */
  enum clipseg_activation activation;
  float ln_eps;
  gboolean eva02;              /* model_type "eva02-clip": vision_config's activation and
                                * layer_norm_eps do not apply to the text tower */
};

/* Reads and checks config.json of a Hugging Face CLIP directory. */
gboolean checkpoint_read_hf_config (const char *path, struct clip_hf_config *config,
    GError **error);

/* Fills @w from the tensors of @st. @config is NULL for OpenCLIP/OpenAI naming,
 * whose hyperparameters come from tensor shapes alone. @source (the checkpoint
 * path) names the checkpoint in errors that concern no single file. Converted
 * and transposed weights are allocated into @owned (g_free'd with it). */
gboolean checkpoint_bind (struct clip_weights *w, const struct safetensors *st,
    const struct clip_hf_config *config, const char *source, GPtrArray *owned, GError **error);

void checkpoint_free_blocks (struct clip_weights *w);

/* Packs every linear of @w for @config (pack.c). When the packed linears keep
 * their own copies, the buffers of @owned they were made from are freed and
 * the raw pointers set to NULL. */
gboolean checkpoint_pack_linears (struct clip_weights *w, const struct gemm_config *config,
    GPtrArray *owned, GError **error);
void checkpoint_free_linears (struct clip_weights *w);

#endif
