#!/usr/bin/env bash
# Runs bench/ort_baseline.py in its own venv with bench/requirements.txt (made on first use under
# ${NVTL_CACHE_DIR:-$HOME/.cache/nvtl}/bench-venv, remade when the requirements change).
# Defaults: --model = the zoo's centernet_mobilenetv3_coco bundle, --video = $NVTL_ASSETS/vtest.avi,
# --frames 200, --threads 1; any argument given overrides them.
# Usage: bench/run_ort_baseline.sh [--model PATH] [--video PATH] [--frames N] [--threads N] [...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${NVTL_CACHE_DIR:-$HOME/.cache/nvtl}/bench-venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "run_ort_baseline: making $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "run_ort_baseline: python3 -m venv failed (install python3-venv)" >&2; exit 1; }
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" >"$stamp"
fi

have() { # is option $1 among the arguments?
  local a
  for a in "${@:2}"; do case "$a" in "$1" | "$1"=*) return 0 ;; esac; done
  return 1
}
defaults=()
if ! have --model "$@"; then
  trainer="${NVTL_TRAINER:-${CARGO_TARGET_DIR:-$repo/target}/release/trainer}"
  [ -x "$trainer" ] || trainer="$(command -v trainer || true)"
  [ -n "$trainer" ] || { echo "run_ort_baseline: give --model, or build the trainer (cargo build --release -p nvtl-trainer)" >&2; exit 1; }
  "$trainer" --quiet zoo pull centernet_mobilenetv3_coco >&2
  defaults+=(--model "$("$trainer" zoo path centernet_mobilenetv3_coco)/model.onnx")
fi
have --video "$@" || defaults+=(--video "${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}/vtest.avi")
have --frames "$@" || defaults+=(--frames 200)
have --threads "$@" || defaults+=(--threads 1)
exec "$venv/bin/python" "$here/ort_baseline.py" "${defaults[@]}" "$@"
