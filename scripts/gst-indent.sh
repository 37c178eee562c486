#!/usr/bin/env bash
# gst-indent: GStreamer's GNU indent settings over the C files of the element,
# its example application and its tests (not the generated ORC fallback).
#   scripts/gst-indent.sh           reformat in place
#   scripts/gst-indent.sh --check   print what would change; exit 1 if anything would
set -euo pipefail
cd "$(dirname "$0")/.."

opts=(--braces-on-if-line --case-brace-indentation0 --case-indentation2
  --braces-after-struct-decl-line --line-length80 --no-tabs --cuddle-else
  --dont-line-up-parentheses --continuation-indentation4 --honour-newlines
  --tab-size8 --indent-level2 --leave-preprocessor-space)
files=(gst/gstclipseg.c gst/gstclipsegmeta.c gst/clipseg-infer.c gst/clipseg-turn.c gst/clipseg-shared-queries.c gst/clipseg-pixels.c
  gst/clipseg-overlay.c gst/plugin.c pipelines/read-meta.c tests/gst/test-clipseg.c tests/gst/test-clipseg-files.c
  tests/gst/test-pixels.c)

# indent is not idempotent in one pass, so (as GStreamer's own gst-indent does)
# it always runs twice
if [ "${1:-}" != "--check" ]; then
  VERSION_CONTROL=none indent "${opts[@]}" "${files[@]}"
  VERSION_CONTROL=none indent "${opts[@]}" "${files[@]}"
  exit 0
fi
status=0
for f in "${files[@]}"; do
  if ! indent "${opts[@]}" -st "$f" | indent "${opts[@]}" -st - | diff -u "$f" - >&2; then
    status=1
  fi
done
[ $status -eq 0 ] && echo "gst-indent: ${#files[@]} files formatted"
exit $status
