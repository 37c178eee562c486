#!/usr/bin/env bash
# Installs the build into a temporary folder, moves the installation elsewhere
# (any prefix must work) and uses it from there, with nothing pointing back at
# the build: gst-inspect-1.0 finds the elements with only GST_PLUGIN_PATH set
# (and the default model beside the plugin), the installed scripts segment a
# clip of the procedural world, and a C file that includes
# <gst/clipseg/gstclipsegmeta.h> builds with the installed pkg-config file and
# runs.
#
# Usage: test-install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR
set -euo pipefail
build=$1 src=$2 prefix=$3 libdir=$4

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/dest" >/dev/null
mv "$tmp/dest$prefix" "$tmp/moved"
p=$tmp/moved
# what meson test sets for the build's own tests
unset LD_LIBRARY_PATH GST_PLUGIN_PATH_1_0 GST_PLUGIN_PATH GST_REGISTRY_1_0
export GST_REGISTRY=$tmp/registry.bin

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

inspect=$(GST_PLUGIN_PATH=$p/$libdir/gstreamer-1.0 gst-inspect-1.0 clipseg 2>&1) \
  || fail "gst-inspect-1.0 clipseg: $inspect"
grep -q "$p/share/clipseg/model" <<< "$inspect" \
  || fail "the default model is not the installed one: $(grep -A3 '^  model' <<< "$inspect")"
for element in clipsegmask clipsegjsonsink; do
  GST_PLUGIN_PATH=$p/$libdir/gstreamer-1.0 gst-inspect-1.0 "$element" >/dev/null \
    || fail "gst-inspect-1.0 $element"
done
echo "gst-inspect-1.0: clipseg, clipsegmask, clipsegjsonsink from $p"

# ten frames of the world, the scripts' input
/usr/bin/python3 "$src/engine/world/world.py" video --seed 2 --size 160x96 --frames 10 --raw | \
  gst-launch-1.0 -q fdsrc ! rawvideoparse format=rgb width=160 height=96 framerate=30/1 ! \
  videoconvert ! x264enc ! mp4mux ! filesink "location=$tmp/clip.mp4"
scripts=$p/share/clipseg/pipelines
"$scripts/export-json.sh" --labels "grass, water" 'background=""' "$tmp/clip.mp4" "$tmp/out.jsonl" \
  >/dev/null || fail "export-json.sh"
[ "$(wc -l < "$tmp/out.jsonl")" -eq 10 ] || fail "export-json.sh wrote $(wc -l < "$tmp/out.jsonl") lines"
"$scripts/export-masks.sh" --labels "grass, water" "$tmp/clip.mp4" "$tmp/masks" >/dev/null \
  || fail "export-masks.sh"
[ -f "$tmp/masks/mask-00009.png" ] || fail "export-masks.sh wrote no mask-00009.png"
"$scripts/read-meta.py" --labels "grass, water" "$tmp/clip.mp4" "$tmp/arrays" >/dev/null \
  || fail "read-meta.py"
[ -f "$tmp/arrays/000009.npy" ] || fail "read-meta.py wrote no 000009.npy"
"$p/share/clipseg/scripts/get-model.sh" --help >/dev/null || fail "get-model.sh --help"
/usr/bin/python3 "$p/share/clipseg/scripts/convert-checkpoint.py" --help >/dev/null \
  || fail "convert-checkpoint.py --help"
echo "installed scripts: export-json.sh, export-masks.sh, read-meta.py"

pc_file=$p/$libdir/pkgconfig/gstreamer-clipseg-meta-1.0.pc
grep -q '${pcfiledir}' "$pc_file" || fail "$pc_file names a fixed prefix: the build was" \
  "configured before pkgconfig.relocatable=true was a default (meson configure $build" \
  "-Dpkgconfig.relocatable=true)"
pc() {
  PKG_CONFIG_PATH=$p/$libdir/pkgconfig pkg-config "$@" gstreamer-clipseg-meta-1.0
}
cflags=$(pc --cflags) || fail "pkg-config --cflags"
first=$(grep -o -- '-I[^ ]*' <<< "$cflags" | head -n 1)
[ "$(realpath -m "${first#-I}")" = "$p/include/gstreamer-1.0" ] \
  || fail "Cflags do not start with the installation's include/gstreamer-1.0: $cflags"
# shellcheck disable=SC2046
cc -o "$tmp/example" "$src/tests/install/example.c" $cflags $(pc --libs) \
  || fail "the example does not build"
out=$(LD_LIBRARY_PATH=$p/$libdir "$tmp/example") || fail "the example failed: $out"
[ "$out" = ok ] || fail "the example printed $out"
echo "example.c: built with pkg-config $cflags, ran"
