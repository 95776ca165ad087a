#!/usr/bin/env bash
# Runs bench/torch_finetune.py in its own venv (~/.cache/nvtl/torch-bench-venv, made on first
# use from bench/torch-requirements.txt: PyTorch's PyPI wheel with its CUDA libraries, ~5 GB,
# used on the CPU). Arguments go to the script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${NVTL_TORCH_VENV:-$HOME/.cache/nvtl/torch-bench-venv}"
req="$here/torch-requirements.txt"
if ! "$venv/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
fi
exec "$venv/bin/python" "$here/torch_finetune.py" "$@"
