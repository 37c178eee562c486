"""A small CLIP with exactly OpenAI CLIP's architecture (torch).

Module and parameter names follow OpenAI's model.py (`visual.conv1`, `visual.transformer.
resblocks.N.attn.in_proj_weight`, ...), so export.py can map them one to one onto the
Hugging Face names the C engine loads.  Differences from OpenAI's code are deliberate and
documented: the text tower pools at the FIRST end token (our vocabulary's end id is not the
largest id), and the vision tower can run its last block in the training-free dense modes
(vanilla / maskclip / sclip) used by the engine.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """nn.MultiheadAttention's parameter layout (fused in_proj, out_proj), written out so
    the dense modes can reuse its weights."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def qkv(self, x):
        b, n, d = x.shape
        h = self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        split = lambda t: t.view(b, n, h, d // h).transpose(1, 2)  # [b,h,n,dh]
        return split(q), split(k), split(v)

    def merge(self, o):
        b, h, n, dh = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(b, n, h * dh))

    def forward(self, x, mask=None):
        q, k, v = self.qkv(x)
        s = q.shape[-1] ** -0.5
        a = (q @ k.transpose(-1, -2)) * s
        if mask is not None:
            a = a + mask
        return self.merge(a.softmax(-1) @ v)

    def forward_dense(self, x, mode):
        """Last-block attention of the dense modes (algorithms.md §1.1, §2.1, §3.1)."""
        q, k, v = self.qkv(x)
        if mode == "maskclip":
            return self.merge(v)
        if mode == "sclip":
            s = q.shape[-1] ** -0.5
            a = ((q @ q.transpose(-1, -2)) * s).softmax(-1) + ((k @ k.transpose(-1, -2)) * s).softmax(-1)
            return self.merge(a @ v)
        if mode == "vanilla":
            return self.forward(x)
        raise ValueError(mode)


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))

    def forward(self, x, mask=None, mode=None):
        if mode is None:
            x = x + self.attn(self.ln_1(x), mask)
        else:
            x = x + self.attn.forward_dense(self.ln_1(x), mode)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch, width, layers, heads, embed):
        super().__init__()
        self.image_size, self.patch = image_size, patch
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        sc = width ** -0.5
        self.class_embedding = nn.Parameter(sc * torch.randn(width))
        self.positional_embedding = nn.Parameter(sc * torch.randn((image_size // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width, eps=1e-5)
        self.proj = nn.Parameter(sc * torch.randn(width, embed))

    def pos_embed(self, gh, gw):
        pe = self.positional_embedding
        g = self.image_size // self.patch
        if gh == g and gw == g:
            return pe
        grid = pe[1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        return torch.cat([pe[:1], grid.permute(0, 2, 3, 1).reshape(gh * gw, -1)])

    def tokens(self, x):
        x = self.conv1(x)  # [b,w,gh,gw]
        b, w, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(b, 1, w)
        x = torch.cat([cls, x], 1) + self.pos_embed(gh, gw)
        return self.ln_pre(x), (gh, gw)

    def forward(self, x):
        x, _ = self.tokens(x)
        for blk in self.transformer.resblocks:
            x = blk(x)
        return self.ln_post(x[:, 0]) @ self.proj

    def dense(self, x, mode="sclip"):
        """L2-normalised patch features [b, gh*gw, E] with the last block in @mode."""
        x, g = self.tokens(x)
        blocks = self.transformer.resblocks
        for blk in blocks[:-1]:
            x = blk(x)
        x = blocks[-1](x, mode=mode)
        f = self.ln_post(x) @ self.proj
        return F.normalize(f, dim=-1)[:, 1:], g


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        c = cfg
        self.visual = VisionTransformer(c["image_size"], c["patch_size"], c["vision_width"],
                                        c["vision_layers"], c["vision_heads"], c["embed_dim"])
        self.context_length = c["context_length"]
        self.eot_id = c["eot_id"]
        self.transformer = Transformer(c["text_width"], c["text_layers"], c["text_heads"])
        self.token_embedding = nn.Embedding(c["vocab_size"], c["text_width"])
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], c["text_width"]))
        self.ln_final = nn.LayerNorm(c["text_width"], eps=1e-5)
        self.text_projection = nn.Parameter(torch.empty(c["text_width"], c["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._init()

    def _init(self):
        # OpenAI CLIP's initialise_parameters
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for tower, width in ((self.transformer, self.cfg["text_width"]),
                             (self.visual.transformer, self.cfg["vision_width"])):
            layers = len(tower.resblocks)
            proj_std = width ** -0.5 * (2 * layers) ** -0.5
            attn_std = width ** -0.5
            fc_std = (2 * width) ** -0.5
            for blk in tower.resblocks:
                nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
                nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
                nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=self.cfg["text_width"] ** -0.5)

    def encode_image(self, x):
        return self.visual(x)

    def encode_text(self, ids):
        """ids: [b, n] int64, each row [sot, tokens..., eot, pad...]; n <= context_length.
        Pools at the first end token."""
        n = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:n]
        mask = torch.full((n, n), float("-inf"), device=ids.device).triu_(1)
        for blk in self.transformer.resblocks:
            x = blk(x, mask)
        x = self.ln_final(x)
        eot = (ids == self.eot_id).int().argmax(dim=1)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection
