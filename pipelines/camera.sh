#!/usr/bin/env bash
# camera.sh — segments a V4L2 camera live and shows the labelled pixels.
#
# Usage: camera.sh [--device DEV] [--sink SINK] [--labels LABELS] [--model PATH] [PROPERTY=VALUE...]
#
#   --device DEV     V4L2 device (default /dev/video0)
#   --sink SINK      where the video goes, a gst-launch description
#                    (default autovideosink; it needs a display: without one,
#                    e.g. --sink "fakesink" or "x264enc ! mp4mux ! filesink location=f.mp4",
#                    and then give gst-launch -e's end of stream with Ctrl-C)
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, chair|seat, screen|monitor")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   PROPERTY=VALUE   further clipseg properties, e.g. inference-interval=3
#
# It runs (the camera is live, so clipseg never holds frames back: it infers
# the newest frame whenever its worker is free, processing=auto):
#
#   gst-launch-1.0 -e v4l2src device=/dev/video0 ! videoconvert ! \
#       clipseg labels="person, chair|seat, screen|monitor" overlay=auto ! \
#       videoconvert ! autovideosink

set -euo pipefail
. "$(dirname "$0")/clipseg-env.sh"

device=/dev/video0
sink=autovideosink
labels="person, chair|seat, screen|monitor"
model=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --device) device=$2; shift 2 ;;
    --sink) sink=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --model) model=("model=$2"); shift 2 ;;
    *) break ;;
  esac
done

# Without a display autovideosink tries every sink, and some crash (Debian 12's
# dfbvideosink segfaults), so say what is wrong instead.
if [ "$sink" = autovideosink ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "camera.sh: no display (DISPLAY and WAYLAND_DISPLAY are unset); give --sink, e.g. --sink fakesink" >&2
  exit 2
fi

clipseg_env
read -r -a sink_elements <<< "$sink"
exec gst-launch-1.0 -e v4l2src "device=$device" ! videoconvert ! \
  clipseg "labels=$labels" overlay=auto "${model[@]}" "$@" ! \
  videoconvert ! "${sink_elements[@]}"
