#!/usr/bin/python3
"""Memory over a long stream: the process's resident set size while clipseg (shipped model,
element defaults, sync processing) segments --frames frames of videotestsrc, the labels
changing every --label-every frames. After the warm-up (the first fifth of the frames) the
RSS must not grow: the median of the last fifth's samples may exceed the median of the
second fifth's by at most --slack MB, and the bytes malloc has handed out (glibc's
mallinfo2, every arena) by at most --heap-slack MB. The second measure separates a leak or
a growing cache from the allocator keeping freed pages.

    videotestsrc num-buffers=N pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1
      ! videoconvert ! clipseg processing=sync inference-interval=I ! fakesink sync=false

Prints an RSS sample every --sample-every frames and the medians; ends 'N passed, N failed'.
Usage: rss.py BUILD_DIR [--frames 10000] [--label-every 50] [--inference-interval 5]
"""
import argparse
import collections
import ctypes
import os
import statistics
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

LABEL_SETS = ["ball, sky", "star|sun, grass, water", "tent, tree, car", "house|home, boat",
              "sand, box, ball, sky, tent", "person, dog|puppy", "car|truck, boat, water"]


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = MallInfo2


def heap_mb():
    """Bytes glibc's malloc has handed out and not had back, in every arena (mmapped blocks
    included): what the process holds, whatever the allocator keeps besides."""
    m = _libc.mallinfo2()
    return (m.uordblks + m.hblkhd) / 2**20


def drain_bus(bus, state):
    """Pops every message as an application's bus watch would (messages nobody pops stay
    queued and would count as the element's memory) until EOS or an error; counts them by
    type in state['messages']."""
    counts = state["messages"] = collections.Counter()
    while True:
        msg = bus.timed_pop(Gst.CLOCK_TIME_NONE)
        counts[Gst.MessageType.get_name(msg.type)] += 1
        if msg.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR):
            return msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--label-every", type=int, default=50)
    ap.add_argument("--inference-interval", type=int, default=5)
    ap.add_argument("--sample-every", type=int,
                    help="default: once per cycle of the label sets, so that every sample is "
                    "taken with the same labels (what malloc holds depends on them)")
    ap.add_argument("--slack", type=float, default=4.0, help="MB the RSS may grow")
    ap.add_argument("--heap-slack", type=float, default=1.0,
                    help="MB malloc's bytes in use may grow")
    a = ap.parse_args()
    a.sample_every = a.sample_every or a.label_every * len(LABEL_SETS)
    os.environ["GST_PLUGIN_PATH"] = os.path.join(os.path.abspath(a.build_dir), "gst")
    Gst.init(None)
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=%d pattern=ball ! video/x-raw,width=320,height=240,"
        "framerate=30/1 ! videoconvert ! clipseg name=seg processing=sync "
        "inference-interval=%d ! fakesink name=sink sync=false"
        % (a.frames, a.inference_interval))
    seg = pipeline.get_by_name("seg")
    seg.set_property("labels", LABEL_SETS[0])
    samples = []                          # (frame, RSS MB, malloc MB)
    state = dict(frames=0, changes=0)

    def on_buffer(pad, info):
        n = state["frames"] = state["frames"] + 1
        if n % a.label_every == 0:
            state["changes"] += 1
            seg.set_property("labels", LABEL_SETS[state["changes"] % len(LABEL_SETS)])
        if n % a.sample_every == 0:
            samples.append((n, rss_mb(), heap_mb()))
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    t0 = time.monotonic()
    pipeline.set_state(Gst.State.PLAYING)
    msg = drain_bus(pipeline.get_bus(), state)
    pipeline.set_state(Gst.State.NULL)
    if msg.type == Gst.MessageType.ERROR:
        print("error: %s" % msg.parse_error()[0].message)
        print("0 passed, 1 failed")
        return 1
    for frame, rss, heap in samples:
        print("frame %5d  rss %.1f MB  malloc in use %.1f MB" % (frame, rss, heap))
    fifth = len(samples) // 5
    ok = state["frames"] == a.frames
    print("%d frames, %d label changes in %.0f s; medians of frames %d-%d (after the warm-up) "
          "and %d-%d:" % (state["frames"], state["changes"], time.monotonic() - t0,
                          samples[fifth][0], samples[2 * fifth - 1][0], samples[-fifth][0],
                          samples[-1][0]))
    for column, what, slack in ((1, "RSS", a.slack), (2, "malloc in use", a.heap_slack)):
        second = statistics.median(s[column] for s in samples[fifth:2 * fifth])
        last = statistics.median(s[column] for s in samples[-fifth:])
        grew = last > second + slack
        ok = ok and not grew
        print("%s %s %.1f MB -> %.1f MB (growth %+.2f MB, at most %.1f); min %.1f max %.1f MB "
              "after the warm-up" % ("FAIL" if grew else "ok  ", what, second, last,
                                     last - second, slack, min(s[column] for s in samples[fifth:]),
                                     max(s[column] for s in samples[fifth:])))
    print("bus messages: %s" % ", ".join("%s %d" % kv for kv in sorted(state["messages"].items())))
    print("%d passed, %d failed" % (ok, not ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
