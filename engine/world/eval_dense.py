#!/usr/bin/python3
"""Dense (training-free) segmentation quality of a world CLIP, in torch.

For held-out world scenes (seeds below 1e9 are never used in training), segments with the
last vision block in `vanilla`, `maskclip` or `sclip` mode following SCLIP's procedure
(algorithms.md §1.3-1.4): resize so the short side is S, sliding windows of the model's
input size with stride window/2, per-window cosine logits against template-averaged class
text embeddings, bilinear upsampling and averaging over overlaps, bilinear to the original
size, argmax (no probability threshold: every world pixel has a class).  Reports mIoU over
the dataset (per-class intersection and union summed over all scenes) and pixel accuracy.

    eval_dense.py MODEL_DIR [--scenes 100] [--size 256x192] [--modes vanilla,maskclip,sclip]
                  [--templates imagenet80|single] [--png DIR] [--json FILE] [--confusion]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402
from bpe import Tokenizer  # noqa: E402
from export import IMAGE_MEAN, IMAGE_STD, load_hf  # noqa: E402

MODES = ("vanilla", "maskclip", "sclip")


def templates(name):
    if name == "imagenet80":
        return world.IMAGENET_TEMPLATES
    if name == "single":
        return ["a photo of a {}."]
    raise ValueError(name)


def tokens_tensor(tok, texts, context):
    ids = [tok.encode(t, context) for t in texts]
    n = max(len(i) for i in ids)
    out = torch.zeros(len(ids), n, dtype=torch.long)
    for r, i in enumerate(ids):
        out[r, :len(i)] = torch.tensor(i)
    return out


@torch.no_grad()
def text_embeddings(model, tok, names, tmpl):
    """[C, E]: per name, the normalised mean of normalised per-template embeddings."""
    out = []
    for n in names:
        e = model.encode_text(tokens_tensor(tok, [t.format(n) for t in tmpl], model.context_length))
        e = F.normalize(e, dim=-1).mean(0)
        out.append(F.normalize(e, dim=0))
    return torch.stack(out)


def normalise(img_u8):
    """uint8 [H,W,3] -> float [3,H,W] normalised with CLIP's mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(img_u8)).permute(2, 0, 1).float() / 255
    m = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    s = torch.tensor(IMAGE_STD).view(3, 1, 1)
    return (x - m) / s


def windows(n, crop, stride):
    cnt = max(n - crop + stride - 1, 0) // stride + 1
    out = []
    for i in range(cnt):
        b = min(i * stride + crop, n)
        out.append((max(b - crop, 0), b))
    return out


@torch.no_grad()
def slide(x, n, crop, stride, scores, batch=16, post=None):
    """SCLIP's sliding windows over x [3, H, W]: @scores maps a batch of equal-size windows to
    [b, n, gh, gw]; each map is upsampled bilinearly to its window (then @post, if given, is
    applied to the batch) and the maps are averaged where windows overlap.  Returns [n, H, W]."""
    _, H, W = x.shape
    acc = torch.zeros(n, H, W)
    cnt = torch.zeros(1, H, W)
    boxes = [(y0, y1, x0, x1) for y0, y1 in windows(H, crop, stride) for x0, x1 in windows(W, crop, stride)]
    for i in range(0, len(boxes), batch):
        group = boxes[i:i + batch]
        sizes = {(y1 - y0, x1 - x0) for y0, y1, x0, x1 in group}
        for hh, ww in sizes:
            sub = [b for b in group if (b[1] - b[0], b[3] - b[2]) == (hh, ww)]
            xb = torch.stack([x[:, y0:y1, x0:x1] for y0, y1, x0, x1 in sub])
            lg = F.interpolate(scores(xb), size=(hh, ww), mode="bilinear", align_corners=False)
            if post is not None:
                lg = post(lg)
            for (y0, y1, x0, x1), l in zip(sub, lg):
                acc[:, y0:y1, x0:x1] += l
                cnt[:, y0:y1, x0:x1] += 1
    return acc / cnt


def dense_logits(model, x, text, mode, crop, stride, batch=16):
    """x: [3,H,W] normalised; returns averaged cosine logits [C,H,W]."""
    def scores(xb):
        f, (gh, gw) = model.visual.dense(xb, mode)
        return (f @ text.T).transpose(1, 2).reshape(len(xb), -1, gh, gw)
    return slide(x, text.shape[0], crop, stride, scores, batch)


def resize_short(img_u8, short):
    """uint8 [H,W,3] -> normalised float [3,h,w] whose short side is @short (keep-ratio)."""
    H, W = img_u8.shape[:2]
    f = short / min(H, W)
    nh, nw = int(H * f + 0.5), int(W * f + 0.5)
    x = normalise(img_u8)
    if (nh, nw) != (H, W):
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
    return x


@torch.no_grad()
def segment(model, img_u8, text, mode="sclip", short=None, crop=None, stride=None):
    """Label map [H,W] (original size) and averaged logits at the original size."""
    crop = crop or model.visual.image_size
    stride = stride or crop // 2
    short = short or 2 * crop
    H, W = img_u8.shape[:2]
    lg = dense_logits(model, resize_short(img_u8, short), text, mode, crop, stride)
    lg = F.interpolate(lg[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    return lg.argmax(0).numpy().astype(np.uint8), lg


class IoU:
    """Dataset-level scores from the confusion matrix (rows: ground truth, columns: prediction)."""

    def __init__(self, n):
        self.conf = np.zeros((n, n), np.int64)
        self.n = n

    def add(self, pred, gt):
        idx = gt.astype(np.int64).ravel() * self.n + pred.astype(np.int64).ravel()
        self.conf += np.bincount(idx, minlength=self.n * self.n).reshape(self.n, self.n)

    def per_class(self):
        inter = np.diag(self.conf).astype(float)
        union = self.conf.sum(0) + self.conf.sum(1) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / np.maximum(union, 1), np.nan)

    def miou(self):
        return float(np.nanmean(self.per_class()))

    def acc(self):
        return float(np.trace(self.conf)) / max(int(self.conf.sum()), 1)

    def confusion_rows(self, names):
        """Per ground-truth class, the share of its pixels given each label (%), as text."""
        out = ["%-6s " % "" + " ".join("%5s" % n[:5] for n in names)]
        for i, n in enumerate(names):
            row = 100 * self.conf[i] / max(int(self.conf[i].sum()), 1)
            out.append("%-6s " % n[:6] + " ".join("%5.0f" % v for v in row))
        return "\n".join(out)


def evaluate(model, tok, seeds, size=(256, 192), modes=MODES, tmpl="imagenet80", png_dir=None,
             short=None, crop=None, stride=None, n_png=12):
    names = world.CLASSES
    text = text_embeddings(model, tok, names, templates(tmpl))
    res = {m: IoU(len(names)) for m in modes}
    tiles = []
    for i, s in enumerate(seeds):
        sc = world.render_scene(int(s), size[0], size[1])
        row = [sc["image"], world.colourise(sc["gt"])]
        for m in modes:
            pred, _ = segment(model, sc["image"], text, m, short, crop, stride)
            res[m].add(pred, sc["gt"])
            row.append(world.colourise(pred))
        if png_dir and i < n_png:
            tiles.append(np.concatenate(row, 1))
    if png_dir:
        os.makedirs(png_dir, exist_ok=True)
        with open(os.path.join(png_dir, "dense_%s.png" % "_".join(modes)), "wb") as f:
            f.write(world.png_bytes(np.concatenate(tiles, 0)))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="exported model directory (config.json, model.safetensors, vocab)")
    ap.add_argument("--scenes", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--size", default="256x192")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--templates", default="imagenet80", choices=["imagenet80", "single"])
    ap.add_argument("--short", type=int, help="short side S (default 2 x window)")
    ap.add_argument("--window", type=int, help="window (default the model's image size)")
    ap.add_argument("--stride", type=int, help="stride (default window/2)")
    ap.add_argument("--png", help="write a mosaic image | GT | predictions per mode here")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--confusion", action="store_true",
                    help="print each mode's confusion: rows = true class, columns = label given, % of the row")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_hf(a.model)
    tok = Tokenizer.load(a.model)
    modes = a.modes.split(",")
    t0 = time.time()
    res = evaluate(model, tok, range(a.first_seed, a.first_seed + a.scenes), world.parse_size(a.size), modes,
                   a.templates, a.png, a.short, a.window, a.stride)
    out = {"model": a.model, "scenes": a.scenes, "size": a.size, "templates": a.templates, "modes": {}}
    for m in modes:
        pc = res[m].per_class()
        out["modes"][m] = {"miou": res[m].miou(), "pixel_acc": res[m].acc(),
                           "per_class": {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(world.CLASSES, pc)},
                           "confusion": res[m].conf.tolist()}
        print("%-9s mIoU %.4f  pixel acc %.4f" % (m, res[m].miou(), res[m].acc()))
        print("          " + " ".join("%s %.2f" % (n, v) for n, v in zip(world.CLASSES, pc)))
        if a.confusion:
            print(res[m].confusion_rows(world.CLASSES))
    print("(%.1f s)" % (time.time() - t0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
