"""What the pipeline tests share: where the scripts are, running one against a build,
rendering a world clip, the clips of ../shared/media (or world clips in their place) and
decoding an H.264 MP4 with GStreamer (Debian's python3-gi)."""
import os
import subprocess
import sys
import tempfile
import zlib

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINES = os.path.join(SRC, "pipelines")
WORLD = os.path.join(SRC, "engine", "world", "world.py")
SHARED = os.environ.get("CLIPSEG_SHARED_DIR", os.path.join(SRC, "..", "shared"))
WORLD_CLIPS = tempfile.TemporaryDirectory(prefix="clipseg-world-clips-")


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


def world_clip(path, seed, size=(320, 240), frames=30):
    """Renders a panning video of the procedural world (engine/world/world.py) as an H.264
    MP4 at @path, like the clips of ../shared/media; raises if a step fails."""
    w, h = size
    world = subprocess.Popen([sys.executable, WORLD, "video", "--seed", str(seed), "--size",
                              "%dx%d" % (w, h), "--frames", str(frames), "--raw"],
                             stdout=subprocess.PIPE)
    enc = subprocess.run(["gst-launch-1.0", "-q", "fdsrc", "!", "rawvideoparse", "format=rgb",
                          "width=%d" % w, "height=%d" % h, "framerate=30/1", "!", "videoconvert",
                          "!", "x264enc", "!", "mp4mux", "!", "filesink", "location=" + path],
                         stdin=world.stdout, capture_output=True, text=True, timeout=300)
    world.stdout.close()
    if world.wait() != 0 or enc.returncode != 0:
        raise RuntimeError("rendering world clip %s failed: %s" % (path, enc.stderr[-1000:]))
    return path


def media(name):
    """The clip @name of ../shared/media, or in its absence a world clip rendered once (its
    seed from the name, so each name has its own video)."""
    path = os.path.join(SHARED, "media", name)
    if os.path.exists(path):
        return path
    path = os.path.join(WORLD_CLIPS.name, name)
    if not os.path.exists(path):
        print("%s is absent: using a world clip instead" % os.path.join(SHARED, "media", name))
        world_clip(path, seed=zlib.crc32(name.encode()) % 1000)
    return path
