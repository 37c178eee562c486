#!/bin/sh
# Runs a libFuzzer target as a test: a fixed number of inputs from a fixed random
# seed, starting from the seed corpora given after the target's own options.
# New inputs go to a fresh directory (libFuzzer writes into its first corpus
# argument), so the build's seed corpora stay as generated.
# usage: run-fuzz-test.sh [--requires FILE] TARGET RUNS [OPTION|SEED_DIR]...
# (--requires: skip, saying why, when FILE is absent)
set -eu
if [ "$1" = --requires ]; then
  if [ ! -e "$2" ]; then
    echo "$2 is absent (no shared folder beside the checkout)"
    exit 77
  fi
  shift 2
fi
target=$1
runs=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
TMPDIR=$work OMP_NUM_THREADS=1 "$target" -runs="$runs" -seed=1 -timeout=10 \
  -artifact_prefix="$work/" "$work/corpus" "$@" || {
  status=$?
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [ -f "$f" ] && echo "finding: $(basename "$f") (base64): $(base64 -w0 "$f")"
  done
  exit "$status"
}
