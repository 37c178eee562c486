#!/usr/bin/python3
"""read-meta.py — writes the label map of every frame of an H.264 MP4 as NumPy arrays.

Usage: read-meta.py [--labels LABELS] [--model PATH] [PROPERTY=VALUE...] INPUT.mp4 OUTDIR

  --labels LABELS  classes, comma-separated, synonyms joined by '|'
                   (default "person, car|truck, bicycle")
  --model PATH     CLIP checkpoint (default: the clipseg element's default)
  PROPERTY=VALUE   further clipseg properties, e.g. resolution=448

OUTDIR/000000.npy, ... are uint8 arrays [height, width] at the label map's size
whose values are label indices (0 = background), the same as export-masks.sh's
PNGs; OUTDIR/labels.txt names them, one per line. An example of reading
clipseg's results from Python with PyGObject and NumPy alone: every buffer
carries a GstCustomMeta named "GstClipsegResultMeta" whose structure holds the
label names, coverage, scores, the source timestamp, the reused flag and the
label map (a GstBuffer with width, height and stride). It runs:

  filesrc location=in.mp4 ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! \\
      clipseg labels="person, car|truck, bicycle" processing=sync ! appsink sync=false
"""
import os
import re
import subprocess
import sys

import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROPERTY = re.compile(r"^[a-z][a-z0-9-]*=")


def usage(out):
    out.write(__doc__)


def parse_args(argv):
    """(labels, model or None, [(name, value)], [files])"""
    labels, model, props, files = "person, car|truck, bicycle", None, [], []
    args = list(argv)
    while args and args[0] in ("-h", "--help", "--labels", "--model"):
        option = args.pop(0)
        if option in ("-h", "--help"):
            usage(sys.stdout)
            sys.exit(0)
        if not args:
            sys.exit("read-meta.py: %s needs a value" % option)
        if option == "--labels":
            labels = args.pop(0)
        else:
            model = args.pop(0)
    for arg in args:
        if PROPERTY.match(arg):
            props.append(tuple(arg.split("=", 1)))
        else:
            files.append(arg)
    if len(files) > 2:
        sys.exit("read-meta.py: '%s' is neither a file argument nor PROPERTY=VALUE" % files[2])
    if len(files) < 2:
        usage(sys.stderr)
        sys.exit(2)
    return labels, model, props, files


def plugin_env():
    """GST_PLUGIN_PATH as the shell scripts set it (clipseg-env.sh: from a checkout, its
    build brought up to date; installed, the installation's plugin directory)."""
    r = subprocess.run(["bash", "-c", '. "$0" && clipseg_env && printf %s "$GST_PLUGIN_PATH"',
                        os.path.join(HERE, "clipseg-env.sh")],
                       stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("read-meta.py: could not set up the clipseg plugin")
    os.environ["GST_PLUGIN_PATH"] = r.stdout
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def build_pipeline(labels, model, props, path):
    pipeline = Gst.parse_launch("filesrc name=src ! qtdemux ! h264parse ! avdec_h264 ! "
                                "videoconvert ! clipseg name=seg processing=sync ! "
                                "appsink name=sink sync=false")
    pipeline.get_by_name("src").set_property("location", path)
    seg = pipeline.get_by_name("seg")
    seg.set_property("labels", labels)
    if model:
        seg.set_property("model", model)
    for name, value in props:
        if seg.find_property(name) is None:
            sys.exit("read-meta.py: clipseg has no property '%s'" % name)
        Gst.util_set_object_arg(seg, name, value)
    return pipeline


def label_map(structure):
    """The label map of a GstClipsegResultMeta structure as a [height, width] uint8 array."""
    width, height = structure.get_value("width"), structure.get_value("height")
    stride = structure.get_value("stride")
    data = structure.get_value("label-map").extract_dup(0, stride * height)
    return np.frombuffer(data, np.uint8).reshape(height, stride)[:, :width].copy()


def write_frames(pipeline, outdir):
    """Returns the number of frames written; raises on a pipeline error."""
    sink, bus = pipeline.get_by_name("sink"), pipeline.get_bus()
    labels, n = None, 0
    pipeline.set_state(Gst.State.PLAYING)
    try:
        while True:
            # a failed pipeline never brings the appsink to EOS: check the bus between pulls
            sample = sink.emit("try-pull-sample", 100 * Gst.MSECOND)
            error = bus.pop_filtered(Gst.MessageType.ERROR)
            if error is not None:
                err, debug = error.parse_error()
                raise RuntimeError("%s (%s)" % (err.message, debug))
            if sample is None:
                if sink.get_property("eos"):
                    return n
                continue
            meta = sample.get_buffer().get_custom_meta("GstClipsegResultMeta")
            if meta is None:
                raise RuntimeError("frame %d has no GstClipsegResultMeta" % n)
            s = meta.get_structure()
            np.save(os.path.join(outdir, "%06d.npy" % n), label_map(s))
            if s.get_value("labels") != labels:
                labels = s.get_value("labels")
                with open(os.path.join(outdir, "labels.txt"), "w") as f:
                    f.write("\n".join(labels))
            n += 1
    finally:
        pipeline.set_state(Gst.State.NULL)


def main(argv):
    labels, model, props, (path, outdir) = parse_args(argv)
    plugin_env()
    Gst.init(None)
    os.makedirs(outdir, exist_ok=True)
    try:
        n = write_frames(build_pipeline(labels, model, props, path), outdir)
    except (RuntimeError, GLib.Error) as e:
        sys.exit("read-meta.py: %s" % e)
    print("read-meta.py: %d frames to %s" % (n, outdir))

if __name__ == "__main__":
    main(sys.argv[1:])
