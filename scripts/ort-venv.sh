#!/usr/bin/env bash
# Prints the path of libonnxruntime.so from onnxruntime's PyPI wheel, installing the wheel into
# ~/.cache/nvtl/venv-ort first if needed (the venv the trainer's onnxruntime test uses too).
# The tests of nvtl's onnxruntime backend point ORT_DYLIB_PATH at it.
#
# Usage: scripts/ort-venv.sh        (prints one path)
set -euo pipefail
version="1.32.0"
venv="${NVTL_ORT_VENV:-$HOME/.cache/nvtl/venv-ort}"
find_lib() {
  "$venv/bin/python" - <<'PY' 2>/dev/null
import glob, os, onnxruntime
libs = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))
print(libs[0])
PY
}
if ! lib="$(find_lib)" || [ -z "$lib" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "onnxruntime==$version" numpy >&2
  lib="$(find_lib)"
fi
echo "$lib"
