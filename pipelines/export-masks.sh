#!/usr/bin/env bash
# export-masks.sh — writes the label map of every frame of an H.264 MP4 as PNG.
#
# Usage: export-masks.sh [--labels LABELS] [--model PATH] [--rgb] [--frame-size] INPUT.mp4 OUTDIR [PROPERTY=VALUE...]
#
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, car|truck, bicycle")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   --rgb            colour masks (the overlay's colours, background black)
#                    instead of label indices
#   --frame-size     masks at the frame's size (nearest neighbour) instead of
#                    the label map's (the inference size)
#   PROPERTY=VALUE   further clipseg properties, e.g. resolution=448 or
#                    "colors=person=#ff0000, car=#00ff00" (one argument each)
#
# OUTDIR/mask-00000.png, ... are 8-bit grey images whose pixel values are label
# indices (0 = background); OUTDIR/labels.txt names them, one per line, and
# OUTDIR/frames.jsonl holds one JSON object per frame (timestamps, whether the
# result was inferred on it or reused, and per label its coverage and score;
# see export-json.sh). It runs:
#
#   gst-launch-1.0 -e filesrc location=in.mp4 ! qtdemux ! h264parse ! avdec_h264 ! \
#       videoconvert ! clipseg labels="person, car|truck, bicycle" processing=sync ! \
#       tee name=t \
#     t. ! queue ! clipsegmask ! pngenc ! multifilesink location=masks/mask-%05d.png \
#     t. ! queue ! clipsegjsonsink location=masks/frames.jsonl labels-location=masks/labels.txt

set -euo pipefail
. "$(dirname "$0")/clipseg-env.sh"

labels="person, car|truck, bicycle"
model=()
mask=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --labels) labels=$2; shift 2 ;;
    --model) model=("model=$2"); shift 2 ;;
    --rgb) mask+=(format=rgb); shift ;;
    --frame-size) mask+=(size=frame); shift ;;
    *) break ;;
  esac
done
clipseg_args "$0" 2 "$@"
input=${clipseg_files[0]}
outdir=${clipseg_files[1]}
# the mask colours follow clipseg's
for prop in "${clipseg_props[@]}"; do
  case $prop in colors=*) mask+=("$prop") ;; esac
done

mkdir -p "$outdir"
clipseg_env
gst-launch-1.0 -q -e filesrc "location=$input" ! qtdemux ! h264parse ! avdec_h264 ! \
  videoconvert ! clipseg "labels=$labels" processing=sync "${model[@]}" "${clipseg_props[@]}" ! \
  tee name=t \
  t. ! queue ! clipsegmask "${mask[@]}" ! pngenc ! multifilesink "location=$outdir/mask-%05d.png" \
  t. ! queue ! clipsegjsonsink "location=$outdir/frames.jsonl" "labels-location=$outdir/labels.txt"
echo "export-masks.sh: $(wc -l < "$outdir/frames.jsonl") frames to $outdir"
