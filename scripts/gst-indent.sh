#!/usr/bin/env bash
# gst-indent: GStreamer's GNU indent settings over every hand-written C file of
# the project: the element, its example application, the engine and the tests
# (not the generated ORC fallback nor the generated HTML entity table). The
# engine keeps lines of 100 columns (its signatures carry more parameters);
# everything else GStreamer's 80.
#   scripts/gst-indent.sh           reformat in place
#   scripts/gst-indent.sh --check   print what would change; exit 1 if anything would
set -euo pipefail
cd "$(dirname "$0")/.."

opts=(--braces-on-if-line --case-brace-indentation0 --case-indentation2
  --braces-after-struct-decl-line --no-tabs --cuddle-else
  --dont-line-up-parentheses --continuation-indentation4 --honour-newlines
  --tab-size8 --indent-level2 --leave-preprocessor-space)
# the engine's own typedef names, so indent reads "guint16 *p" as a declaration
engine_types=(-T guint8 -T guint16 -T guint32 -T guint64 -T gint8 -T gint16 -T gint32
  -T gint64 -T gsize -T gssize -T uint8_t -T uint16_t -T uint32_t -T uint64_t -T int8_t
  -T int16_t -T int32_t -T int64_t -T gchar -T gboolean -T gpointer -T gconstpointer
  -T GError -T GString -T GPtrArray -T GArray -T GHashTable -T JsonNode -T JsonObject
  -T JsonArray -T __m512 -T __m512i -T __m256i -T __mmask16 -T dnnl_memory_desc_t
  -T clipseg_abort_func -T clipseg_log_func)
generated=(gst/clipseg-orc-dist.c engine/html-entities.c)

# The .c files under the given folders, minus the generated ones.
c_files() {
  local f g
  for f in $(git ls-files -- "${@/%//*.c}"); do
    for g in "${generated[@]}"; do
      [ "$f" = "$g" ] && continue 2
    done
    echo "$f"
  done
}

mapfile -t narrow < <(c_files gst pipelines tests/gst tests/install)
mapfile -t wide < <(c_files engine tests/engine tests/bench tests/fuzz)

# indent is not idempotent in one pass, so (as GStreamer's own gst-indent does)
# it always runs twice
if [ "${1:-}" != "--check" ]; then
  for pass in 1 2; do
    VERSION_CONTROL=none indent "${opts[@]}" --line-length80 "${narrow[@]}"
    VERSION_CONTROL=none indent "${opts[@]}" "${engine_types[@]}" --line-length100 "${wide[@]}"
  done
  exit 0
fi
status=0
check() {
  local width=$1 f types=(); shift
  [ "$width" = 100 ] && types=("${engine_types[@]}")
  for f in "$@"; do
    if ! indent "${opts[@]}" "${types[@]}" "--line-length$width" -st "$f" \
        | indent "${opts[@]}" "${types[@]}" "--line-length$width" -st - | diff -u "$f" - >&2; then
      status=1
    fi
  done
}
check 80 "${narrow[@]}"
check 100 "${wide[@]}"
[ $status -eq 0 ] && echo "gst-indent: $((${#narrow[@]} + ${#wide[@]})) files formatted"
exit $status
