#!/usr/bin/python3
"""Write small random CLIP checkpoints in the real on-disk formats.

Layouts (see /work/shared/design.md section 3 and algorithms.md sections 5-7):

  hf          Hugging Face CLIP directory: config.json (transformers' CLIPConfig
              shape), model.safetensors, vocab.json, merges.txt,
              preprocessor_config.json, tokenizer_config.json.
  hf-sharded  the same with model.safetensors.index.json and 2-3 shard files
              model-0000i-of-0000n.safetensors.
  openclip    one safetensors file with OpenCLIP/OpenAI key names
              (visual.conv1.weight, visual.transformer.resblocks.N.attn.in_proj_weight,
              token_embedding.weight, text_projection, logit_scale, ...), named
              open_clip_model.safetensors inside the output directory (or the
              output path itself when it ends in .safetensors). Beside it: the BPE
              vocabulary (bpe_simple_vocab_16e6.txt.gz for the full vocabulary,
              vocab.json + merges.txt for a reduced one) and open_clip_config.json
              whose model_cfg.quick_gelu records the activation.
              OpenAI's build_model infers heads as width/64, so both tower widths
              must be multiples of 64 and heads = width/64 (the defaults are
              adjusted accordingly).

  eva02       EVA02-CLIP as CLIPSelf releases it (algorithms.md 3.2), converted the
              way scripts/convert-checkpoint.py writes it: config.json with
              model_type "eva02-clip", model.safetensors with EVA-CLIP names
              (visual.patch_embed.proj, visual.blocks.N.attn.q_proj, ...,
              visual.head; OpenAI's text tower under "text."; the RoPE buffers
              visual[.blocks.N.attn].rope.freqs_cos/sin), vocab.json, merges.txt.
              SwiGLU hidden width defaults to int(2.6667 x width), heads to width/64.
  clipself-pt CLIPSelf's own training save of the same weights: a torch pickle
              {'epoch', 'name', 'state_dict', 'optimizer'} whose state_dict keys
              carry DistributedDataParallel's 'module.' prefix (needs torch);
              model_path is the .pt file, for scripts/convert-checkpoint.py.
  openai-jit  OpenAI's TorchScript archive (what clip.load and SCLIP read), OpenAI
              names plus its int input_resolution/context_length/vocab_size
              (needs torch); model.pt, for scripts/convert-checkpoint.py.
  openclip-pt an open_clip state dict saved with torch.save, OpenAI names;
              open_clip_pytorch_model.bin, for scripts/convert-checkpoint.py.

Every tensor is stored in one dtype (F32, F16 or BF16); Hugging Face files may
also carry the int64 position_ids buffers older checkpoints have.

Vocabulary: "full" is CLIP's own (49408 ids, from the shared
bpe_simple_vocab_16e6.txt.gz; VocabularyMissing without it), "small" keeps the
first K merges with ids in the same layout (256 byte symbols, 256 with </w>, K
merges, <|startoftext|>, <|endoftext|>) so the token embedding stays small. Its
merges are CLIP's when ../shared holds them, else the world model's BPE
(engine/world/model/merges.txt) padded with synthetic merges of byte pairs.

Library use:
    from make_checkpoint import make_checkpoint
    info = make_checkpoint("/tmp/m", layout="hf", dtype="F16", act="gelu")
    info["model_path"]   # what to give the engine
    info["weights"]      # canonical (OpenAI-named) float64 copies of the stored values
    info["config"]       # the hyperparameters

CLI: make_checkpoint.py --out PATH [options]; prints the model path on stdout.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts'))
from clip_bpe import FULL_MERGES, build_vocab, read_bpe_merges, write_hf_vocab  # noqa: E402
from clip_bpe import bytes_to_unicode  # noqa: E402
SHARED_DEFAULT = os.path.normpath(os.path.join(HERE, '..', '..', '..', 'shared'))
BPE_GZ_NAME = 'bpe_simple_vocab_16e6.txt.gz'
OPENCLIP_FILE = 'open_clip_model.safetensors'
WORLD_MERGES = os.path.join(HERE, '..', '..', 'engine', 'world', 'model', 'merges.txt')
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

LAYOUTS = ('hf', 'hf-sharded', 'openclip', 'eva02', 'clipself-pt', 'openai-jit', 'openclip-pt')
EVA02_LAYOUTS = ('eva02', 'clipself-pt')
TORCH_LAYOUTS = ('clipself-pt', 'openai-jit', 'openclip-pt')  # files for the converter
EVA02_ROPE_SEQ = 16
DTYPES = ('F32', 'F16', 'BF16')
ACTS = ('quick_gelu', 'gelu')

DEFAULTS = dict(
    layout='hf', dtype='F32', act='quick_gelu', vocab='small', merges=1000, seed=0,
    vision_width=None, vision_layers=2, vision_heads=None, vision_mlp=None,
    patch_size=8, image_size=32,
    text_width=None, text_layers=2, text_heads=None, text_mlp=None,
    context_length=77, embed_dim=32, position_ids=False, shards=2,
    logit_scale=math.log(100.0), write_vocab=True, shared_dir=None, aligned=True,
    rope_seq=EVA02_ROPE_SEQ,
)


def shared_dir(opt=None):
    return opt or os.environ.get('CLIPSEG_SHARED_DIR') or SHARED_DEFAULT


# ---------------------------------------------------------------- vocabulary

class VocabularyMissing(FileNotFoundError):
    """CLIP's own vocabulary was asked for (vocab='full') and ../shared does not hold it."""


def world_merges():
    """The merges of the shipped world model's BPE (engine/world/model/merges.txt)."""
    with open(WORLD_MERGES, encoding='utf-8') as f:
        lines = [line.rstrip('\n') for line in f]
    return [tuple(line.split(' ')) for line in lines if line and not line.startswith('#version')]


def synthetic_merges(merges, n_merges):
    """@merges padded to @n_merges with merges of two byte symbols whose result is not a
    token yet (letters first), so every merge keeps its own id as CLIP's layout requires."""
    base = list(bytes_to_unicode().values())
    tokens = set(base) | {b + '</w>' for b in base} | {a + b for a, b in merges}
    out = list(merges[:n_merges])
    for a in base:
        for b in base + [c + '</w>' for c in base]:
            if len(out) >= n_merges:
                return out
            if a + b not in tokens:
                out.append((a, b))
                tokens.add(a + b)
    return out


def vocabulary(kind, n_merges, shared):
    """(merges, encoder, vocab size, CLIP's gz file or None). "small" is cut from CLIP's
    vocabulary when ../shared holds it, else from the world's BPE padded with synthetic
    merges: checkpoints for engine tests need no shared data."""
    gz = os.path.join(shared, 'clip-vocab', BPE_GZ_NAME)
    have_clip = os.path.exists(gz)
    if kind == 'full' and not have_clip:
        raise VocabularyMissing('CLIP BPE vocabulary not found: %s (set CLIPSEG_SHARED_DIR; '
                                'only --vocab small works without it)' % gz)
    if kind not in ('full', 'small'):
        raise ValueError('vocab must be full or small, not %r' % kind)
    if kind == 'small' and not 0 <= n_merges <= FULL_MERGES:
        raise ValueError('merges must be in 0..%d' % FULL_MERGES)
    if have_clip:
        merges = read_bpe_merges(gz)
        if kind == 'small':
            merges = merges[:n_merges]
    else:
        merges, gz = synthetic_merges(world_merges(), n_merges), None
    encoder, size = build_vocab(merges)
    return merges, encoder, size, gz


# ---------------------------------------------------------------- safetensors

_ST_DTYPE = {'F32': ('<f4', 4), 'F16': ('<f2', 2), 'BF16': (None, 2), 'I64': ('<i8', 8),
             'F64': ('<f8', 8), 'I32': ('<i4', 4)}


def to_bf16_bits(x):
    """float -> bfloat16 bit patterns (uint16), round to nearest even."""
    f = np.array(x, dtype=np.float32, order='C')
    u = f.reshape(-1).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).reshape(f.shape)


def from_bf16_bits(b):
    return (b.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(b.shape)


def encode_tensor(x, dtype):
    """(bytes, values actually stored as float64/int64 array)."""
    if dtype == 'BF16':
        bits = to_bf16_bits(x)
        return bits.tobytes(), from_bf16_bits(bits).astype(np.float64)
    npd, _ = _ST_DTYPE[dtype]
    arr = np.array(x, dtype=npd, order='C')  # (ascontiguousarray would make scalars 1-d)
    stored = arr.astype(np.int64 if dtype == 'I64' else np.float64)
    return arr.tobytes(), stored


def write_safetensors(path, tensors, metadata=None, aligned=True):
    """tensors: list of (name, dtype string, shape, raw bytes). Orders them as the
    official writer does (larger dtypes first, then by name), pads the header
    with spaces so the data starts on an 8-byte boundary. aligned=False pads it
    instead so the data starts at an odd offset (8+N = 1 mod 8), as other
    writers may leave it: no tensor is then aligned to its element size."""
    order = sorted(tensors, key=lambda t: (-_ST_DTYPE[t[1]][1], t[0]))
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    off = 0
    for name, dtype, shape, raw in order:
        n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        assert n * _ST_DTYPE[dtype][1] == len(raw), name
        header[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [off, off + len(raw)]}
        off += len(raw)
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * (((8 if aligned else 9) - (8 + len(hjson)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for _, _, _, raw in order:
            f.write(raw)
    return off


# ---------------------------------------------------------------- weights

def resolve_config(o):
    c = dict(o)
    openclip = c['layout'] in ('openclip',) + TORCH_LAYOUTS + EVA02_LAYOUTS
    for tower, hf_w, hf_h in (('vision', 64, 4), ('text', 48, 4)):
        w, h = c[tower + '_width'], c[tower + '_heads']
        if w is None:
            w = 128 if openclip else hf_w
        if h is None:
            h = w // 64 if openclip else hf_h
        if openclip and (w % 64 or h != w // 64):
            raise ValueError('openclip layout: %s width must be a multiple of 64 with heads = '
                             'width/64 (loaders infer heads from the width); got width %d heads %d'
                             % (tower, w, h))
        if w % h:
            raise ValueError('%s width %d not divisible by heads %d' % (tower, w, h))
        c[tower + '_width'], c[tower + '_heads'] = w, h
        if c[tower + '_mlp'] is None:
            eva = tower == 'vision' and c['layout'] in EVA02_LAYOUTS
            c[tower + '_mlp'] = int(w * 2.6667) if eva else 4 * w
    if c['image_size'] % c['patch_size']:
        raise ValueError('image size must be a multiple of the patch size')
    if c['layout'] not in LAYOUTS:
        raise ValueError('layout must be one of %s' % (LAYOUTS,))
    if c['dtype'] not in DTYPES:
        raise ValueError('dtype must be one of %s' % (DTYPES,))
    if c['act'] not in ACTS:
        raise ValueError('act must be one of %s' % (ACTS,))
    if c['context_length'] < 2:
        raise ValueError('context length must be >= 2')
    return c


def random_weights(c, vocab_size, rng):
    """Canonical OpenAI-named float64 weights, scaled so LayerNorm inputs stay O(1),
    attention logits are O(1) and the residual stream does not blow up."""
    W = {}

    def normal(shape, std):
        return rng.standard_normal(shape) * std

    def ln(prefix, width):
        W[prefix + '.weight'] = 1.0 + normal((width,), 0.1)
        W[prefix + '.bias'] = normal((width,), 0.05)

    def blocks(prefix, width, layers, mlp):
        for i in range(layers):
            p = '%s.resblocks.%d.' % (prefix, i)
            ln(p + 'ln_1', width)
            W[p + 'attn.in_proj_weight'] = normal((3 * width, width), 1.0 / math.sqrt(width))
            W[p + 'attn.in_proj_bias'] = normal((3 * width,), 0.05)
            W[p + 'attn.out_proj.weight'] = normal((width, width), 0.5 / math.sqrt(width))
            W[p + 'attn.out_proj.bias'] = normal((width,), 0.02)
            ln(p + 'ln_2', width)
            W[p + 'mlp.c_fc.weight'] = normal((mlp, width), 1.0 / math.sqrt(width))
            W[p + 'mlp.c_fc.bias'] = normal((mlp,), 0.05)
            W[p + 'mlp.c_proj.weight'] = normal((width, mlp), 0.5 / math.sqrt(mlp))
            W[p + 'mlp.c_proj.bias'] = normal((width,), 0.02)

    vw, p, g = c['vision_width'], c['patch_size'], c['image_size'] // c['patch_size']
    W['visual.conv1.weight'] = normal((vw, 3, p, p), 1.0 / math.sqrt(3 * p * p))
    W['visual.class_embedding'] = normal((vw,), 0.5)
    W['visual.positional_embedding'] = normal((1 + g * g, vw), 0.3)
    ln('visual.ln_pre', vw)
    blocks('visual.transformer', vw, c['vision_layers'], c['vision_mlp'])
    ln('visual.ln_post', vw)
    W['visual.proj'] = normal((vw, c['embed_dim']), 1.0 / math.sqrt(vw))

    tw = c['text_width']
    W['token_embedding.weight'] = normal((vocab_size, tw), 0.5)
    W['positional_embedding'] = normal((c['context_length'], tw), 0.2)
    blocks('transformer', tw, c['text_layers'], c['text_mlp'])
    ln('ln_final', tw)
    W['text_projection'] = normal((tw, c['embed_dim']), 1.0 / math.sqrt(tw))
    W['logit_scale'] = np.array(c['logit_scale'], dtype=np.float64)
    return W


def eva02_rope_buffers(g, d, seq):
    """EVA-CLIP's VisionRotaryEmbeddingFast buffers freqs_cos/sin [g*g, d] for a g x g
    grid, computed in float32 as its rope.py does (intp_freq: t = arange(g)/g*seq)."""
    dim = d // 2
    freqs = (1.0 / (10000.0 ** (np.arange(0, dim, 2)[:dim // 2].astype(np.float32) / dim)))
    t = np.arange(g, dtype=np.float32) / np.float32(g) * np.float32(seq)
    f = np.repeat(np.einsum('i,f->if', t, freqs.astype(np.float32)), 2, axis=-1)
    full = np.concatenate([np.broadcast_to(f[:, None, :], (g, g, dim)),
                           np.broadcast_to(f[None, :, :], (g, g, dim))], -1).reshape(g * g, d)
    return np.cos(full).astype(np.float64), np.sin(full).astype(np.float64)


def eva02_vision_weights(c, rng):
    """EVA02's vision tower under its EVA-CLIP names (algorithms.md 3.1, 3.2), with the
    RoPE buffers EVA-CLIP saves; scaled like random_weights."""
    V = {}

    def normal(shape, std):
        return rng.standard_normal(shape) * std

    def ln(prefix, width):
        V[prefix + '.weight'] = 1.0 + normal((width,), 0.1)
        V[prefix + '.bias'] = normal((width,), 0.05)

    w, m, p = c['vision_width'], c['vision_mlp'], c['patch_size']
    g = c['image_size'] // p
    cos, sin = eva02_rope_buffers(g, w // c['vision_heads'], c['rope_seq'])
    V['visual.patch_embed.proj.weight'] = normal((w, 3, p, p), 1.0 / math.sqrt(3 * p * p))
    V['visual.patch_embed.proj.bias'] = normal((w,), 0.05)
    V['visual.cls_token'] = normal((1, 1, w), 0.5)
    V['visual.pos_embed'] = normal((1, 1 + g * g, w), 0.3)
    V['visual.rope.freqs_cos'], V['visual.rope.freqs_sin'] = cos, sin
    for i in range(c['vision_layers']):
        b = 'visual.blocks.%d.' % i
        ln(b + 'norm1', w)
        for n in 'qkv':
            V[b + 'attn.%s_proj.weight' % n] = normal((w, w), 1.0 / math.sqrt(w))
        V[b + 'attn.q_bias'] = normal((w,), 0.05)
        V[b + 'attn.v_bias'] = normal((w,), 0.05)
        V[b + 'attn.rope.freqs_cos'], V[b + 'attn.rope.freqs_sin'] = cos, sin
        ln(b + 'attn.inner_attn_ln', w)
        V[b + 'attn.proj.weight'] = normal((w, w), 0.5 / math.sqrt(w))
        V[b + 'attn.proj.bias'] = normal((w,), 0.02)
        ln(b + 'norm2', w)
        for n in ('w1', 'w2'):
            V[b + 'mlp.%s.weight' % n] = normal((m, w), 1.0 / math.sqrt(w))
            V[b + 'mlp.%s.bias' % n] = normal((m,), 0.05)
        ln(b + 'mlp.ffn_ln', m)
        V[b + 'mlp.w3.weight'] = normal((w, m), 0.5 / math.sqrt(m))
        V[b + 'mlp.w3.bias'] = normal((w,), 0.02)
    ln('visual.norm', w)
    V['visual.head.weight'] = normal((c['embed_dim'], w), 1.0 / math.sqrt(w))
    V['visual.head.bias'] = normal((c['embed_dim'],), 0.02)
    return V


def to_eva02(W, c, rng):
    """EVA-CLIP "CustomCLIP" names: EVA02 vision tower, the text tower of W under 'text.'."""
    E = eva02_vision_weights(c, rng)
    for k, v in W.items():
        if k == 'logit_scale':
            E[k] = v
        elif not k.startswith('visual.'):
            E['text.' + k] = v
    return E


def eva02_config(c, vocab_size):
    """config.json as scripts/convert-checkpoint.py writes it for EVA02-CLIP."""
    text = dict(hidden_size=c['text_width'], intermediate_size=c['text_mlp'],
                num_attention_heads=c['text_heads'], num_hidden_layers=c['text_layers'],
                max_position_embeddings=c['context_length'], vocab_size=vocab_size,
                hidden_act='gelu', layer_norm_eps=1e-5)
    vision = dict(hidden_size=c['vision_width'], intermediate_size=c['vision_mlp'],
                  num_attention_heads=c['vision_heads'], num_hidden_layers=c['vision_layers'],
                  image_size=c['image_size'], patch_size=c['patch_size'], layer_norm_eps=1e-6,
                  rope_pt_hw_seq_len=c['rope_seq'])
    return dict(model_type='eva02-clip', projection_dim=c['embed_dim'], text_config=text,
                vision_config=vision)


def torch_tensors(named, dtype, prefix=''):
    import torch
    tdt = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}[dtype]
    return {prefix + k: torch.tensor(np.asarray(v, dtype=np.float32)).to(tdt)
            for k, v in named.items()}


def save_torch(layout, path, named, dtype, c):
    """clipself-pt: CLIPSelf's src/training/main.py checkpoint, torch.save of a dict
    whose state_dict has the 'module.' prefix of a DistributedDataParallel model.
    openclip-pt: a bare state dict. openai-jit: a TorchScript module whose
    state_dict() has OpenAI's names and int scalars."""
    import torch
    if layout == 'clipself-pt':
        torch.save({'epoch': 6, 'name': 'test_eva_vitb16_clipself_patches',
                    'state_dict': torch_tensors(named, dtype, 'module.'),
                    'optimizer': {'state': {}, 'param_groups': []}}, path)
    elif layout == 'openclip-pt':
        torch.save(torch_tensors(named, dtype), path)
    else:
        sd = torch_tensors(named, dtype)
        sd.update(input_resolution=torch.tensor(c['image_size']),
                  context_length=torch.tensor(c['context_length']),
                  vocab_size=torch.tensor(named['token_embedding.weight'].shape[0]))
        torch.jit.script(_module_of(sd, torch)).save(path)


def _module_of(sd, torch):
    """A scriptable module tree whose state_dict() is @sd."""
    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for k, v in sd.items():
        parts = k.split('.')
        m = root
        for p in parts[:-1]:
            if not hasattr(m, p):
                m.add_module(p, Holder())
            m = getattr(m, p)
        if v.is_floating_point():
            m.register_parameter(parts[-1], torch.nn.Parameter(v, requires_grad=False))
        else:
            m.register_buffer(parts[-1], v)
    return root


def to_hf(W, c):
    """OpenAI names -> Hugging Face CLIPModel names (algorithms.md 5.2)."""
    H = {}
    H['vision_model.embeddings.class_embedding'] = W['visual.class_embedding']
    H['vision_model.embeddings.patch_embedding.weight'] = W['visual.conv1.weight']
    H['vision_model.embeddings.position_embedding.weight'] = W['visual.positional_embedding']
    H['vision_model.pre_layrnorm.weight'] = W['visual.ln_pre.weight']
    H['vision_model.pre_layrnorm.bias'] = W['visual.ln_pre.bias']
    H['vision_model.post_layernorm.weight'] = W['visual.ln_post.weight']
    H['vision_model.post_layernorm.bias'] = W['visual.ln_post.bias']
    H['visual_projection.weight'] = W['visual.proj'].T.copy()
    H['text_model.embeddings.token_embedding.weight'] = W['token_embedding.weight']
    H['text_model.embeddings.position_embedding.weight'] = W['positional_embedding']
    H['text_model.final_layer_norm.weight'] = W['ln_final.weight']
    H['text_model.final_layer_norm.bias'] = W['ln_final.bias']
    H['text_projection.weight'] = W['text_projection'].T.copy()
    H['logit_scale'] = W['logit_scale']
    for src, dst, layers, width in (('visual.transformer', 'vision_model.encoder', c['vision_layers'],
                                     c['vision_width']),
                                    ('transformer', 'text_model.encoder', c['text_layers'],
                                     c['text_width'])):
        for i in range(layers):
            s = '%s.resblocks.%d.' % (src, i)
            d = '%s.layers.%d.' % (dst, i)
            w, b = W[s + 'attn.in_proj_weight'], W[s + 'attn.in_proj_bias']
            for j, n in enumerate('qkv'):
                H[d + 'self_attn.%s_proj.weight' % n] = w[j * width:(j + 1) * width]
                H[d + 'self_attn.%s_proj.bias' % n] = b[j * width:(j + 1) * width]
            H[d + 'self_attn.out_proj.weight'] = W[s + 'attn.out_proj.weight']
            H[d + 'self_attn.out_proj.bias'] = W[s + 'attn.out_proj.bias']
            for a, bb in (('ln_1', 'layer_norm1'), ('ln_2', 'layer_norm2'),
                          ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2')):
                H[d + bb + '.weight'] = W[s + a + '.weight']
                H[d + bb + '.bias'] = W[s + a + '.bias']
    return H


def hf_config(c, vocab_size):
    eps = 1e-5
    common = dict(hidden_act=c['act'], layer_norm_eps=eps, attention_dropout=0.0, dropout=0.0,
                  initializer_factor=1.0, initializer_range=0.02, projection_dim=c['embed_dim'])
    text = dict(common, model_type='clip_text_model', hidden_size=c['text_width'],
                intermediate_size=c['text_mlp'], num_attention_heads=c['text_heads'],
                num_hidden_layers=c['text_layers'], max_position_embeddings=c['context_length'],
                vocab_size=vocab_size, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                pad_token_id=1)
    vision = dict(common, model_type='clip_vision_model', hidden_size=c['vision_width'],
                  intermediate_size=c['vision_mlp'], num_attention_heads=c['vision_heads'],
                  num_hidden_layers=c['vision_layers'], image_size=c['image_size'],
                  patch_size=c['patch_size'], num_channels=3)
    torch_dtype = {'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16'}[c['dtype']]
    return dict(architectures=['CLIPModel'], model_type='clip', projection_dim=c['embed_dim'],
                logit_scale_init_value=2.6592, initializer_factor=1.0, torch_dtype=torch_dtype,
                transformers_version='4.30.0', text_config=text, vision_config=vision)


def openclip_config(c):
    cfg = dict(embed_dim=c['embed_dim'],
               vision_cfg=dict(image_size=c['image_size'], layers=c['vision_layers'],
                               width=c['vision_width'], patch_size=c['patch_size'],
                               mlp_ratio=c['vision_mlp'] / c['vision_width']),
               text_cfg=dict(context_length=c['context_length'], vocab_size=None,
                             width=c['text_width'], heads=c['text_heads'],
                             layers=c['text_layers'], mlp_ratio=c['text_mlp'] / c['text_width']))
    if c['act'] == 'quick_gelu':
        cfg['quick_gelu'] = True
    return dict(model_cfg=cfg, preprocess_cfg=dict(mean=CLIP_MEAN, std=CLIP_STD))


def _shard_groups(names, sizes, n):
    """Split names (in order) into n contiguous groups of similar byte size."""
    total = sum(sizes)
    groups, cur, acc = [], [], 0
    for name, sz in zip(names, sizes):
        cur.append(name)
        acc += sz
        if len(groups) < n - 1 and acc >= total * (len(groups) + 1) / n:
            groups.append(cur)
            cur = []
    if cur:
        groups.append(cur)
    while len(groups) < n:  # too few tensors to balance: peel single tensors off
        big = max(range(len(groups)), key=lambda i: len(groups[i]))
        groups.insert(big + 1, [groups[big].pop()])
    return groups


def make_checkpoint(out_path, **opts):
    """Write a random checkpoint; returns a dict with model_path, vocab_path (the
    BPE source the checkpoint uses), config (resolved hyperparameters, plus
    vocab_size, naming, layer_norm_eps), weights (canonical OpenAI-named float64
    copies of exactly the stored values) and files (every file written)."""
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise TypeError('unknown options: %s' % ', '.join(sorted(unknown)))
    c = resolve_config(dict(DEFAULTS, **opts))
    shared = shared_dir(c['shared_dir'])
    merges, encoder, vocab_size, gz = vocabulary(c['vocab'], c['merges'], shared)
    rng = np.random.default_rng(c['seed'])
    W = random_weights(c, vocab_size, rng)

    files = []
    if c['layout'] in EVA02_LAYOUTS:
        dirname = out_path
        model_path = out_path if c['layout'] == 'eva02' else os.path.join(out_path, 'clipself.pt')
        named = to_eva02(W, c, rng)
    elif c['layout'] in TORCH_LAYOUTS:
        dirname = out_path
        model_path = os.path.join(out_path, 'model.pt' if c['layout'] == 'openai-jit'
                                  else 'open_clip_pytorch_model.bin')
        named = W
    elif c['layout'] == 'openclip':
        if out_path.endswith('.safetensors'):
            dirname, model_path = os.path.dirname(os.path.abspath(out_path)), out_path
        else:
            dirname, model_path = out_path, os.path.join(out_path, OPENCLIP_FILE)
        named = W
    else:
        dirname = model_path = out_path
        named = to_hf(W, c)
    os.makedirs(dirname, exist_ok=True)

    stored = {}
    entries = []
    for name in sorted(named):
        raw, vals = encode_tensor(named[name], c['dtype'])
        entries.append((name, c['dtype'], tuple(named[name].shape), raw))
        stored[name] = vals
    if c['position_ids'] and c['layout'] in ('hf', 'hf-sharded'):
        g = c['image_size'] // c['patch_size']
        for name, n in (('vision_model.embeddings.position_ids', 1 + g * g),
                        ('text_model.embeddings.position_ids', c['context_length'])):
            raw, _ = encode_tensor(np.arange(n, dtype=np.int64)[None, :], 'I64')
            entries.append((name, 'I64', (1, n), raw))

    meta = {'format': 'pt'}
    if c['layout'] == 'hf-sharded':
        n = max(2, min(3, int(c['shards'])))
        entries.sort(key=lambda e: e[0])
        groups = _shard_groups([e[0] for e in entries], [len(e[3]) for e in entries], n)
        by_name = {e[0]: e for e in entries}
        weight_map, total = {}, 0
        for i, g in enumerate(groups):
            fname = 'model-%05d-of-%05d.safetensors' % (i + 1, len(groups))
            total += write_safetensors(os.path.join(dirname, fname), [by_name[k] for k in g], meta,
                                       c['aligned'])
            files.append(os.path.join(dirname, fname))
            for k in g:
                weight_map[k] = fname
        with open(os.path.join(dirname, 'model.safetensors.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)
        files.append(os.path.join(dirname, 'model.safetensors.index.json'))
    elif c['layout'] in ('hf', 'eva02'):
        write_safetensors(os.path.join(dirname, 'model.safetensors'), entries, meta, c['aligned'])
        files.append(os.path.join(dirname, 'model.safetensors'))
    elif c['layout'] in TORCH_LAYOUTS:
        save_torch(c['layout'], model_path, named, c['dtype'], c)
        files.append(model_path)
    else:
        write_safetensors(model_path, entries, meta, c['aligned'])
        files.append(model_path)

    vocab_path = None
    if c['layout'] in EVA02_LAYOUTS + TORCH_LAYOUTS:
        if c['layout'] == 'eva02':
            with open(os.path.join(dirname, 'config.json'), 'w') as f:
                json.dump(eva02_config(c, vocab_size), f, indent=2)
            files.append(os.path.join(dirname, 'config.json'))
        write_hf_vocab(dirname, merges, encoder)
        files += [os.path.join(dirname, 'vocab.json'), os.path.join(dirname, 'merges.txt')]
        vocab_path = dirname
    elif c['layout'] in ('hf', 'hf-sharded'):
        with open(os.path.join(dirname, 'config.json'), 'w') as f:
            json.dump(hf_config(c, vocab_size), f, indent=2)
        with open(os.path.join(dirname, 'preprocessor_config.json'), 'w') as f:
            json.dump(dict(crop_size=c['image_size'], do_center_crop=True, do_normalize=True,
                           do_resize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                           resample=3, size=c['image_size'],
                           feature_extractor_type='CLIPFeatureExtractor'), f, indent=2)
        with open(os.path.join(dirname, 'tokenizer_config.json'), 'w') as f:
            json.dump(dict(model_max_length=c['context_length'], bos_token='<|startoftext|>',
                           eos_token='<|endoftext|>', unk_token='<|endoftext|>',
                           pad_token='<|endoftext|>', tokenizer_class='CLIPTokenizer'), f, indent=2)
        write_hf_vocab(dirname, merges, encoder)
        files += [os.path.join(dirname, n) for n in ('config.json', 'preprocessor_config.json',
                                                     'tokenizer_config.json', 'vocab.json',
                                                     'merges.txt')]
        vocab_path = dirname
    else:
        with open(os.path.join(dirname, 'open_clip_config.json'), 'w') as f:
            json.dump(openclip_config(c), f, indent=2)
        files.append(os.path.join(dirname, 'open_clip_config.json'))
        if c['write_vocab']:
            if c['vocab'] == 'full':
                dst = os.path.join(dirname, BPE_GZ_NAME)
                shutil.copyfile(gz, dst)
                files.append(dst)
                vocab_path = dst
            else:
                write_hf_vocab(dirname, merges, encoder)
                files += [os.path.join(dirname, 'vocab.json'), os.path.join(dirname, 'merges.txt')]
                vocab_path = dirname
    # the stored values back in canonical naming (EVA02: its vision names kept, the
    # RoPE buffers left out: a reference recomputes them)
    if c['layout'] in EVA02_LAYOUTS:
        canon = {(k[5:] if k.startswith('text.') else k): v for k, v in stored.items()
                 if not k.endswith(('freqs_cos', 'freqs_sin'))}
    elif c['layout'] in ('openclip',) + TORCH_LAYOUTS:
        canon = {k: stored[k] for k in W}
    else:
        canon = _hf_to_canonical(stored, c)
    cfg = dict(c)
    cfg.update(vocab_size=vocab_size, layer_norm_eps=1e-5,
               naming={'openclip': 'openclip', 'eva02': 'eva02', 'clipself-pt': 'eva02',
                       'openai-jit': 'openai', 'openclip-pt': 'openai'}.get(c['layout'],
                                                                            'huggingface'),
               start_id=vocab_size - 2, end_id=vocab_size - 1)
    return dict(model_path=model_path, vocab_path=vocab_path, bpe_gz=gz, config=cfg,
                weights=canon, files=files)


def _hf_to_canonical(H, c):
    W = {}
    W['visual.class_embedding'] = H['vision_model.embeddings.class_embedding']
    W['visual.conv1.weight'] = H['vision_model.embeddings.patch_embedding.weight']
    W['visual.positional_embedding'] = H['vision_model.embeddings.position_embedding.weight']
    W['visual.ln_pre.weight'] = H['vision_model.pre_layrnorm.weight']
    W['visual.ln_pre.bias'] = H['vision_model.pre_layrnorm.bias']
    W['visual.ln_post.weight'] = H['vision_model.post_layernorm.weight']
    W['visual.ln_post.bias'] = H['vision_model.post_layernorm.bias']
    W['visual.proj'] = H['visual_projection.weight'].T.copy()
    W['token_embedding.weight'] = H['text_model.embeddings.token_embedding.weight']
    W['positional_embedding'] = H['text_model.embeddings.position_embedding.weight']
    W['ln_final.weight'] = H['text_model.final_layer_norm.weight']
    W['ln_final.bias'] = H['text_model.final_layer_norm.bias']
    W['text_projection'] = H['text_projection.weight'].T.copy()
    W['logit_scale'] = H['logit_scale']
    for dst, src, layers in (('visual.transformer', 'vision_model.encoder', c['vision_layers']),
                             ('transformer', 'text_model.encoder', c['text_layers'])):
        for i in range(layers):
            d = '%s.resblocks.%d.' % (dst, i)
            s = '%s.layers.%d.' % (src, i)
            W[d + 'attn.in_proj_weight'] = np.concatenate(
                [H[s + 'self_attn.%s_proj.weight' % n] for n in 'qkv'], 0)
            W[d + 'attn.in_proj_bias'] = np.concatenate(
                [H[s + 'self_attn.%s_proj.bias' % n] for n in 'qkv'], 0)
            W[d + 'attn.out_proj.weight'] = H[s + 'self_attn.out_proj.weight']
            W[d + 'attn.out_proj.bias'] = H[s + 'self_attn.out_proj.bias']
            for a, b in (('ln_1', 'layer_norm1'), ('ln_2', 'layer_norm2'),
                         ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2')):
                W[d + a + '.weight'] = H[s + b + '.weight']
                W[d + a + '.bias'] = H[s + b + '.bias']
    return W


def make_image(h, w, seed=0, blobs=6):
    """A test input: float32 [3, h, w] normalised pixels with spatial structure
    (coloured Gaussian blobs + noise), so dense features and label maps vary
    across the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 0.3 * rng.standard_normal((3, h, w))
    for _ in range(blobs):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 16)
        col = rng.standard_normal(3) * 1.5
        img += col[:, None, None] * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return img.astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description='Write a small random CLIP checkpoint in a real on-disk format '
                    '(Hugging Face directory, sharded HF directory, or OpenCLIP-named '
                    'safetensors file with its BPE vocabulary). Prints the path to give '
                    'the engine (the directory for hf layouts, the .safetensors file for '
                    'openclip).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--out', required=True,
                    help='output directory (openclip: directory, or a path ending in '
                         '.safetensors for the model file itself)')
    ap.add_argument('--layout', choices=LAYOUTS, default=DEFAULTS['layout'])
    ap.add_argument('--dtype', choices=DTYPES, default=DEFAULTS['dtype'],
                    help='dtype of every floating-point tensor')
    ap.add_argument('--act', choices=ACTS, default=DEFAULTS['act'],
                    help='MLP activation recorded in config.json (hidden_act) or '
                         'open_clip_config.json (model_cfg.quick_gelu)')
    ap.add_argument('--vocab', choices=('full', 'small'), default=DEFAULTS['vocab'],
                    help="full: CLIP's 49408 ids; small: the first --merges merges only")
    ap.add_argument('--merges', type=int, default=DEFAULTS['merges'],
                    help='number of BPE merges kept by --vocab small')
    ap.add_argument('--no-vocab-file', action='store_true',
                    help='openclip: do not write the vocabulary beside the model file')
    ap.add_argument('--position-ids', action='store_true',
                    help='hf layouts: add the int64 position_ids buffers')
    ap.add_argument('--shards', type=int, default=DEFAULTS['shards'],
                    help='hf-sharded: number of shard files (2 or 3)')
    ap.add_argument('--unaligned', action='store_true',
                    help='pad the safetensors header so the data starts at an odd offset '
                         '(no tensor aligned to its element size)')
    ap.add_argument('--rope-seq', type=int, default=DEFAULTS['rope_seq'],
                    help="EVA02 layouts: RoPE's pt_hw_seq_len for the stored tables and config.json")
    ap.add_argument('--seed', type=int, default=DEFAULTS['seed'])
    ap.add_argument('--vision-width', type=int, help='default 64 (openclip 128)')
    ap.add_argument('--vision-layers', type=int, default=DEFAULTS['vision_layers'])
    ap.add_argument('--vision-heads', type=int, help='default 4 (openclip width/64)')
    ap.add_argument('--vision-mlp', type=int, help='MLP hidden width, default 4 x width')
    ap.add_argument('--patch-size', type=int, default=DEFAULTS['patch_size'])
    ap.add_argument('--image-size', type=int, default=DEFAULTS['image_size'])
    ap.add_argument('--text-width', type=int, help='default 48 (openclip 128)')
    ap.add_argument('--text-layers', type=int, default=DEFAULTS['text_layers'])
    ap.add_argument('--text-heads', type=int, help='default 4 (openclip width/64)')
    ap.add_argument('--text-mlp', type=int, help='MLP hidden width, default 4 x width')
    ap.add_argument('--context-length', type=int, default=DEFAULTS['context_length'])
    ap.add_argument('--embed-dim', type=int, default=DEFAULTS['embed_dim'])
    ap.add_argument('--logit-scale', type=float, default=DEFAULTS['logit_scale'],
                    help='stored logit_scale (log of the CLIP temperature)')
    ap.add_argument('--shared-dir',
                    help='folder holding clip-vocab/ (default $CLIPSEG_SHARED_DIR or the '
                         "checkout's ../shared)")
    ap.add_argument('--print-config', action='store_true',
                    help='also print the resolved hyperparameters as JSON on stderr')
    a = ap.parse_args(argv)
    opts = dict(layout=a.layout, dtype=a.dtype, act=a.act, vocab=a.vocab, merges=a.merges,
                write_vocab=not a.no_vocab_file, aligned=not a.unaligned, position_ids=a.position_ids, shards=a.shards,
                seed=a.seed, vision_width=a.vision_width, vision_layers=a.vision_layers,
                vision_heads=a.vision_heads, vision_mlp=a.vision_mlp, patch_size=a.patch_size,
                image_size=a.image_size, text_width=a.text_width, text_layers=a.text_layers,
                text_heads=a.text_heads, text_mlp=a.text_mlp, context_length=a.context_length,
                embed_dim=a.embed_dim, logit_scale=a.logit_scale, shared_dir=a.shared_dir,
                rope_seq=a.rope_seq)
    try:
        info = make_checkpoint(a.out, **opts)
    except (ValueError, FileNotFoundError) as e:
        print('make_checkpoint: %s' % e, file=sys.stderr)
        return 2
    if a.print_config:
        print(json.dumps(info['config'], indent=2), file=sys.stderr)
    print(info['model_path'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
