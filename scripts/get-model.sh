#!/usr/bin/env bash
# get-model.sh — fetches a real CLIP checkpoint for clipseg and prints the model= value.
#
# Usage: get-model.sh [DIR]
#
#   DIR  where the checkpoint goes (default ~/.cache/clipseg/clip-vit-base-patch16)
#
# Downloads the four files of the Hugging Face snapshot of
# openai/clip-vit-base-patch16 (config.json, model.safetensors, vocab.json,
# merges.txt; about 600 MB) with curl or wget, checks them (a CLIP config, a
# safetensors header, the vocabulary) and prints the clipseg property that uses
# them, e.g.
#
#   model=/home/me/.cache/clipseg/clip-vit-base-patch16
#
# Files already there and valid are kept. Without internet access it fails and
# says which files to copy from a machine that has it. CLIPSEG_MODEL_URL
# replaces https://huggingface.co/openai/clip-vit-base-patch16/resolve/main
# (a mirror, or file:// for a local copy).

set -euo pipefail

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
  exit 0
fi
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/clipseg/clip-vit-base-patch16}
url=${CLIPSEG_MODEL_URL:-https://huggingface.co/openai/clip-vit-base-patch16/resolve/main}
files=(config.json model.safetensors vocab.json merges.txt)

fail() {
  echo "get-model.sh: $*" >&2
  exit 1
}

fetch() {
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --connect-timeout 20 -o "$2" "$1"
  elif command -v wget >/dev/null; then
    wget --quiet --timeout=20 -O "$2" "$1"
  else
    fail "needs curl or wget"
  fi
}

# Whether $1 is what its name says: a CLIP config, a safetensors file (an
# 8-byte little-endian header length, then a JSON header), a BPE vocabulary.
valid() {
  local path=$1
  [ -s "$path" ] || return 1
  case $(basename "$path") in
    config.json) grep -q '"model_type": *"clip"' "$path" ;;
    model.safetensors)
      local n
      n=$(od -An -tu8 -N8 "$path" | tr -d ' ')
      [ "$n" -gt 2 ] && [ "$n" -lt 100000000 ] && [ "$(head -c 9 "$path" | tail -c 1)" = "{" ] \
        && [ "$(stat -c %s "$path")" -gt $((n + 8)) ] ;;
    vocab.json) [ "$(head -c 1 "$path")" = "{" ] ;;
    merges.txt) [ "$(head -c 8 "$path")" = "#version" ] ;;
  esac
}

mkdir -p "$dir" || fail "cannot create $dir"
for f in "${files[@]}"; do
  if valid "$dir/$f"; then
    continue
  fi
  echo "get-model.sh: fetching $url/$f" >&2
  if ! fetch "$url/$f" "$dir/$f.part"; then
    rm -f "$dir/$f.part"
    fail "cannot fetch $url/$f (no internet access?). On a machine with access, fetch" \
      "${files[*]} from $url/ (or: git clone https://huggingface.co/openai/clip-vit-base-patch16)" \
      "and copy them into $dir, then run this again."
  fi
  mv "$dir/$f.part" "$dir/$f"
  valid "$dir/$f" || fail "$dir/$f is not a valid $f; delete it and run this again"
done

echo "model=$(cd "$dir" && pwd)"
