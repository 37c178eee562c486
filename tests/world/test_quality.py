#!/usr/bin/python3
"""Regression test: the shipped world model, through the C engine, keeps its segmentation quality.

The shipped model (engine/world/model) segments a fixed set of held-out world scenes with
SCLIP, through libclipseg-engine.so called by ctypes exactly as the quality benchmark does
(tests/bench/clipseg_ctypes.py, shared with tests/bench/quality.py: same preprocessing,
same engine calls, same dataset-level mIoU), and must reach the mIoU the benchmark measured
on that set, less a small margin.

Usage: test_quality.py BUILD_DIR   (the meson build directory holding engine/libclipseg-engine.so)
Ends with 'N passed, N failed'.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
sys.path.insert(0, os.path.join(ROOT, "engine", "world"))
import clipseg_ctypes as cc  # noqa: E402
import world  # noqa: E402

SHIPPED = os.path.join(ROOT, "engine", "world", "model")

# tests/bench/quality.py measured sclip mIoU 0.5426 on this set (cc.REGRESSION: scenes 0..39 at
# 256x192, resolution 96, window 64, stride 32; pixel accuracy 0.93) for the shipped model, the
# CLIPSelf + grounding one of 2026-12-07 (model.safetensors sha256 9b926a9710a4; tests/bench/quality.md;
# the model before it: 0.3541).  The engine is deterministic for a given build and thread count; the margin
# covers compiler/BLAS rounding that flips a few pixels, not a worse model or engine.
# A new shipped model: re-run quality.py and update both numbers.
MEASURED_SCLIP_MIOU = 0.5426
THRESHOLD = 0.530


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    t0 = time.time()
    engine = cc.Engine(cc.find_library(build))
    r = cc.REGRESSION
    scenes = [world.render_scene(s, r["size"][0], r["size"][1]) for s in r["seeds"]]
    with engine.segmenter(SHIPPED, world.CLASSES, n_threads=1) as seg:
        conf = cc.scenes_confusion(seg, scenes, r["mode"], r["resolution"], r["window"], r["stride"])
    miou = conf.miou()
    print("shipped model, %s on %d scenes: mIoU %.4f, pixel accuracy %.4f (%.1f s); threshold %.3f "
          "(measured %.4f)" % (r["mode"], len(scenes), miou, conf.accuracy(), time.time() - t0, THRESHOLD,
                               MEASURED_SCLIP_MIOU))
    print("per class: " + " ".join("%s %.2f" % (n, v) for n, v in zip(world.CLASSES, conf.iou())))
    ok = miou >= THRESHOLD
    if not ok:
        print("FAIL: sclip mIoU %.4f is below the threshold %.3f" % (miou, THRESHOLD))
    print("%d passed, %d failed" % (int(ok), int(not ok)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
