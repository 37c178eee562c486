#!/usr/bin/python3
"""The text tower: 150 classes x 80 templates (ADE20K's class names, OpenAI's imagenet80
templates), the engine against the official code's encode_text, fp32 and bf16, one run.

Engine: clipseg_queries_new through ctypes (tokenize, encode every prompt, average per
class) with --precision fp32 and bf16; the model loads outside the timing.
Peer: OpenAI CLIP's text side as its clip/model.py builds it and SCLIP calls it, written
here from that structure on Debian's torch: token embedding, positional embedding,
ResidualAttentionBlocks (nn.MultiheadAttention, sequence-first, the causal attn_mask),
ln_final, text_projection at the end token; per class, the 80 prompts tokenized to
clip.tokenize's 77 positions in one batch, each embedding L2-normalised, averaged,
normalised again (SCLIP's text_feature loop). fp32 under inference_mode, bf16 under
torch.autocast("cpu", dtype=torch.bfloat16). Its prompts are 5-11 random word ids between
the start and end tokens: the work is the 77 positions whatever the ids.

Both sides get the same threads, OMP_WAIT_POLICY=passive and run-bench.py's GLIBC_TUNABLES; rounds alternate the
order; medians over rounds.

Usage: bench-text.py BUILD_DIR [--vitb16 DIR] [--rounds N] [--threads N] [--classes N]
"""
import argparse
import ctypes
import os
import statistics
import sys
import time
from collections import OrderedDict

import vitb16

MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296'
HERE = os.path.dirname(os.path.abspath(__file__))
ADE150 = (
    "wall, building, sky, floor, tree, ceiling, road, bed, windowpane, grass, cabinet, sidewalk, "
    "person, earth, door, table, mountain, plant, curtain, chair, car, water, painting, sofa, "
    "shelf, house, sea, mirror, rug, field, armchair, seat, fence, desk, rock, wardrobe, lamp, "
    "bathtub, railing, cushion, base, box, column, signboard, chest of drawers, counter, sand, "
    "sink, skyscraper, fireplace, refrigerator, grandstand, path, stairs, runway, case, "
    "pool table, pillow, screen door, stairway, river, bridge, bookcase, blind, coffee table, "
    "toilet, flower, book, hill, bench, countertop, stove, palm, kitchen island, computer, "
    "swivel chair, boat, bar, arcade machine, hovel, bus, towel, light, truck, tower, "
    "chandelier, awning, streetlight, booth, television receiver, airplane, dirt track, "
    "apparel, pole, land, bannister, escalator, ottoman, bottle, buffet, poster, stage, van, "
    "ship, fountain, conveyer belt, canopy, washer, plaything, swimming pool, stool, barrel, "
    "basket, waterfall, tent, bag, minibike, cradle, oven, ball, food, step, tank, trade name, "
    "microwave, pot, animal, bicycle, lake, dishwasher, screen, blanket, sculpture, hood, "
    "sconce, vase, traffic light, tray, ashcan, fan, pier, crt screen, plate, monitor, "
    "bulletin board, shower, radiator, glass, clock, flag").split(', ')


def engine_side(build, model, names, precision, threads):
    """(seconds to encode, what runs) of clipseg_queries_new in a fresh model."""
    sys.path.insert(0, HERE)
    import clipseg_ctypes as cc
    e = cc.Engine(cc.find_library(build))
    L = e.lib
    P, I = ctypes.c_void_p, ctypes.c_int
    E = ctypes.POINTER(ctypes.POINTER(cc.GError))
    for name, res, args in (("clipseg_queries_new", P, [P, P, P, I, E]),):
        getattr(L, name).restype, getattr(L, name).argtypes = res, args
    err = ctypes.POINTER(cc.GError)()
    params = L.clipseg_model_default_params()
    asked = ctypes.c_int()
    L.clipseg_precision_from_name(precision.encode(), ctypes.byref(asked))
    params.precision = asked.value
    m = L.clipseg_model_load(os.fsencode(model), params, ctypes.byref(err))
    e._check(m, err, "loading %s" % model)
    info = L.clipseg_model_get_info(m).contents
    labels = L.clipseg_labels_parse_file_text("\n".join(names).encode(), ctypes.byref(err))
    e._check(labels, err, "labels")
    tmpl = L.clipseg_templates_load(b"imagenet80", ctypes.byref(err))
    t0 = time.perf_counter()
    q = L.clipseg_queries_new(m, labels, tmpl, threads, ctypes.byref(err))
    dt = time.perf_counter() - t0
    e._check(q, err, "queries")
    what = "%s %s %s, attention %s" % (L.clipseg_precision_name(info.precision).decode(),
                                       info.gemm_library.decode(), info.gemm_isa.decode(),
                                       (info.attention_kernel or b"?").decode())
    L.clipseg_queries_free(q)
    e.glib.g_strfreev(tmpl)
    L.clipseg_labels_free(labels)
    L.clipseg_model_unref(m)
    return dt, what


def imagenet80(build):
    sys.path.insert(0, HERE)
    import clipseg_ctypes as cc
    e = cc.Engine(cc.find_library(build))
    L = e.lib
    L.clipseg_templates_load.restype = ctypes.POINTER(ctypes.c_char_p)
    err = ctypes.POINTER(cc.GError)()
    arr = L.clipseg_templates_load(b"imagenet80", ctypes.byref(err))
    out = []
    i = 0
    while arr[i]:
        out.append(arr[i].decode())
        i += 1
    return out


def peer_side(model, n_classes, n_templates, precision, threads):
    """Seconds of SCLIP's text-feature loop over OpenAI's encode_text."""
    import json
    import torch
    import torch.nn as nn
    import bench_torch as bt

    torch.set_num_threads(threads)
    with open(os.path.join(model, 'config.json')) as f:
        cfg = json.load(f)['text_config']
    T = bt.read_safetensors(os.path.join(model, 'model.safetensors'))
    width, layers, heads = cfg['hidden_size'], cfg['num_hidden_layers'], cfg['num_attention_heads']
    ctx, vocab = cfg['max_position_embeddings'], cfg['vocab_size']

    class Block(bt.ResidualAttentionBlock):
        def __init__(self):
            super().__init__(width, heads)
            self.mask = torch.full((ctx, ctx), float('-inf')).triu_(1)   # OpenAI's build_attention_mask

        def forward(self, x):
            y = self.ln_1(x)
            x = x + self.attn(y, y, y, need_weights=False, attn_mask=self.mask.to(y.dtype))[0]
            return x + self.mlp(self.ln_2(x))

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = nn.Embedding(vocab, width)
            self.positional_embedding = nn.Parameter(torch.empty(ctx, width))
            self.transformer = nn.Sequential(*[Block() for _ in range(layers)])
            self.ln_final = bt.LayerNorm(width)
            self.text_projection = nn.Parameter(torch.empty(width, T['text_projection.weight'].shape[0]))

        def encode_text(self, text):                                   # OpenAI clip/model.py
            x = self.token_embedding(text) + self.positional_embedding
            x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
            x = self.ln_final(x)
            return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    p = 'text_model.'
    sd = {'token_embedding.weight': T[p + 'embeddings.token_embedding.weight'],
          'positional_embedding': T[p + 'embeddings.position_embedding.weight'],
          'ln_final.weight': T[p + 'final_layer_norm.weight'], 'ln_final.bias': T[p + 'final_layer_norm.bias'],
          'text_projection': T['text_projection.weight'].t().contiguous()}
    for i in range(layers):
        h, o = p + 'encoder.layers.%d.' % i, 'transformer.%d.' % i
        for part in ('weight', 'bias'):
            sd[o + 'attn.in_proj_' + part] = torch.cat([T[h + 'self_attn.%s_proj.%s' % (n, part)] for n in 'qkv'])
            sd[o + 'attn.out_proj.' + part] = T[h + 'self_attn.out_proj.' + part]
            sd[o + 'ln_1.' + part] = T[h + 'layer_norm1.' + part]
            sd[o + 'ln_2.' + part] = T[h + 'layer_norm2.' + part]
            sd[o + 'mlp.c_fc.' + part] = T[h + 'mlp.fc1.' + part]
            sd[o + 'mlp.c_proj.' + part] = T[h + 'mlp.fc2.' + part]
    text = Text()
    text.load_state_dict(sd, strict=True)
    text.eval()
    g = torch.Generator().manual_seed(5)
    # clip.tokenize: start token, words, end token (the largest id, where argmax pools), zeros
    batches = []
    for _ in range(n_classes):
        ids = torch.zeros(n_templates, ctx, dtype=torch.long)
        n_words = torch.randint(5, 12, (n_templates,), generator=g)
        for r in range(n_templates):
            ids[r, 0] = vocab - 2
            ids[r, 1:1 + n_words[r]] = torch.randint(1, vocab - 2, (int(n_words[r]),), generator=g)
            ids[r, 1 + n_words[r]] = vocab - 1
        batches.append(ids)
    ctxm = torch.autocast('cpu', dtype=torch.bfloat16) if precision == 'bf16' else torch.inference_mode()
    with torch.inference_mode(), ctxm:
        t0 = time.perf_counter()
        for ids in batches:                                            # SCLIP's per-class loop
            f = text.encode_text(ids).float()
            f = f / f.norm(dim=-1, keepdim=True)
            f = f.mean(dim=0)
            f = f / f.norm()
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('build')
    ap.add_argument('--vitb16', help='ViT-B/16-shaped HF checkpoint (generated when absent)')
    ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--classes', type=int, default=150)
    a = ap.parse_args()
    if os.environ.get('GLIBC_TUNABLES') != MALLOC_TUNABLES:
        # as run-bench.py: torch's large temporaries otherwise fault in anew in every op
        os.environ.update(GLIBC_TUNABLES=MALLOC_TUNABLES, OMP_WAIT_POLICY='passive')
        os.execv(sys.executable, [sys.executable] + sys.argv)
    model = vitb16.ensure(a.vitb16)
    names = ADE150[:a.classes]
    n_templates = len(imagenet80(a.build))
    got, what = {}, {}
    for r in range(a.rounds):
        steps = [('engine', 'fp32'), ('engine', 'bf16'), ('peer', 'fp32'), ('peer', 'bf16')]
        for side, p in (steps if r % 2 == 0 else steps[::-1]):
            if side == 'engine':
                dt, what[p] = engine_side(a.build, model, names, p, a.threads)
            else:
                dt = peer_side(model, len(names), n_templates, p, a.threads)
            got.setdefault((side, p), []).append(dt)
            print('round %d %s %s: %.1f s' % (r + 1, side, p, dt), flush=True)
    print('\nViT-B/16 text tower, %d classes x %d templates (%d prompts), %d threads, medians of %d rounds'
          % (len(names), n_templates, len(names) * n_templates, a.threads, a.rounds))
    print('engine: ' + '; '.join('%s: %s' % kv for kv in sorted(what.items())))
    print('peer: OpenAI encode_text structure (77 positions per prompt), fp32 inference_mode / bf16 autocast')
    print('| precision | engine s | peer s | engine/peer |')
    print('|---|---|---|---|')
    for p in ('fp32', 'bf16'):
        e, t = statistics.median(got[('engine', p)]), statistics.median(got[('peer', p)])
        print('| %s | %.1f | %.1f | %.2f |' % (p, e, t, e / t))
    return 0


if __name__ == '__main__':
    sys.exit(main())
