#!/usr/bin/python3
"""Trains clipseg's world CLIP (contrastive), and optionally its CLIPSelf stage.

    # 1. plain CLIP (InfoNCE both ways on world crops + captions), resumable
    nice -n 15 /usr/bin/python3 engine/world/train.py --out RUN
    # 2. dense stage of the image tower, teacher = RUN's final model: CLIPSelf's
    #    self-distillation plus OpenSeg's region-word grounding on class-agnostic segments
    nice -n 15 /usr/bin/python3 engine/world/train.py --clipself --teacher RUN --out RUN-clipself

The shipped model's exact commands and numbers: engine/world/README.md.

RUN/ receives vocab.json + merges.txt, state.pt (checkpoint: model, optimiser, step; the
run resumes from it when restarted with the same command; restarted with a larger --steps it
goes on along the longer schedule's learning-rate curve), log.jsonl (loss, zero-shot
accuracy and a small dense probe every --eval-every steps) and, at the end, final.pt and the
exported Hugging Face directory RUN/hf/.

Determinism: sample i of step t is world scene seed 1e9*(1+seed) + t*batch + i with its own
crop/caption RNG, so a resumed run sees exactly the samples an uninterrupted run would.
Seeds below 1e9 are never trained on: evaluations use them.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import world  # noqa: E402
from clipmodel import CLIP  # noqa: E402
from export import IMAGE_MEAN, IMAGE_STD, export, load_hf  # noqa: E402
import eval_dense  # noqa: E402

DEFAULT_CFG = dict(image_size=64, patch_size=8, vision_width=128, vision_layers=6, vision_heads=2,
                   embed_dim=128, context_length=77, text_width=128, text_layers=4, text_heads=2)
SCENE_H = 128
GROUP = 4
MEAN = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGE_STD).view(3, 1, 1)


# ----------------------------------------------------------------------------- data

def crop_box(rng, sc, w, h, p_object):
    """A square crop (y0, x0, side, object index or None): with probability @p_object tight
    around one object, else random with its side biased to half the scene height (the scale
    of an inference window at the default resolution)."""
    objs = sc["objects"]
    if objs and rng.random() < p_object:
        k = int(rng.integers(len(objs))) + 1
        ys, xs = np.nonzero(sc["inst"] == k)
        if len(ys) >= 30:
            cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
            ext = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
            side = int(min(max(ext * rng.uniform(1.05, 1.6), 24), h))
            y0 = int(np.clip(cy - side / 2 + rng.uniform(-0.1, 0.1) * side, 0, h - side))
            x0 = int(np.clip(cx - side / 2 + rng.uniform(-0.1, 0.1) * side, 0, w - side))
            return y0, x0, side, k - 1
    r = rng.random()
    if r < 0.2:
        side = h
    elif r < 0.7:
        side = int(h * rng.uniform(0.35, 0.65))
    else:
        side = int(h * rng.uniform(0.65, 1.0))
    return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side, None


def resize_u8(img, size):
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()[None]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x[0] / 255


def make_sample(seed, size, with_caption=True, group=None, p_object=0.2, patch=None):
    """One (image, caption, segment masks) triple.  Samples of the same @group share the
    landscape, the crop and the flip and differ only in their objects: in-batch negatives
    that only object identity can tell apart (colours and stuff alone are otherwise an easy
    shortcut).  Object crops (probability @p_object) are captioned half of the time by the
    object's name in a prompt template, a direct name-shape signal.  The masks are the crop's
    segments as class-agnostic masks on the @patch grid (region_masks), None without @patch."""
    rng = np.random.default_rng([seed, 1])
    grng = rng if group is None else np.random.default_rng([group, 3])
    w = int(grng.choice([128, 160, 192]))
    sc = world.render_scene(seed, w, SCENE_H, bg_seed=None if group is None else group)
    k = None
    if group is None:
        y0, x0, side, k = crop_box(rng, sc, w, SCENE_H, p_object)
    else:
        side = int(SCENE_H * grng.uniform(0.45, 1.0))
        y0, x0 = int(grng.integers(0, SCENE_H - side + 1)), int(grng.integers(0, w - side + 1))
    img = resize_u8(sc["image"][y0:y0 + side, x0:x0 + side], size)
    masks = None if patch is None else region_masks(sc, (y0, x0, side), size, patch)
    if grng.random() < 0.5:
        img = img.flip(-1)
        masks = None if masks is None else masks.flip(-1)
    img = (img * rng.uniform(0.9, 1.1)).clamp(0, 1)
    cap = None
    if with_caption:
        ob, stuff, _ = world.visible_content(sc["gt"], sc["inst"], sc["objects"], (y0, y0 + side, x0, x0 + side))
        cap = world.caption(ob, stuff, sc["sky_adj"], rng)
        if k is not None and rng.random() < 0.5:
            o = sc["objects"][k]
            name = (o["colour"] + " " + o["cls"]) if rng.random() < 0.3 else o["cls"]
            cap = str(rng.choice(world.IMAGENET_TEMPLATES + ["a {}", "{}", "a {} in the scene"])).format(name)
    return (img - MEAN) / STD, cap, masks


def region_masks(sc, box, size, patch):
    """[R, g, g] float: the share of each patch of the crop @box (y0, x0, side), resized to
    @size, covered by each segment: every visible object instance and every stuff class.
    Class-agnostic: nothing says which segment is what (OpenSeg's setting)."""
    y0, x0, side = box
    gt = sc["gt"][y0:y0 + side, x0:x0 + side].astype(np.int64)
    ins = sc["inst"][y0:y0 + side, x0:x0 + side].astype(np.int64)
    seg = np.where(ins > 0, len(world.CLASSES) + ins, gt)
    seg = torch.from_numpy(seg).float()[None, None]
    seg = F.interpolate(seg, size=(size, size), mode="nearest")[0, 0].long()
    ids = torch.unique(seg)
    onehot = (seg[None] == ids[:, None, None]).float()[:, None]
    return F.avg_pool2d(onehot, patch)[:, 0]


CONTENT_WORDS = {**{c: c for c in world.CLASSES}, **{p: c for c, p in world.PLURAL.items()},
                 **{c: c for c in world.COLOUR_NAMES}}


def content(caption):
    """What a caption says is in its image: its class names (plurals as the class) and
    colours; templates, numbers and glue words say nothing."""
    words = caption.lower().replace(".", " ").replace(",", " ").split()
    return frozenset(CONTENT_WORDS[w] for w in words if w in CONTENT_WORDS)


def false_negatives(caps, rule="subset"):
    """[B, B] bool, True at (i, j), j != i, where caption j describes image i too. Rule
    "subset": its content is a subset of caption i's ("a photo of the star." for an image
    captioned "two yellow stars above the grass"); rule "identical": the same string. Such
    pairs are no negatives of each other."""
    sets = [content(c) if rule == "subset" else frozenset([c]) for c in caps]
    m = torch.tensor([[sj <= si for sj in sets] for si in sets])
    return m & ~torch.eye(len(caps), dtype=torch.bool)


class Batches(torch.utils.data.IterableDataset):
    def __init__(self, seed, batch, size, start, steps, tok=None, context=77, patch=None, object_share=0.0):
        self.seed, self.batch, self.size, self.start, self.steps = seed, batch, size, start, steps
        self.tok, self.context, self.patch, self.object_share = tok, context, patch, object_share

    def __iter__(self):
        torch.set_num_threads(1)
        for t in range(self.start, self.steps):
            base = 10 ** 9 * (1 + self.seed) + t * self.batch
            imgs, caps, masks = [], [], []
            for i in range(self.batch):
                # a captioned batch: 1/4 in groups of GROUP sharing a landscape, 1/2 object
                # crops, 1/4 random crops; a CLIPSelf batch: object crops (object_share),
                # random crops
                if self.tok is not None:
                    q = 4 * i // self.batch
                else:
                    q = 1 if i < self.object_share * self.batch else 3
                x, c, m = make_sample(base + i, self.size, self.tok is not None or self.patch is not None,
                                      (base + i - i % GROUP) if q == 0 else None,
                                      1.0 if q in (1, 2) else 0.0, self.patch)
                imgs.append(x)
                caps.append(c)
                masks.append(m)
            ids = eval_dense.tokens_tensor(self.tok, caps, self.context) if self.tok else None
            yield t, torch.stack(imgs), ids, caps, pad_masks(masks) if self.patch else None


def pad_masks(masks):
    """[b, R, g, g] from per-sample [R_i, g, g], padded with empty segments."""
    r = max(len(m) for m in masks)
    return torch.stack([F.pad(m, (0, 0, 0, 0, 0, r - len(m))) for m in masks])


# ----------------------------------------------------------------------------- evaluation

def zeroshot_set(n_scenes=150, size=96):
    """Held-out crops around single objects and over single-stuff regions, with labels."""
    imgs, labels = [], []
    for s in range(500_000, 500_000 + n_scenes):
        sc = world.render_scene(s, 192, SCENE_H)
        gt, inst = sc["gt"], sc["inst"]
        for k, o in enumerate(sc["objects"], start=1):
            ys, xs = np.nonzero(inst == k)
            if len(ys) < 200:
                continue
            cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
            side = int(min(max(ys.max() - ys.min(), xs.max() - xs.min()) * 1.3 + 4, SCENE_H))
            y0 = int(np.clip(cy - side // 2, 0, SCENE_H - side))
            x0 = int(np.clip(cx - side // 2, 0, gt.shape[1] - side))
            imgs.append(resize_u8(sc["image"][y0:y0 + side, x0:x0 + side], size))
            labels.append(world.CID[o["cls"]])
        # a stuff patch: one 48x48 window per scene, kept when >= 95% of it is one stuff class
        y0, x0 = np.random.default_rng(s).integers(0, SCENE_H - 48), np.random.default_rng(s + 1).integers(0, gt.shape[1] - 48)
        cnt = np.bincount(gt[y0:y0 + 48, x0:x0 + 48].ravel(), minlength=len(world.CLASSES))
        c = int(cnt.argmax())
        if c < len(world.STUFF) and cnt[c] >= 0.95 * 48 * 48:
            imgs.append(resize_u8(sc["image"][y0:y0 + 48, x0:x0 + 48], size))
            labels.append(c)
    x = (torch.stack(imgs) - MEAN) / STD
    return x, torch.tensor(labels)


@torch.no_grad()
def evaluate(model, tok, zs, dense_seeds=range(0, 6)):
    model.eval()
    x, y = zs
    text = eval_dense.text_embeddings(model, tok, world.CLASSES, ["a photo of a {}."])
    feats = torch.cat([F.normalize(model.encode_image(x[i:i + 64]), dim=-1) for i in range(0, len(x), 64)])
    pred = (feats @ text.T).argmax(1)
    acc = (pred == y).float().mean().item()
    obj = y >= len(world.STUFF)
    acc_obj = (pred[obj] == y[obj]).float().mean().item()
    res = eval_dense.evaluate(model, tok, dense_seeds, (256, 192), ("vanilla", "maskclip", "sclip"), "single")
    model.train()
    return {"zs_acc": acc, "zs_acc_objects": acc_obj, "zs_n": int(len(y)),
            **{"miou_" + m: r.miou() for m, r in res.items()}}


# ----------------------------------------------------------------------------- training

def lr_at(step, steps, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(steps - warmup, 1)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def param_groups(params, wd):
    decay, no = [], []
    for n, p in params:
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "embedding" not in n else no).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


def save_state(path, **kw):
    tmp = path + ".tmp"
    torch.save(kw, tmp)
    os.replace(tmp, path)


def load_state(path, model, opt):
    """Restores @model and @opt from a save_state() checkpoint; returns the checkpoint."""
    st = torch.load(path, map_location="cpu")
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    return st


def log(run, rec):
    rec["time"] = round(time.time(), 1)
    print(json.dumps(rec), flush=True)
    with open(os.path.join(run, "log.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def grid_crops(gh, gw, m, n):
    """Cells of an m x n partition of a gh x gw patch grid: (r0, r1, c0, c1) in patches."""
    rs = [round(gh * i / m) for i in range(m + 1)]
    cs = [round(gw * j / n) for j in range(n + 1)]
    return [(rs[i], rs[i + 1], cs[j], cs[j + 1]) for i in range(m) for j in range(n)]


def clipself_loss(f, grid, patch, teacher, x, rng, max_cells=4):
    """CLIPSelf: the student's dense features @f [b, gh*gw, E] on the patch @grid (gh, gw),
    average-pooled over the cells of a random m x n grid, aligned by cosine with the frozen
    teacher's class-token embedding of each cell's image crop resized to the input size."""
    m, n = int(rng.integers(1, max_cells + 1)), int(rng.integers(1, max_cells + 1))
    gh, gw = grid
    f = f.view(x.shape[0], gh, gw, -1)
    p = patch
    cells = grid_crops(gh, gw, m, n)
    pooled, crops = [], []
    for r0, r1, c0, c1 in cells:
        pooled.append(f[:, r0:r1, c0:c1].mean(dim=(1, 2)))
        crops.append(F.interpolate(x[:, :, r0 * p:r1 * p, c0 * p:c1 * p], size=x.shape[-2:],
                                   mode="bilinear", align_corners=False))
    pooled = torch.stack(pooled, 1)  # [b, cells, E]
    with torch.no_grad():
        t = teacher.encode_image(torch.cat(crops)).view(len(cells), x.shape[0], -1).transpose(0, 1)
    cos = F.cosine_similarity(pooled, t, dim=-1)
    return (1 - cos).mean(), m * n


def grounding_loss(f, masks, caps, words, scale):
    """OpenSeg's region-word grounding: dense features @f [b, g*g, E] pooled over each
    class-agnostic segment of @masks [b, R, g, g]; image i and caption j score the mean over
    the class words of j (@words [C, E], one row per world class) of the best segment of i
    (the segment of highest cosine; OpenSeg weights the segments by a softmax instead); a
    contrastive loss over the batch in both directions, captions that also describe an image
    (false_negatives) being no negatives of it.  Nothing tells which segment a word belongs
    to: the loss only rewards a caption's words finding some segment of their own image."""
    b, r = masks.shape[:2]
    m = masks.view(b, r, -1)
    seg = F.normalize(m @ f, dim=-1)                     # [b, R, E]
    sim = (seg @ words.T).masked_fill(m.sum(-1, keepdim=True) == 0, -2.0)
    best = sim.max(1).values                             # [b, C]: best segment per word
    hot = torch.zeros(b, len(words))
    for j, c in enumerate(caps):
        for w in content(c):
            if w in world.CID:
                hot[j, world.CID[w]] = 1
    score = best @ (hot / hot.sum(1, keepdim=True).clamp(min=1)).T
    logits = (scale * score).masked_fill(false_negatives(caps), float("-inf"))
    lab = torch.arange(b)
    return (F.cross_entropy(logits, lab) + F.cross_entropy(logits.T, lab)) / 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="run directory (resumes from RUN/state.pt)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, help="default 1000 (CLIPSelf: 300)")
    ap.add_argument("--batch", type=int, help="default 128 (CLIPSelf: 32)")
    ap.add_argument("--lr", type=float, help="default 1e-3 (CLIPSelf: 1e-4)")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, help="default 50 (CLIPSelf: 10)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--save-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="data worker processes (0 = in the main process)")
    ap.add_argument("--clipself", action="store_true", help="CLIPSelf stage: distil RUN from --teacher")
    ap.add_argument("--teacher", help="run directory of the plain model (its hf/ export is the teacher)")
    ap.add_argument("--clipself-mode", default="maskclip", help="dense formulation of the student's last block")
    ap.add_argument("--clipself-cells", type=int, default=4, help="m, n drawn from 1..this")
    ap.add_argument("--object-share", type=float, default=0.5,
                    help="CLIPSelf stage: share of the crops tight around one object (0 before 2026-12-07)")
    ap.add_argument("--distil", type=float, default=1.0,
                    help="CLIPSelf stage: weight of CLIPSelf's distillation loss")
    ap.add_argument("--grounding", type=float, default=1.0,
                    help="CLIPSelf stage: weight of OpenSeg's region-word grounding loss (0 before 2026-12-07)")
    ap.add_argument("--negatives", choices=["subset", "identical"], default="subset",
                    help="captions that are no negatives of an image: those whose content is a "
                    "subset of its caption's (the shipped model's rule), or identical ones only")
    for k, v in DEFAULT_CFG.items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    a = ap.parse_args(argv)
    if a.clipself and not a.teacher:
        ap.error("--clipself needs --teacher RUN")
    if a.clipself and not os.path.isfile(os.path.join(a.teacher, "hf", "model.safetensors")):
        ap.error("--teacher %s has no exported model (hf/model.safetensors): train it to the end first" % a.teacher)
    if not 0 <= a.object_share <= 1:
        ap.error("--object-share %g is not a share between 0 and 1" % a.object_share)
    if a.distil < 0 or a.grounding < 0:
        ap.error("loss weights cannot be negative: --distil %g --grounding %g" % (a.distil, a.grounding))
    defaults = dict(steps=300, batch=32, lr=1e-4, warmup=10) if a.clipself else dict(steps=1000, batch=128, lr=1e-3, warmup=50)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    if a.clipself:
        teacher = load_hf(os.path.join(a.teacher, "hf"))
        for p in teacher.parameters():
            p.requires_grad_(False)
        tok = bpe.Tokenizer.load(os.path.join(a.teacher, "hf"))
        for n in ("vocab.json", "merges.txt"):
            with open(os.path.join(a.teacher, "hf", n), "rb") as src, open(os.path.join(a.out, n), "wb") as dst:
                dst.write(src.read())
        model = load_hf(os.path.join(a.teacher, "hf"))
        for n_, p in model.named_parameters():
            p.requires_grad_(n_.startswith("visual."))
        cfg = model.cfg
    else:
        if not os.path.exists(os.path.join(a.out, "vocab.json")):
            bpe.write(a.out, bpe.learn(bpe.corpus(), 2000))
        tok = bpe.Tokenizer.load(a.out)
        cfg = {k: getattr(a, k) for k in DEFAULT_CFG}
        cfg["vocab_size"] = len(tok.encoder)
        cfg["eot_id"] = tok.eot
        model = CLIP(cfg)
    model.train()
    opt = torch.optim.AdamW(param_groups(model.named_parameters(), a.wd), lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
    state_path = os.path.join(a.out, "state.pt")
    start = 0
    elapsed = 0.0
    if os.path.exists(state_path):
        st = load_state(state_path, model, opt)
        start, elapsed = st["step"], st.get("elapsed", 0.0)
        print("resuming at step %d (%.0f s trained)" % (start, elapsed), flush=True)
    else:
        with open(os.path.join(a.out, "args.json"), "w") as f:
            json.dump({"argv": sys.argv, **vars(a), "cfg": cfg}, f, indent=2)
    n_params = sum(p.numel() for p in model.parameters())
    log(a.out, {"event": "start", "step": start, "params": n_params, "cfg": cfg, "clipself": a.clipself})

    zs = zeroshot_set(size=cfg["image_size"])
    grounding = a.clipself and a.grounding > 0
    data = Batches(a.seed, a.batch, cfg["image_size"], start, a.steps, None if a.clipself else tok,
                   cfg["context_length"], cfg["patch_size"] if grounding else None, a.object_share)
    if grounding:
        with torch.no_grad():
            words = eval_dense.text_embeddings(model, tok, world.CLASSES, world.IMAGENET_TEMPLATES)
            scale = model.logit_scale.exp().item()
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=a.workers,
                                         **({"prefetch_factor": 2} if a.workers else {}))
    if a.clipself and start == 0:
        log(a.out, {"event": "eval", "step": 0, **evaluate(model, tok, zs)})
    t_last = time.time()
    for step, x, ids, caps, masks in loader:
        lr = lr_at(step, a.steps, a.lr, a.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        if a.clipself:
            rng = np.random.default_rng([a.seed, step, 2])
            f, grid = model.visual.dense(x, a.clipself_mode)
            ld, cells = clipself_loss(f, grid, model.visual.patch, teacher, x, rng, a.clipself_cells)
            loss = a.distil * ld
            extra = {"cells": cells, "distil": round(ld.item(), 4)}
            if grounding:
                lg = grounding_loss(f, masks, caps, words, scale)
                loss = loss + a.grounding * lg
                extra["grounding"] = round(lg.item(), 4)
        else:
            fi = F.normalize(model.encode_image(x), dim=-1)
            ft = F.normalize(model.encode_text(ids), dim=-1)
            logits = model.logit_scale.exp() * fi @ ft.T
            logits_m = logits.masked_fill(false_negatives(caps, a.negatives), float("-inf"))
            lab = torch.arange(len(caps))
            loss = (F.cross_entropy(logits_m, lab) + F.cross_entropy(logits_m.T, lab)) / 2
            extra = {"scale": round(model.logit_scale.exp().item(), 2)}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if not a.clipself:
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        now = time.time()
        elapsed += now - t_last
        t_last = now
        done = step + 1
        if done % 10 == 0 or done == 1:
            log(a.out, {"step": done, "loss": round(loss.item(), 4), "lr": lr, "elapsed": round(elapsed), **extra})
        if done % a.save_every == 0 or done == a.steps:
            save_state(state_path, model=model.state_dict(), opt=opt.state_dict(), step=done, elapsed=elapsed)
        if done % a.eval_every == 0 or done == a.steps:
            t0 = time.time()
            log(a.out, {"event": "eval", "step": done, **evaluate(model, tok, zs)})
            t_last += time.time() - t0  # evaluation is not training time
    torch.save({"cfg": cfg, "model": model.state_dict()}, os.path.join(a.out, "final.pt"))
    export(model, a.out, os.path.join(a.out, "hf"), "F16",
           {"trained_steps": a.steps, "batch": a.batch, "seed": a.seed, "clipself": a.clipself})
    log(a.out, {"event": "done", "step": a.steps, "train_seconds": round(elapsed)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
