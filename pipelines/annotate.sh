#!/usr/bin/env bash
# annotate.sh — writes a copy of an H.264 MP4 with the labelled pixels drawn in.
#
# Usage: annotate.sh [--labels LABELS] [--model PATH] INPUT.mp4 OUTPUT.mp4 [PROPERTY=VALUE...]
#
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, car|truck, bicycle")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   PROPERTY=VALUE   further clipseg properties, e.g. inference-interval=5
#                    smoothing=0.8 colors="person=#ff0000"
#
# Every frame is segmented in order (processing=sync), progress is printed
# every second. It runs:
#
#   gst-launch-1.0 -e filesrc location=in.mp4 ! qtdemux ! h264parse ! \
#       avdec_h264 ! videoconvert ! \
#       clipseg labels="person, car|truck, bicycle" overlay=blend processing=sync ! \
#       progressreport update-freq=1 ! videoconvert ! x264enc ! mp4mux ! \
#       filesink location=out.mp4

set -euo pipefail
. "$(dirname "$0")/clipseg-env.sh"

labels="person, car|truck, bicycle"
model=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --labels) labels=$2; shift 2 ;;
    --model) model=("model=$2"); shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  clipseg_usage "$0" >&2
  exit 2
fi
input=$1
output=$2
shift 2

clipseg_env
exec gst-launch-1.0 -e filesrc "location=$input" ! qtdemux ! h264parse ! \
  avdec_h264 ! videoconvert ! \
  clipseg "labels=$labels" overlay=blend processing=sync "${model[@]}" "$@" ! \
  progressreport update-freq=1 ! videoconvert ! x264enc ! mp4mux ! \
  filesink "location=$output"
