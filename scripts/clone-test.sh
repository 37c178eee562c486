#!/usr/bin/env bash
# Clones the checkout's HEAD (committed work only) into a temporary directory with no
# ../shared beside it and runs the clone's scripts/test.sh there, as a new user would.
# Passes (exit status 0) when that run ends "N passed, 0 failed, K skipped" and exits 0;
# prints its skip reasons and last line, and on failure the end of its log.
# CLIPSEG_CLONE_TEST=1 tells the clone's test.sh not to clone again.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
head=$(git -C "$src" rev-parse HEAD) || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clipseg-clone-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

git clone -q --no-checkout "$src" "$tmp/clipseg" \
  && git -C "$tmp/clipseg" checkout -q --detach "$head" || exit 1
echo "clone-test: ${head:0:12} cloned to $tmp/clipseg, no ../shared beside it"
start=$SECONDS
(cd "$tmp/clipseg" && env -u CLIPSEG_SHARED_DIR CLIPSEG_CLONE_TEST=1 scripts/test.sh) \
  > "$tmp/test.log" 2>&1
rc=$?
last=$(tail -n 1 "$tmp/test.log")
grep '^skipped: ' "$tmp/test.log" | sed 's/^/clone-test: /'
echo "clone-test: its scripts/test.sh took $((SECONDS - start)) s, exit status $rc: $last"
if [ "$rc" -ne 0 ] || ! [[ "$last" =~ ^[0-9]+\ passed,\ 0\ failed ]]; then
  tail -n 150 "$tmp/test.log"
  exit 1
fi
