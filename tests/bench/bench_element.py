#!/usr/bin/python3
"""Live cameras through clipseg: the video never waits, masks come at the engine's pace.

Runs live 30 fps videotestsrc streams (pattern=ball) through clipseg with the element's
defaults (processing=auto, so latest; the live default size and window) into fakesinks that
sync to the clock, each case in a process of its own, and prints per case and stream:

- first buffer: seconds from set_state(PLAYING) to the first buffer at the sink ("playing"
  is how long the call itself took), and to the first result (model load, text encoding,
  first inference);
- results after the first, their rate, and their share of what the measured inference
  time allows in the streaming time after the first result (results / (span / inference));
- wall / real time: seconds from the first buffer to EOS over the source's own span.

Cases: one 640x480 stream with the shipped model and with a random ViT-B/16-shaped
checkpoint; 4 streams of 320x240 with the shipped model and 2 with the ViT-B/16 one, all in
one process (the elements take turns on the engine), each stream's rate against the
single-stream rate / N; and, with --baseline-build, the single ViT-B/16 stream through
another build of the plugin (e.g. an older commit), side by side. Ends with the streams per
host at a 2 Hz mask refresh, from the single-stream rates.

Fails when a stream drops frames, falls more than 10% behind real time, gets fewer than
80% of the results its inference time allows (single stream), less than 0.8 of its fair
share (several streams), or less than 0.8 of the fastest stream's rate.

Usage: bench_element.py BUILD_DIR [--frames N] [--vitb16 DIR] [--baseline-build DIR]
                        [--precision auto|fp32|bf16]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import vitb16

FPS = 30
LABELS = "person, car|truck, dog, bicycle"


def child(case):
    """Runs one case in this process and prints its measurements as JSON."""
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    n = len(case["streams"])
    model = " model=%s" % case["model"] if case["model"] else ""
    desc = " ".join(
        "videotestsrc is-live=true num-buffers=%d pattern=ball ! "
        "video/x-raw,width=%d,height=%d,framerate=%d/1 ! "
        "clipseg name=c%d%s labels=\"%s\" post-messages=true %s ! fakesink name=s%d sync=true"
        % (case["frames"], w, h, FPS, k, model, LABELS, case["props"], k)
        for k, (w, h) in enumerate(case["streams"]))
    pipeline = Gst.parse_launch(desc)
    streams = [{"frames": 0, "first_buffer": None, "results": [], "inference_ms": []}
               for _ in range(n)]

    def on_buffer(pad, info, s):
        if s["first_buffer"] is None:
            s["first_buffer"] = time.monotonic() - t0
        s["frames"] += 1
        return Gst.PadProbeReturn.OK

    for k in range(n):
        pad = pipeline.get_by_name("s%d" % k).get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.BUFFER, on_buffer, streams[k])
    bus = pipeline.get_bus()
    t0 = time.monotonic()
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        sys.exit("the pipeline did not start")
    playing = time.monotonic() - t0
    mask = Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.ELEMENT
    while True:
        msg = bus.timed_pop_filtered(Gst.SECOND, mask)
        if msg is None:
            continue
        if msg.type == Gst.MessageType.ERROR:
            sys.exit("error: %s" % msg.parse_error()[0].message)
        if msg.type == Gst.MessageType.EOS:
            break
        st = msg.get_structure()
        if st.get_name() == "clipseg":
            s = streams[int(msg.src.get_name()[1:])]
            s["results"].append(time.monotonic() - t0)
            s["inference_ms"].append(st.get_value("inference-ms"))
    eos = time.monotonic() - t0
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps({"playing": playing, "eos": eos, "streams": streams}))


def run_case(plugin_dir, model, streams, frames, props=""):
    case = {"model": model, "streams": streams, "frames": frames, "props": props}
    env = dict(os.environ, GST_PLUGIN_PATH=plugin_dir,
               GST_REGISTRY=os.path.join(plugin_dir, "bench-registry.bin"))
    env.setdefault("OMP_WAIT_POLICY", "passive")
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], env=env,
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        sys.exit("case %s failed:\n%s%s" % (case, p.stdout, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(run, frames):
    """Per stream: first buffer, results after the first, their rate and share, wall/real."""
    out = []
    source_span = (frames - 1) / FPS
    for s in run["streams"]:
        m = {"frames": s["frames"], "first_buffer": s["first_buffer"], "results": len(s["results"]),
             "first_result": s["results"][0] if s["results"] else float("nan")}
        m["wall_real"] = (run["eos"] - s["first_buffer"]) / source_span
        m["inference_ms"] = statistics.median(s["inference_ms"]) if s["inference_ms"] else float("nan")
        if len(s["results"]) >= 2:
            span = run["eos"] - s["results"][0]
            m["after_first"] = len(s["results"]) - 1
            m["rate"] = m["after_first"] / span
            # at most one result per frame, however fast the engine
            m["allowed"] = span / max(m["inference_ms"] / 1000.0, 1.0 / FPS)
        else:
            m["after_first"], m["rate"], m["allowed"] = max(0, len(s["results"]) - 1), 0.0, float("nan")
        out.append(m)
    return out


def row(name, run, m, frames, share=None):
    if share is None:
        share = m["after_first"] / m["allowed"] if m["allowed"] == m["allowed"] else float("nan")
    print("| %s | %.2f | %.2f | %.2f | %d/%d | %d | %.0f | %.2f | %.2f | %.2f |"
          % (name, run["playing"], m["first_buffer"], m["first_result"], m["frames"], frames,
             m["after_first"],
             m["inference_ms"], m["rate"], share, m["wall_real"]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", nargs="?")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--vitb16", help="ViT-B/16-shaped HF checkpoint (generated when absent)")
    ap.add_argument("--baseline-build", help="another build directory whose plugin runs the "
                    "single ViT-B/16 case too, for an old/new comparison")
    ap.add_argument("--precision", default="auto", help="the element's precision (this build only)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return
    if not a.build_dir:
        ap.error("BUILD_DIR is required")

    plugin = os.path.join(os.path.abspath(a.build_dir), "gst")
    models = [("shipped", None, 4), ("ViT-B/16", vitb16.ensure(a.vitb16), 2)]
    props = "precision=%s" % a.precision
    print("live videotestsrc at %d fps, %d frames (%.1f s), labels \"%s\", element defaults, %s"
          % (FPS, a.frames, a.frames / FPS, LABELS, props))
    print("share: results after the first / what the inference time allows (single stream), "
          "or the stream's rate / (single-stream rate / N) (several streams)\n")
    print("| case | playing s | first buffer s | first result s | frames | results after first "
          "| inference ms | results/s | share | wall/real |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    failures = []
    single_rate = {}

    def check(name, m, share, floor):
        if m["frames"] != a.frames or m["wall_real"] > 1.10 or not share >= floor:
            failures.append("%s: %d frames, wall/real %.2f, share %.2f (at least %.2f)"
                            % (name, m["frames"], m["wall_real"], share, floor))

    for name, model, _ in models:
        run = run_case(plugin, model, [(640, 480)], a.frames, props)
        m = measure(run, a.frames)[0]
        single_rate[name] = m["rate"]
        row("%s, 1 x 640x480" % name, run, m, a.frames)
        check(name, m, m["after_first"] / m["allowed"], 0.80)
        if a.baseline_build and model:
            base = os.path.join(os.path.abspath(a.baseline_build), "gst")
            brun = run_case(base, model, [(640, 480)], a.frames)
            row("%s, 1 x 640x480, baseline build" % name, brun, measure(brun, a.frames)[0], a.frames)
    for name, model, n in models:
        run = run_case(plugin, model, [(320, 240)] * n, a.frames, props)
        solo = run_case(plugin, model, [(320, 240)], a.frames, props)
        rate = measure(solo, a.frames)[0]["rate"]
        row("%s, 1 x 320x240" % name, solo, measure(solo, a.frames)[0], a.frames)
        ms = measure(run, a.frames)
        for k, m in enumerate(ms):
            share = m["rate"] / (rate / n) if rate > 0 else float("nan")
            row("%s, %d x 320x240, stream %d" % (name, n, k), run, m, a.frames, share)
            check("%s stream %d of %d" % (name, k, n), m, share, 0.80)
        rates = [m["rate"] for m in ms]
        print("| %s, %d streams: slowest / fastest stream | | | | | | | | %.2f | |"
              % (name, n, min(rates) / max(rates)), flush=True)
        if min(rates) < 0.8 * max(rates):
            failures.append("%s: stream rates %s are not fair" % (name, rates))
        single_rate[name + " 320x240"] = rate
    print("\nstreams per host at a 2 Hz mask refresh (single-stream rate / 2): "
          + ", ".join("%s %.1f" % (k, v / 2) for k, v in single_rate.items()))
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
