#!/usr/bin/env bash
# nvtl's test command (README command 2; .ci/run calls it): installs what is missing, fetches the
# test data, then lint, the workspace tests, and the meson build/test/install check — all in the
# release profile, the project's one build profile.
#
# Usage: scripts/test.sh [--no-meson] [--no-lint]
#   --no-meson   skip the meson section (also NVTL_TEST_MESON=0)
#   --no-lint    skip cargo fmt and clippy (also NVTL_TEST_LINT=0)
# Honours CARGO_TARGET_DIR, NVTL_ASSETS (default ~/.cache/nvtl/assets), NVTL_CACHE_DIR.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
run_meson="${NVTL_TEST_MESON:-1}"
run_lint="${NVTL_TEST_LINT:-1}"
for arg in "$@"; do
  case "$arg" in
    --no-meson) run_meson=0 ;;
    --no-lint) run_lint=0 ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

export NVTL_ASSETS="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"

log_dir="$(mktemp -d)"
start_all=$SECONDS
timings=()
section_start=0
section_name=""

section() {
  end_section
  section_name="$1"
  section_start=$SECONDS
  printf '\n==================== %s ====================\n' "$section_name"
}
end_section() {
  if [ -n "$section_name" ]; then
    timings+=("$(printf '%-28s %5ss' "$section_name" "$((SECONDS - section_start))")")
  fi
  section_name=""
}
on_exit_fail() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "$section_name" ]; then
    printf '\ntest.sh: FAILED in section "%s" (exit %s) after %ss\n' "$section_name" "$rc" "$((SECONDS - start_all))" >&2
  fi
  rm -rf "$log_dir"
}
trap on_exit_fail EXIT

section "install dependencies"
bash scripts/install-deps.sh

section "fetch assets"
bash scripts/fetch-assets.sh

if [ "$run_lint" = 1 ]; then
  section "cargo fmt --check"
  cargo fmt --all -- --check

  section "cargo clippy"
  cargo clippy --release --workspace --all-targets -- -D warnings
  cargo clippy --release -p nvtl-core -p gst-plugin-nvtl --features gst-plugin-nvtl/onnxruntime \
    --all-targets -- -D warnings
  cargo clippy --release -p nvtl-core -p gst-plugin-nvtl --features gst-plugin-nvtl/cuda \
    --all-targets -- -D warnings
fi

section "cargo test (build)"
cargo test --release --workspace --no-run

# The element's tests read zoo bundles from the cache (NVTL_CACHE_DIR) and cannot convert
# MobileNetV2 themselves (its converter is the trainer's, on burn): the trainer the build above
# made pulls them first, as a user would. A model already in the cache is not fetched again.
section "zoo models the tests read"
for model in centernet_mobilenetv3_coco blazeface_front_128 mobilenet_v2_imagenet; do
  "$target_dir/release/trainer" zoo pull "$model"
done

section "cargo test"
cargo test --release --workspace 2>&1 | tee "$log_dir/cargo-test.log"

# The onnxruntime backend (ort, load-dynamic) with the CPU execution provider, against tract on
# the zoo models. Its tests take libonnxruntime from onnxruntime's PyPI wheel in
# ~/.cache/nvtl/venv-ort (scripts/ort-venv.sh, made on first use) unless ORT_DYLIB_PATH is set.
section "cargo test (onnxruntime)"
cargo test --release -p nvtl-core --features onnxruntime 2>&1 | tee -a "$log_dir/cargo-test.log"
cargo test --release -p gst-plugin-nvtl --features onnxruntime --test onnxruntime 2>&1 |
  tee -a "$log_dir/cargo-test.log"

# The cuda feature (tract-cuda, NVRTC pre-processing) builds without CUDA; here, without a GPU,
# its tests check the errors and the fallback. tests/preprocess_cuda_source.rs (in the workspace
# run above) checks the kernel source itself against the CPU path.
section "cargo test (cuda, no GPU)"
cargo test --release -p nvtl-core --features cuda --test cuda_missing 2>&1 | tee -a "$log_dir/cargo-test.log"
cargo test --release -p gst-plugin-nvtl --features cuda --test nvmm 2>&1 | tee -a "$log_dir/cargo-test.log"

meson_passed=0 meson_failed=0 meson_skipped=0
if [ "$run_meson" = 1 ]; then
  section "meson setup/compile/test/install"
  mdir="$log_dir/meson"
  meson setup "$mdir/build" --prefix=/usr >"$log_dir/meson-setup.log" 2>&1 ||
    { cat "$log_dir/meson-setup.log"; exit 1; }
  grep -E '^(Message|WARNING)' "$log_dir/meson-setup.log" || true
  CARGO_TARGET_DIR="$target_dir" meson compile -C "$mdir/build"
  meson_rc=0
  CARGO_TARGET_DIR="$target_dir" meson test -C "$mdir/build" --print-errorlogs 2>&1 |
    tee "$log_dir/meson-test.log" || meson_rc=$?
  meson_passed="$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log_dir/meson-test.log" | tail -n1)"
  meson_failed="$(awk '/^(Fail|Unexpected Pass|Timeout): *[0-9]+/ {n += $NF} END {print n + 0}' "$log_dir/meson-test.log")"
  meson_skipped="$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log_dir/meson-test.log" | tail -n1)"
  [ "$meson_rc" -eq 0 ] || exit "$meson_rc"
  # Install into a staging dir and check the layout GStreamer and users rely on.
  DESTDIR="$mdir/stage" meson install -C "$mdir/build" --no-rebuild --quiet
  libdir="$(meson introspect --buildoptions "$mdir/build" |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')"
  for f in "usr/$libdir/gstreamer-1.0/libgstnvtl.so" usr/bin/trainer; do
    [ -f "$mdir/stage/$f" ] || { echo "test.sh: meson install did not install /$f" >&2; exit 1; }
    echo "meson install: /$f"
  done
fi
end_section

# One closing line with the counts of every test that ran (cargo's and meson's).
read -r c_passed c_failed c_ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { v = $(i - 1) + 0
      if ($i ~ /^passed/) p += v; if ($i ~ /^failed/) f += v; if ($i ~ /^ignored/) g += v }
  } END { print p + 0, f + 0, g + 0 }' "$log_dir/cargo-test.log")
printf '\n==================== summary ====================\n'
printf '%s\n' "${timings[@]}"
printf '%-28s %5ss\n' "total" "$((SECONDS - start_all))"
echo "cargo test: $c_passed passed, $c_failed failed, $c_ignored ignored; meson test: ${meson_passed:-0} passed, ${meson_failed:-0} failed"
echo "$((c_passed + ${meson_passed:-0})) passed, $((c_failed + ${meson_failed:-0})) failed, $((c_ignored + ${meson_skipped:-0})) skipped"
