"""What the pipeline tests share: where the scripts are, running one against a build, and
decoding an H.264 MP4 with GStreamer (Debian's python3-gi)."""
import os
import subprocess

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINES = os.path.join(SRC, "pipelines")


def run_script(build_dir, name, *args, cwd=None, unset=(), timeout=600):
    """Runs pipelines/@name with @args on the plugin of @build_dir, without the environment
    variables in @unset; returns the CompletedProcess (text output captured)."""
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["CLIPSEG_BUILD_DIR"] = build_dir
    return subprocess.run([os.path.join(PIPELINES, name)] + list(args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def mp4_frames(path):
    """(number of video frames, (width, height)) decoded from the MP4; raises on a
    pipeline error."""
    pipeline = Gst.parse_launch("filesrc name=src ! qtdemux ! h264parse ! avdec_h264 ! "
                                "appsink name=sink sync=false")
    pipeline.get_by_name("src").set_property("location", path)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    n, size = 0, None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        s = sample.get_caps().get_structure(0)
        size = (s.get_value("width"), s.get_value("height"))
        n += 1
    error = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if error is not None:
        raise RuntimeError("decoding %s: %s" % (path, error.parse_error()[0].message))
    return n, size
