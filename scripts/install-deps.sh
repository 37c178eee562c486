#!/usr/bin/env bash
# Installs every build, test and demo dependency of clipseg from Debian 12's own
# packages. Idempotent: packages already present are left alone, so a second run
# costs one dpkg query. Needs root (or sudo).
set -euo pipefail

packages=(
  # build
  build-essential clang libomp-dev meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev zlib1g-dev
  # BLAS: the OpenMP variant, so engine threads and BLAS threads share one pool
  libopenblas-openmp-dev libopenblas0-openmp
  # oneDNN: the linears packed once, fp32 and bf16 (optional at build time, found by meson)
  libdnnl-dev
  # GStreamer element, ORC kernels, element tests
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev liborc-0.4-dev liborc-0.4-dev-bin
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # reference checks, model training, benchmarks
  python3-numpy python3-torch python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 python3-matplotlib  # matplotlib: the plot of tests/bench/quality.py
  # leak checks
  valgrind
  # gst-indent, the formatter of the element's C files
  indent
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
