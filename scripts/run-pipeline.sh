#!/usr/bin/env bash
# Runs one gst-launch description from pipelines/*.txt with `gst-launch-1.0 -e`.
#
# File format: the gst-launch-1.0 arguments as you would type them in a shell (quotes group words,
# no other shell syntax), over as many lines as you like; lines starting with '#' are comments;
# a trailing backslash is allowed and ignored. Placeholders:
#   @ASSETS@      $NVTL_ASSETS (default ~/.cache/nvtl/assets; scripts/fetch-assets.sh fills it)
#   @CONFIGS@     the repository's configs/ folder
#   @OUT@         a fresh output folder for this pipeline ($NVTL_PIPELINE_OUT/<name>, or a temp dir)
#   @ZOO:NAME@    the bundle folder of zoo model NAME (`trainer zoo pull NAME` first if needed)
# Every @OUT@/FILE the pipeline names must exist and be non-empty afterwards.
#
# The plugin is taken from $GST_PLUGIN_PATH when set (meson test sets it), else from the cargo
# release build ($CARGO_TARGET_DIR or <repo>/target)/release/libgstnvtl.so. The trainer from
# $NVTL_TRAINER, else the release build, else `trainer` on PATH.
# Usage: scripts/run-pipeline.sh PIPELINE_FILE [extra gst-launch-1.0 options, e.g. -q]
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 PIPELINE_FILE [gst-launch options]" >&2; exit 2; }
file="$1"
shift
[ -f "$file" ] || { echo "run-pipeline: no such file: $file" >&2; exit 1; }
name="$(basename "$file" .txt)"
repo="${NVTL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
assets="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
timeout_s="${NVTL_PIPELINE_TIMEOUT:-900}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if [ -n "${NVTL_PIPELINE_OUT:-}" ]; then
  out="$NVTL_PIPELINE_OUT/$name"
  rm -rf "$out"
else
  out="$scratch/out"
fi
mkdir -p "$out"

if [ -z "${GST_PLUGIN_PATH:-}" ]; then
  so="$target_dir/release/libgstnvtl.so"
  [ -f "$so" ] || { echo "run-pipeline: $so not built (cargo build --release -p gst-plugin-nvtl)" >&2; exit 1; }
  # Only the plugin: GStreamer scans plugin paths recursively, and target/ holds many other .so.
  mkdir -p "$scratch/plugins"
  ln -s "$so" "$scratch/plugins/libgstnvtl.so"
  export GST_PLUGIN_PATH="$scratch/plugins"
  export GST_REGISTRY="${GST_REGISTRY:-$scratch/registry.bin}"
fi

trainer() {
  local t="${NVTL_TRAINER:-}"
  [ -n "$t" ] || { [ -x "$target_dir/release/trainer" ] && t="$target_dir/release/trainer"; } || true
  [ -n "$t" ] || t="$(command -v trainer || true)"
  [ -n "$t" ] || { echo "run-pipeline: no trainer binary (set NVTL_TRAINER)" >&2; return 1; }
  "$t" "$@"
}

# Read the description: drop comments and backslashes, join lines.
desc=""
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in \#* | "") continue ;; esac
  line="${line%\\}"
  desc+="$line "
done <"$file"
[ -n "${desc// /}" ] || { echo "run-pipeline: $file holds no pipeline" >&2; exit 1; }

desc="${desc//@ASSETS@/$assets}"
desc="${desc//@CONFIGS@/$repo/configs}"
desc="${desc//@OUT@/$out}"
while [[ "$desc" =~ @ZOO:([A-Za-z0-9_.-]+)@ ]]; do
  model="${BASH_REMATCH[1]}"
  dir="$(trainer zoo path "$model" 2>/dev/null || true)"
  if [ -z "$dir" ] || [ ! -e "$dir" ]; then
    trainer --quiet zoo pull "$model" >&2 || { echo "run-pipeline: trainer zoo pull $model failed" >&2; exit 1; }
    dir="$(trainer zoo path "$model")"
  fi
  desc="${desc//@ZOO:$model@/$dir}"
done

# Split into arguments the way a shell would (quotes group words), without running a shell.
printf '%s' "$desc" | xargs printf '%s\0' >"$scratch/args" 2>"$scratch/xargs.err" ||
  { echo "run-pipeline: $file: cannot split into arguments: $(cat "$scratch/xargs.err")" >&2; exit 1; }
mapfile -d '' args <"$scratch/args"

echo "== pipeline $name"
echo "gst-launch-1.0 -e $desc"
start=$SECONDS
rc=0
timeout --kill-after=30 "$timeout_s" gst-launch-1.0 -e "$@" "${args[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -ne 124 ] || echo "run-pipeline: $name timed out after ${timeout_s}s" >&2
  echo "run-pipeline: $name FAILED (exit $rc)" >&2
  exit "$rc"
fi

# Every @OUT@ file the pipeline writes must be there and non-empty.
missing=0
for word in "${args[@]}"; do
  while [[ "$word" == *"$out/"* ]]; do
    rest="${word#*"$out/"}"
    f="${rest%%[ \"\',!]*}"
    word="${rest#"$f"}"
    [ -n "$f" ] || continue
    case "$f" in *%*) f="" ;; esac # a multifilesink pattern: at least one file, checked below
    if [ -z "$f" ]; then
      [ -n "$(find "$out" -type f -size +0 -print -quit)" ] || { echo "run-pipeline: $name wrote nothing into $out" >&2; missing=1; }
    elif [ ! -s "$out/$f" ]; then
      echo "run-pipeline: $name did not write $out/$f" >&2
      missing=1
    fi
  done
done
[ "$missing" -eq 0 ] || exit 1
echo "run-pipeline: $name OK in $((SECONDS - start))s; outputs in $out:"
find "$out" -type f -printf '  %P (%s bytes)\n' | sort
[ -n "${NVTL_PIPELINE_OUT:-}" ] || echo "  (temporary; set NVTL_PIPELINE_OUT to keep them)"
