#!/usr/bin/python3
"""The element keeps a live source's pace with processing=latest.

Runs, through clipseg-read-meta, a live 30 fps videotestsrc of --frames frames into
clipseg (inference-interval 5, processing=latest) and an appsink that syncs to the clock,
once with the shipped model and once with a random ViT-B/16-shaped checkpoint, whose
inference takes far longer than the 167 ms between two frames chosen for inference. Prints
per model: frames out, frames with a result, distinct results, wall-clock span from the
first frame to the last against the source's own span (ratio 1.00 = source speed), and the
same for processing=sync, where every chosen frame waits for its inference. With latest,
only the first frame waits (so that every buffer carries a result); a live source then
catches up, so a span below the source's means the pipeline caught up with the clock.
Fails when a latest run loses a frame or a result, or falls more than 5% behind the source.

Usage: bench_element.py BUILD_DIR [--frames N] [--vitb16 DIR] [--threads N]
"""
import argparse
import os
import re
import subprocess
import sys

import vitb16

FPS = 30
INTERVAL = 5
LABELS = "sky, grass, water, ball, person, car"


def run(build_dir, model, processing, frames, threads):
    model_prop = " model=%s" % model if model else ""
    desc = ("videotestsrc is-live=true num-buffers=%d pattern=ball ! "
            "video/x-raw,width=640,height=480,framerate=%d/1 ! "
            "clipseg%s labels=\"%s\" inference-interval=%d processing=%s n-threads=%d ! "
            "appsink name=sink sync=true" % (frames, FPS, model_prop, LABELS, INTERVAL, processing, threads))
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(build_dir, "gst"))
    p = subprocess.run([os.path.join(build_dir, "gst", "clipseg-read-meta"), "--quiet", desc],
                       env=env, capture_output=True, text=True, timeout=3600)
    m = re.search(r"frames=(\d+) with-meta=(\d+) inferred=(\d+) results=(\d+) span=([\d.]+)s", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit("clipseg-read-meta failed:\n%s%s" % (p.stdout, p.stderr))
    return [int(x) for x in m.groups()[:4]] + [float(m.group(5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--vitb16", help="ViT-B/16-shaped HF checkpoint (generated when absent)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    models = [("shipped (engine/world/model)", None), ("ViT-B/16 shapes, random", vitb16.ensure(a.vitb16))]
    source_span = (a.frames - 1) / FPS
    expected_results = -(-a.frames // INTERVAL)
    print("live videotestsrc 640x480 at %d fps, %d frames (source span %.2f s), inference-interval %d, "
          "%d engine threads" % (FPS, a.frames, source_span, INTERVAL, a.threads))
    print("| model | processing | frames | with meta | results | span s | span / source |")
    print("|---|---|---|---|---|---|---|")
    failures = []
    for name, model in models:
        for processing in ("latest", "sync"):
            frames, with_meta, _, results, span = run(a.build_dir, model, processing, a.frames, a.threads)
            ratio = span / source_span
            print("| %s | %s | %d | %d | %d | %.2f | %.2f |" % (name, processing, frames, with_meta, results,
                                                             span, ratio), flush=True)
            if processing == "latest" and (frames != a.frames or with_meta != a.frames or ratio > 1.05):
                failures.append("%s, latest: %d frames, %d with meta, span ratio %.2f"
                                % (name, frames, with_meta, ratio))
            if processing == "sync" and results != expected_results:
                failures.append("%s, sync: %d results, expected %d" % (name, results, expected_results))
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
