#!/usr/bin/env bash
# camera.sh — segments a V4L2 camera live and shows the labelled pixels.
#
# Usage: camera.sh [--device DEV] [--labels LABELS] [--model PATH] [PROPERTY=VALUE...]
#
#   --device DEV     V4L2 device (default /dev/video0)
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, chair|seat, screen|monitor")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   PROPERTY=VALUE   further clipseg properties, e.g. inference-interval=3
#
# It runs (the camera is live, so clipseg never holds frames back: it infers
# the newest frame whenever its worker is free, processing=auto):
#
#   gst-launch-1.0 v4l2src device=/dev/video0 ! videoconvert ! \
#       clipseg labels="person, chair|seat, screen|monitor" overlay=auto ! \
#       videoconvert ! autovideosink

set -euo pipefail
. "$(dirname "$0")/clipseg-env.sh"

device=/dev/video0
labels="person, chair|seat, screen|monitor"
model=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --device) device=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --model) model=("model=$2"); shift 2 ;;
    *) break ;;
  esac
done

clipseg_env
exec gst-launch-1.0 v4l2src "device=$device" ! videoconvert ! \
  clipseg "labels=$labels" overlay=auto "${model[@]}" "$@" ! \
  videoconvert ! autovideosink
