#!/usr/bin/python3
"""The README's first command, pipelines/demo.sh, on a short video: it writes a playable MP4
of the requested length and a PNG of the middle frame whose overlay labels the stuff right.

The labels are read back from the PNG alone: with the element's blend
d' = (d * (255 - a) + c * a) / 255, the colour c of each pixel follows from the annotated
and the raw frame, and the nearest colour of the element's default palette (computed here
from its definition, golden-ratio hues) names the label. Grass and water, most of the frame,
must come out right on more than 85% of their pixels; the tent and the car, 1-2% of the
frame each, on most of theirs (the label map is 128 pixels high, so their outlines are coarse
and the rest goes to the grass around them).

Usage: test_demo.py BUILD_DIR"""

import colorsys
import os
import subprocess
import sys
import tempfile

import matplotlib.image as mpimg
import numpy as np

from pipeline_tools import SRC, mp4_frames, run_script

WORLD = os.path.join(SRC, "engine", "world", "world.py")
FRAMES = 8
SEED = 1
ALPHA = round(0.5 * 255)


def palette(n_labels):
    """The element's default colour of labels 1..n_labels-1 (label 0 is not drawn)."""
    out = np.zeros((n_labels, 3))
    for k in range(1, n_labels):
        out[k] = colorsys.hsv_to_rgb((k * 0.6180339887) % 1.0, 0.85, 0.95)
    return np.round(out * 255.0)


def read_png(path):
    img = mpimg.imread(path)
    return np.round(img[..., :3] * 255.0) if img.dtype != np.uint8 else img[..., :3].astype(float)


def run_demo(tmp, build_dir):
    out = os.path.join(tmp, "demo.mp4")
    r = run_script(build_dir, "demo.sh", "--frames", str(FRAMES), out, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.getsize(out) > 0
    return out, os.path.join(tmp, "demo.png")


def labels_from_overlay(annotated, raw, colors):
    """Label index per pixel (0 where the frame is unchanged), decoded from the blend."""
    c = (annotated * 255.0 - raw * (255 - ALPHA)) / ALPHA
    dist = ((c[:, :, None, :] - colors[None, None, 1:, :]) ** 2).sum(-1)
    labels = 1 + dist.argmin(-1)
    labels[np.abs(annotated - raw).max(-1) == 0] = 0
    return labels


def main():
    build_dir = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        mp4, png = run_demo(tmp, build_dir)
        n, size = mp4_frames(mp4)
        assert (n, size) == (FRAMES, (640, 360)), (n, size)
        print("demo.mp4: %d frames of %dx%d" % (n, size[0], size[1]))

        frames_dir = os.path.join(tmp, "world")
        subprocess.run(["/usr/bin/python3", WORLD, "video", "--seed", str(SEED), "--size", "640x360",
                        "--frames", str(FRAMES), "--out", frames_dir], check=True, timeout=300)
        middle = FRAMES // 2
        raw = read_png(os.path.join(frames_dir, "frame%04d.png" % middle))
        annotated = read_png(png)
        assert annotated.shape == raw.shape == (360, 640, 3), (annotated.shape, raw.shape)
        classes = subprocess.run(["/usr/bin/python3", WORLD, "classes"], check=True,
                                 capture_output=True, text=True).stdout.split()
        gt = np.load(os.path.join(frames_dir, "gt.npy"))[middle]
        labels = labels_from_overlay(annotated, raw, palette(len(classes) + 1))

        for name, least_area, least_right in (("grass", 0.1, 0.85), ("water", 0.1, 0.85),
                                              ("tent", 0.005, 0.5), ("car", 0.005, 0.5)):
            region = gt == classes.index(name)
            assert region.mean() > least_area, "%s covers only %.1f%% of the frame" % (name, 100 * region.mean())
            right = (labels[region] == classes.index(name) + 1).mean()
            print("demo.png: %s %.1f%% of the frame, %.1f%% labelled %s" %
                  (name, 100 * region.mean(), 100 * right, name))
            assert right > least_right, "only %.1f%% of the %s pixels are labelled %s" % (100 * right, name, name)
    print("ok")


if __name__ == "__main__":
    main()
