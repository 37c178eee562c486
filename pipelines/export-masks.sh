#!/usr/bin/env bash
# export-masks.sh — writes the label map of every frame of an H.264 MP4 as PNG.
#
# Usage: export-masks.sh [--labels LABELS] [--model PATH] INPUT.mp4 OUTDIR [PROPERTY=VALUE...]
#
#   --labels LABELS  classes, comma-separated, synonyms joined by '|'
#                    (default "person, car|truck, bicycle")
#   --model PATH     CLIP checkpoint (default: the clipseg element's default)
#   PROPERTY=VALUE   further clipseg properties, e.g. resolution=448 or
#                    "colors=person=#ff0000, car=#00ff00" (one argument each)
#
# OUTDIR/mask-00000.png, ... are 8-bit grey images at the inference size whose
# pixel values are label indices (0 = background); OUTDIR/labels.txt names
# them, one per line. The masks are read from GstClipsegMeta by the example
# application clipseg-read-meta (pipelines/read-meta.c). It runs:
#
#   clipseg-read-meta --masks masks/ "filesrc location=in.mp4 ! qtdemux ! \
#       h264parse ! avdec_h264 ! videoconvert ! \
#       clipseg labels=\"person, car|truck, bicycle\" processing=sync ! \
#       appsink name=sink sync=false"

set -euo pipefail
. "$(dirname "$0")/clipseg-env.sh"

# A value as one double-quoted gst-launch string, so that spaces, '!' and
# quotes in it stay part of it.
gst_quote() {
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

labels="person, car|truck, bicycle"
model=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) clipseg_usage "$0"; exit 0 ;;
    --labels) labels=$2; shift 2 ;;
    --model) model="model=$(gst_quote "$2")"; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  clipseg_usage "$0" >&2
  exit 2
fi
input=$1
outdir=$2
shift 2
props=""
for prop in "$@"; do
  case $prop in
    [A-Za-z]*=*) props+=" ${prop%%=*}=$(gst_quote "${prop#*=}")" ;;
    *) echo "export-masks.sh: '$prop' is not PROPERTY=VALUE" >&2; exit 2 ;;
  esac
done

clipseg_env
exec clipseg-read-meta --quiet --masks "$outdir" "filesrc location=$(gst_quote "$input") ! \
qtdemux ! h264parse ! avdec_h264 ! videoconvert ! \
clipseg labels=$(gst_quote "$labels") processing=sync $model$props ! appsink name=sink sync=false"
