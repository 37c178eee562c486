#!/usr/bin/python3
"""Turn the CLIP checkpoints people download into the directory clipseg loads.

Usage: convert-checkpoint.py IN OUT_DIR [--vocab PATH] [--activation quick_gelu|gelu]

IN is one of
  * OpenAI's TorchScript archive (ViT-B-16.pt, ViT-L-14.pt: what clip.load and
    SCLIP read), QuickGELU;
  * an open_clip state dict (.pt or .bin, torch pickle) with OpenAI names (the
    text tower possibly under 'text.', as CustomTextCLIP saves it); it
    does not record its activation, so --activation is required (quick_gelu for
    OpenAI's weights and *-quickgelu models, gelu for open_clip's own configs
    such as the LAION ViT-B-16);
  * a CLIPSelf / EVA02-CLIP .pt ({'state_dict': ...} as CLIPSelf's training
    saves it, or a bare state dict), EVA-CLIP "CustomCLIP" names; its text
    tower uses GELU unless --activation says otherwise.
A 'module.' prefix (DistributedDataParallel) is stripped.

OUT_DIR gets model.safetensors (tensors in their stored dtype), config.json and
the tokenizer pair vocab.json + merges.txt. OpenAI and open_clip weights are
written under Hugging Face CLIPModel names (model_type "clip"); EVA02 keeps
its EVA-CLIP names (model_type "eva02-clip", RoPE buffers kept for the engine
to check). The vocabulary comes from --vocab (OpenAI's
bpe_simple_vocab_16e6.txt.gz, or a directory with it or with vocab.json +
merges.txt), else from beside IN, else from $CLIPSEG_SHARED_DIR/clip-vocab,
else from an installed clip/open_clip package. Needs Debian's python3-torch.
Anything it does not recognise is refused naming the file and what it found.
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from clip_bpe import build_vocab, read_bpe_merges, write_hf_vocab  # noqa: E402

BPE_GZ = 'bpe_simple_vocab_16e6.txt.gz'
OPENAI_KEY = 'visual.conv1.weight'
EVA02_KEY = 'visual.patch_embed.proj.weight'
# OpenAI's archives carry these as int tensors; build_model drops them
OPENAI_SCALARS = ('input_resolution', 'context_length', 'vocab_size')


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------- reading

def load_state_dict(path, torch):
    """(state dict of tensors, 'torchscript' | 'pickle')."""
    if not os.path.isfile(path):
        raise ConvertError('%s: no such file' % path)
    try:
        return dict(torch.jit.load(path, map_location='cpu').state_dict()), 'torchscript'
    except (RuntimeError, ValueError):
        pass
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for foreign bytes
        with open(path, 'rb') as f:
            head = f.read(8)
        raise ConvertError('%s: neither a TorchScript archive nor a torch pickle of tensors '
                           '(starts with %r; torch: %s: %s)' % (
                               path, head, type(e).__name__, str(e).split('. ')[0][:200]))
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not obj:
        raise ConvertError('%s: holds a %s, not a state dict (a dict of tensors, or '
                           "{'state_dict': ...})" % (path, type(obj).__name__))
    return obj, 'pickle'


def strip_module(sd):
    if all(isinstance(k, str) and k.startswith('module.') for k in sd):
        return {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def float_tensors(sd, torch):
    """The floating-point tensors; OpenAI's int scalars and non-tensors dropped."""
    out = {}
    for k, v in sd.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out[k] = v
    return out


def family(path, sd):
    if EVA02_KEY in sd:
        return 'eva02'
    if 'visual.attnpool.c_proj.weight' in sd or 'visual.layer1.0.conv1.weight' in sd:
        raise ConvertError('%s: a ResNet CLIP (visual.attnpool...): only ViT towers are supported'
                           % path)
    if OPENAI_KEY in sd:
        return 'openai'
    keys = sorted(sd)
    raise ConvertError('%s: not a CLIP checkpoint this script knows: %d tensors, e.g. %s; '
                       "expected OpenAI/open_clip names ('%s', ...) or EVA-CLIP names ('%s', ...)"
                       % (path, len(keys), ', '.join(keys[:5]) or 'none', OPENAI_KEY, EVA02_KEY))


def need(path, sd, key):
    if key not in sd:
        raise ConvertError('%s: tensor %s missing' % (path, key))
    return sd[key]


def count_blocks(sd, prefix):
    ids = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r'(\d+)\.', k)] if m}
    return max(ids) + 1 if ids else 0


# ---------------------------------------------------------------- OpenAI -> Hugging Face

def openai_to_hf(path, sd):
    """OpenAI names -> transformers' CLIPModel names (algorithms.md 5.2). open_clip's
    CustomTextCLIP keeps the same text tower under 'text.'."""
    if 'text.token_embedding.weight' in sd:
        sd = {(k[5:] if k.startswith('text.') else k): v for k, v in sd.items()}
    H = {}
    simple = {
        'visual.class_embedding': 'vision_model.embeddings.class_embedding',
        'visual.conv1.weight': 'vision_model.embeddings.patch_embedding.weight',
        'visual.positional_embedding': 'vision_model.embeddings.position_embedding.weight',
        'visual.ln_pre.weight': 'vision_model.pre_layrnorm.weight',
        'visual.ln_pre.bias': 'vision_model.pre_layrnorm.bias',
        'visual.ln_post.weight': 'vision_model.post_layernorm.weight',
        'visual.ln_post.bias': 'vision_model.post_layernorm.bias',
        'token_embedding.weight': 'text_model.embeddings.token_embedding.weight',
        'positional_embedding': 'text_model.embeddings.position_embedding.weight',
        'ln_final.weight': 'text_model.final_layer_norm.weight',
        'ln_final.bias': 'text_model.final_layer_norm.bias',
        'logit_scale': 'logit_scale',
    }
    for src, dst in simple.items():
        H[dst] = need(path, sd, src)
    H['visual_projection.weight'] = need(path, sd, 'visual.proj').t().contiguous()
    H['text_projection.weight'] = need(path, sd, 'text_projection').t().contiguous()
    used = set(simple) | {'visual.proj', 'text_projection'}
    for src, dst in (('visual.transformer.resblocks.', 'vision_model.encoder.layers.'),
                     ('transformer.resblocks.', 'text_model.encoder.layers.')):
        for i in range(count_blocks(sd, src)):
            s, d = '%s%d.' % (src, i), '%s%d.' % (dst, i)
            w, b = need(path, sd, s + 'attn.in_proj_weight'), need(path, sd, s + 'attn.in_proj_bias')
            used |= {s + 'attn.in_proj_weight', s + 'attn.in_proj_bias'}
            for j, (wj, bj) in enumerate(zip(w.chunk(3), b.chunk(3))):
                H[d + 'self_attn.%s_proj.weight' % 'qkv'[j]] = wj.contiguous()
                H[d + 'self_attn.%s_proj.bias' % 'qkv'[j]] = bj.contiguous()
            for a, hb in (('attn.out_proj', 'self_attn.out_proj'), ('ln_1', 'layer_norm1'),
                          ('ln_2', 'layer_norm2'), ('mlp.c_fc', 'mlp.fc1'),
                          ('mlp.c_proj', 'mlp.fc2')):
                for wb in ('weight', 'bias'):
                    H[d + hb + '.' + wb] = need(path, sd, s + a + '.' + wb)
                    used.add(s + a + '.' + wb)
    return H, sorted(set(sd) - used)


def openai_config(H, act, vocab_size):
    """config.json of the Hugging Face tensors @H; heads = width / 64 as OpenAI's
    build_model infers them."""
    conv = H['vision_model.embeddings.patch_embedding.weight']
    pos = H['vision_model.embeddings.position_embedding.weight']
    vw = conv.shape[0]
    tw = H['text_model.final_layer_norm.weight'].shape[0]
    g = int(round((pos.shape[0] - 1) ** 0.5))
    common = dict(hidden_act=act, layer_norm_eps=1e-5)
    text = dict(common, hidden_size=tw, num_attention_heads=tw // 64,
                num_hidden_layers=count_blocks(H, 'text_model.encoder.layers.'),
                intermediate_size=H['text_model.encoder.layers.0.mlp.fc1.weight'].shape[0],
                max_position_embeddings=H['text_model.embeddings.position_embedding.weight'].shape[0],
                vocab_size=vocab_size)
    vision = dict(common, hidden_size=vw, num_attention_heads=vw // 64,
                  num_hidden_layers=count_blocks(H, 'vision_model.encoder.layers.'),
                  intermediate_size=H['vision_model.encoder.layers.0.mlp.fc1.weight'].shape[0],
                  image_size=conv.shape[-1] * g, patch_size=conv.shape[-1])
    return dict(architectures=['CLIPModel'], model_type='clip',
                projection_dim=H['text_projection.weight'].shape[0], text_config=text,
                vision_config=vision)


# ---------------------------------------------------------------- EVA02

def eva02_config(sd, act, vocab_size, rope_seq):
    conv, pos = sd[EVA02_KEY], sd['visual.pos_embed']
    vw, tw = conv.shape[0], sd['text.ln_final.weight'].shape[0]
    g = int(round((pos.shape[1] - 1) ** 0.5))
    text = dict(hidden_size=tw, num_attention_heads=tw // 64,
                num_hidden_layers=count_blocks(sd, 'text.transformer.resblocks.'),
                intermediate_size=sd['text.transformer.resblocks.0.mlp.c_fc.weight'].shape[0],
                max_position_embeddings=sd['text.positional_embedding'].shape[0],
                vocab_size=vocab_size, hidden_act=act, layer_norm_eps=1e-5)
    vision = dict(hidden_size=vw, num_attention_heads=vw // 64,
                  num_hidden_layers=count_blocks(sd, 'visual.blocks.'),
                  intermediate_size=sd['visual.blocks.0.mlp.w1.weight'].shape[0],
                  image_size=conv.shape[-1] * g, patch_size=conv.shape[-1],
                  layer_norm_eps=1e-6, rope_pt_hw_seq_len=rope_seq)
    return dict(model_type='eva02-clip', projection_dim=sd['visual.head.weight'].shape[0],
                text_config=text, vision_config=vision)


def eva02_tensors(path, sd):
    for k in ('text.token_embedding.weight', 'text.positional_embedding', 'text.ln_final.weight',
              'text.text_projection', 'visual.pos_embed', 'visual.head.weight'):
        need(path, sd, k)
    unknown = sorted(k for k in sd if not k.startswith(('visual.', 'text.')) and k != 'logit_scale')
    return {k: v for k, v in sd.items() if k not in unknown}, unknown


# ---------------------------------------------------------------- writing

def write_safetensors(path, tensors, torch):
    """safetensors (huggingface/safetensors format): 8-byte header length, JSON header,
    the data of every tensor in its own dtype, header padded to 8 bytes."""
    names = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
             torch.float64: 'F64'}
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().cpu()
        if t.dtype not in names:
            raise ConvertError('tensor %s has dtype %s' % (k, t.dtype))
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[k] = {'dtype': names[t.dtype], 'shape': list(t.shape),
                     'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - (8 + len(text)) % 8) % 8)
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def find_vocab(given, src):
    """(directory with vocab.json + merges.txt, or None; BPE .gz path, or None)."""
    places = [given] if given else []
    places += [os.path.dirname(os.path.abspath(src))]
    shared = os.environ.get('CLIPSEG_SHARED_DIR')
    if shared:
        places.append(os.path.join(shared, 'clip-vocab'))
    for mod in ('clip', 'open_clip'):
        try:
            m = __import__(mod)
            places.append(os.path.dirname(m.__file__))
        except Exception:  # noqa: BLE001 - absent or broken: just not a place
            pass
    for p in places:
        if os.path.isfile(p):
            return None, p
        if os.path.isfile(os.path.join(p, 'vocab.json')) and \
                os.path.isfile(os.path.join(p, 'merges.txt')):
            return p, None
        if os.path.isfile(os.path.join(p, BPE_GZ)):
            return None, os.path.join(p, BPE_GZ)
    raise ConvertError('no CLIP BPE vocabulary found (give --vocab %s, or a directory with '
                       'vocab.json + merges.txt; looked in %s)' % (BPE_GZ, ', '.join(places)))


def write_vocab(out_dir, given, src, rows):
    """vocab.json + merges.txt in out_dir; returns the vocabulary size, which must
    fit the token embedding's @rows."""
    pair_dir, gz = find_vocab(given, src)
    if pair_dir:
        with open(os.path.join(pair_dir, 'vocab.json'), encoding='utf-8') as f:
            size = len(json.load(f))
        for n in ('vocab.json', 'merges.txt'):
            if os.path.abspath(os.path.join(pair_dir, n)) != os.path.abspath(os.path.join(out_dir, n)):
                shutil.copyfile(os.path.join(pair_dir, n), os.path.join(out_dir, n))
        where = pair_dir
    else:
        merges = read_bpe_merges(gz)
        encoder, size = build_vocab(merges)
        write_hf_vocab(out_dir, merges, encoder)
        where = gz
    if size > rows:
        raise ConvertError('the vocabulary from %s has %d tokens but the token embedding only %d '
                           'rows: give the vocabulary these weights were trained with (--vocab)'
                           % (where, size, rows))
    return size


def convert(src, out_dir, vocab=None, activation=None):
    try:
        import torch
    except ImportError:
        raise ConvertError('needs torch (Debian: apt install python3-torch)') from None
    sd, kind = load_state_dict(src, torch)
    sd = float_tensors(strip_module(sd), torch)
    fam = family(src, sd)
    if fam == 'openai' and kind == 'pickle' and activation is None:
        raise ConvertError('%s: an open_clip state dict does not record its activation: give '
                           '--activation quick_gelu (OpenAI weights, *-quickgelu models) or gelu '
                           "(open_clip's own configs, e.g. LAION ViT-B-16)" % src)
    os.makedirs(out_dir, exist_ok=True)
    if fam == 'eva02':
        tensors, dropped = eva02_tensors(src, sd)
        rows = tensors['text.token_embedding.weight'].shape[0]
        size = write_vocab(out_dir, vocab, src, rows)
        config = eva02_config(sd, activation or 'gelu', rows, 16)
    else:
        tensors, dropped = openai_to_hf(src, sd)
        rows = tensors['text_model.embeddings.token_embedding.weight'].shape[0]
        size = write_vocab(out_dir, vocab, src, rows)
        config = openai_config(tensors, activation or 'quick_gelu', rows)
    write_safetensors(os.path.join(out_dir, 'model.safetensors'), tensors, torch)
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    kinds = {'eva02': 'EVA02-CLIP', 'openai': 'OpenAI TorchScript' if kind == 'torchscript'
             else 'OpenAI-named state dict'}
    print('%s: %s, %d tensors, vocabulary of %d tokens -> %s' % (
        src, kinds[fam], len(tensors), size, out_dir))
    if dropped:
        print('  not converted (unused by the engine): %s' % ', '.join(dropped), file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n', 3)[3],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('input', metavar='IN')
    ap.add_argument('out_dir', metavar='OUT_DIR')
    ap.add_argument('--vocab', help='%s, or a directory with it or with vocab.json + merges.txt'
                    % BPE_GZ)
    ap.add_argument('--activation', choices=('quick_gelu', 'gelu'),
                    help='MLP activation of the text tower (and of an OpenAI-named vision tower)')
    a = ap.parse_args(argv)
    try:
        convert(a.input, a.out_dir, a.vocab, a.activation)
    except ConvertError as e:
        print('convert-checkpoint.py: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
