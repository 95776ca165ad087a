#!/usr/bin/env bash
# Called by meson.build's custom_target: builds the plugin (and the trainer) with cargo in the
# release profile, in the workspace's target dir ($CARGO_TARGET_DIR or <source>/target), and copies
# libgstnvtl.so (and trainer) into meson's output dir. A file whose bytes did not change is not
# touched, so its mtime stays put.
# Usage: meson-cargo-build.sh SOURCE_DIR OUT_DIR FEATURES trainer|no-trainer
set -euo pipefail
src="$1" outdir="$2" features="$3" with_trainer="$4"
# meson passes @OUTDIR@ relative to the build dir (the current dir): make it absolute first.
outdir="$(cd "$outdir" && pwd)"

cd "$src"
target_dir="${CARGO_TARGET_DIR:-$src/target}"
case "$target_dir" in /*) ;; *) target_dir="$src/$target_dir" ;; esac

args=(build --release -p gst-plugin-nvtl)
[ "$with_trainer" = trainer ] && args+=(-p nvtl-trainer)
if [ -n "$features" ]; then
  feats=()
  IFS=',' read -ra list <<<"$features"
  for f in "${list[@]}"; do
    f="${f// /}"
    [ -n "$f" ] || continue
    case "$f" in */*) feats+=("$f") ;; *) feats+=("gst-plugin-nvtl/$f") ;; esac
  done
  [ ${#feats[@]} -eq 0 ] || args+=(--features "$(IFS=,; echo "${feats[*]}")")
fi
CARGO_TARGET_DIR="$target_dir" cargo "${args[@]}"

copy() { # SRC DEST
  if ! cmp -s "$1" "$2"; then
    install -m 0755 "$1" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
  fi
}
copy "$target_dir/release/libgstnvtl.so" "$outdir/libgstnvtl.so"
[ "$with_trainer" != trainer ] || copy "$target_dir/release/trainer" "$outdir/trainer"
