#!/usr/bin/python3
"""The pipeline scripts run as their --help says, on the real clips in ../shared/media (or,
without them, on clips of the procedural world rendered by engine/world/world.py) with
the shipped default model:

  - every script prints its usage with --help and exits 0; a missing argument prints it to
    stderr and exits 2;
  - annotate.sh writes an MP4 with as many frames, of the same size, as the input;
  - export-masks.sh writes one label-map PNG per frame, at the inference size, with values
    below the number of labels, and labels.txt naming them (background first);
  - export-masks.sh passes PROPERTY=VALUE arguments whose values hold spaces and quotes intact;
  - clipseg-read-meta fails fast, naming the problem, when its pipeline cannot start (bad
    property, missing model, missing file) or its masks cannot be written, and
    writes each mask at its own size when the label map's size changes mid-stream;
  - the scripts' environment makes OpenMP threads sleep unless the user set a policy;
  - camera.sh without a display asks for --sink; with a device that does not exist it
    fails and names the device.

Usage: test_pipelines.py BUILD_DIR; ends with 'N passed, N failed'.
"""
import os
import subprocess
import sys
import tempfile
import traceback

import matplotlib.image as mpimg
import numpy as np

from pipeline_tools import PIPELINES, media, mp4_frames, run_script

LABELS = "person, car|truck, bicycle"


def script(name, *args, **kwargs):
    return run_script(BUILD_DIR, name, *args, **kwargs)


def test_help_and_usage():
    for name in ("demo.sh", "camera.sh", "annotate.sh", "export-masks.sh"):
        r = script(name, "--help")
        assert r.returncode == 0 and r.stdout.startswith(name + " — "), (name, r.stdout[:200])
        assert "Usage: " + name in r.stdout, name
    for name in ("annotate.sh", "export-masks.sh"):
        r = script(name, "only-one-argument")
        assert r.returncode == 2 and "Usage: " + name in r.stderr, (name, r.returncode, r.stderr[:200])


def test_annotate():
    clip = media("in1.mp4")
    n_in, size_in = mp4_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.mp4")
        r = script("annotate.sh", "--labels", LABELS, clip, out, "inference-interval=2")
        assert r.returncode == 0, r.stderr[-2000:]
        assert "progressreport" in r.stdout, r.stdout[-500:]
        n_out, size_out = mp4_frames(out)
    assert (n_out, size_out) == (n_in, size_in), ((n_out, size_out), (n_in, size_in))
    print("annotate.sh: %d frames of %dx%d in and out" % (n_in, size_in[0], size_in[1]))


def test_export_masks():
    clip = media("bikes.mp4")
    n_in, (w, h) = mp4_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        r = script("export-masks.sh", "--labels", LABELS, clip, tmp, "resolution=96")
        assert r.returncode == 0, r.stderr[-2000:]
        assert "%d frames" % n_in in r.stdout, r.stdout[-500:]
        labels = open(os.path.join(tmp, "labels.txt")).read().split("\n")
        assert labels[:4] == ["background", "person", "car", "bicycle"], labels
        masks = sorted(f for f in os.listdir(tmp) if f.startswith("mask-"))
        assert len(masks) == n_in, (len(masks), n_in)
        for name in (masks[0], masks[-1]):
            m = np.round(mpimg.imread(os.path.join(tmp, name)) * 255).astype(int)
            assert m.shape == (96, round(w * 96 / h)), (name, m.shape)
            assert m.max() < 4, (name, m.max())
    print("export-masks.sh: %d masks of %dx96 for %d frames" % (len(masks), round(w * 96 / h), n_in))


def test_export_masks_quoted_properties():
    clip = media("in1.mp4")
    n_in, _ = mp4_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        linked = os.path.join(tmp, 'in "1" \\ x.mp4')
        os.symlink(clip, linked)
        out = os.path.join(tmp, "out dir")
        r = script("export-masks.sh", "--labels", "person, car", linked, out, "resolution=64",
                   "colors=person=#ff0000, car=#00ff00", timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "%d frames" % n_in in r.stdout, r.stdout[-500:]
        assert "ignoring colors" not in r.stderr, r.stderr[-2000:]
        r = script("export-masks.sh", linked, out, "not-a-property", timeout=120)
        assert r.returncode == 2 and "not-a-property" in r.stderr, (r.returncode, r.stderr[-500:])


def read_meta(*args, timeout=20):
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(BUILD_DIR, "gst"))
    return subprocess.run([os.path.join(BUILD_DIR, "gst", "clipseg-read-meta")] + list(args),
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_read_meta_startup_errors():
    """Each used to hang: the pipeline never ran, so the appsink never got EOS."""
    for pipeline, message in (
            ("videotestsrc num-buffers=5 ! clipseg labels=a model=/nonexistent ! appsink name=sink",
             "/nonexistent"),
            ("filesrc location=/nonexistent.mp4 ! qtdemux ! h264parse ! avdec_h264 ! videoconvert"
             " ! clipseg labels=a ! appsink name=sink", "/nonexistent.mp4"),
            ("videotestsrc num-buffers=2 ! clipseg labels=a nosuchprop=1 ! appsink name=sink"
             " sync=false", 'no property "nosuchprop"'),
            ("videotestsrc num-buffers=2 ! nosuchelement ! appsink name=sink", "nosuchelement")):
        r = read_meta("-q", pipeline)
        assert r.returncode == 1 and message in r.stderr, (pipeline, r.returncode, r.stderr[-1000:])


def test_read_meta_mask_errors():
    source = "videotestsrc num-buffers=3 ! clipseg labels=a resolution=64 ! appsink name=sink sync=false"
    r = read_meta("-q", "--masks", "/proc/clipseg-test/masks", source)
    assert r.returncode == 1 and "/proc/clipseg-test/masks" in r.stderr, (r.returncode, r.stderr[-1000:])
    with tempfile.TemporaryDirectory() as tmp:
        # a directory where a mask file should go: the mask writer fails on that frame
        os.mkdir(os.path.join(tmp, "mask-00001.png"))
        r = read_meta("-q", "--masks", tmp, source)
        assert r.returncode == 1 and "mask-00001.png" in r.stderr, (r.returncode, r.stderr[-1000:])


def test_read_meta_mask_size_change():
    """concat switches from 4:3 to 2:3 frames: the label map goes from 85x64 to 64x96."""
    pipeline = ("concat name=c ! videoconvert ! clipseg labels=a resolution=64 ! appsink name=sink"
                " sync=false")
    for w in (320, 160):
        pipeline += " videotestsrc num-buffers=2 ! video/x-raw,width=%d,height=240 ! c." % w
    with tempfile.TemporaryDirectory() as tmp:
        r = read_meta("-q", "--masks", tmp, pipeline, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        shapes = [mpimg.imread(os.path.join(tmp, "mask-%05d.png" % i)).shape for i in range(4)]
    assert shapes == [(64, 85)] * 2 + [(96, 64)] * 2, shapes


def test_camera_errors():
    device = "/dev/clipseg-test-no-such-camera"
    r = script("camera.sh", "--device", device, unset=("DISPLAY", "WAYLAND_DISPLAY"), timeout=120)
    assert r.returncode == 2 and "no display" in r.stderr and "--sink" in r.stderr, r.stderr[-1000:]
    r = script("camera.sh", "--device", device, "--sink", "fakesink sync=false", timeout=120)
    assert r.returncode != 0, r.stdout[-500:]
    assert "Cannot identify device '%s'" % device in r.stdout + r.stderr, (r.stdout + r.stderr)[-1000:]


def test_env_sleeping_openmp_threads():
    """clipseg_env makes OpenMP threads sleep unless the user chose otherwise."""
    for preset, expected in ((None, "passive"), ("ACTIVE", "ACTIVE")):
        env = dict(os.environ, CLIPSEG_BUILD_DIR=BUILD_DIR)
        env.pop("OMP_WAIT_POLICY", None)
        if preset:
            env["OMP_WAIT_POLICY"] = preset
        r = subprocess.run(["bash", "-c", '. "$0" && clipseg_env && echo "$OMP_WAIT_POLICY"',
                            os.path.join(PIPELINES, "clipseg-env.sh")],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and r.stdout.strip() == expected, (preset, r.stdout, r.stderr[-500:])


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
