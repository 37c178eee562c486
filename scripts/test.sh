#!/usr/bin/env bash
# Runs every test of clipseg on a fresh Debian 12 machine: installs the
# dependencies, builds, runs the test suites (engine, reference parity, world,
# element), then the engine and reference suites again in an ASan+UBSan build and
# the engine, reference and element suites in a build without oneDNN, then the
# fuzz targets briefly (tests/fuzz).
# Then it clones HEAD to a temporary directory with no ../shared beside it and runs
# this script there (scripts/clone-test.sh; not in that clone: CLIPSEG_CLONE_TEST=1).
# Benchmarks and the soak test are not run here (meson test -C build --suite bench,
# --suite quality, --suite soak).
# Lists what was skipped and why ("skipped: TEST CASE: REASON"; tests that need
# ../shared skip without it), then ends with one line: "N passed, N failed, K skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh || exit 1

passed=0
failed=0
skips=$(mktemp)
trap 'rm -f "$skips"' EXIT

# Adds the Ok / Fail counts of one `meson test` log to the totals.
count() {
  local log=$1 ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n 1)
  fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  passed=$((passed + ${ok:-0}))
  failed=$((failed + fail))
}

# Runs suites of build directory $1 (the rest: meson test arguments); $label names
# the build in the skip list.
run_suites() {
  local dir=$1; shift
  local log
  log=$(mktemp)
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log"
  if ! grep -q '^Ok:' "$log"; then
    failed=$((failed + 1))     # the runner itself failed (e.g. a build error)
  fi
  count "$log"
  rm -f "$log"
  if [ -f "$dir/meson-logs/testlog.json" ]; then
    /usr/bin/python3 scripts/list-skips.py "$dir" ${label:+"$label"} >> "$skips"
  fi
}

setup() {
  local dir=$1; shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

if setup build -Dpkgconfig.relocatable=true && meson compile -C build; then
  run_suites build --no-suite bench --no-suite quality --no-suite soak
else
  echo "test.sh: the build failed"
  failed=$((failed + 1))
fi

# Sanitizers: the engine alone (GStreamer itself is not built with ASan).
if setup build-asan -Dengine-only=true -Dbuildtype=debug -Db_sanitize=address,undefined \
    && meson compile -C build-asan; then
  label=asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suites build-asan --suite engine --suite reference
else
  echo "test.sh: the sanitizer build failed"
  failed=$((failed + 1))
fi

# Without oneDNN (what a machine without libdnnl-dev builds): OpenBLAS runs the
# linears in fp32.
if setup build-nodnnl -Ddnnl=disabled && meson compile -C build-nodnnl; then
  label=nodnnl run_suites build-nodnnl --suite engine --suite reference --suite gst
else
  echo "test.sh: the build without oneDNN failed"
  failed=$((failed + 1))
fi

# The fuzz targets (clang, libFuzzer, ASan+UBSan): each over its seeds and 20000
# mutated inputs from a fixed random seed.
if CC=clang setup build-fuzz -Dfuzzers=true -Dengine-only=true && meson compile -C build-fuzz; then
  label=fuzz run_suites build-fuzz --suite fuzz
else
  echo "test.sh: the fuzz build failed"
  failed=$((failed + 1))
fi

if [ "${CLIPSEG_CLONE_TEST:-0}" != 1 ]; then
  if bash scripts/clone-test.sh; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

cat "$skips"
echo "$passed passed, $failed failed, $(wc -l < "$skips") skipped"
[ "$failed" -eq 0 ]
