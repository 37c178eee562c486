#!/usr/bin/env bash
# export-json.sh — writes clipseg's result for every frame of an H.264 MP4 as JSON lines.
#
# Usage: export-json.sh [--labels LABELS] [--model PATH] [PROPERTY=VALUE...] INPUT.mp4 OUTPUT.jsonl
#
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, car|truck, bicycle")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   PROPERTY=VALUE   further clipseg properties, e.g. resolution=448
#
# OUTPUT.jsonl gets one JSON object per frame, one per line: frame (number),
# pts and duration (ns), inferred (computed on this frame) or reused (carried
# over from an earlier one), source-pts, inference-ms, and labels, coverage
# (shares of the label map, summing to 1) and score, one entry per label. It
# runs:
#
#   gst-launch-1.0 -e filesrc location=in.mp4 ! qtdemux ! h264parse ! avdec_h264 ! \
#       videoconvert ! clipseg labels="person, car|truck, bicycle" processing=sync ! \
#       clipsegjsonsink location=out.jsonl

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
clipseg_args "$0" 2 "$@"

clipseg_env
gst-launch-1.0 -q -e filesrc "location=${clipseg_files[0]}" ! qtdemux ! h264parse ! \
  avdec_h264 ! videoconvert ! \
  clipseg "labels=$labels" processing=sync "${model[@]}" "${clipseg_props[@]}" ! \
  clipsegjsonsink "location=${clipseg_files[1]}"
echo "export-json.sh: $(wc -l < "${clipseg_files[1]}") frames to ${clipseg_files[1]}"
