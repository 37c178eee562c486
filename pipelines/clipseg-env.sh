# clipseg-env.sh — sourced by the pipeline scripts: makes the clipseg plugin
# available.
#
# It also makes the engine's OpenMP threads sleep, not spin, while they wait.
#
# From a source checkout (this folder beside the top meson.build) the scripts
# use the checkout's build, $CLIPSEG_BUILD_DIR or build/, configuring it with
# meson first if needed and bringing it up to date. Installed, they add the plugin
# directory of the installation (a prefix GStreamer may not search itself).

# Set when meson installs this file, relative to this file's folder; a
# placeholder in the source tree.
clipseg_plugin_dir='@PLUGINDIR@'

clipseg_env() {
  local here src build
  # OpenMP threads that spin between parallel regions take the CPU from the
  # pipeline's other threads (decoders, encoders) and from other programs: a
  # ViT-B/16 forward at 224 took 1.8-1.9 s spinning vs 0.86-1.05 s sleeping
  # next to a busy process, and the same 0.25-0.27 s either way on a quiet
  # machine (tests/bench, 2 cores). The user's own setting wins.
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  src=$(dirname "$here")
  if [ ! -f "$src/meson.build" ] || ! grep -q "project('clipseg'" "$src/meson.build"; then
    case $clipseg_plugin_dir in
      @*) ;;
      /*) export GST_PLUGIN_PATH="$clipseg_plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" ;;
      *) export GST_PLUGIN_PATH="$here/$clipseg_plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" ;;
    esac
    return 0
  fi

  build=${CLIPSEG_BUILD_DIR:-$src/build}
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" >&2 || return 1
  fi
  # always: a no-op when up to date, and never a stale plugin after an edit
  meson compile -C "$build" gstclipseg >&2 || return 1
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
}

# Splits a script's arguments after its options into clipseg PROPERTY=VALUE
# settings (the array clipseg_props) and @n file names (clipseg_files), in any
# order; with another number of file names it says so and exits 2.
clipseg_args() {
  local script=$1 n=$2 arg
  shift 2
  clipseg_props=()
  clipseg_files=()
  for arg in "$@"; do
    if [[ $arg =~ ^[a-z][a-z0-9-]*= ]]; then
      clipseg_props+=("$arg")
    else
      clipseg_files+=("$arg")
    fi
  done
  if [ ${#clipseg_files[@]} -gt "$n" ]; then
    echo "$(basename "$script"): '${clipseg_files[$n]}' is neither a file argument nor PROPERTY=VALUE" >&2
    exit 2
  fi
  if [ ${#clipseg_files[@]} -lt "$n" ]; then
    clipseg_usage "$script" >&2
    exit 2
  fi
}

# Prints the script's header comment (the lines after the shebang up to the
# first blank line) as its --help.
clipseg_usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$1"
}
