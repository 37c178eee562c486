#!/usr/bin/python3
"""Cascade-CLIP's seen/unseen experiment in the world, against training-free SCLIP.

Cascade-CLIP (Li et al., ICML'24; algorithms.md §4) is a trained zero-shot segmenter: a
frozen CLIP image tower whose intermediate layers are tapped (each tap its own trained
LayerNorm and projection into the text space), the taps of a stage summed with learned
Neighborhood-Gaussian weights, one ATM decoder per stage (class text embeddings as queries,
masks = head-averaged pre-softmax cross-attention scores), the stages' masks summed.  It is
trained on the pixels of *seen* classes only and evaluated on all classes, so its unseen
mIoU says whether it generalises beyond its training labels.  The world has exact ground
truth, so the setting can be reproduced honestly here.

Scaled to the world CLIP's 6-block tower: stage 1 taps blocks 1 and 2, stage 2 blocks 3
and 4 (ViT-B/16: three taps per stage, blocks 5-7 and 8-10), stage 3 is the tower's own
output (ln_post, proj).  Left out: the deep visual prompts (they need gradients through the
whole tower, beyond the CPU budget) and the relationship descriptor of ZegCLIP's decoder.

    cascade.py train MODEL_DIR --out RUN [--steps 1000] [--unseen sand,tent,boat]   # resumable
    cascade.py eval MODEL_DIR RUN [--scenes 100] [--json FILE]

Split (--unseen): by default every fourth class (ids 3, 7, 11: sand, tent, boat); unseen
pixels are ignored in training.  Evaluation: the 100 held-out scenes of eval_dense.py, SCLIP's sliding
windows (short side 128, 64-px windows, stride 32), softmax over all classes, the seen
classes' probabilities lowered by 0.1 (Cascade-CLIP's inductive calibration), argmax; SCLIP
on the same scenes.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_dense  # noqa: E402
import world  # noqa: E402
from bpe import Tokenizer  # noqa: E402
from export import load_hf  # noqa: E402
from train import SCENE_H, lr_at, load_state, resize_u8, save_state, MEAN, STD  # noqa: E402

DEFAULT_UNSEEN = "sand,tent,boat"
STAGES = ((1, 2), (3, 4))  # tapped blocks of stages 1 and 2; stage 3 = the tower's output
CROPS_PER_SCENE = 4


def gaussian_init(n):
    """Neighborhood Gaussian weights exp(-x^2/2) at x = n-1 .. 0 (the deepest tap weighs 1)."""
    return torch.tensor([math.exp(-0.5 * x * x) for x in range(n - 1, -1, -1)])


class ATMDecoder(nn.Module):
    """ATM: queries (class text embeddings) self-attend, cross-attend to the visual tokens,
    FFN; the mask of a class is its query's cross-attention scores before the softmax,
    averaged over heads (last layer)."""

    def __init__(self, embed, dim=128, heads=4, layers=2):
        super().__init__()
        self.heads = heads
        self.q_in, self.v_in = nn.Linear(embed, dim), nn.Linear(embed, dim)
        self.v_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({
                "self_attn": nn.MultiheadAttention(dim, heads, batch_first=True),
                "norm1": nn.LayerNorm(dim), "q": nn.Linear(dim, dim), "k": nn.Linear(dim, dim),
                "v": nn.Linear(dim, dim), "o": nn.Linear(dim, dim), "norm2": nn.LayerNorm(dim),
                "ffn": nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)),
                "norm3": nn.LayerNorm(dim)}))

    def forward(self, text, vis):
        """text [C, E], vis [b, N, E] -> mask scores [b, C, N]."""
        b, n, _ = vis.shape
        q = self.q_in(text).expand(b, -1, -1)
        v = self.v_norm(self.v_in(vis))
        h = self.heads
        split = lambda t: t.view(b, t.shape[1], h, -1).transpose(1, 2)
        for L in self.layers:
            q = L["norm1"](q + L["self_attn"](q, q, q, need_weights=False)[0])
            qq, kk, vv = split(L["q"](q)), split(L["k"](v)), split(L["v"](v))
            scores = qq @ kk.transpose(-1, -2) / math.sqrt(qq.shape[-1])  # [b, h, C, N]
            o = (scores.softmax(-1) @ vv).transpose(1, 2).reshape(b, -1, q.shape[-1])
            q = L["norm2"](q + L["o"](o))
            q = L["norm3"](q + L["ffn"](q))
        return scores.mean(1)


class CascadeHead(nn.Module):
    """The trained part: per tap a LayerNorm and a projection, per stage Gaussian weights
    and an ATM decoder."""

    def __init__(self, width, embed):
        super().__init__()
        self.tap_ln = nn.ModuleList([nn.LayerNorm(width) for s in STAGES for _ in s])
        self.tap_proj = nn.ModuleList([nn.Linear(width, embed, bias=False) for s in STAGES for _ in s])
        self.weights = nn.ParameterList([nn.Parameter(gaussian_init(len(s))) for s in STAGES])
        self.decoders = nn.ModuleList([ATMDecoder(embed) for _ in range(len(STAGES) + 1)])

    @classmethod
    def for_clip(cls, clip):
        return cls(clip.visual.conv1.out_channels, clip.visual.proj.shape[1])

    def forward(self, clip, x, text):
        """x [b, 3, h, w] normalised, text [C, E] -> mask scores [b, C, gh, gw]."""
        with torch.no_grad():
            t, (gh, gw) = clip.visual.tokens(x)
            outs = []
            for blk in clip.visual.transformer.resblocks:
                t = blk(t)
                outs.append(t)
            final = F.normalize(clip.visual.ln_post(t[:, 1:]) @ clip.visual.proj, dim=-1)
        feats, k = [], 0
        for s, blocks in enumerate(STAGES):
            taps = []
            for blk in blocks:
                taps.append(F.normalize(self.tap_proj[k](self.tap_ln[k](outs[blk][:, 1:])), dim=-1))
                k += 1
            feats.append(sum(w * f for w, f in zip(self.weights[s], taps)))
        feats.append(final)
        masks = sum(dec(text, f) for dec, f in zip(self.decoders, feats))
        return masks.view(x.shape[0], -1, gh, gw)


# ----------------------------------------------------------------------------- data

def batch(seed, step, n, size):
    """@n 64-px training crops (CROPS_PER_SCENE per rendered scene) and their label maps."""
    imgs, gts = [], []
    for j in range(n // CROPS_PER_SCENE):
        s = 10 ** 9 * (2 + seed) + step * n + j
        rng = np.random.default_rng([s, 4])
        w = int(rng.choice([128, 160, 192]))
        sc = world.render_scene(s, w, SCENE_H)
        for _ in range(CROPS_PER_SCENE):
            side = int(SCENE_H * rng.uniform(0.35, 0.65))
            y0, x0 = int(rng.integers(0, SCENE_H - side + 1)), int(rng.integers(0, w - side + 1))
            img = resize_u8(sc["image"][y0:y0 + side, x0:x0 + side], size)
            gt = torch.from_numpy(np.ascontiguousarray(sc["gt"][y0:y0 + side, x0:x0 + side])).long()
            gt = F.interpolate(gt[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
            if rng.random() < 0.5:
                img, gt = img.flip(-1), gt.flip(-1)
            imgs.append((img - MEAN) / STD)
            gts.append(gt)
    return torch.stack(imgs), torch.stack(gts)


def seen_loss(scores, gt, seen_ids):
    """Per-pixel cross-entropy over the seen classes; unseen pixels are ignored.  A sigmoid
    BCE + dice loss (the official code has focal + dice), tried first, drove the masks of the
    seen objects to zero: an object class covers about 1% of the pixels."""
    lg = F.interpolate(scores, size=gt.shape[-2:], mode="bilinear", align_corners=False)
    target = torch.full_like(gt, -100)
    for i, c in enumerate(seen_ids):
        target[gt == c] = i
    return F.cross_entropy(lg, target, ignore_index=-100)


def class_text(clip, tok):
    return eval_dense.text_embeddings(clip, tok, world.CLASSES, world.IMAGENET_TEMPLATES)


def train(a):
    clip = load_hf(a.model)
    for p in clip.parameters():
        p.requires_grad_(False)
    text = class_text(clip, Tokenizer.load(a.model))
    seen_ids = [world.CID[c] for c in world.CLASSES if c not in a.unseen]
    head = CascadeHead.for_clip(clip)
    opt = torch.optim.AdamW(head.parameters(), lr=a.lr, weight_decay=0.01)
    os.makedirs(a.out, exist_ok=True)
    state_path = os.path.join(a.out, "state.pt")
    start, elapsed = 0, 0.0
    if os.path.exists(state_path):
        st = load_state(state_path, head, opt)
        if st["unseen"] != a.unseen:
            sys.exit("cascade.py: %s was trained with --unseen %s, not %s; use another --out"
                     % (a.out, ",".join(st["unseen"]), ",".join(a.unseen)))
        start, elapsed = st["step"], st["elapsed"]
    size = clip.visual.image_size
    for step in range(start, a.steps):
        t0 = time.time()
        x, gt = batch(a.seed, step, a.batch, size)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, 20)
        loss = seen_loss(head(clip, x, text[seen_ids]), gt, seen_ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        elapsed += time.time() - t0
        if (step + 1) % 10 == 0:
            rec = {"step": step + 1, "loss": round(loss.item(), 4), "elapsed": round(elapsed)}
            print(json.dumps(rec), flush=True)
        if (step + 1) % 50 == 0 or step + 1 == a.steps:
            save_state(state_path, model=head.state_dict(), opt=opt.state_dict(), step=step + 1,
                       elapsed=elapsed, unseen=a.unseen)
    torch.save({"model": head.state_dict(), "steps": a.steps, "train_seconds": round(elapsed),
                "unseen": a.unseen},
               os.path.join(a.out, "head.pt"))
    return 0


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def cascade_segment(head, clip, img_u8, text, seen_ids, calibration, short=128):
    """SCLIP's sliding-window procedure with the Cascade head, class probabilities averaged
    over the windows: label map [H, W]."""
    crop = clip.visual.image_size
    x = eval_dense.resize_short(img_u8, short)
    prob = eval_dense.slide(x, len(text), crop, crop // 2, lambda xb: head(clip, xb, text),
                            post=lambda s: s.softmax(1))
    prob = F.interpolate(prob[None], size=img_u8.shape[:2], mode="bilinear", align_corners=False)[0]
    prob[seen_ids] -= calibration
    return prob.argmax(0).numpy().astype(np.uint8)


def split_scores(per_class, unseen):
    """(seen mIoU, unseen mIoU, harmonic mean) from per-class IoUs."""
    s = float(np.nanmean([v for c, v in zip(world.CLASSES, per_class) if c not in unseen]))
    u = float(np.nanmean([v for c, v in zip(world.CLASSES, per_class) if c in unseen]))
    return s, u, 2 * s * u / (s + u) if s + u > 0 else 0.0


def evaluate(a):
    clip = load_hf(a.model)
    tok = Tokenizer.load(a.model)
    head = CascadeHead.for_clip(clip)
    head_path = os.path.join(a.run, "head.pt")
    if not os.path.isfile(head_path):
        sys.exit("cascade.py: %s has no trained head (head.pt); run `cascade.py train` to the end first"
                 % a.run)
    ck = torch.load(head_path, map_location="cpu")
    head.load_state_dict(ck["model"])
    unseen = ck["unseen"]
    seen_ids = [world.CID[c] for c in world.CLASSES if c not in unseen]
    head.eval()
    text = class_text(clip, tok)
    size = world.parse_size(a.size)
    casc, sclip = eval_dense.IoU(len(world.CLASSES)), eval_dense.IoU(len(world.CLASSES))
    for s in range(a.scenes):
        sc = world.render_scene(s, size[0], size[1])
        casc.add(cascade_segment(head, clip, sc["image"], text, seen_ids, a.calibration), sc["gt"])
        sclip.add(eval_dense.segment(clip, sc["image"], text, "sclip")[0], sc["gt"])
    rows = {}
    for name, r in (("sclip (training-free)", sclip), ("cascade-clip (trained on seen)", casc)):
        pc = r.per_class()
        seen_m, unseen_m, h = split_scores(pc, unseen)
        rows[name] = {"seen_miou": seen_m, "unseen_miou": unseen_m, "hiou": h, "miou": r.miou(),
                      "per_class": {c: round(float(v), 4) for c, v in zip(world.CLASSES, pc)}}
    print("unseen classes: %s; %d scenes %s; cascade head trained %d steps (%d s), calibration %g"
          % (", ".join(unseen), a.scenes, a.size, ck["steps"], ck["train_seconds"], a.calibration))
    print("| method | seen mIoU | unseen mIoU | hIoU | mIoU (all 12) | %s |" % " | ".join(unseen))
    print("| --- | --- | --- | --- | --- |" + " --- |" * len(unseen))
    for name, r in rows.items():
        each = " | ".join("%.2f" % r["per_class"][c] for c in unseen)
        print("| %s | %.3f | %.3f | %.3f | %.3f | %s |"
              % (name, r["seen_miou"], r["unseen_miou"], r["hiou"], r["miou"], each))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"unseen": unseen, "scenes": a.scenes, "size": a.size, "steps": ck["steps"],
                       "calibration": a.calibration, "rows": rows}, f, indent=2)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the Cascade head on the seen classes (resumes from RUN/state.pt)")
    t.add_argument("model")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--unseen", default=DEFAULT_UNSEEN, help="comma-separated classes left out of training")
    e = sub.add_parser("eval", help="seen/unseen mIoU of the head and of SCLIP on held-out scenes")
    e.add_argument("model")
    e.add_argument("run")
    e.add_argument("--scenes", type=int, default=100)
    e.add_argument("--size", default="256x192")
    e.add_argument("--calibration", type=float, default=0.1,
                   help="subtracted from the seen classes' probabilities (Cascade-CLIP's inductive setting)")
    e.add_argument("--json")
    for p in (t, e):
        p.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.cmd == "train":
        a.unseen = a.unseen.split(",")
        bad = [c for c in a.unseen if c not in world.CID]
        if bad:
            ap.error("--unseen: %s not among the world's classes (%s)"
                     % (", ".join(bad), ", ".join(world.CLASSES)))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return train(a) if a.cmd == "train" else evaluate(a)


if __name__ == "__main__":
    sys.exit(main())
