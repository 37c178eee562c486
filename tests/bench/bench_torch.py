#!/usr/bin/python3
"""The PyTorch baseline of bench-engine: the same computation, set up at its
best (Debian's python3-torch, fp32, inference_mode, torch.set_num_threads,
OpenBLAS's OpenMP build underneath so torch's and BLAS's threads share a pool).

Cases (same names and output lines as bench-engine):
  dense224, dense448   vision tower, SCLIP last block (residual and FFN kept),
                       ln_post + projection + L2 norm on every patch token
  segment336x448       SCLIP slide inference: 6 windows of 224 (stride 112) in
                       one batch, per-window cosines upsampled, averaged,
                       scaled, softmaxed, max over synonyms, argmax

--attn mha uses nn.functional.multi_head_attention_forward (torch's fused
path) for the stock blocks; --attn manual writes q/k/v attention with bmm.
Usage: bench_torch.py MODEL_DIR [--threads N] [--runs N] [--attn mha|manual]
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {'F32': np.float32, 'F16': np.float16, 'BF16': np.uint16, 'I64': np.int64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == '__metadata__' or d['dtype'] == 'I64':
            continue
        b, e = d['data_offsets']
        a = np.frombuffer(data[b:e], dtype=DTYPES[d['dtype']])
        if d['dtype'] == 'BF16':
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(a.astype(np.float32).reshape(d['shape']))
    return out


class Vision:
    """OpenAI CLIP's vision tower from Hugging Face weights."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, 'config.json')) as f:
            cfg = json.load(f)['vision_config']
        T = read_safetensors(os.path.join(model_dir, 'model.safetensors'))
        p = 'vision_model.'
        self.heads = cfg['num_attention_heads']
        self.patch = cfg['patch_size']
        self.conv = T[p + 'embeddings.patch_embedding.weight']
        self.cls = T[p + 'embeddings.class_embedding']
        self.pos = T[p + 'embeddings.position_embedding.weight']
        self.ln_pre = (T[p + 'pre_layrnorm.weight'], T[p + 'pre_layrnorm.bias'])
        self.ln_post = (T[p + 'post_layernorm.weight'], T[p + 'post_layernorm.bias'])
        self.proj = T['visual_projection.weight']
        self.blocks = []
        i = 0
        while p + 'encoder.layers.%d.layer_norm1.weight' % i in T:
            q = p + 'encoder.layers.%d.' % i
            self.blocks.append({
                'ln1': (T[q + 'layer_norm1.weight'], T[q + 'layer_norm1.bias']),
                'ln2': (T[q + 'layer_norm2.weight'], T[q + 'layer_norm2.bias']),
                'in_w': torch.cat([T[q + 'self_attn.%s_proj.weight' % n] for n in 'qkv']),
                'in_b': torch.cat([T[q + 'self_attn.%s_proj.bias' % n] for n in 'qkv']),
                'out_w': T[q + 'self_attn.out_proj.weight'], 'out_b': T[q + 'self_attn.out_proj.bias'],
                'fc1': (T[q + 'mlp.fc1.weight'], T[q + 'mlp.fc1.bias']),
                'fc2': (T[q + 'mlp.fc2.weight'], T[q + 'mlp.fc2.bias']),
            })
            i += 1
        self.width = self.cls.shape[0]
        self.grid = int(round(math.sqrt(self.pos.shape[0] - 1)))

    def positions(self, gh, gw):
        if gh == self.grid and gw == self.grid:
            return self.pos
        g = self.pos[1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        g = F.interpolate(g, scale_factor=((gh + 0.1) / self.grid, (gw + 0.1) / self.grid),
                          mode='bicubic', align_corners=False)
        return torch.cat([self.pos[:1], g.permute(0, 2, 3, 1).reshape(gh * gw, -1)])

    def split(self, x, blk):
        B, L, D = x.shape
        qkv = F.linear(x, blk['in_w'], blk['in_b']).reshape(B, L, 3, self.heads, D // self.heads)
        return qkv.permute(2, 0, 3, 1, 4)  # 3, B, H, L, d

    def merge(self, o):
        B, H, L, d = o.shape
        return o.permute(0, 2, 1, 3).reshape(B, L, H * d)

    def attn_manual(self, y, blk):
        q, k, v = self.split(y, blk)
        s = 1.0 / math.sqrt(q.shape[-1])
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * s, dim=-1)
        return F.linear(self.merge(torch.matmul(a, v)), blk['out_w'], blk['out_b'])

    def attn_mha(self, y, blk):
        y = y.transpose(0, 1)  # L, B, D as OpenAI's nn.MultiheadAttention sees it
        out, _ = F.multi_head_attention_forward(
            y, y, y, self.width, self.heads, blk['in_w'], blk['in_b'], None, None, False, 0.0,
            blk['out_w'], blk['out_b'], training=False, need_weights=False)
        return out.transpose(0, 1)

    def attn_csa(self, y, blk):
        q, k, v = self.split(y, blk)
        s = 1.0 / math.sqrt(q.shape[-1])
        a = torch.softmax(torch.matmul(q, q.transpose(-1, -2)) * s, dim=-1) + \
            torch.softmax(torch.matmul(k, k.transpose(-1, -2)) * s, dim=-1)
        return F.linear(self.merge(torch.matmul(a, v)), blk['out_w'], blk['out_b'])

    def dense(self, x, attn):
        """x [B, 3, H, W] -> unit-length patch features [B, N, E] (SCLIP last block)."""
        B, _, H, W = x.shape
        gh, gw = H // self.patch, W // self.patch
        t = F.conv2d(x, self.conv, stride=self.patch).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(B, 1, -1), t], dim=1) + self.positions(gh, gw)
        t = F.layer_norm(t, (self.width,), *self.ln_pre)
        stock = self.attn_mha if attn == 'mha' else self.attn_manual
        for i, blk in enumerate(self.blocks):
            mix = self.attn_csa if i == len(self.blocks) - 1 else stock
            t = t + mix(F.layer_norm(t, (self.width,), *blk['ln1']), blk)
            h = F.linear(F.layer_norm(t, (self.width,), *blk['ln2']), *blk['fc1'])
            t = t + F.linear(h * torch.sigmoid(1.702 * h), *blk['fc2'])
        f = F.linear(F.layer_norm(t[:, 1:], (self.width,), *self.ln_post), self.proj)
        return F.normalize(f, dim=-1)


def segment(vision, attn, x, queries, class_of, n_classes, crop=224, stride=112, scale=40.0):
    _, _, H, W = x.shape
    rows = max(H - crop + stride - 1, 0) // stride + 1
    cols = max(W - crop + stride - 1, 0) // stride + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, H), min(c * stride + crop, W)
            boxes.append((max(y2 - crop, 0), max(x2 - crop, 0)))
    h, w = min(crop, H), min(crop, W)
    crops = torch.cat([x[:, :, y:y + h, xx:xx + w] for y, xx in boxes])
    feats = vision.dense(crops, attn)
    gh, gw = h // vision.patch, w // vision.patch
    logits = (feats @ queries.T).transpose(1, 2).reshape(len(boxes), -1, gh, gw)
    logits = F.interpolate(logits, size=(h, w), mode='bilinear', align_corners=False)
    acc = torch.zeros(queries.shape[0], H, W)
    count = torch.zeros(1, H, W)
    for (y, xx), lg in zip(boxes, logits):
        acc[:, y:y + h, xx:xx + w] += lg
        count[:, y:y + h, xx:xx + w] += 1
    probs = torch.softmax(scale * acc / count, dim=0)
    cls = torch.stack([probs[class_of == c].amax(0) for c in range(n_classes)])
    return cls, cls.argmax(0)


def dense_gflop(vision, side, windows=1):
    D, M = vision.width, vision.blocks[0]['fc1'][0].shape[0]
    E, p, layers = vision.proj.shape[0], vision.patch, len(vision.blocks)
    P = (side // p) ** 2
    N = P + 1
    total = 2 * P * D * 3 * p * p + layers * 2 * N * (4 * D * D + 2 * D * M) \
        + (layers - 1) * 4 * N * N * D + 6 * N * N * D + 2 * P * D * E
    return windows * total / 1e9


def timed(fn, runs):
    fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return sorted(ms)


def report(name, ms, gflop):
    med = ms[len(ms) // 2]
    print('case=%s median_ms=%.2f min_ms=%.2f max_ms=%.2f runs=%d gflop=%.3f gflops=%.1f'
          % (name, med, ms[0], ms[-1], len(ms), gflop, gflop / (med / 1000)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--attn', choices=('mha', 'manual'), default='mha')
    ap.add_argument('--cases', default='dense224,dense448,segment336x448')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vision = Vision(a.model)
    cases = a.cases.split(',')
    g = torch.Generator().manual_seed(7)
    with torch.inference_mode():
        for side in (224, 448):
            if 'dense%d' % side in cases:
                x = torch.rand(1, 3, side, side, generator=g) * 4 - 2
                report('dense%d' % side, timed(lambda: vision.dense(x, a.attn), a.runs),
                       dense_gflop(vision, side))
        if 'segment336x448' in cases:
            x = torch.rand(1, 3, 336, 448, generator=g) * 4 - 2
            E = vision.proj.shape[0]
            queries = F.normalize(torch.randn(10, E, generator=g), dim=-1)
            class_of = torch.tensor([0, 1, 1, 1, 2, 3, 4, 5, 6, 7])
            report('segment336x448', timed(lambda: segment(vision, a.attn, x, queries, class_of, 8),
                                           a.runs), dense_gflop(vision, 224, 6))
    return 0


if __name__ == '__main__':
    sys.exit(main())
