#!/usr/bin/python3
"""Segmentation quality of clipseg on the procedural world (engine/world/), measured.

Two parts, both on held-out world seeds (below 1e9; training uses seeds >= 1e9):

Scenes, through the C engine.  N scenes (seeds FIRST..FIRST+N-1, default 0..199 at
256x192) are preprocessed as the clipseg element does (keep-ratio resize so the short side
is `resolution`, CLIP mean/std) and segmented by libclipseg-engine.so through ctypes
(tests/bench/clipseg_ctypes.py: clipseg_model_load, clipseg_labels_parse_file_text,
clipseg_templates_load("imagenet80"), clipseg_queries_new, clipseg_state_new,
clipseg_state_segment).  The 12 world classes are the labels; there are no background words
(every world pixel has a class).  The label map comes back at the inference size, as in the
element, and is compared with the full-size ground truth on the frame grid, drawn as the
element draws its overlay (frame pixel x takes map pixel floor(x * map_w / frame_w)).
mIoU is the dataset-level one (intersection and union of each class summed over all
scenes, then the mean over the 12 classes); pixel accuracy alongside.  Measured:
  - every dense mode (vanilla, maskclip, sclip, clearclip, naclip, scclip), and maskclip with
    MaskCLIP's key smoothing and prompt denoising (maskclip+ks1+pd0.5) and sclip with 10 PAMR
    steps (sclip+pamr10; clipseg_ctypes.mode_spec), for every model, at the
    element's default resolution (1.5x the model's input size, at least 128) and at
    --alt-resolution;
  - sclip at other resolutions (--resolutions) and window/stride settings (--windows) at
    --window-resolutions, so the element's defaults can be chosen from data;
  - sclip on the regression set (scenes 0..39 at the settings of tests/world/test_quality.py,
    clipseg_ctypes.REGRESSION), the value that test's threshold sits under.
Differences between settings come with 95% paired-bootstrap intervals over the scenes
(2000 resamples of the per-scene confusion matrices, seeded).

Videos, through the real element.  M videos (seeds VFIRST..VFIRST+M-1, default 8 x 90
frames at 320x240) are rendered once each and piped into
  clipseg-read-meta --masks DIR "fdsrc fd=0 ! rawvideoparse format=rgb ... ! videoconvert !
    clipseg model=... labels-file=... background=\\"\\" processing=sync
    inference-interval=N smoothing=S n-threads=T ! appsink name=sink sync=false"
for every inference-interval in --intervals x smoothing in --smoothings at --video-resolution
(default: the element's), interval 1 x every smoothing at --video-extra-resolutions
(default 128), and every --modes at interval 1 without smoothing (mode=..., key-smoothing,
prompt-denoising, pamr-steps).  Every frame's label map (8-bit PNG at the inference size; value = class + 1,
0 unused without background) is compared with the ground truth sampled to the label map's size (for each map pixel, the
middle one of the frame pixels the element paints with it): mIoU, pixel accuracy, and
flicker = share of pixels whose predicted label changes between consecutive frames among
the pixels whose ground truth does not change (all consecutive pairs of all videos).  A
consistency check segments the first video with the engine through ctypes and reports how
many label-map pixels agree with the element's (interval 1, smoothing 0).

Writes OUT.md (first every mode side by side: scene mIoU, object IoU, accuracy, engine ms;
video mIoU, object IoU, flicker, ms per frame; then Markdown tables, every cell measured, with date, commit, model paths and
checksums, N/M and run times), OUT.png (mIoU per mode and model; sclip mIoU against
resolution; video mIoU against flicker) and, with --json, all numbers.

Needs a meson build (default: ROOT/build; --build-dir) with the engine, the element and
clipseg-read-meta; Debian's python3-numpy and python3-matplotlib (for the plot) through
/usr/bin/python3; gst-launch plugins rawvideoparse, videoconvert, appsink, pngenc.

Run time on 2 shared cores, one engine thread: about 15 minutes with two models (plain,
clipself), about 10 with one; --quick (40 scenes, 3 videos x 45 frames) a few minutes.

Examples:
  nice tests/bench/quality.py --build-dir build-q \\
      --model plain=/work/world-runs/plain/hf --model clipself=/work/world-runs/clipself/hf
  tests/bench/quality.py --quick --build-dir build --out /tmp/quality
  tests/bench/quality.py --report-from run.json --notes-file notes.md   # rewrite the report only
  nice tests/bench/quality.py --precision fp32 --modes sclip --alt-resolution "" --resolutions "" \
      --window-resolutions "" --videos 0 --out /tmp/q-fp32    # sclip at the element's defaults only;
                                                               # again with bf16 to compare precisions
  meson test -C build --suite quality      # the shipped model; results in the build dir
"""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "engine", "world"))
import clipseg_ctypes as cc  # noqa: E402
import world  # noqa: E402

SHIPPED = os.path.join(ROOT, "engine", "world", "model")
CLASSES = world.CLASSES
NC = len(CLASSES)

REGRESSION = cc.REGRESSION


def segmenter(engine, path, precision, n_threads):
    return engine.segmenter(path, CLASSES, n_threads=n_threads, precision=precision)


def log(msg):
    print("[%7.1fs] %s" % (time.time() - T0, msg), flush=True)


T0 = time.time()


# ----------------------------------------------------------------------------- scenes

def scene_configs(a, image_size):
    """Every (mode, resolution, window, stride) measured per model; window/stride 0 resolve to
    the element's -1 / half the window."""
    default_res = max(image_size * 3 // 2, 128)
    main_res = [default_res] + [r for r in a.alt_resolution if r != default_res]
    cfgs = []
    for r in main_res:
        for m in a.modes:
            cfgs.append((m, r, image_size, image_size // 2))
    for r in a.resolutions:
        cfgs.append(("sclip", r, image_size, image_size // 2))
    for r in a.window_resolutions:
        for w, s in a.windows:
            cfgs.append(("sclip", r, w, s))
    cfgs.append((REGRESSION["mode"], REGRESSION["resolution"], REGRESSION["window"], REGRESSION["stride"]))
    out = []
    for c in cfgs:
        if c not in out:
            out.append(c)
    return out, main_res


def run_scenes(a, engine, models, scenes):
    """results[model][cfg] = dict(conf, ms); regression[model] = Confusion."""
    results, regression = {}, {}
    a.runs_in = {}
    n_reg = sum(1 for sc in scenes if sc["seed"] in REGRESSION["seeds"] and sc["gt"].shape[::-1] == REGRESSION["size"])
    for name, path in models:
        with segmenter(engine, path, a.precision, a.threads) as seg:
            a.runs_in[name] = "%s (%s, %s)" % seg.runs_in()
            log("model %s: linears in %s" % (name, a.runs_in[name]))
            cfgs, main_res = scene_configs(a, seg.info.image_size)
            res = {c: {"conf": cc.Confusion(NC), "seconds": 0.0, "per_scene": []} for c in cfgs}
            reg = cc.Confusion(NC)
            regcfg = (REGRESSION["mode"], REGRESSION["resolution"], REGRESSION["window"], REGRESSION["stride"])
            t_model = time.time()
            for i, sc in enumerate(scenes):
                H, W = sc["gt"].shape
                pix = {}
                for c in cfgs:
                    mode, r, win, stride = c
                    if r not in pix:
                        pix[r] = seg.preprocess(sc["image"], r)
                    t = time.perf_counter()
                    lm = seg.segment(pix[r], mode, win, stride)
                    res[c]["seconds"] += time.perf_counter() - t
                    pred = cc.map_to_frame(lm, H, W)
                    res[c]["per_scene"].append(res[c]["conf"].add(sc["gt"], pred).astype(np.int32))
                    if c == regcfg and sc["seed"] in REGRESSION["seeds"] and (W, H) == REGRESSION["size"]:
                        reg.add(sc["gt"], pred)
                if (i + 1) % 50 == 0 or i + 1 == len(scenes):
                    log("scenes %s: %d/%d (%.0f s)" % (name, i + 1, len(scenes), time.time() - t_model))
            for c in cfgs:
                res[c]["per_scene"] = np.stack(res[c]["per_scene"])
            results[name] = {"configs": res, "main_res": main_res, "image_size": seg.info.image_size,
                             "seconds": time.time() - t_model}
            if n_reg == len(REGRESSION["seeds"]):
                regression[name] = reg
    return results, regression


def ckey(model, cfg):
    return "%s:%s:%d:%d:%d" % ((model,) + tuple(cfg))


def default_cfg(R):
    isz = R["image_size"]
    return ("sclip", R["main_res"][0], isz, isz // 2)


def comparisons(a, models, sres, n_boot=2000):
    """Paired bootstrap over scenes (seeded): for pairs of (model, config) measured on the same
    scenes, the mIoU difference and its 95% interval.  Returns {"A - B": [diff, lo, hi]}."""
    names = [n for n, _ in models]
    pairs = []
    for n in names:
        R = sres[n]
        isz = R["image_size"]
        for r in R["main_res"]:
            for m in a.modes:
                if m != "sclip":
                    pairs.append(((n, ("sclip", r, isz, isz // 2)), (n, (m, r, isz, isz // 2))))
        for c in R["configs"]:
            if c[0] == "sclip" and c != default_cfg(R):
                pairs.append(((n, c), (n, default_cfg(R))))
    plain = [n for n in names if "plain" in n]
    selfd = [n for n in names if "clipself" in n]
    if plain and selfd:
        for c in sres[plain[0]]["configs"]:
            if c in sres[selfd[0]]["configs"]:
                pairs.append(((selfd[0], c), (plain[0], c)))
    rng = np.random.default_rng(0)
    S = a.scenes
    W = rng.multinomial(S, np.full(S, 1.0 / S), size=n_boot).astype(np.float64)  # [B, S]
    out = {}
    for (na, ca), (nb, cb) in pairs:
        pa = sres[na]["configs"][ca]["per_scene"].reshape(S, -1).astype(np.float64)
        pb = sres[nb]["configs"][cb]["per_scene"].reshape(S, -1).astype(np.float64)
        ma = cc.Confusion.miou_of((W @ pa).reshape(n_boot, NC, NC))
        mb = cc.Confusion.miou_of((W @ pb).reshape(n_boot, NC, NC))
        d = ma - mb
        full = sres[na]["configs"][ca]["conf"].miou() - sres[nb]["configs"][cb]["conf"].miou()
        out["%s - %s" % (ckey(na, ca), ckey(nb, cb))] = [full, float(np.percentile(d, 2.5)),
                                                         float(np.percentile(d, 97.5))]
    return out


def diff_text(cmp, na, ca, nb, cb):
    d = cmp.get("%s - %s" % (ckey(na, ca), ckey(nb, cb)))
    if d is None:
        return ""
    return "%+.3f [%+.3f, %+.3f]" % tuple(d)


# ----------------------------------------------------------------------------- videos

def read_summary(text):
    for line in text.splitlines():
        if line.startswith("frames="):
            return dict(kv.split("=", 1) for kv in line.split())
    return {}


# The element's properties for the refinements of a mode spec (clipseg_ctypes.mode_spec).
ELEMENT_REFINEMENTS = {"ks_thresh": "key-smoothing", "pd_thresh": "prompt-denoising", "pamr_steps": "pamr-steps"}


def mode_props(spec):
    mode, fields = cc.mode_spec(spec)
    return ["mode=%s" % mode] + ["%s=%s" % (ELEMENT_REFINEMENTS[f], v) for f, v in fields.items()]


def run_element(a, model_path, raw_path, w, h, frames, interval, smoothing, resolution, out_dir, env,
                classes_file, mode="sclip"):
    props = ["model=\"%s\"" % model_path, "labels-file=\"%s\"" % classes_file, "background=\"\"",
             "processing=sync", "inference-interval=%d" % interval, "smoothing=%g" % smoothing,
             "n-threads=%d" % a.threads, "precision=%s" % a.precision] + mode_props(mode)
    if resolution:
        props.append("resolution=%d" % resolution)
    launch = ("fdsrc fd=0 ! rawvideoparse format=rgb width=%d height=%d framerate=30/1 ! videoconvert ! "
              "clipseg %s ! appsink name=sink sync=false" % (w, h, " ".join(props)))
    t = time.time()
    with open(raw_path, "rb") as f:
        p = subprocess.run([a.read_meta, "--quiet", "--masks", out_dir, launch], stdin=f, env=env,
                           capture_output=True, text=True)
    wall = time.time() - t
    if p.returncode != 0:
        raise RuntimeError("clipseg-read-meta failed (%d): %s\n%s" % (p.returncode, launch, p.stderr))
    summary = read_summary(p.stdout)
    names = open(os.path.join(out_dir, "labels.txt")).read().split("\n")
    if names != ["background"] + CLASSES:
        raise RuntimeError("unexpected labels.txt: %r" % names)
    maps = np.stack([world.read_png(os.path.join(out_dir, "mask-%05d.png" % t)) for t in range(frames)])
    if os.path.exists(os.path.join(out_dir, "mask-%05d.png" % frames)):
        raise RuntimeError("more label maps than frames in %s" % out_dir)
    return maps, summary, wall


def new_video_acc():
    return {"conf": cc.Confusion(NC), "changed": 0, "stable": 0, "inferred": 0, "frames": 0, "wall": 0.0,
            "label0": 0}


def add_video(r, maps, gtm, stable, summary, wall):
    """Accumulates one run's label maps (PNG values, class + 1) against the sampled GT."""
    pred = maps.astype(np.int64) - 1  # value 0 = "background": no class (never won without threshold)
    r["label0"] += int((pred < 0).sum())
    r["conf"].add(gtm, np.where(pred < 0, NC, pred))
    r["changed"] += int(((pred[1:] != pred[:-1]) & stable).sum())
    r["stable"] += int(stable.sum())
    r["inferred"] += int(summary.get("inferred", 0))
    r["frames"] += int(summary.get("frames", 0))
    r["wall"] += wall
    return pred


def run_videos(a, engine, video_model, tmp):
    """grid[(interval, smoothing)] at --video-resolution; extra[(resolution, smoothing)] at
    interval 1 for each of --video-extra-resolutions; modes[mode] at interval 1, smoothing 0
    and --video-resolution for every --modes (sclip's is grid[(1, 0)])."""
    name, path = video_model
    w, h = a.video_size
    env = dict(os.environ)
    env["GST_PLUGIN_PATH"] = os.path.join(a.build_dir, "gst")
    env["GST_REGISTRY"] = os.path.join(tmp, "registry.bin")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    classes_file = os.path.join(tmp, "classes.txt")
    with open(classes_file, "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    grid = [(i, s) for i in a.intervals for s in a.smoothings]
    acc = {g: new_video_acc() for g in grid}
    extra_res = [r for r in a.video_extra_resolutions if r != a.video_resolution]
    extra = {(r, s): new_video_acc() for r in extra_res for s in a.smoothings}
    modes = {m: new_video_acc() for m in a.modes if m != "sclip"}
    map_sizes = {}
    check = None
    t_all = time.time()

    def element(res, interval, smoothing, tag, mode="sclip"):
        out_dir = os.path.join(tmp, "masks-" + tag)
        maps, summary, wall = run_element(a, path, raw, w, h, a.frames, interval, smoothing, res, out_dir, env,
                                          classes_file, mode)
        for fn in os.listdir(out_dir):
            os.unlink(os.path.join(out_dir, fn))
        os.rmdir(out_dir)
        if maps.shape[1:] != (map_sizes[res][1], map_sizes[res][0]):
            raise RuntimeError("label maps %s, expected %dx%d" % (maps.shape, map_sizes[res][0], map_sizes[res][1]))
        return maps, summary, wall

    with segmenter(engine, path, a.precision, a.threads) as seg:
        for v in range(a.videos):
            seed = a.video_first_seed + v
            frames, gts, _ = world.render_video(seed, w, h, a.frames)
            raw = os.path.join(tmp, "video.rgb")
            with open(raw, "wb") as f:
                f.write(frames.tobytes())
            for res in [a.video_resolution] + extra_res:
                mw, mh = map_sizes[res] = seg.inference_size(w, h, res)
                gtm = cc.gt_to_map(gts, mh, mw).astype(np.int64)
                stable = gtm[1:] == gtm[:-1]
                if res == a.video_resolution:
                    for g in grid:
                        maps, summary, wall = element(res, g[0], g[1], "%d-%d-%g" % (v, g[0], g[1]))
                        pred = add_video(acc[g], maps, gtm, stable, summary, wall)
                        if v == 0 and g == (1, 0.0):
                            agree = [float((seg.label_map(frames[t], "sclip", res) == pred[t]).mean())
                                     for t in range(a.frames)]
                            check = {"min": min(agree), "mean": float(np.mean(agree)), "frames": a.frames,
                                     "seed": seed}
                    for m in modes:
                        maps, summary, wall = element(res, 1, 0.0, "%d-%s" % (v, m), m)
                        add_video(modes[m], maps, gtm, stable, summary, wall)
                else:
                    for sm in a.smoothings:
                        maps, summary, wall = element(res, 1, sm, "r%d-%d-%g" % (res, v, sm))
                        add_video(extra[(res, sm)], maps, gtm, stable, summary, wall)
            log("video %d/%d (seed %d, %dx%d): %.0f s so far" % (v + 1, a.videos, seed, w, h, time.time() - t_all))
    modes["sclip"] = acc[(1, 0.0)]
    return {"grid": acc, "extra": extra, "modes": modes, "check": check, "seconds": time.time() - t_all,
            "map_size": map_sizes[a.video_resolution], "map_sizes": {str(r): ms for r, ms in map_sizes.items()},
            "model": name}


# ----------------------------------------------------------------------------- report

def sha(path):
    f = os.path.join(path, "model.safetensors")
    if not os.path.exists(f):
        return "?"
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def git_commit():
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--",
                                "engine", "gst", ":(exclude)engine/world"], capture_output=True,
                               text=True).stdout.strip()
        return c + (" (with uncommitted changes in engine/ or gst/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def f3(x):
    return "%.3f" % x


def win_name(win, stride, image_size):
    if win == 0:
        return "whole image"
    return "%d / %d" % (win, stride)


def verdict(d):
    """'beats' / 'does not beat' / 'ties with' from [diff, lo, hi]."""
    if d is None:
        return "?"
    if d[1] > 0:
        return "beats"
    if d[2] < 0:
        return "is beaten by"
    return "ties with (interval spans 0)"


def conclusions(a, models, sres, vres, cmp):
    """Statements with the numbers they rest on (computed, not hand-written).  Intervals are
    95% paired-bootstrap intervals over scenes."""
    out = []
    names = [n for n, _ in models]
    for n in names:
        R = sres[n]
        isz = R["image_size"]
        for r in R["main_res"]:
            c = lambda m: (m, r, isz, isz // 2)  # noqa: E731
            conf = lambda m: R["configs"][c(m)]["conf"]  # noqa: E731
            best = max(a.modes, key=lambda m: conf(m).miou())
            parts = []
            for other in ("maskclip", "vanilla"):
                if "sclip" not in a.modes or other not in a.modes:  # --modes left one out
                    continue
                d = cmp.get("%s - %s" % (ckey(n, c("sclip")), ckey(n, c(other))))
                parts.append("%s %s (%s vs %s, %s)" % (verdict(d), other, f3(conf("sclip").miou()),
                                                      f3(conf(other).miou()), diff_text(cmp, n, c("sclip"), n, c(other))))
            out.append("- **%s** at resolution %d: %sbest mode %s (%s)."
                       % (n, r, "SCLIP %s; " % " and ".join(parts) if parts else "", best, f3(conf(best).miou())))
    plain = [n for n in names if "plain" in n]
    selfd = [n for n in names if "clipself" in n]
    if plain and selfd:
        p, q = plain[0], selfd[0]
        isz = sres[p]["image_size"]
        for r in sres[p]["main_res"]:
            items = []
            for m in a.modes:
                c = (m, r, isz, isz // 2)
                if c in sres[q]["configs"]:
                    items.append("%s %s" % (m, diff_text(cmp, q, c, p, c)))
            out.append("- CLIPSelf (%s - %s) at resolution %d, mIoU: %s." % (q, p, r, "; ".join(items)))
    for n in names:
        R = sres[n]
        isz = R["image_size"]
        rs = sorted({c[1] for c in R["configs"] if c[0] == "sclip" and c[2] == isz and c[3] == isz // 2})
        vals = [(r, R["configs"][("sclip", r, isz, isz // 2)]["conf"].miou()) for r in rs]
        best = max(vals, key=lambda x: x[1])
        out.append("- %s, sclip by resolution (window %d, stride %d): %s; best %d."
                   % (n, isz, isz // 2, ", ".join("%d: %s" % (r, f3(v)) for r, v in vals), best[0]))
    if vres:
        g = vres["grid"]
        base = g.get((1, 0.0))
        if base:
            bm = base["conf"].miou()
            bf = base["changed"] / max(base["stable"], 1)
            for (i, s), r in sorted(g.items()):
                if (i, s) == (1, 0.0):
                    continue
                m = r["conf"].miou()
                f = r["changed"] / max(r["stable"], 1)
                out.append("- video, inference-interval %d, smoothing %g: mIoU %s (%+.3f vs interval 1 without "
                           "smoothing), flicker %.2f%% (%.0f%% of %.2f%%)"
                           % (i, s, f3(m), m - bm, 100 * f, 100 * f / bf if bf else 0, 100 * bf))
        ex = vres.get("extra", {})
        for (res, s), r in sorted(ex.items()):
            b = ex.get((res, 0.0))
            if b is None:
                continue
            bm, bf = b["conf"].miou(), b["changed"] / max(b["stable"], 1)
            m, f = r["conf"].miou(), r["changed"] / max(r["stable"], 1)
            out.append("- video at resolution %d, inference-interval 1, smoothing %g: mIoU %s (%+.3f vs no smoothing), "
                       "flicker %.2f%% (%.0f%% of %.2f%%)" % (res, s, f3(m), m - bm, 100 * f, 100 * f / bf if bf else 0,
                                                             100 * bf))
    return out


def object_iou(conf):
    """Mean IoU over the world's object classes (the stuff classes left out)."""
    iou = conf.iou()
    return float(np.nanmean([iou[CLASSES.index(c)] for c in world.OBJECTS]))


def side_by_side(a, names, sres, vres):
    """Every mode and option in one table: scenes through the engine at the element's default
    resolution, videos through the element at interval 1 without smoothing."""
    L = ["## Every mode side by side", ""]
    L.append("Scenes (%d, through the engine): mIoU, object IoU (mean over the %d object classes), pixel "
             "accuracy and engine ms per %dx%d scene at the element's default resolution, window and stride "
             "(one thread, shared machine). Videos (%s frames through the element, interval 1, no smoothing): "
             "mIoU, flicker and pipeline wall-clock ms per frame (including model load and text encoding, "
             "about 1 s per video)." % (a.scenes, len(world.OBJECTS), a.scene_size[0], a.scene_size[1],
                                         "%d x %d" % (a.videos, a.frames) if vres else "no"))
    L.append("EVA02 (CLIPSelf's released tower, `mode=maskclip` on an EVA02 checkpoint) cannot be in this "
             "table: no EVA02 world model exists.")
    L.append("")
    head = ["mode"]
    for n in names:
        head += ["%s mIoU" % n, "%s object IoU" % n, "%s acc" % n, "%s ms" % n]
    vmodes = vres.get("modes", {}) if vres else {}
    if vmodes:
        head += ["video mIoU (%s)" % vres["model"], "video object IoU", "video flicker", "video ms/frame"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + " --- |" * len(head))
    for m in a.modes:
        row = [m]
        for n in names:
            R = sres[n]
            isz = R["image_size"]
            c = R["configs"][(m, R["main_res"][0], isz, isz // 2)]
            row += [f3(c["conf"].miou()), f3(object_iou(c["conf"])), f3(c["conf"].accuracy()),
                    "%.0f" % (1000 * c["seconds"] / a.scenes)]
        if vmodes:
            r = vmodes.get(m)
            row += ["", "", "", ""] if r is None else [
                f3(r["conf"].miou()), f3(object_iou(r["conf"])), "%.2f%%" % (100 * r["changed"] / max(r["stable"], 1)),
                "%.1f" % (1000 * r["wall"] / max(r["frames"], 1))]
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    return L


def write_md(a, path, models, sres, regression, vres, meta):
    L = []
    L.append("# Segmentation quality on the procedural world")
    L.append("")
    L.append("Written by `tests/bench/quality.py` (its `--help` says how each number is measured). "
             "Every cell below was measured in this run.")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    L.append("| date | %s |" % meta["date"])
    L.append("| commit | %s |" % meta["commit"])
    L.append("| command | `%s` |" % meta["command"])
    for n, p in models:
        same = " (= the shipped model, engine/world/model)" if meta["sha"][n] == meta["shipped_sha"] else ""
        L.append("| model %s | `%s`, model.safetensors sha256 %s%s |" % (n, p, meta["sha"][n], same))
    L.append("| scenes | N = %d, seeds %d..%d, %dx%d |" % (a.scenes, a.first_seed, a.first_seed + a.scenes - 1,
                                                        a.scene_size[0], a.scene_size[1]))
    if vres:
        L.append("| videos | M = %d, seeds %d..%d, %d frames each at %dx%d, 30 fps; label map %dx%d (resolution %s), "
                 "model %s |" % (a.videos, a.video_first_seed, a.video_first_seed + a.videos - 1, a.frames,
                                 a.video_size[0], a.video_size[1], vres["map_size"][0], vres["map_size"][1],
                                 a.video_resolution or "element default", vres["model"]))
    L.append("| labels | the 12 world classes, imagenet80 templates, no background words, no thresholds |")
    L.append("| engine threads | %d (one inference at a time) |" % a.threads)
    if meta.get("precision"):
        L.append("| precision | %s |" % meta["precision"])
    L.append("| run time | %s |" % meta["times"])
    L.append("")
    L.append("## Conclusions")
    L.append("")
    L.extend(meta["notes"] or ["(see the tables)"])
    L.append("")
    L.append("Measured statements:")
    L.append("")
    cmp = meta.get("compare", {})
    L.extend(conclusions(a, models, sres, vres, cmp))
    L.append("")

    names = [n for n, _ in models]
    L.extend(side_by_side(a, names, sres, vres))
    L.append("## Scenes: dense modes (through the engine)")
    L.append("")
    L.append("mIoU (pixel accuracy) over %d scenes; window = the model's input size, stride half of it. "
             "The first resolution is the element's default (1.5x the model's input size)." % a.scenes)
    L.append("")
    cols = [(n, r) for n in names for r in sres[n]["main_res"]]
    L.append("| mode | " + " | ".join("%s @ %d" % c for c in cols) + " |")
    L.append("| --- |" + " --- |" * len(cols))
    for m in a.modes:
        cells = []
        for n, r in cols:
            isz = sres[n]["image_size"]
            c = sres[n]["configs"][(m, r, isz, isz // 2)]["conf"]
            cells.append("%s (%s)" % (f3(c.miou()), f3(c.accuracy())))
        L.append("| %s | %s |" % (m, " | ".join(cells)))
    L.append("")
    L.append("sclip minus each mode, mIoU, with 95% paired-bootstrap intervals over the scenes "
             "(2000 resamples):")
    L.append("")
    L.append("| sclip minus | " + " | ".join("%s @ %d" % c for c in cols) + " |")
    L.append("| --- |" + " --- |" * len(cols))
    for m in a.modes:
        if m == "sclip":
            continue
        cells = []
        for n, r in cols:
            isz = sres[n]["image_size"]
            cells.append(diff_text(cmp, n, ("sclip", r, isz, isz // 2), n, (m, r, isz, isz // 2)))
        L.append("| %s | %s |" % (m, " | ".join(cells)))
    L.append("")
    plain = [n for n in names if "plain" in n]
    selfd = [n for n in names if "clipself" in n]
    if plain and selfd:
        p, q = plain[0], selfd[0]
        isz = sres[p]["image_size"]
        rs = sres[p]["main_res"]
        L.append("What the CLIPSelf stage adds: %s minus %s, mIoU, 95%% paired-bootstrap intervals:" % (q, p))
        L.append("")
        L.append("| mode | " + " | ".join("resolution %d" % r for r in rs) + " |")
        L.append("| --- |" + " --- |" * len(rs))
        for m in a.modes:
            L.append("| %s | %s |" % (m, " | ".join(diff_text(cmp, q, (m, r, isz, isz // 2), p, (m, r, isz, isz // 2))
                                                   for r in rs)))
        L.append("")
    L.append("Per-class IoU, sclip:")
    L.append("")
    L.append("| model @ resolution | " + " | ".join(CLASSES) + " |")
    L.append("| --- |" + " --- |" * NC)
    for n, r in cols:
        isz = sres[n]["image_size"]
        iou = sres[n]["configs"][("sclip", r, isz, isz // 2)]["conf"].iou()
        L.append("| %s @ %d | %s |" % (n, r, " | ".join("%.2f" % v for v in iou)))
    L.append("")

    L.append("## Scenes: sclip resolution and windows")
    L.append("")
    L.append("mIoU (pixel accuracy); the difference to the element's current default (resolution %d = 1.5x the "
             "model's input, window %d, stride %d) with its 95%% paired-bootstrap interval over the scenes; engine "
             "time per %dx%d scene (ms, one thread, on a shared machine: indicative only)."
             % (default_cfg(sres[names[0]])[1:] + tuple(a.scene_size)))
    L.append("")
    L.append("| resolution | window / stride | " + " | ".join("%s mIoU (acc)" % n for n in names)
             + " | " + " | ".join("%s minus the default [95%% interval]" % n for n in names)
             + " | " + " | ".join("%s ms" % n for n in names) + " |")
    L.append("| --- | --- |" + " --- |" * (3 * len(names)))
    keys = []
    for n in names:
        for c in sres[n]["configs"]:
            if c[0] == "sclip" and (c[1], c[2], c[3]) not in keys:
                keys.append((c[1], c[2], c[3]))
    keys.sort(key=lambda k: (k[0], k[1] if k[1] else 10 ** 6, k[2]))
    for r, w, s in keys:
        q, dd, t = [], [], []
        for n in names:
            cfg = sres[n]["configs"].get(("sclip", r, w, s))
            if cfg is None:
                q.append("")
                dd.append("")
                t.append("")
            else:
                q.append("%s (%s)" % (f3(cfg["conf"].miou()), f3(cfg["conf"].accuracy())))
                dc = default_cfg(sres[n])
                dd.append("(the default)" if ("sclip", r, w, s) == dc else diff_text(cmp, n, ("sclip", r, w, s), n, dc))
                t.append("%.0f" % (1000 * cfg["seconds"] / a.scenes))
        L.append("| %d | %s | %s | %s | %s |" % (r, win_name(w, s, 0), " | ".join(q), " | ".join(dd), " | ".join(t)))
    L.append("")
    if regression:
        L.append("Regression set of `tests/world/test_quality.py` (scenes %d..%d at %dx%d, %s, resolution %d, "
                 "window %d, stride %d): %s."
                 % (REGRESSION["seeds"][0], REGRESSION["seeds"][-1], REGRESSION["size"][0], REGRESSION["size"][1],
                    REGRESSION["mode"], REGRESSION["resolution"], REGRESSION["window"], REGRESSION["stride"],
                    ", ".join("%s mIoU %.4f" % (n, c.miou()) for n, c in regression.items())))
        L.append("")

    if vres:
        L.append("## Videos: inference-interval x smoothing (through the element)")
        L.append("")
        L.append("mIoU and pixel accuracy over all %d frames of %d videos; flicker = share of the pixels whose "
                 "ground truth does not change between consecutive frames whose predicted label does; "
                 "inferred = frames the element ran the model on; wall = pipeline wall-clock seconds "
                 "summed over the videos (including model load and text encoding, about 1 s per run)."
                 % (a.videos * a.frames, a.videos))
        L.append("")
        L.append("| inference-interval | smoothing | mIoU | pixel acc | flicker | inferred | wall s |")
        L.append("| --- | --- | --- | --- | --- | --- | --- |")
        for (i, s), r in sorted(vres["grid"].items()):
            L.append("| %d | %g | %s | %s | %.2f%% | %d / %d | %.1f |"
                     % (i, s, f3(r["conf"].miou()), f3(r["conf"].accuracy()), 100 * r["changed"] / max(r["stable"], 1),
                        r["inferred"], r["frames"], r["wall"]))
        L.append("")
        if vres.get("extra"):
            L.append("inference-interval 1 at other resolutions (label map size in brackets):")
            L.append("")
            L.append("| resolution | smoothing | mIoU | pixel acc | flicker | inferred | wall s |")
            L.append("| --- | --- | --- | --- | --- | --- | --- |")
            for (res, s), r in sorted(vres["extra"].items()):
                ms = vres["map_sizes"][str(res)]
                L.append("| %d (%dx%d) | %g | %s | %s | %.2f%% | %d / %d | %.1f |"
                         % (res, ms[0], ms[1], s, f3(r["conf"].miou()), f3(r["conf"].accuracy()),
                            100 * r["changed"] / max(r["stable"], 1), r["inferred"], r["frames"], r["wall"]))
            L.append("")
        lab0 = sum(r["label0"] for r in list(vres["grid"].values()) + list(vres.get("extra", {}).values()))
        if lab0:
            L.append("Label 0 (no class) appeared on %d pixels (counted as wrong)." % lab0)
            L.append("")
        ch = vres["check"]
        if ch:
            L.append("Consistency: on video seed %d (%d frames, interval 1, smoothing 0) the element's label maps "
                     "agree with the engine called through ctypes on the same frames on %.2f%% of the pixels "
                     "(worst frame %.2f%%); the difference is the element's 8-bit resize."
                     % (ch["seed"], ch["frames"], 100 * ch["mean"], 100 * ch["min"]))
            L.append("")
    L.append("![quality](%s)" % os.path.basename(a.png_path))
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def plot(a, path, models, sres, vres):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _ in models]
    n_panels = 3 if vres else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(6 * n_panels, 4.6))
    ax = axes[0]
    cols = [(n, r) for n in names for r in sres[n]["main_res"]]
    width = 0.8 / len(cols)
    x = np.arange(len(a.modes))
    for k, (n, r) in enumerate(cols):
        isz = sres[n]["image_size"]
        v = [sres[n]["configs"][(m, r, isz, isz // 2)]["conf"].miou() for m in a.modes]
        bars = ax.bar(x + (k - (len(cols) - 1) / 2) * width, v, width, label="%s @ %d" % (n, r))
        for b, val in zip(bars, v):
            ax.text(b.get_x() + b.get_width() / 2, val + 0.003, "%.2f" % val, ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels(a.modes)
    ax.set_ylabel("mIoU (12 classes)")
    ax.set_title("Scenes (N=%d): mIoU per dense mode" % a.scenes)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)
    ax.legend(fontsize=7, loc="upper left", ncol=2)

    ax = axes[1]
    for n in names:
        isz = sres[n]["image_size"]
        rs = sorted({c[1] for c in sres[n]["configs"] if c[0] == "sclip" and c[2] == isz and c[3] == isz // 2})
        ax.plot(rs, [sres[n]["configs"][("sclip", r, isz, isz // 2)]["conf"].miou() for r in rs], "o-", label=n)
    ax.set_xlabel("resolution (short side, px)")
    ax.set_ylabel("sclip mIoU")
    ax.set_title("Scenes: sclip vs resolution (window %d, stride %d)" % (isz, isz // 2))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    if vres:
        ax = axes[2]
        markers = {s: mk for s, mk in zip(a.smoothings, "os^Dv<>")}
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, i in enumerate(a.intervals):
            for s in a.smoothings:
                r = vres["grid"][(i, s)]
                f = 100.0 * r["changed"] / max(r["stable"], 1)
                m = r["conf"].miou()
                ax.scatter([f], [m], color=colours[k % len(colours)], marker=markers[s], s=40,
                           label="interval %d" % i if s == a.smoothings[0] else None)
                ax.annotate("i%d s%g" % (i, s), (f, m), fontsize=6, xytext=(3, 2), textcoords="offset points")
        for (res, s), r in sorted(vres.get("extra", {}).items()):
            f = 100.0 * r["changed"] / max(r["stable"], 1)
            m = r["conf"].miou()
            ax.scatter([f], [m], color="black", marker=markers[s], s=40,
                       label="interval 1, resolution %d" % res if s == a.smoothings[0] else None)
            ax.annotate("r%d s%g" % (res, s), (f, m), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel("flicker (% of GT-stable pixels whose label changes per frame)")
        ax.set_ylabel("video mIoU")
        ax.set_title("Videos (M=%d, %s, resolution %s): interval/smoothing"
                     % (a.videos, vres["model"], a.video_resolution or "default"))
        handles, labels = ax.get_legend_handles_labels()
        for s in a.smoothings:
            handles.append(plt.Line2D([], [], color="grey", marker=markers[s], linestyle=""))
            labels.append("smoothing %g" % s)
        ax.legend(handles, labels, fontsize=7)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


RUN_ARGS = ("scenes", "first_seed", "scene_size", "modes", "videos", "frames", "video_first_seed", "video_size",
            "video_resolution", "video_extra_resolutions", "intervals", "smoothings", "threads", "precision")


def to_json(a, models, sres, regression, vres, meta):
    """Everything the report is made of, confusion matrices included, so --report-from can
    write it again (e.g. with other notes) without measuring again."""
    def conf(c):
        return c.m.tolist()

    out = {"meta": meta, "args": {k: getattr(a, k) for k in RUN_ARGS}, "models": models, "scenes": {},
           "regression": {n: {"miou": c.miou(), "confusion": conf(c)} for n, c in regression.items()}}
    for n, _ in models:
        R = sres[n]
        out["scenes"][n] = {
            "main_res": R["main_res"], "image_size": R["image_size"], "seconds": R["seconds"],
            "configs": [{"mode": c[0], "resolution": c[1], "window": c[2], "stride": c[3],
                         "miou": v["conf"].miou(), "pixel_acc": v["conf"].accuracy(),
                         "iou": [None if np.isnan(x) else float(x) for x in v["conf"].iou()],
                         "seconds": v["seconds"], "confusion": conf(v["conf"])} for c, v in R["configs"].items()]}
    if vres:
        out["videos"] = {
            "model": vres["model"], "map_size": vres["map_size"], "seconds": vres["seconds"], "check": vres["check"],
            "grid": [{"interval": i, "smoothing": s, "miou": r["conf"].miou(), "pixel_acc": r["conf"].accuracy(),
                      "flicker": r["changed"] / max(r["stable"], 1), "changed": r["changed"], "stable": r["stable"],
                      "inferred": r["inferred"], "frames": r["frames"], "wall": r["wall"], "label0": r["label0"],
                      "confusion": conf(r["conf"])} for (i, s), r in sorted(vres["grid"].items())],
            "map_sizes": vres["map_sizes"],
            "extra": [{"resolution": res, "smoothing": s, "miou": r["conf"].miou(), "pixel_acc": r["conf"].accuracy(),
                       "flicker": r["changed"] / max(r["stable"], 1), "changed": r["changed"], "stable": r["stable"],
                       "inferred": r["inferred"], "frames": r["frames"], "wall": r["wall"], "label0": r["label0"],
                       "confusion": conf(r["conf"])} for (res, s), r in sorted(vres["extra"].items())],
            "modes": [{"mode": m, "miou": r["conf"].miou(), "pixel_acc": r["conf"].accuracy(),
                       "flicker": r["changed"] / max(r["stable"], 1), "changed": r["changed"], "stable": r["stable"],
                       "inferred": r["inferred"], "frames": r["frames"], "wall": r["wall"], "label0": r["label0"],
                       "confusion": conf(r["conf"])} for m, r in vres["modes"].items()]}
    return out


def from_json(path, a):
    def conf(m):
        c = cc.Confusion(len(m))
        c.m = np.array(m, np.int64)
        return c

    with open(path) as f:
        d = json.load(f)
    for k, v in d["args"].items():
        setattr(a, k, tuple(v) if k in ("scene_size", "video_size") else v)
    models = [tuple(m) for m in d["models"]]
    sres = {}
    for n, R in d["scenes"].items():
        sres[n] = {"main_res": R["main_res"], "image_size": R["image_size"], "seconds": R["seconds"],
                   "configs": {(c["mode"], c["resolution"], c["window"], c["stride"]):
                               {"conf": conf(c["confusion"]), "seconds": c["seconds"]} for c in R["configs"]}}
    regression = {n: conf(r["confusion"]) for n, r in d["regression"].items()}
    vres = None
    if "videos" in d:
        V = d["videos"]
        vres = {"model": V["model"], "map_size": V["map_size"], "seconds": V["seconds"], "check": V["check"],
                "grid": {(g["interval"], g["smoothing"]): dict(g, conf=conf(g["confusion"])) for g in V["grid"]},
                "map_sizes": V["map_sizes"],
                "extra": {(g["resolution"], g["smoothing"]): dict(g, conf=conf(g["confusion"])) for g in V["extra"]},
                "modes": {g["mode"]: dict(g, conf=conf(g["confusion"])) for g in V.get("modes", [])}}
    return models, sres, regression, vres, d["meta"]


# ----------------------------------------------------------------------------- main

def size(s):
    return world.parse_size(s)


def ints(s):
    return [int(x) for x in s.split(",") if x]


def floats(s):
    return [float(x) for x in s.split(",") if x]


def windows(s):
    out = []
    for item in s.split(","):
        if item in ("0", "whole"):
            out.append((0, 0))
        else:
            w, st = item.split("/")
            out.append((int(w), int(st)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                    help="meson build directory with engine/libclipseg-engine.so, gst/libgstclipseg.so and "
                         "gst/clipseg-read-meta (default ROOT/build)")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a model to measure (repeatable; a NAME containing 'plain' and one containing 'clipself' "
                         "are compared). Default: shipped=engine/world/model")
    ap.add_argument("--out", default=os.path.join(HERE, "quality"),
                    help="output path without extension: OUT.md, OUT.png (default tests/bench/quality)")
    ap.add_argument("--json", help="also write every number here")
    ap.add_argument("--note", action="append", default=[],
                    help="a line for the Conclusions section (repeatable; Markdown)")
    ap.add_argument("--notes-file", help="lines for the Conclusions section, from a file")
    ap.add_argument("--report-from", metavar="JSON",
                    help="measure nothing: write OUT.md and OUT.png again from the --json of an earlier run "
                         "(with the notes given now)")
    ap.add_argument("--quick", action="store_true",
                    help="a few-minute run: 40 scenes, 3 videos x 45 frames (explicit options still win)")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="number format of the models' linear layers, in ctypes and the element's precision "
                         "property (default auto: bf16 where oneDNN and the CPU support it)")
    ap.add_argument("--threads", type=int, default=1,
                    help="engine threads, in ctypes and the element's n-threads (default 1: on 2 shared cores "
                         "two OpenMP threads were up to 5x slower)")
    g = ap.add_argument_group("scenes")
    g.add_argument("--scenes", type=int, help="N (default 200; --quick 40)")
    g.add_argument("--first-seed", type=int, default=0)
    g.add_argument("--scene-size", type=size, default=(256, 192), help="WxH (default 256x192)")
    g.add_argument("--modes", type=lambda s: s.split(","), default=list(cc.MODES + cc.REFINED_MODES))
    g.add_argument("--alt-resolution", type=ints, default=[160],
                   help="resolutions besides the element's default for the mode table (default 160)")
    g.add_argument("--resolutions", type=ints, default=[64, 96, 128, 160, 192, 256],
                   help="sclip resolution sweep (window = model input, stride half; default 64,96,128,160,192,256)")
    g.add_argument("--window-resolutions", type=ints, default=[96, 160],
                   help="resolutions of the window/stride sweep (default 96,160)")
    g.add_argument("--windows", type=windows, default=windows("64/16,64/64,96/48,128/64,0"),
                   help="window/stride pairs for the sweep, 0 = whole image (default 64/16,64/64,96/48,128/64,0)")
    g = ap.add_argument_group("videos")
    g.add_argument("--videos", type=int, help="M (default 8; --quick 3; 0 skips the videos)")
    g.add_argument("--frames", type=int, help="frames per video (default 90; --quick 45)")
    g.add_argument("--video-first-seed", type=int, default=0)
    g.add_argument("--video-size", type=size, default=(320, 240), help="WxH (default 320x240)")
    g.add_argument("--video-model", help="NAME of the model the element runs (default: the one identical to "
                                          "the shipped model, else the first)")
    g.add_argument("--video-resolution", type=int, default=0,
                   help="the element's resolution property (default 0: the element's default)")
    g.add_argument("--video-extra-resolutions", type=ints, default=[128],
                   help="also run inference-interval 1 x every smoothing at these resolutions (default 128; "
                        "empty: none)")
    g.add_argument("--intervals", type=ints, default=[1, 2, 5, 10])
    g.add_argument("--smoothings", type=floats, default=[0.0, 0.5, 0.8])
    a = ap.parse_args(argv)

    a.scenes = a.scenes if a.scenes is not None else (40 if a.quick else 200)
    a.videos = a.videos if a.videos is not None else (3 if a.quick else 8)
    a.frames = a.frames if a.frames is not None else (45 if a.quick else 90)
    a.build_dir = os.path.abspath(a.build_dir)
    a.md_path, a.png_path = a.out + ".md", a.out + ".png"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    notes = list(a.note)
    if a.notes_file:
        with open(a.notes_file) as f:
            notes += [line.rstrip("\n") for line in f]
    if a.report_from:
        models, sres, regression, vres, meta = from_json(a.report_from, a)
        meta["notes"] = notes
        write_md(a, a.md_path, models, sres, regression, vres, meta)
        plot(a, a.png_path, models, sres, vres)
        log("wrote %s and %s from %s" % (a.md_path, a.png_path, a.report_from))
        return 0
    a.read_meta = os.path.join(a.build_dir, "gst", "clipseg-read-meta")
    if 0.0 not in a.smoothings or 1 not in a.intervals:
        ap.error("--intervals needs 1 and --smoothings 0 (the reference setting)")
    models = []
    for m in a.model or ["shipped=" + SHIPPED]:
        if "=" not in m:
            ap.error("--model takes NAME=PATH")
        n, p = m.split("=", 1)
        if not os.path.exists(os.path.join(p, "config.json")):
            ap.error("no model in %s" % p)
        models.append((n, os.path.abspath(p)))
    if len({n for n, _ in models}) != len(models):
        ap.error("model names must differ")

    engine = cc.Engine(cc.find_library(a.build_dir))
    shas = {n: sha(p) for n, p in models}
    shipped_sha = sha(SHIPPED)
    video_model = None
    if a.videos > 0:
        if not os.path.exists(a.read_meta):
            sys.exit("%s not found (build the element)" % a.read_meta)
        if a.video_model:
            video_model = [m for m in models if m[0] == a.video_model]
            if not video_model:
                ap.error("--video-model %s is not one of the --model names" % a.video_model)
            video_model = video_model[0]
        else:
            video_model = next((m for m in models if shas[m[0]] == shipped_sha), models[0])

    log("rendering %d scenes" % a.scenes)
    scenes = []
    for s in range(a.first_seed, a.first_seed + a.scenes):
        scenes.append(world.render_scene(s, a.scene_size[0], a.scene_size[1]))
        scenes[-1]["seed"] = s
    t_scenes = time.time()
    sres, regression = run_scenes(a, engine, models, scenes)
    cmp = comparisons(a, models, sres)
    t_scenes = time.time() - t_scenes
    del scenes
    vres = None
    t_videos = 0.0
    if video_model:
        with tempfile.TemporaryDirectory(prefix="clipseg-quality-") as tmp:
            t_videos = time.time()
            vres = run_videos(a, engine, video_model, tmp)
            t_videos = time.time() - t_videos

    total = time.time() - T0
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT) if os.path.isabs(sys.argv[0]) else sys.argv[0]]
                            + (argv if argv is not None else sys.argv[1:])),
        "sha": shas, "shipped_sha": shipped_sha,
        "times": "%.0f s in all (scenes %.0f s, videos %.0f s), on 2 cores shared with other work, load average "
                 "%.1f at the end" % (total, t_scenes, t_videos, os.getloadavg()[0]),
        "notes": notes,
        "compare": cmp,
        "precision": "asked %s; the linears ran in %s" % (a.precision, "; ".join(
            "%s %s" % (n, r) for n, r in a.runs_in.items())),
    }
    write_md(a, a.md_path, models, sres, regression, vres, meta)
    try:
        plot(a, a.png_path, models, sres, vres)
    except ImportError:
        log("matplotlib missing (Debian python3-matplotlib): no plot written")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(to_json(a, models, sres, regression, vres, meta), f)
    log("wrote %s and %s" % (a.md_path, a.png_path))
    for line in conclusions(a, models, sres, vres, meta["compare"]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
