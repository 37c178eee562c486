#!/usr/bin/env bash
# demo.sh — segments a generated video of the project's procedural world with
# the default model and writes it, annotated, to an MP4 plus a PNG of its
# middle frame (or shows it).
#
# Usage: demo.sh [--show] [--frames N] [--seed N] [--model PATH] [OUTPUT.mp4] [PROPERTY=VALUE...]
#
#   --show          show the video instead of writing OUTPUT.mp4 (default demo.mp4)
#   --frames N      length of the video in frames at 30 fps (default 150)
#   --seed N        which world video (default 1)
#   --model PATH    CLIP checkpoint (default: the project's model, engine/world/model)
#   PROPERTY=VALUE  further clipseg properties, e.g. smoothing=0.5 inference-interval=2
#
# OUTPUT.png (demo.png) is the annotated middle frame. On a fresh Debian 12
# checkout it first installs the dependencies (scripts/install-deps.sh, needs
# root or sudo) and builds the plugin. It needs nothing but the project:
# engine/world/world.py renders the video (with Debian's python3-numpy) and the
# default model knows the world's twelve classes (sky, grass, water, sand,
# ball, box, star, tent, tree, car, house, boat; the world has no background,
# so background='""' turns the background words off: the quotes must reach
# gst-launch-1.0, or it takes the next word as the value). It runs:
#
#   python3 engine/world/world.py video --seed 1 --size 640x360 --frames 150 --raw | \
#   gst-launch-1.0 -e fdsrc ! rawvideoparse format=rgb width=640 height=360 framerate=30/1 ! \
#       videoconvert ! clipseg labels-file=world-classes.txt background='""' \
#       overlay=blend processing=sync ! tee name=t \
#     t. ! queue ! progressreport update-freq=1 ! videoconvert ! x264enc ! mp4mux ! filesink location=demo.mp4 \
#     t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! videoconvert ! pngenc ! \
#       multifilesink location=frame-%05d.png
#
# The PNG branch's queue is unbounded because x264enc swallows dozens of frames
# before it outputs one: a bounded queue fills while the MP4 branch prerolls and
# the tee stalls both.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/clipseg-env.sh"

show=0
frames=150
seed=1
model=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --show) show=1; shift ;;
    --frames) frames=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --model) model=("model=$2"); shift 2 ;;
    *) break ;;
  esac
done
output=demo.mp4
if [ $# -gt 0 ] && [[ $1 != *=* ]]; then
  output=$1
  shift
fi
if ! [[ $frames =~ ^[1-9][0-9]*$ ]]; then
  echo "demo.sh: --frames needs a positive number, not '$frames'" >&2
  exit 2
fi

world=$here/../engine/world/world.py
if [ ! -f "$world" ]; then
  echo "demo.sh: needs the source tree (engine/world/world.py)" >&2
  exit 1
fi
if [ -x "$here/../scripts/install-deps.sh" ]; then
  "$here/../scripts/install-deps.sh" >&2
fi
if [ ${#model[@]} -eq 0 ] && [ ! -f "$here/../engine/world/model/config.json" ]; then
  echo "demo.sh: the default model (engine/world/model) is not there; pass --model" >&2
  exit 1
fi

clipseg_env
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$world" classes > "$work/classes.txt"

if [ $show -eq 1 ]; then
  sink=(videoconvert ! autovideosink)
else
  sink=(tee name=t
    t. ! queue ! progressreport update-freq=1 ! videoconvert ! x264enc ! mp4mux ! filesink "location=$output"
    t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! videoconvert ! pngenc ! \
      multifilesink "location=$work/frame-%05d.png")
fi
/usr/bin/python3 "$world" video --seed "$seed" --size 640x360 --frames "$frames" --raw | \
  gst-launch-1.0 -e fdsrc ! rawvideoparse format=rgb width=640 height=360 framerate=30/1 ! \
  videoconvert ! clipseg "labels-file=$work/classes.txt" 'background=""' overlay=blend \
  processing=sync "${model[@]}" "$@" ! "${sink[@]}"

if [ $show -eq 0 ]; then
  png=${output%.mp4}.png
  cp "$work/$(printf 'frame-%05d.png' $((frames / 2)))" "$png"
  echo "demo.sh: wrote $output and $png"
fi
