#!/usr/bin/python3
"""Soak test of the clipseg element: a running pipeline gets random property sets, state
changes among NULL/READY/PAUSED/PLAYING, caps changes (size and format) and flushing seeks,
in both processing modes, and must neither crash nor hang nor post an error.

    videotestsrc [is-live] ! video/x-raw,framerate=30/1 ! videoconvert
      ! capsfilter name=caps caps-change-mode=delayed ! clipseg name=seg ! videoconvert ! fakesink

The framerate stays fixed: Debian's videotestsrc itself frees badly when its caps switch
between framerate 0/1 and others (reproduced with identity in place of clipseg). The
capsfilter accepts the previous caps until the new ones arrive: in its default immediate
mode a frame already on its way when the caps change is refused, and a live videotestsrc
stops with not-negotiated (reproduced with identity in place of clipseg, 1-2 times in 400
caps changes).

Per mode it prints the counts of each action, the errors, the hangs (a state change or seek
not done within --timeout seconds) and the buffers that reached the sink, and after the last
action checks that frames still flow and carry label maps. Under ASan (meson setup with
-Db_sanitize=address, then LD_PRELOAD=$(gcc -print-file-name=libasan.so) and
ASAN_OPTIONS=detect_leaks=0 for the Python process) a memory error aborts the run.

Usage: soak.py BUILD_DIR MODEL [--property-sets N] [--seed S] [--timeout SECONDS]
(actions are drawn until N random property sets, default 1000, have been made; state
changes, caps changes and seeks come between them, each as often as 1 in 7 property sets)
Ends with 'N passed, N failed' (one case per processing mode).
"""
import argparse
import collections
import os
import random
import sys
import tempfile
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

FORMATS = ["RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "I420", "NV12"]
SIZES = [(64, 48), (96, 64), (160, 120), (48, 96), (320, 240), (33, 17)]
WORDS = ["sky", "grass", "water", "sand", "ball", "box", "star", "tent", "tree", "car", "house",
         "boat", "person", "dog"]
STATES = [Gst.State.NULL, Gst.State.READY, Gst.State.PAUSED, Gst.State.PLAYING]


def random_labels(rng):
    names = rng.sample(WORDS, rng.randint(1, 6))
    return ", ".join("|".join([n] + rng.sample(WORDS, rng.randint(0, 1))) for n in names)


class Soak:
    def __init__(self, model, processing, rng, timeout, tmp):
        self.rng, self.timeout, self.tmp = rng, timeout, tmp
        live = "true" if processing == "latest" else "false"
        self.pipeline = Gst.parse_launch(
            "videotestsrc name=src pattern=ball is-live=%s ! video/x-raw,framerate=30/1 ! "
            "videoconvert ! capsfilter name=caps caps-change-mode=delayed ! clipseg name=seg ! "
            "videoconvert ! fakesink name=sink sync=false" % live)
        self.seg = self.pipeline.get_by_name("seg")
        self.caps = self.pipeline.get_by_name("caps")
        self.seg.set_property("model", model)
        self.seg.set_property("labels", "ball, sky|cloud")
        self.seg.set_property("processing", processing)
        self.seg.set_property("resolution", 64)
        self.seg.set_property("templates", "single")
        self.bus = self.pipeline.get_bus()
        self.buffers = 0
        self.with_meta = 0
        self.counts = dict(property=0, state=0, caps=0, seek=0)
        self.errors, self.hangs = [], []
        self.history = collections.deque(maxlen=6)   # the last actions, told with each error
        self.pipeline.get_by_name("sink").get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, self.on_buffer)

    def on_buffer(self, pad, info):
        self.buffers += 1
        if info.get_buffer().get_meta("GstClipsegMetaAPI") is not None:
            self.with_meta += 1
        return Gst.PadProbeReturn.OK

    # ---- actions

    def set_property(self):
        rng = self.rng
        choices = [
            ("labels", lambda: random_labels(rng)),
            ("labels-file", lambda: rng.choice([None, self.labels_file(rng)])),
            ("background", lambda: rng.choice(["", "sky", "sky, wall, tree"])),
            ("templates", lambda: rng.choice(["single", "none", "imagenet80", self.templates_file()])),
            ("mode", lambda: rng.choice(["vanilla", "maskclip", "sclip", "clearclip", "naclip", "scclip"])),
            ("resolution", lambda: rng.choice([0, 16, 32, 48, 64, 96, 128])),
            # windows of one 8-pixel patch at strides of half a patch made thousands of windows
            # per frame: sync frames then waited over 30 s for them on a loaded machine
            ("window", lambda: rng.choice([-1, 0, 16, 32, 48, 64])),
            ("stride", lambda: rng.choice([0, 8, 16, 100])),
            ("logit-scale", lambda: rng.choice([0.001, 1.0, 40.0, 1000.0])),
            ("threshold", lambda: rng.choice([0.0, 0.3, 1.0])),
            ("area-threshold", lambda: rng.choice([0.0, 0.1, 0.99])),
            ("inference-interval", lambda: rng.choice([1, 2, 5])),
            ("smoothing", lambda: rng.choice([0.0, 0.5, 0.99])),
            ("n-threads", lambda: rng.choice([0, 1, 2])),
            ("overlay", lambda: rng.choice(["none", "auto", "blend", "composition"])),
            ("overlay-alpha", lambda: rng.random()),
            ("colors", lambda: rng.choice([None, "1=#ff0000", "ball=00ff00, 2=#0000ff", "bad"])),
            ("post-messages", lambda: rng.random() < 0.5),
            ("attach-probabilities", lambda: rng.random() < 0.5),
            ("qos", lambda: rng.random() < 0.5),
        ]
        name, value = rng.choice(choices)
        value = value()
        self.history.append("%s=%r" % (name, value))
        self.seg.set_property(name, value)
        self.counts["property"] += 1

    def labels_file(self, rng):
        path = os.path.join(self.tmp, "labels-%d.txt" % rng.randint(0, 3))
        with open(path, "w") as f:
            f.write("\n".join(", ".join(rng.sample(WORDS, rng.randint(1, 3)))
                              for _ in range(rng.randint(1, 5))) + "\n")
        return path

    def templates_file(self):
        path = os.path.join(self.tmp, "templates.txt")
        with open(path, "w") as f:
            f.write("a photo of a {}.\n{} in a video game.\n")
        return path

    def change_state(self):
        state = self.rng.choice(STATES)
        self.history.append("state %s" % state.value_nick)
        self.set_state(state, "state change")
        self.counts["state"] += 1

    def change_caps(self):
        w, h = self.rng.choice(SIZES)
        fmt = self.rng.choice(FORMATS)
        if fmt in ("I420", "NV12"):
            w, h = w + w % 2, h + h % 2
        caps = "video/x-raw,format=%s,width=%d,height=%d" % (fmt, w, h)
        self.history.append("caps %s" % caps)
        self.caps.set_property("caps", Gst.Caps.from_string(caps))
        self.counts["caps"] += 1

    def seek(self):
        position = self.rng.randint(0, 10) * Gst.SECOND
        self.history.append("seek to %d s" % (position // Gst.SECOND))
        if self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, position):
            self.wait_state("flushing seek to %d s" % (position // Gst.SECOND))
        self.counts["seek"] += 1

    # ---- helpers

    def set_state(self, state, what):
        if self.pipeline.set_state(state) == Gst.StateChangeReturn.FAILURE:
            self.errors.append("%s to %s failed" % (what, state.value_nick))
            return
        self.wait_state("%s to %s" % (what, state.value_nick))

    def wait_state(self, what):
        ret, _, _ = self.pipeline.get_state(self.timeout * Gst.SECOND)
        if ret == Gst.StateChangeReturn.ASYNC:
            self.hangs.append("%s after %s" % (what, "; ".join(self.history)))
        elif ret == Gst.StateChangeReturn.FAILURE:
            self.errors.append("%s failed" % what)

    def pump(self, seconds):
        """Runs for @seconds, collecting error messages (and restarting after one)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            msg = self.bus.timed_pop_filtered(max(0, int(left * Gst.SECOND)), Gst.MessageType.ERROR)
            if msg is None:
                return
            err, debug = msg.parse_error()
            self.errors.append("%s: %s (%s) after %s" % (msg.src.get_name(), err.message, debug,
                                                          "; ".join(self.history)))
            self.set_state(Gst.State.NULL, "restart after an error")
            self.set_state(Gst.State.PLAYING, "restart after an error")

    def run(self, n_property_sets):
        self.set_state(Gst.State.PLAYING, "start")
        actions = [self.set_property] * 7 + [self.change_state, self.change_caps, self.seek]
        while self.counts["property"] < n_property_sets:
            self.rng.choice(actions)()
            self.pump(self.rng.choice([0.0, 0.02, 0.1]))
        # it still works: frames flow and carry label maps
        self.seg.set_property("labels", "ball, sky")
        self.seg.set_property("labels-file", None)
        self.seg.set_property("inference-interval", 1)
        self.set_state(Gst.State.PLAYING, "final start")
        before, meta_before = self.buffers, self.with_meta
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and (self.buffers - before < 10
                                                or self.with_meta == meta_before):
            self.pump(0.1)
        flowing = self.buffers - before >= 10 and self.with_meta > meta_before
        self.set_state(Gst.State.NULL, "final stop")
        return flowing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("model")
    ap.add_argument("--property-sets", type=int, default=1000,
                    help="random property sets per processing mode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=30, help="seconds a state change may take")
    a = ap.parse_args()
    os.environ["GST_PLUGIN_PATH"] = os.path.join(os.path.abspath(a.build_dir), "gst")
    Gst.init(None)
    if Gst.ElementFactory.find("clipseg") is None:
        print("clipseg not found in %s/gst" % a.build_dir)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for i, processing in enumerate(("sync", "latest")):
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="clipseg-soak-") as tmp:
            soak = Soak(a.model, processing, random.Random(a.seed * 2 + i), a.timeout, tmp)
            flowing = soak.run(a.property_sets)
        ok = flowing and not soak.errors and not soak.hangs
        print("%s %s: %d actions (%s) in %.0f s, %d errors, %d hangs, %d buffers (%d with label "
              "maps)%s" % ("ok  " if ok else "FAIL", processing, sum(soak.counts.values()),
                            ", ".join("%d %s" % (n, k) for k, n in soak.counts.items()),
                            time.monotonic() - t0, len(soak.errors), len(soak.hangs), soak.buffers,
                            soak.with_meta, "" if flowing else ", frames no longer flow"))
        for what in soak.errors[:10] + soak.hangs[:10]:
            print("    " + what)
        passed += ok
        failed += not ok
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    GLib.set_prgname("soak")
    sys.exit(main())
