#!/usr/bin/env bash
# The GPU check of the NVIDIA path, in two halves.
#
# Here (any x86-64 machine with the project's build dependencies):
#   scripts/device-check.sh pack [DIR]     (DIR default: out/device-check)
# builds release x86-64 binaries with the cuda features: core's device_check example (cuda
# backend = tract-cuda vs cpu backend = tract on every zoo model, NVRTC pre-processing vs the CPU
# pre-processing, timings) and the trainer with burn-cuda (NVRTC-only where burn-cuda's LLVM
# download is blocked, see below); and packs them, stripped, with the shared libraries they link
# beyond glibc (GStreamer and GLib for the trainer), the zoo models, a photo and a small digits
# training set, into DIR (kept under 64 MiB so the device tool can carry it). Nothing in it
# needs Rust, an installed GStreamer or the internet.
# NVTL_DEVICE_TRAINER=0 leaves the burn-cuda trainer out without trying to build it.
#
# On the GPU machine (NVIDIA driver, CUDA 13 libraries, e.g. from PyTorch's pip packages):
#   bash DIR/run.sh
# finds libcudart/libnvrtc/libcublas/libcudnn (PyTorch's nvidia/* packages, /usr/local/cuda),
# runs the device check, then 3 epochs of burn-cuda fine-tuning on the digits set, and passes
# when every output is within tolerance and the training loss decreases. Exit status 0 = PASS.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
case "${1:-}" in
  pack) ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
dir="${2:-$repo/out/device-check}"
target="${CARGO_TARGET_DIR:-$repo/target}"
export NVTL_ASSETS="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"

bash scripts/fetch-assets.sh >/dev/null
cargo build --release -p nvtl-core --features cuda --example device_check
cargo build --release -p nvtl-trainer --bin trainer
# The trainer on burn-cuda. cubecl-cuda 0.11 depends on cubecl-llvm, whose build script
# (tracel-llvm-bundler) downloads an LLVM bundle from github.com. Where that download fails, the
# trainer for this pack is built against cubecl-cuda patched down to its NVRTC (C++) backend
# (scripts/patches/cubecl-cuda-0.11.3-nvrtc-only.diff), in a target folder of its own, with
# Cargo.lock restored afterwards: the packed trainer then compiles its kernels with NVRTC
# rather than LLVM. Nothing else in the project uses the patch.
trainer_cuda=""
build_trainer_cuda() {
  if cargo build --release -p nvtl-trainer --features cuda --bin trainer 2>"$target/trainer-cuda.log"; then
    trainer_cuda="$target/release/trainer"
    return 0
  fi
  grep -q "tracel-llvm-bundler" "$target/trainer-cuda.log" || return 1
  echo "device-check: burn-cuda's LLVM download failed; building the trainer with cubecl-cuda's NVRTC backend only" >&2
  local src work rc=0
  src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cubecl-cuda-0.11.3 2>/dev/null | head -n1)"
  [ -n "$src" ] || { echo "device-check: cubecl-cuda 0.11.3 is not in the cargo registry" >&2; return 1; }
  work="$target/device-check-nvrtc"
  rm -rf "$work/cubecl-cuda"
  mkdir -p "$work"
  cp -r "$src" "$work/cubecl-cuda"
  patch -s -d "$work/cubecl-cuda" -p1 <scripts/patches/cubecl-cuda-0.11.3-nvrtc-only.diff || return 1
  cp Cargo.lock "$work/Cargo.lock.orig"
  CARGO_TARGET_DIR="$work/target" cargo build --release -p nvtl-trainer --features cuda --bin trainer \
    --config "patch.crates-io.cubecl-cuda.path=\"$work/cubecl-cuda\"" >>"$target/trainer-cuda.log" 2>&1 || rc=$?
  cp "$work/Cargo.lock.orig" Cargo.lock
  [ "$rc" = 0 ] && trainer_cuda="$work/target/release/trainer"
  return "$rc"
}
if [ "${NVTL_DEVICE_TRAINER:-1}" = 0 ]; then
  echo "device-check: NVTL_DEVICE_TRAINER=0: packing without the burn-cuda training check" >&2
elif ! build_trainer_cuda; then
  echo "device-check: the trainer with --features cuda did not build (log: $target/trainer-cuda.log):" >&2
  grep -m1 -E "panicked|error" "$target/trainer-cuda.log" >&2 || true
  echo "device-check: packing without the burn-cuda training check" >&2
fi

rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/cache/zoo" "$dir/data/digits"
strip -o "$dir/bin/device_check" "$target/release/examples/device_check"
[ -n "$trainer_cuda" ] && strip -o "$dir/bin/trainer" "$trainer_cuda"
# The shared libraries the binaries link beyond glibc and libgcc: the GPU machine has no
# GStreamer (the trainer links it for video datasets) and may lack GLib and the rest. run.sh
# puts lib/ first on LD_LIBRARY_PATH. (Debian 12's copies need glibc 2.35 at most.)
for binary in "$dir"/bin/*; do ldd "$binary"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r soname path; do
    case "$soname" in
      libc.so.* | libm.so.* | libgcc_s.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
      *) cp -L "$path" "$dir/lib/$soname" ;;
    esac
  done
ls "$dir/lib" | sed 's/^/device-check: packing /' >&2
# Compressed (run.sh unpacks them): together they would pass the 64 MiB the device tool carries.
xz -9 -T0 "$dir"/bin/* "$dir"/lib/*

# Zoo bundles (pulled into the local cache if missing) and a photo.
for name in blazeface_front_128 centernet_mobilenetv3_coco mobilenet_v2_imagenet; do
  "$target/release/trainer" --quiet zoo pull "$name" >/dev/null
  cp -r "${NVTL_CACHE_DIR:-$HOME/.cache/nvtl}/zoo/$name" "$dir/cache/zoo/"
done
cp "$NVTL_ASSETS/dog.jpg" "$dir/"

# 30 digits per class, cut from opencv's digits sheet as scripts/demo-transfer.sh does.
digits="$(mktemp -d)"
"$target/release/trainer" --quiet data grid "$NVTL_ASSETS/digits.png" --cell 20x20 \
  --rows-per-class 5 --out "$digits" >/dev/null
for class in 0 1 2 3 4 5 6 7 8 9; do
  mkdir -p "$dir/data/digits/$class"
  find "$digits/$class" -name '*.png' | sort | sed -n '1,30p' | xargs cp -t "$dir/data/digits/$class"
done
sed -e 's|^train = .*|train = "data/digits"|' -e 's|^dir = .*|dir = "out/digits"|' \
  -e 's|^epochs = .*|epochs = 3|' -e 's|^warmup_epochs = .*|warmup_epochs = 0|' \
  -e 's|^early_stopping = .*|early_stopping = 0|' \
  configs/train/digits_mobilenet_v2.toml >"$dir/digits.toml"
rm -rf "$digits"

cat >"$dir/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the packed device check on a GPU machine (see scripts/device-check.sh in nvtl).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
# CUDA libraries: PyTorch's nvidia/* wheels, then a CUDA toolkit.
libs=""
for py in python3 python; do
  found="$("$py" - 2>/dev/null <<'PY'
import glob, os, site
dirs = set()
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(base, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
    for lib in glob.glob(os.path.join(base, "torch", "lib", "lib*.so*")):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PY
)" && [ -n "$found" ] && { libs="$found"; break; }
done
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && libs="${libs:+$libs:}$d"
done
export LD_LIBRARY_PATH="$here/lib${libs:+:$libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NVTL_CACHE_DIR="$here/cache"
for packed in bin/*.xz lib/*.xz; do
  [ -e "$packed" ] || continue
  [ -e "${packed%.xz}" ] && continue
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$packed" "${packed%.xz}" && chmod +x "${packed%.xz}"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
echo "glibc: $(ldd --version 2>/dev/null | head -n1)"
for binary in bin/*; do
  case "$binary" in *.xz) continue ;; esac
  missing="$(ldd "$binary" 2>&1 | grep -E "not found|GLIBC_" || true)"
  [ -z "$missing" ] || { echo "$binary cannot start here:"; echo "$missing"; }
done
for lib in libcuda.so.1 libcudart.so libnvrtc.so libcublas.so libcudnn.so; do
  hit="$( (ldconfig -p 2>/dev/null | grep -o "/[^ ]*$lib[.0-9]*$"; IFS=:; for d in $LD_LIBRARY_PATH; do ls "$d"/$lib* 2>/dev/null; done) | head -n1)"
  echo "library $lib: ${hit:-NOT FOUND}"
done
status=0
echo "== cuda backend and GPU pre-processing vs CPU"
./bin/device_check --zoo cache/zoo --image dog.jpg --runs 50 || status=1
echo "== burn-cuda fine-tuning, 3 epochs on 300 digits"
if [ ! -x bin/trainer ]; then
  echo "training: NOT RUN (the trainer with burn-cuda was not packed: see scripts/device-check.sh)"
  echo "device check overall: $([ $status -eq 0 ] && echo PASS || echo FAIL) (without training)"
  exit $status
fi
rm -rf out
./bin/trainer doctor 2>&1 || true
log="$(./bin/trainer finetune --spec digits.toml --devices cuda 2>&1)"
rc=$?
echo "$log" | grep -E "epoch|device|error|Error" | sed 's/\x1b\[[0-9;]*m//g'
if [ "$rc" -ne 0 ]; then
  echo "training: FAIL (exit $rc)"; status=1
else
  losses="$(echo "$log" | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/.*epoch [0-9]*\/[0-9]*: loss \([0-9.]*\).*/\1/p' | tr '\n' ' ')"
  if python3 -c "import sys; l=[float(x) for x in sys.argv[1:]]; sys.exit(0 if len(l) >= 2 and l[-1] < l[0] else 1)" $losses; then
    echo "training losses: $losses-> decreasing PASS"
  else
    echo "training losses: $losses-> FAIL (not decreasing)"; status=1
  fi
fi
echo "device check overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
RUN
chmod +x "$dir/run.sh"
du -sh "$dir"
size_kib="$(du -sk "$dir" | cut -f1)"
if [ "$size_kib" -gt $((64 * 1024)) ]; then
  echo "device-check: $dir is ${size_kib} KiB, over the 64 MiB the device tool carries" >&2
  exit 1
fi
echo "packed: $dir (run it with: bash $dir/run.sh)"
