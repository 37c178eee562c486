#!/usr/bin/python3
"""What applications get from the scripts and elements of pipelines/, with the shipped model:

  - read-meta.py (PyGObject and NumPy, no ctypes) writes the same label maps, frame for frame,
    as export-masks.sh's PNGs, and the same labels.txt; export-masks.sh also writes
    frames.jsonl, one line per frame;
  - export-json.sh writes one JSON object per frame whose coverage sums to 1;
  - export-masks.sh --rgb --frame-size writes colour masks at the frame's size;
  - gst-launch-1.0 -m prints the label names of clipseg's messages;
  - scripts/get-model.sh fetches and checks a checkpoint (from a local folder here) and
    fails naming what is missing when it cannot.

The clips come from ../shared/media (world clips without it). Both sides of the
comparison run with n-threads=1: several threads may sum in another order from run to run,
which flips the odd pixel whose two best labels tie.

Usage: test_apps.py BUILD_DIR; ends with 'N passed, N failed'.
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback

import matplotlib.image as mpimg
import numpy as np

from pipeline_tools import PIPELINES, SRC, media, mp4_frames, run_script

LABELS = "grass, water, car|truck"
# the shipped model's world has no background words: without them label 0 stays empty
NO_BACKGROUND = 'background=""'


def script(name, *args, **kwargs):
    return run_script(BUILD_DIR, name, *args, **kwargs)


def png(path):
    return np.round(mpimg.imread(path) * 255).astype(np.uint8)


def test_help():
    for name in ("export-json.sh", "read-meta.py"):
        r = script(name, "--help")
        assert r.returncode == 0 and r.stdout.startswith(name + " — "), (name, r.stdout[:200])
        r = script(name, "only-one-argument")
        assert r.returncode == 2 and "Usage: " + name in r.stderr, (name, r.returncode, r.stderr[-500:])
        r = script(name, "a.mp4", "b", "c")
        assert r.returncode != 0 and "'c'" in r.stderr, (name, r.returncode, r.stderr[-500:])


def test_read_meta_equals_export_masks():
    clip = media("in1.mp4")
    n_in, _ = mp4_frames(clip)
    assert "ctypes" not in open(os.path.join(PIPELINES, "read-meta.py")).read()
    with tempfile.TemporaryDirectory() as tmp:
        py, sh = os.path.join(tmp, "py"), os.path.join(tmp, "sh")
        r = script("read-meta.py", "--labels", LABELS, "resolution=96", "n-threads=1", NO_BACKGROUND,
                   clip, py)
        assert r.returncode == 0, r.stderr[-2000:]
        r = script("export-masks.sh", "--labels", LABELS, clip, sh, "resolution=96", "n-threads=1",
                   NO_BACKGROUND)
        assert r.returncode == 0, r.stderr[-2000:]
        arrays = sorted(f for f in os.listdir(py) if f.endswith(".npy"))
        masks = sorted(f for f in os.listdir(sh) if f.startswith("mask-"))
        assert len(arrays) == len(masks) == n_in, (len(arrays), len(masks), n_in)
        seen = set()
        for i in range(n_in):
            a = np.load(os.path.join(py, "%06d.npy" % i))
            m = png(os.path.join(sh, "mask-%05d.png" % i))
            assert a.dtype == np.uint8 and a.shape == m.shape, (i, a.dtype, a.shape, m.shape)
            assert np.array_equal(a, m), (i, int((a != m).sum()))
            seen.update(np.unique(a).tolist())
        assert len(seen) > 1, seen
        labels = open(os.path.join(py, "labels.txt")).read()
        assert labels == open(os.path.join(sh, "labels.txt")).read(), labels
        assert labels.split("\n") == ["background", "grass", "water", "car"], labels
        lines = open(os.path.join(sh, "frames.jsonl")).read().splitlines()
        assert [json.loads(line)["frame"] for line in lines] == list(range(n_in))
    print("read-meta.py = export-masks.sh on %d frames (%d labels seen)" % (n_in, len(seen)))


def test_export_json():
    clip = media("in1.mp4")
    n_in, _ = mp4_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.jsonl")
        r = script("export-json.sh", "--labels", LABELS, "resolution=64", clip, out)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = open(out).read().splitlines()
    assert len(lines) == n_in, (len(lines), n_in)
    previous = -1
    for i, line in enumerate(lines):
        o = json.loads(line)
        assert o["frame"] == i and o["pts"] > previous and o["duration"] > 0, o
        assert o["inferred"] and not o["reused"] and o["source-pts"] == o["pts"], o
        assert o["labels"] == ["background", "grass", "water", "car"], o
        assert abs(sum(o["coverage"]) - 1) < 1e-3, o
        assert len(o["score"]) == 4 and o["inference-ms"] > 0, o
        previous = o["pts"]
    print("export-json.sh: %d lines" % len(lines))


def test_export_masks_colour_frame_size():
    clip = media("in1.mp4")
    n_in, (w, h) = mp4_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        r = script("export-masks.sh", "--labels", LABELS, "--rgb", "--frame-size", clip, tmp,
                   "resolution=64", "colors=grass=#00ff00", NO_BACKGROUND)
        assert r.returncode == 0, r.stderr[-2000:]
        for i in (0, n_in - 1):
            m = png(os.path.join(tmp, "mask-%05d.png" % i))
            assert m.shape == (h, w, 3), m.shape
            colours = {tuple(c) for c in m.reshape(-1, 3)}
            assert (0, 0, 0) not in colours, colours  # no background, no black
    print("export-masks.sh --rgb --frame-size: %dx%d colour masks" % (w, h))


def test_messages_name_labels():
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(BUILD_DIR, "gst"))
    r = subprocess.run(["gst-launch-1.0", "-m", "videotestsrc", "num-buffers=2", "!", "videoconvert",
                        "!", "clipseg", "labels=sky, grass", "post-messages=true",
                        "processing=sync", "!", "fakesink"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "labels=(GValueArray)< background, sky, grass >" in r.stdout, r.stdout[-2000:]


def get_model(url, outdir):
    env = dict(os.environ, CLIPSEG_MODEL_URL=url)
    return subprocess.run([os.path.join(SRC, "scripts", "get-model.sh"), outdir], env=env,
                          capture_output=True, text=True, timeout=300)


def test_get_model():
    """Fetches the four files (here from the shipped model's folder), checks them, prints
    model=; an unreachable source or a file that is not what it says fails, naming it."""
    world = "file://" + os.path.join(SRC, "engine", "world", "model")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "clip")
        r = get_model(world, out)
        assert r.returncode == 0 and r.stdout == "model=%s\n" % out, (r.stdout, r.stderr[-1000:])
        assert sorted(os.listdir(out)) == ["config.json", "merges.txt", "model.safetensors",
                                           "vocab.json"], os.listdir(out)
        env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(BUILD_DIR, "gst"))
        r = subprocess.run(["gst-launch-1.0", "videotestsrc", "num-buffers=2", "!", "videoconvert",
                            "!", "clipseg", "labels=grass", r.stdout.strip(), "!", "fakesink"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-1000:]
        r = get_model("file:///nonexistent", os.path.join(tmp, "offline"))
        assert r.returncode == 1 and "cannot fetch file:///nonexistent/config.json" in r.stderr \
            and "model.safetensors" in r.stderr, r.stderr[-1000:]
        bad = os.path.join(tmp, "bad")
        os.mkdir(bad)
        for d in (bad, out):
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write("{}")
        r = get_model("file://" + bad, out)
        assert r.returncode == 1 and "config.json is not a valid config.json" in r.stderr, \
            r.stderr[-1000:]


def main():
    global BUILD_DIR
    BUILD_DIR = os.path.abspath(sys.argv[1])
    passed = failed = 0
    for name, fn in [(k, v) for k, v in globals().items() if k.startswith("test_")]:
        try:
            fn()
            passed += 1
            print("ok %s" % name)
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
