#!/usr/bin/python3
"""Tests of the procedural world, its BPE vocabulary and the model export (engine/world/).

Cases:
  - the class list (also as printed by `world.py classes`);
  - scenes are deterministic per seed and differ between seeds;
  - GT is consistent with the drawing: every object the caption may mention has pixels of
    its class, each labelled pixel of an instance carries its object's class, occlusion
    follows the drawing order (re-rendering every object alone), captions name the objects;
  - videos: deterministic, one GT map per frame, raw stdout bytes and the .npy stack match;
  - PNG writer round trip and the scene CLI;
  - training: captions that also describe another sample's image are not its negatives;
    class-agnostic segment masks of a crop and the region-word grounding loss; two-step
    runs of both stages, a resume and bad arguments;
  - dense scores (eval_dense.IoU) from the confusion matrix, and its printed rows;
  - Cascade-CLIP's experiment (cascade.py): unseen pixels do not train, seen/unseen scores,
    and a short train + eval on the shipped model;
  - BPE: CLIP's id layout, encode/decode round trip, and (when ../shared is present) the
    same tokenizer code with OpenAI's merge list reproduces the official golden ids;
  - export: HF key names, shapes and F16 dtypes, aligned safetensors, config and
    preprocessor files, and a load round trip;
  - the shipped model (engine/world/model/), when present: loads and segments held-out
    scenes with SCLIP above a floor, its objects above theirs.

Usage: test_world.py [-k SUBSTRING]; ends with 'N passed, N failed[, N skipped]'.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORLD = os.path.join(ROOT, "engine", "world")
sys.path.insert(0, WORLD)
import world  # noqa: E402
import bpe  # noqa: E402

SHARED = os.environ.get("CLIPSEG_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
PY = sys.executable


class Skip(Exception):
    pass


CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ----------------------------------------------------------------------------- world

@case
def classes():
    check(len(world.CLASSES) == len(set(world.CLASSES)) >= 10, "class names must be unique")
    check(set(world.STUFF) >= {"sky", "grass", "water", "sand"}, "stuff classes")
    check(len(world.OBJECTS) >= 6, "at least six object categories")
    out = subprocess.run([PY, os.path.join(WORLD, "world.py"), "classes"], capture_output=True, text=True, check=True).stdout
    check(out.splitlines() == world.CLASSES, "world.py classes prints one class per line, in label order")
    check(", " not in out, "no synonyms: one query per class")


@case
def scene_deterministic():
    for seed in (0, 1, 12345, 10 ** 9 + 7):
        a = world.render_scene(seed, 200, 150)
        b = world.render_scene(seed, 200, 150)
        check(a["image"].tobytes() == b["image"].tobytes(), "image differs for seed %d" % seed)
        check(a["gt"].tobytes() == b["gt"].tobytes(), "gt differs for seed %d" % seed)
        check(a["caption"] == b["caption"], "caption differs for seed %d" % seed)
        check(a["image"].dtype == np.uint8 and a["image"].shape == (150, 200, 3), "image layout")
        check(a["gt"].dtype == np.uint8 and a["gt"].shape == (150, 200), "gt layout")
    imgs = {world.render_scene(s, 96, 64)["image"].tobytes() for s in range(20)}
    check(len(imgs) == 20, "different seeds give different scenes")


@case
def scene_gt_consistent():
    n_obj = n_occluded = 0
    seen = set()
    for seed in range(60):
        sc = world.render_scene(seed, 192, 144)
        gt, inst, objs = sc["gt"], sc["inst"], sc["objects"]
        check(gt.max() < len(world.CLASSES), "label out of range")
        # every labelled instance pixel carries its object's class
        for k, o in enumerate(objs, start=1):
            m = inst == k
            check((gt[m] == world.CID[o["cls"]]).all(), "seed %d: instance %d pixels not labelled %s" % (seed, k, o["cls"]))
        # occlusion: re-render each object alone; the composite shows the LAST object drawn
        cover = np.zeros(gt.shape, np.int32)
        for k, o in enumerate(objs, start=1):
            img1 = np.zeros(gt.shape + (3,), np.float32)
            g1 = np.zeros(gt.shape, np.uint8)
            i1 = np.zeros(gt.shape, np.uint8)
            world.draw_object(o, img1, g1, i1, k)
            mask = i1 == k
            n_occluded += int(np.count_nonzero(mask & (cover > 0)))
            cover[mask] = k
        check((cover == inst).all(), "seed %d: occlusion does not follow the drawing order" % seed)
        stuff_px = inst == 0
        check((gt[stuff_px] < len(world.STUFF)).all(), "seed %d: non-object pixel labelled as an object" % seed)
        # what the caption may mention is really there
        ob, stuff, idx = world.visible_content(gt, inst, objs)
        for (cls, _), k in zip(ob, idx):
            check(np.count_nonzero(gt == world.CID[cls]) > 0, "seed %d: %s listed but absent" % (seed, cls))
            check(cls in sc["caption"] or world.PLURAL[cls] in sc["caption"],
                  "seed %d: caption %r does not name %s" % (seed, sc["caption"], cls))
            seen.add(cls)
        for s in stuff:
            check(np.count_nonzero(gt == world.CID[s]) > 0, "stuff listed but absent")
        n_obj += len(objs)
    check(n_obj > 60, "scenes hold objects")
    check(n_occluded > 0, "some objects are partly occluded")
    check(seen == set(world.OBJECTS), "every object category appears in 60 scenes: %s" % sorted(seen))


@case
def captions_vary():
    caps = [world.render_scene(s, 128, 96)["caption"] for s in range(80)]
    check(len(set(caps)) > 70, "captions should vary")
    check(all(c.strip() for c in caps), "empty caption")
    check(any(any(col in c.split() for col in world.COLOUR_NAMES) for c in caps), "colours are sometimes named")
    check(any(c.startswith("a photo of") for c in caps) and any(" under " in c for c in caps), "templates vary")


@case
def video():
    f1, g1, c1 = world.render_video(5, 128, 96, 12)
    f2, g2, c2 = world.render_video(5, 128, 96, 12)
    check(f1.shape == (12, 96, 128, 3) and g1.shape == (12, 96, 128), "video layout")
    check(f1.tobytes() == f2.tobytes() and g1.tobytes() == g2.tobytes() and c1 == c2, "video deterministic")
    check(any(not np.array_equal(g1[0], g1[t]) for t in range(1, 12)), "something moves in the GT")
    # over several clips: objects enter/leave (an object class count changes from 0 to >0 or back)
    changed = 0
    for seed in range(12):
        _, g, _ = world.render_video(seed, 128, 96, 16)
        present = np.array([[np.count_nonzero(g[t] == c) > 0 for c in range(len(world.CLASSES))] for t in range(16)])
        changed += int((present[0] != present[-1]).any())
    check(changed > 0, "no object ever enters or leaves")
    with tempfile.TemporaryDirectory() as d:
        npy = os.path.join(d, "gt.npy")
        raw = subprocess.run([PY, os.path.join(WORLD, "world.py"), "video", "--seed", "5", "--size", "128x96",
                              "--frames", "12", "--raw", "--gt-npy", npy], capture_output=True, check=True).stdout
        check(raw == f1.tobytes(), "raw stdout is the packed RGB frames")
        check(np.array_equal(np.load(npy), g1), "GT .npy stack")
        subprocess.run([PY, os.path.join(WORLD, "world.py"), "video", "--seed", "5", "--size", "128x96",
                        "--frames", "3", "--out", d], check=True)
        check(np.array_equal(world.read_png(os.path.join(d, "frame0002.png")), world.render_video(5, 128, 96, 3)[0][2]), "frame PNG")
        check(np.array_equal(world.read_png(os.path.join(d, "gt0002.png")), np.load(os.path.join(d, "gt.npy"))[2]), "GT PNG")


@case
def png_and_scene_cli():
    rng = np.random.default_rng(0)
    for shape in ((7, 5, 3), (13, 17), (1, 1, 3)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        with tempfile.NamedTemporaryFile(suffix=".png") as f:
            f.write(world.png_bytes(a))
            f.flush()
            check(np.array_equal(world.read_png(f.name), a), "PNG round trip %s" % (shape,))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([PY, os.path.join(WORLD, "world.py"), "scene", "--seed", "42", "--size", "160x120", "--out", d], check=True)
        sc = world.render_scene(42, 160, 120)
        check(np.array_equal(world.read_png(os.path.join(d, "image.png")), sc["image"]), "image.png")
        check(np.array_equal(world.read_png(os.path.join(d, "gt.png")), sc["gt"]), "gt.png")
        check(open(os.path.join(d, "caption.txt")).read().strip() == sc["caption"], "caption.txt")


# ----------------------------------------------------------------------------- training

@case
def false_negatives_masked():
    import train
    caps = ["a photo of the star.", "two yellow stars above the grass", "a red ball",
            "grass and sky", "a photo of the star.", "a picture"]
    m = train.false_negatives(caps).numpy()
    # row = image, column = caption that also describes it
    want = np.zeros((6, 6), bool)
    want[1, 0] = want[1, 4] = True          # the star crop's caption fits the stars image
    want[0, 4] = want[4, 0] = True          # identical captions
    want[:, 5] = True                       # "a picture" fits every image
    want[5, 5] = False
    check((m == want).all(), "false negatives %s, want %s" % (m.astype(int), want.astype(int)))
    m = train.false_negatives(caps, "identical").numpy()
    want = np.zeros((6, 6), bool)
    want[0, 4] = want[4, 0] = True
    check((m == want).all(), "identical-caption rule %s" % m.astype(int))
    check(train.content("Two RED balls, a box.") == {"red", "ball", "box"},
          "content words %s" % sorted(train.content("Two RED balls, a box.")))


@case
def grounding_regions_and_loss():
    import torch
    import train
    gt = np.zeros((16, 16), np.uint8)
    gt[:, 8:] = world.CID["grass"]
    inst = np.zeros((16, 16), np.uint8)
    inst[:4, :4] = 1
    gt[:4, :4] = world.CID["ball"]
    sc = {"gt": gt, "inst": inst}
    m = train.region_masks(sc, (0, 0, 16), 16, 8)  # segments: sky, grass, the ball
    want = torch.tensor([[[0.75, 0], [1, 0]], [[0, 1], [0, 1]], [[0.25, 0], [0, 0]]])
    check(torch.allclose(m, want), "region masks %s" % m.tolist())
    _, _, ms = train.make_sample(10 ** 9 + 5, 64, True, None, 0.5, patch=8)
    check(ms.shape[1:] == (8, 8) and torch.allclose(ms.sum(0), torch.ones(8, 8)), "segments tile the crop")

    # a CLIPSelf batch: the first object_share of it object crops, the rest random crops
    calls = []
    real = train.make_sample
    train.make_sample = lambda *args: calls.append(args[4]) or real(*args)
    try:
        _, _, ids, caps, ms = next(iter(train.Batches(0, 8, 64, 0, 1, None, 77, 8, 0.5)))
    finally:
        train.make_sample = real
    check(calls == [1.0] * 4 + [0.0] * 4, "object-crop probabilities %s" % calls)
    check(ids is None and all(caps) and ms.shape[:1] == (8,) and ms.shape[2:] == (8, 8),
          "CLIPSelf batch with grounding: ids %s, captions %s, masks %s" % (ids, caps, tuple(ms.shape)))

    # features: segment r of image i is exactly the word it should ground
    words = torch.eye(len(world.CLASSES))
    f = torch.zeros(2, 4, len(world.CLASSES))
    f[0, :2, world.CID["ball"]] = 1
    f[0, 2:, world.CID["sky"]] = 1
    f[1, :, world.CID["car"]] = 1
    masks = torch.zeros(2, 3, 2, 2)
    masks[0, 0].view(-1)[:2] = 1
    masks[0, 1].view(-1)[2:] = 1
    masks[1, 0] = 1  # image 1 has one segment; its second slot is padding
    right = train.grounding_loss(f, masks, ["a ball in the sky", "a car"], words, 20.0).item()
    wrong = train.grounding_loss(f, masks, ["a car", "a ball in the sky"], words, 20.0).item()
    check(right < 1e-4 < 5 < wrong, "grounding loss right %g, swapped %g" % (right, wrong))
    masks[0, 2] = 0.5  # a third segment of image 0 that mixes ball and sky changes nothing
    check(abs(train.grounding_loss(f, masks, ["a ball in the sky", "a car"], words, 20.0).item() - right) < 1e-6,
          "a weaker segment changes the best match")
    # identical captions are no negatives of each other: nothing left to contrast
    same = train.grounding_loss(f, masks, ["a car", "a car"], words, 20.0).item()
    check(same < 1e-6, "false negatives count in the grounding loss: %g" % same)


@case
def train_both_stages():
    """A plain run and a CLIPSelf + grounding run on it, two steps each, then a resume; bad
    arguments of the dense stage are refused by name before anything is written."""
    script = os.path.join(WORLD, "train.py")
    with tempfile.TemporaryDirectory() as tmp:
        plain, dense = os.path.join(tmp, "plain"), os.path.join(tmp, "dense")
        common = ["--steps", "2", "--batch", "8", "--eval-every", "1000", "--threads", "1", "--workers", "0"]
        r = subprocess.run([PY, script, "--out", plain] + common, capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, r.stderr[-2000:])
        r = subprocess.run([PY, script, "--clipself", "--teacher", plain, "--out", dense] + common,
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, r.stderr[-2000:])
        check(os.path.exists(os.path.join(dense, "hf", "model.safetensors")), "no export of the dense stage")
        with open(os.path.join(dense, "log.jsonl")) as f:
            steps = [json.loads(line) for line in f if '"loss"' in line]
        check(steps and all("grounding" in s_ and "distil" in s_ for s_ in steps),
              "the dense stage does not log both losses: %s" % steps)
        r = subprocess.run([PY, script, "--clipself", "--teacher", plain, "--out", dense] + common[2:] +
                           ["--steps", "3"], capture_output=True, text=True, timeout=600)
        check(r.returncode == 0 and "resuming at step 2" in r.stdout, r.stdout[-1000:] + r.stderr[-2000:])
        bad = os.path.join(tmp, "bad")
        for args, msg in ((["--clipself"], "--clipself needs --teacher RUN"),
                          (["--clipself", "--teacher", bad], "--teacher %s has no exported model" % bad),
                          (["--clipself", "--teacher", plain, "--object-share", "1.5"],
                           "--object-share 1.5 is not a share between 0 and 1"),
                          (["--clipself", "--teacher", plain, "--grounding", "-1"],
                           "loss weights cannot be negative")):
            r = subprocess.run([PY, script, "--out", bad] + args, capture_output=True, text=True, timeout=60)
            check(r.returncode == 2 and msg in r.stderr and not os.path.exists(bad), r.stderr[-2000:])


@case
def dense_scores_from_confusion():
    import eval_dense
    r = eval_dense.IoU(3)
    r.add(np.array([[0, 0, 1], [2, 2, 2]]), np.array([[0, 1, 1], [2, 2, 0]]))
    r.add(np.array([[1]]), np.array([[1]]))
    want = np.array([[1, 0, 1], [1, 2, 0], [0, 0, 2]])
    check((r.conf == want).all(), "confusion %s, want %s" % (r.conf.tolist(), want.tolist()))
    # IoU: class 0 1/(2+2-1), class 1 2/(3+2-2), class 2 2/(2+3-2)
    check(np.allclose(r.per_class(), [1 / 3, 2 / 3, 2 / 3]) and abs(r.acc() - 5 / 7) < 1e-12,
          "IoU %s, accuracy %g" % (r.per_class(), r.acc()))
    rows = r.confusion_rows(["sky", "grass", "water"]).splitlines()
    check(rows[2].split() == ["grass", "33", "67", "0"], "confusion rows %s" % rows)


@case
def cascade_seen_unseen():
    import torch
    import cascade
    seen = [world.CID[c] for c in world.CLASSES if c not in ("sand", "tent", "boat")]
    gt = torch.tensor([[[0, 3], [7, 4]]])  # sky, sand (unseen), tent (unseen), ball
    scores = torch.randn(1, len(seen), 2, 2)
    base = cascade.seen_loss(scores, gt, seen).item()
    moved = scores.clone()
    moved[..., 0, 1] += torch.randn(len(seen))
    moved[..., 1, 0] += torch.randn(len(seen))
    check(abs(cascade.seen_loss(moved, gt, seen).item() - base) < 1e-6, "unseen pixels count in the loss")
    moved[..., 1, 1] += torch.randn(len(seen))
    check(abs(cascade.seen_loss(moved, gt, seen).item() - base) > 1e-6, "seen pixels do not count")
    s, u, h = cascade.split_scores(np.arange(12) / 12, ["sand", "tent", "boat"])
    check(abs(u - (3 + 7 + 11) / 36) < 1e-9 and abs(s - (sum(range(12)) - 21) / 108) < 1e-9
          and abs(h - 2 * s * u / (s + u)) < 1e-12, "split scores %s" % ((s, u, h),))
    if not os.path.exists(os.path.join(SHIPPED, "model.safetensors")):
        raise Skip("no shipped model in %s" % SHIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(WORLD, "cascade.py")
        r = subprocess.run([PY, script, "train", SHIPPED, "--out", tmp, "--steps", "2", "--batch", "8",
                            "--unseen", "water,star"], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, r.stderr[-2000:])
        out = os.path.join(tmp, "eval.json")
        r = subprocess.run([PY, script, "eval", SHIPPED, tmp, "--scenes", "1", "--json", out],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, r.stderr[-2000:])
        check("| cascade-clip (trained on seen) |" in r.stdout and "| sclip (training-free) |" in r.stdout,
              r.stdout)
        with open(out) as f:
            d = json.load(f)
        check(d["unseen"] == ["water", "star"] and d["steps"] == 2, "eval.json %s" % d)
        r = subprocess.run([PY, script, "train", SHIPPED, "--out", tmp, "--unseen", "cat"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 2 and "cat not among the world's classes" in r.stderr, r.stderr[-2000:])
        r = subprocess.run([PY, script, "train", SHIPPED, "--out", tmp, "--steps", "3", "--unseen", "sand"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 1 and "trained with --unseen water,star, not sand" in r.stderr, r.stderr[-2000:])
        r = subprocess.run([PY, script, "eval", SHIPPED, os.path.join(tmp, "none")],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 1 and "none has no trained head (head.pt)" in r.stderr, r.stderr[-2000:])


# ----------------------------------------------------------------------------- BPE

@case
def bpe_layout_and_round_trip():
    texts = bpe.corpus(400)
    merges = bpe.learn(texts, 2000)
    check(100 <= len(merges) <= 2000, "merge count %d" % len(merges))
    with tempfile.TemporaryDirectory() as d:
        tok = bpe.write(d, merges)
        vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
        lines = open(os.path.join(d, "merges.txt"), encoding="utf-8").read().splitlines()
        check(lines[0] == "#version: 0.2" and len(lines) == len(merges) + 1, "merges.txt header and lines")
        syms = list(bpe.bytes_to_unicode().values())
        check(syms[:94] == [chr(c) for c in range(33, 127)], "bytes_to_unicode order")
        for i, s in enumerate(syms):
            check(vocab[s] == i and vocab[s + "</w>"] == 256 + i, "byte ids")
        for r, (a, b) in enumerate(merges):
            check(vocab[a + b] == 512 + r, "merge %d id" % r)
        n = len(vocab)
        check(vocab["<|startoftext|>"] == n - 2 and vocab["<|endoftext|>"] == n - 1, "special ids last")
        tok2 = bpe.Tokenizer.load(d)
        for t in texts[:300] + ["A  Red\tSTAR &amp; 3 boxes!", "zebra crossing", "ünïcode"]:
            ids = tok2.encode(t)
            check(ids[0] == tok2.sot and ids[-1] == tok2.eot, "framing")
            check(ids == tok.encode(t), "loaded tokenizer encodes the same")
            want = " ".join(bpe._PAT.findall(bpe.clean(t)))
            check(tok2.decode(ids) == want, "round trip %r -> %r" % (t, tok2.decode(ids)))
        long_ids = tok2.encode("star " * 100, 32)
        check(len(long_ids) == 32 and long_ids[-1] == tok2.eot, "too-long text is cut keeping the end token")
        # every class name is one token in the world vocabulary
        for c in world.CLASSES:
            check(len(tok2.encode(c)) == 3, "class %r should be a single token" % c)


@case
def bpe_matches_clip_golden():
    gz = os.path.join(SHARED, "clip-vocab", "bpe_simple_vocab_16e6.txt.gz")
    golden = os.path.join(SHARED, "clip-vocab", "tokens-golden.tsv")
    if not (os.path.exists(gz) and os.path.exists(golden)):
        raise Skip("shared clip-vocab folder not found at %s" % SHARED)
    lines = gzip.open(gz, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    syms = list(bpe.bytes_to_unicode().values())
    toks = syms + [s + "</w>" for s in syms] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    tok = bpe.Tokenizer({t: i for i, t in enumerate(toks)}, merges)
    n = 0
    for line in open(golden, encoding="utf-8"):
        s, ids = line.rstrip("\n").split("\t")
        got = tok.encode(json.loads(s))
        check(got == [int(x) for x in ids.split()], "golden mismatch for %s: %s" % (s, got))
        n += 1
    check(n > 800, "golden lines")


# ----------------------------------------------------------------------------- export

def _tiny_model():
    import torch
    from clipmodel import CLIP
    torch.manual_seed(0)
    cfg = dict(image_size=32, patch_size=8, vision_width=64, vision_layers=2, vision_heads=2, embed_dim=48,
               context_length=77, text_width=32, text_layers=2, text_heads=2, vocab_size=600, eot_id=599)
    return CLIP(cfg).eval()


HF_SHAPES = {
    "vision_model.embeddings.class_embedding": lambda c: [c["vw"]],
    "vision_model.embeddings.patch_embedding.weight": lambda c: [c["vw"], 3, c["p"], c["p"]],
    "vision_model.embeddings.position_embedding.weight": lambda c: [(c["img"] // c["p"]) ** 2 + 1, c["vw"]],
    "vision_model.pre_layrnorm.weight": lambda c: [c["vw"]],
    "vision_model.pre_layrnorm.bias": lambda c: [c["vw"]],
    "vision_model.post_layernorm.weight": lambda c: [c["vw"]],
    "vision_model.post_layernorm.bias": lambda c: [c["vw"]],
    "visual_projection.weight": lambda c: [c["e"], c["vw"]],
    "text_model.embeddings.token_embedding.weight": lambda c: [c["vocab"], c["tw"]],
    "text_model.embeddings.position_embedding.weight": lambda c: [c["ctx"], c["tw"]],
    "text_model.final_layer_norm.weight": lambda c: [c["tw"]],
    "text_model.final_layer_norm.bias": lambda c: [c["tw"]],
    "text_projection.weight": lambda c: [c["e"], c["tw"]],
    "logit_scale": lambda c: [],
}


def check_export_dir(d):
    """Validates an exported directory; returns (tensors, config)."""
    from export import read_safetensors
    conf = json.load(open(os.path.join(d, "config.json")))
    check(conf["architectures"] == ["CLIPModel"] and conf["model_type"] == "clip", "config architecture")
    tc, vc = conf["text_config"], conf["vision_config"]
    for sub in (tc, vc):
        check(sub["hidden_act"] == "quick_gelu" and sub["layer_norm_eps"] == 1e-5, "activation / eps")
        check(sub["intermediate_size"] == 4 * sub["hidden_size"], "mlp width")
    vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
    check(tc["vocab_size"] == len(vocab), "vocab_size matches vocab.json")
    check(tc["eos_token_id"] == vocab["<|endoftext|>"] and tc["bos_token_id"] == vocab["<|startoftext|>"], "special ids")
    check(open(os.path.join(d, "merges.txt"), encoding="utf-8").readline() == "#version: 0.2\n", "merges header")
    pp = json.load(open(os.path.join(d, "preprocessor_config.json")))
    check(np.allclose(pp["image_mean"], [0.48145466, 0.4578275, 0.40821073]) and
          np.allclose(pp["image_std"], [0.26862954, 0.26130258, 0.27577711]), "CLIP mean/std")
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    hlen = int.from_bytes(raw[:8], "little")
    check((8 + hlen) % 8 == 0, "data starts 8-aligned")
    header = json.loads(raw[8:8 + hlen])
    c = {"vw": vc["hidden_size"], "p": vc["patch_size"], "img": vc["image_size"], "e": conf["projection_dim"],
         "vocab": tc["vocab_size"], "tw": tc["hidden_size"], "ctx": tc["max_position_embeddings"]}
    want = {k: f(c) for k, f in HF_SHAPES.items()}
    for tower, w, n in (("vision_model", vc["hidden_size"], vc["num_hidden_layers"]),
                        ("text_model", tc["hidden_size"], tc["num_hidden_layers"])):
        for i in range(n):
            p = "%s.encoder.layers.%d." % (tower, i)
            for x in "qkv":
                want[p + "self_attn.%s_proj.weight" % x] = [w, w]
                want[p + "self_attn.%s_proj.bias" % x] = [w]
            want[p + "self_attn.out_proj.weight"] = [w, w]
            want[p + "self_attn.out_proj.bias"] = [w]
            for ln in ("layer_norm1", "layer_norm2"):
                want[p + ln + ".weight"] = [w]
                want[p + ln + ".bias"] = [w]
            want[p + "mlp.fc1.weight"] = [4 * w, w]
            want[p + "mlp.fc1.bias"] = [4 * w]
            want[p + "mlp.fc2.weight"] = [w, 4 * w]
            want[p + "mlp.fc2.bias"] = [w]
    names = {k for k in header if k != "__metadata__"}
    check(names == set(want), "key names: missing %s, extra %s" % (sorted(set(want) - names)[:5], sorted(names - set(want))[:5]))
    spans = []
    for k in names:
        check(header[k]["shape"] == want[k], "%s shape %s != %s" % (k, header[k]["shape"], want[k]))
        check(header[k]["dtype"] == "F16", "%s dtype" % k)
        b, e = header[k]["data_offsets"]
        check(e - b == 2 * int(np.prod(want[k], dtype=np.int64)), "%s byte size" % k)
        spans.append((b, e))
    spans.sort()
    check(spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "tensors back to back")
    check(spans[-1][1] == len(raw) - 8 - hlen, "buffer fully covered")
    return read_safetensors(os.path.join(d, "model.safetensors"))[0], conf


@case
def export_layout_and_round_trip():
    import torch
    from export import export, load_hf
    m = _tiny_model()
    with tempfile.TemporaryDirectory() as d:
        vd = os.path.join(d, "vocab")
        merges = bpe.learn(bpe.corpus(50), 600 - 514)
        tok = bpe.write(vd, merges)
        check(len(tok.encoder) <= 600, "vocab fits the tiny model")
        out = os.path.join(d, "hf")
        export(m, vd, out)
        t, conf = check_export_dir(out)
        sd = m.state_dict()
        check(np.allclose(t["visual_projection.weight"], sd["visual.proj"].numpy().T, atol=1e-3), "proj transposed")
        w = sd["visual.transformer.resblocks.1.attn.in_proj_weight"].numpy()
        check(np.allclose(t["vision_model.encoder.layers.1.self_attn.k_proj.weight"], w[64:128], atol=1e-3), "k chunk")
        m2 = load_hf(out)
        x = torch.randn(2, 3, 32, 32)
        ids = torch.tensor([[597, 5, 6, 599, 0], [597, 7, 599, 0, 0]])
        with torch.no_grad():
            check(torch.allclose(m.encode_image(x), m2.encode_image(x), atol=2e-2), "image tower round trip")
            check(torch.allclose(m.encode_text(ids), m2.encode_text(ids), atol=2e-2), "text tower round trip")
            # pooling at the first end token: what follows it does not matter
            ids2 = ids.clone()
            ids2[0, 4] = 9
            check(torch.allclose(m.encode_text(ids), m.encode_text(ids2)), "first-end-token pooling / causal mask")
            for mode in ("vanilla", "maskclip", "sclip"):
                f, g = m.visual.dense(x, mode)
                check(f.shape == (2, 16, 48) and g == (4, 4), "dense shape")
                check(torch.allclose(f.norm(dim=-1), torch.ones(2, 16), atol=1e-5), "dense features L2-normalised")


# ----------------------------------------------------------------------------- shipped model

SHIPPED = os.path.join(WORLD, "model")
# Measured with eval_dense.py on scenes 0..19 at 256x192, imagenet80 templates, S 128,
# window 64, stride 32, for the model shipped since 2026-12-07 (CLIPSelf + grounding): sclip
# mIoU 0.5526, mean object IoU 0.358, the lowest object car 0.248 (the model before it:
# 0.3493, objects 0.07, tent and car 0.00).  The floors sit a little below (full numbers in
# engine/world/README.md); no object may vanish.
SHIPPED_SCLIP_FLOOR = 0.52
SHIPPED_OBJECT_FLOOR = 0.30
SHIPPED_EACH_OBJECT_FLOOR = 0.15


@case
def shipped_model():
    if not os.path.exists(os.path.join(SHIPPED, "model.safetensors")):
        raise Skip("no shipped model in %s" % SHIPPED)
    import torch
    import eval_dense
    from export import load_hf
    torch.set_num_threads(2)
    check_export_dir(SHIPPED)
    size = os.path.getsize(os.path.join(SHIPPED, "model.safetensors"))
    check(size < 16 * 2 ** 20, "shipped model should be a few MB, is %d bytes" % size)
    m = load_hf(SHIPPED)
    tok = bpe.Tokenizer.load(SHIPPED)
    res = eval_dense.evaluate(m, tok, range(20), (256, 192), ("sclip",), "imagenet80")
    miou = res["sclip"].miou()
    check(miou >= SHIPPED_SCLIP_FLOOR, "sclip mIoU %.4f below the floor %.2f" % (miou, SHIPPED_SCLIP_FLOOR))
    objects = res["sclip"].per_class()[len(world.STUFF):]
    check(objects.mean() >= SHIPPED_OBJECT_FLOOR,
          "mean object IoU %.4f below the floor %.2f" % (objects.mean(), SHIPPED_OBJECT_FLOOR))
    weakest = int(objects.argmin())
    check(objects[weakest] >= SHIPPED_EACH_OBJECT_FLOOR, "%s IoU %.4f below the floor %.2f" % (
        world.CLASSES[len(world.STUFF) + weakest], objects[weakest], SHIPPED_EACH_OBJECT_FLOOR))


def main():
    sel = None
    if len(sys.argv) > 2 and sys.argv[1] == "-k":
        sel = sys.argv[2]
    passed = failed = skipped = 0
    for name, fn in CASES:
        if sel and sel not in name:
            continue
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            continue
        except Exception:
            failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
            continue
        passed += 1
        print("ok   %s" % name, flush=True)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    # 77: meson's "skipped", when nothing could run here (the reasons are printed above)
    return 1 if failed else 77 if skipped and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
