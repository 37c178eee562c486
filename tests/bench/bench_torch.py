#!/usr/bin/python3
"""The PyTorch peer of bench-engine: SCLIP's dense forward built the way SCLIP's
official code builds it, on Debian's python3-torch.

The model follows OpenAI CLIP's VisionTransformer as SCLIP ships it
(github.com/wangf3014/SCLIP, clip/model.py), written here from its structure:
  conv1 patch embedding, class token, positional embedding (bicubic-resized to
  the grid when the image is not 224, as SCLIP resizes it), ln_pre;
  blocks 1..11: x + nn.MultiheadAttention(ln_1(x)), x + MLP(ln_2(x)) with
  c_fc, QuickGELU, c_proj, tokens sequence-first (L, B, D) as OpenAI's code
  keeps them;
  block 12: x + correlative self-attention of ln_1(x) with that block's own
  in_proj and out_proj (q, k, v from one F.linear, heads as a batch,
  softmax(q qᵀ·s) + softmax(k kᵀ·s) times v through torch.bmm), then
  x + MLP(ln_2(x)) (SCLIP keeps the residual and the FFN);
  ln_post and the projection on every token, L2 norm, class token dropped
  (SCLIP's encode_image(return_all=True) and forward_feature).
Weights come from the Hugging Face checkpoint given (tests/bench/vitb16.py makes
one with the exact ViT-B/16 shapes), mapped onto OpenAI's parameter names.

Precisions:
  fp32          under torch.inference_mode()
  bf16          the same under torch.autocast("cpu", dtype=torch.bfloat16): the
                linears and bmm run in bf16 through oneDNN, layer norms in fp32;
                one autocast context around all runs, so autocast caches the
                bf16 copies of the weights
  bf16-nocache  the same with a context of its own per forward and
                cache_enabled=False (the weights are cast in every forward).
                run-bench.py takes the faster of the two as the bf16 peer
Large temporaries (448: 12 x 785 x 785 attention matrices, 30 MB) make glibc's
malloc map and unmap memory in every op, and the page faults cost torch much:
with glibc's defaults bf16 at 448 took 1150-1550 ms with the weight cache and
about 550 without; with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
glibc.malloc.trim_threshold=4294967296 (what run-bench.py sets for both sides)
430 and 450 ms (one run each, 5 forwards).

Cases (output lines as bench-engine's, plus precision=):
  dense224, dense448   one whole-image dense forward
  matmul2048           torch.matmul of two 2048x2048 matrices in the precision
                       (fp32: torch's BLAS, OpenBLAS here; bf16: oneDNN)
  mkldnn2048           fp32 only: a 2048x2048 Linear through oneDNN
                       (torch.utils.mkldnn), the fp32 oneDNN rate
The first lines say whether torch's fused nn.MultiheadAttention fast path ran
(it counts calls to torch._native_multi_head_attention during a forward). On
Debian's torch 1.13 it does not: that path needs batch_first=True and no
autocast, and OpenAI's blocks are sequence-first. A batch-first variant that
takes it (checked once, not kept) was no faster: 224 458 vs 459 ms, 448 2450 vs
2272 ms fp32, same process, interleaved.
Checked once: on one checkpoint and input, the fp32 features of dense() match
`clipseg-engine dense --precision fp32` to 1e-6 relative error (bf16 autocast
differs from fp32 by 1e-2), so both sides compute the same thing.

Usage: bench_torch.py MODEL_DIR [--threads N] [--runs N] [--precision fp32,bf16,bf16-nocache]
                      [--cases dense224,dense448,matmul2048,mkldnn2048]
Run it with /usr/bin/python3, OMP_WAIT_POLICY=passive and those GLIBC_TUNABLES
(run-bench.py does).
"""
import argparse
import contextlib
import json
import math
import os
import struct
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {'F32': np.float32, 'F16': np.float16, 'BF16': np.uint16, 'I64': np.int64}


def read_safetensors(path):
    """name -> float32 tensor for every floating tensor of a safetensors file."""
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


class LayerNorm(nn.LayerNorm):
    """OpenAI's LayerNorm: computed in fp32, returned in the input's dtype."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)   # sequence-first, as OpenAI's
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, 4 * width)),
            ('gelu', QuickGELU()),
            ('c_proj', nn.Linear(4 * width, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


def correlative_attention(attn, x):
    """SCLIP's CSA with the weights of @attn (an nn.MultiheadAttention); x [L, B, D]."""
    L, B, D = x.shape
    H = attn.num_heads
    d = D // H
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    # [L, B, D] -> [B·H, L, d]: every head of every image one batch entry
    q, k, v = (t.contiguous().view(L, B * H, d).transpose(0, 1) for t in (q, k, v))
    s = d ** -0.5
    a = F.softmax(torch.bmm(q, q.transpose(1, 2)) * s, dim=-1) \
        + F.softmax(torch.bmm(k, k.transpose(1, 2)) * s, dim=-1)
    o = torch.bmm(a, v).transpose(0, 1).contiguous().view(L, B, D)
    return attn.out_proj(o)


class VisionTransformer(nn.Module):
    def __init__(self, resolution, patch, width, layers, heads, output_dim):
        super().__init__()
        self.patch = patch
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def positions(self, gh, gw):
        """The positional embedding for a gh x gw grid (SCLIP's bicubic resize)."""
        pos = self.positional_embedding
        g0 = int(math.sqrt(pos.shape[0] - 1))
        if gh == g0 and gw == g0:
            return pos
        grid = pos[1:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0), mode='bicubic')
        return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(gh * gw, -1)])

    def dense(self, x):
        """x [B, 3, H, W] -> unit-length patch features [B, P, E] (SCLIP last block)."""
        B, _, H, W = x.shape
        t = self.conv1(x).flatten(2).permute(0, 2, 1)                    # B, P, D
        cls = self.class_embedding.to(t.dtype) + torch.zeros(B, 1, t.shape[-1], dtype=t.dtype)
        t = torch.cat([cls, t], dim=1)
        t = self.ln_pre(t + self.positions(H // self.patch, W // self.patch).to(t.dtype))
        t = t.permute(1, 0, 2)                                           # L, B, D
        for blk in self.resblocks[:-1]:
            t = blk(t)
        last = self.resblocks[-1]
        t = t + correlative_attention(last.attn, last.ln_1(t))
        t = t + last.mlp(last.ln_2(t))
        f = self.ln_post(t.permute(1, 0, 2)) @ self.proj                # B, L, E
        f = f / f.norm(dim=-1, keepdim=True)
        return f[:, 1:]


def load_vision(model_dir):
    """The vision tower of a Hugging Face CLIP checkpoint in OpenAI's structure."""
    with open(os.path.join(model_dir, 'config.json')) as f:
        cfg = json.load(f)['vision_config']
    T = read_safetensors(os.path.join(model_dir, 'model.safetensors'))
    p = 'vision_model.'
    width, layers = cfg['hidden_size'], cfg['num_hidden_layers']
    vt = VisionTransformer(cfg['image_size'], cfg['patch_size'], width, layers,
                           cfg['num_attention_heads'], T['visual_projection.weight'].shape[0])
    sd = {
        'conv1.weight': T[p + 'embeddings.patch_embedding.weight'],
        'class_embedding': T[p + 'embeddings.class_embedding'],
        'positional_embedding': T[p + 'embeddings.position_embedding.weight'],
        'ln_pre.weight': T[p + 'pre_layrnorm.weight'], 'ln_pre.bias': T[p + 'pre_layrnorm.bias'],
        'ln_post.weight': T[p + 'post_layernorm.weight'], 'ln_post.bias': T[p + 'post_layernorm.bias'],
        'proj': T['visual_projection.weight'].t().contiguous(),
    }
    for i in range(layers):
        h, o = p + 'encoder.layers.%d.' % i, 'resblocks.%d.' % i
        for part in ('weight', 'bias'):
            sd[o + 'attn.in_proj_' + part] = torch.cat([T[h + 'self_attn.%s_proj.%s' % (n, part)] for n in 'qkv'])
            sd[o + 'attn.out_proj.' + part] = T[h + 'self_attn.out_proj.' + part]
            sd[o + 'ln_1.' + part] = T[h + 'layer_norm1.' + part]
            sd[o + 'ln_2.' + part] = T[h + 'layer_norm2.' + part]
            sd[o + 'mlp.c_fc.' + part] = T[h + 'mlp.fc1.' + part]
            sd[o + 'mlp.c_proj.' + part] = T[h + 'mlp.fc2.' + part]
    vt.load_state_dict(sd, strict=True)
    return vt.eval()


def precision_context(precision):
    """The context around all runs of a precision."""
    if precision == 'bf16':
        return torch.autocast('cpu', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward_fn(vt, x, precision):
    """One dense forward as timed in @precision."""
    if precision == 'bf16-nocache':
        def fn():
            with torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=False):
                return vt.dense(x)
        return fn
    return lambda: vt.dense(x)


def dense_gflop(vt, side):
    """FLOPs of one forward (bench-engine's count: multiply-add = 2, SCLIP last block)."""
    blk = vt.resblocks[0]
    D, M = blk.mlp.c_fc.in_features, blk.mlp.c_fc.out_features
    E, p, layers = vt.proj.shape[1], vt.patch, len(vt.resblocks)
    P = (side // p) ** 2
    N = P + 1
    total = 2 * P * D * 3 * p * p + layers * 2 * N * (4 * D * D + 2 * D * M) \
        + (layers - 1) * 4 * N * N * D + 6 * N * N * D + 2 * P * D * E
    return total / 1e9


def fast_path_calls(vt, x, precision):
    """How often one forward enters torch's fused MHA kernel."""
    native = getattr(torch, '_native_multi_head_attention', None)
    if native is None:
        return 0
    calls = [0]

    def counted(*args, **kwargs):
        calls[0] += 1
        return native(*args, **kwargs)

    torch._native_multi_head_attention = counted
    try:
        with precision_context(precision):
            forward_fn(vt, x, precision)()
    finally:
        torch._native_multi_head_attention = native
    return calls[0]


def timed(fn, runs):
    fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return sorted(ms)


def report(name, precision, ms, gflop):
    med = ms[len(ms) // 2]
    print('case=%s precision=%s median_ms=%.2f min_ms=%.2f max_ms=%.2f runs=%d gflop=%.3f gflops=%.1f'
          % (name, precision, med, ms[0], ms[-1], len(ms), gflop, gflop / (med / 1000)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--precision', default='fp32,bf16,bf16-nocache')
    ap.add_argument('--cases', default='dense224,dense448,matmul2048,mkldnn2048')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cases, precisions = a.cases.split(','), a.precision.split(',')
    if set(precisions) - {'fp32', 'bf16', 'bf16-nocache'}:
        ap.error('--precision takes fp32, bf16 and/or bf16-nocache')
    vt = load_vision(a.model)
    g = torch.Generator().manual_seed(7)
    print('# torch %s, %d threads, OMP_WAIT_POLICY=%s' % (
        torch.__version__, torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY', '(unset)')), flush=True)
    with torch.inference_mode():
        x224 = torch.rand(1, 3, 224, 224, generator=g) * 4 - 2
        for precision in precisions:
            print('# %s: fused MHA fast path ran in %d of %d blocks' % (
                precision, fast_path_calls(vt, x224, precision), len(vt.resblocks) - 1), flush=True)
        for precision in precisions:
            for side in (224, 448):
                if 'dense%d' % side in cases:
                    x = torch.rand(1, 3, side, side, generator=g) * 4 - 2
                    with precision_context(precision):
                        ms = timed(forward_fn(vt, x, precision), a.runs)
                    report('dense%d' % side, precision, ms, dense_gflop(vt, side))
            n = 2048
            if 'matmul2048' in cases and precision != 'bf16-nocache':
                dt = torch.bfloat16 if precision == 'bf16' else torch.float32
                m1, m2 = torch.randn(n, n, generator=g).to(dt), torch.randn(n, n, generator=g).to(dt)
                report('matmul2048', precision, timed(lambda: torch.matmul(m1, m2), 5), 2 * n ** 3 / 1e9)
            if 'mkldnn2048' in cases and precision == 'fp32' and torch.backends.mkldnn.is_available():
                from torch.utils import mkldnn as mkldnn_utils
                lin = mkldnn_utils.to_mkldnn(nn.Linear(n, n, bias=False).eval())
                m1 = torch.randn(n, n, generator=g).to_mkldnn()
                report('mkldnn2048', precision, timed(lambda: lin(m1), 5), 2 * n ** 3 / 1e9)
    return 0


if __name__ == '__main__':
    sys.exit(main())
