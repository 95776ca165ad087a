#!/usr/bin/env bash
# Cross-checks the workspace for aarch64 Linux (Jetson): `cargo check --target
# aarch64-unknown-linux-gnu` of every crate and target, then of the onnxruntime backend, against
# Debian's arm64 GStreamer/GLib dev files (multiarch). Prints one PASS/FAIL line per check and
# exits non-zero if any fails. Nothing is linked or run, so no arm64 machine or emulator is needed.
# Debian/Ubuntu only; installs what is missing (needs root or sudo), idempotently:
#   - the rustup target aarch64-unknown-linux-gnu;
#   - dpkg architecture arm64, libgstreamer1.0-dev:arm64 (with GLib's dev files and pkgconf),
#     liborc-0.4-dev:arm64, libgstreamer-plugins-base1.0-0:arm64, and gcc-aarch64-linux-gnu
#     (tract-linalg's build script assembles its arm64 kernels with the target's C compiler);
#   - libgstreamer-plugins-base1.0-dev:arm64 (gstreamer-video/app .pc files), unpacked into
#     ~/.cache/nvtl/aarch64-dev rather than installed: it is not Multi-Arch: same, so dpkg would
#     remove the amd64 one (and libgstreamer-plugins-bad1.0-dev) that the host build needs.
# The apt step is simulated first and refused if it would remove any package.
#
# Usage: scripts/check-aarch64.sh [--no-install]
#   --no-install   skip the install step (everything above already there)
# Honours CARGO_TARGET_DIR (default ./target; the aarch64 output goes to its
# aarch64-unknown-linux-gnu/ subfolder, host build scripts are shared with host builds) and
# NVTL_AARCH64_DEV (default ~/.cache/nvtl/aarch64-dev).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target="aarch64-unknown-linux-gnu"
multiarch="aarch64-linux-gnu"
dev_dir="${NVTL_AARCH64_DEV:-$HOME/.cache/nvtl/aarch64-dev}"
install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-aarch64: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
start_all=$SECONDS

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600)
export DEBIAN_FRONTEND=noninteractive
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [ "$install" = 1 ]; then
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"

  # Multiarch: arm64 packages come from the same Debian sources as the amd64 ones.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "check-aarch64: dpkg --add-architecture arm64"
    $SUDO dpkg --add-architecture arm64
  fi
  PACKAGES=(
    libgstreamer1.0-dev:arm64 liborc-0.4-dev:arm64 libgstreamer-plugins-base1.0-0:arm64
    gcc-aarch64-linux-gnu
  )
  missing=()
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  pb_dev="libgstreamer-plugins-base1.0-dev:arm64"
  if [ ${#missing[@]} -gt 0 ] || [ ! -f "$dev_dir/.stamp" ]; then
    apt-cache policy "$pb_dev" 2>/dev/null | grep -q 'Candidate: [^(]' || "${APT[@]}" update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    # M-A: same packages must match the amd64 versions, so apt may upgrade a few amd64 libraries
    # to the current point release; it must never remove one (the host build needs them all).
    removals="$("${APT[@]}" install -s --no-install-recommends "${missing[@]}" | grep '^Remv' || true)"
    if [ -n "$removals" ]; then
      printf 'check-aarch64: error: installing %s would remove:\n%s\n' "${missing[*]}" "$removals" >&2
      exit 1
    fi
    echo "check-aarch64: installing ${missing[*]}"
    apt_log="$(mktemp)"
    "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 ||
      { cat "$apt_log" >&2; rm -f "$apt_log"; exit 1; }
    rm -f "$apt_log"
  fi
  # The plugins-base dev package, unpacked (see above), at the version of the arm64 libraries.
  pb_version="$(dpkg-query -W -f='${Version}' libgstreamer-plugins-base1.0-0:arm64)"
  if [ "$(cat "$dev_dir/.stamp" 2>/dev/null)" != "$pb_version" ]; then
    echo "check-aarch64: unpacking $pb_dev=$pb_version into $dev_dir"
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get -qq -o APT::Sandbox::User="$(id -un)" download "$pb_dev=$pb_version")
    rm -rf "$dev_dir"
    mkdir -p "$dev_dir"
    dpkg-deb -x "$tmp"/libgstreamer-plugins-base1.0-dev_*_arm64.deb "$dev_dir"
    rm -rf "$tmp"
    echo "$pb_version" >"$dev_dir/.stamp"
  fi
fi

# pkg-config for the target only (the <VAR>_<target> names of the pkg-config crate): the arm64
# .pc files, never the host's. Their paths are the real multiarch ones, so no sysroot; the
# unpacked plugins-base .pc files point at /usr/include/gstreamer-1.0 (arch-independent headers,
# from the amd64 package) and at the arm64 runtime libraries.
t="${target//-/_}"
export "PKG_CONFIG_ALLOW_CROSS_$t=1"
export "PKG_CONFIG_PATH_$t="
export "PKG_CONFIG_LIBDIR_$t=$dev_dir/usr/lib/$multiarch/pkgconfig:/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig"
export "CC_$t=$multiarch-gcc"
export "AR_$t=$multiarch-ar"
export "CARGO_TARGET_${t^^}_LINKER=$multiarch-gcc"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

for mod in gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-app-1.0 gstreamer-check-1.0; do
  PKG_CONFIG_LIBDIR="$(printenv "PKG_CONFIG_LIBDIR_$t")" PKG_CONFIG_PATH="" pkg-config --exists "$mod" ||
    { echo "check-aarch64: error: pkg-config finds no arm64 $mod (run without --no-install)" >&2; exit 1; }
done
command -v "$multiarch-gcc" >/dev/null ||
  { echo "check-aarch64: error: $multiarch-gcc not found (run without --no-install)" >&2; exit 1; }

# Not checked: the trainer's `cuda` feature. Its build needs tracel-llvm-bundler's LLVM bundle,
# which that crate's build script downloads from github.com (offline it fails, for any target);
# and cubecl-llvm (feature nvptx) would then compile its C++ shims with the target's C++ compiler
# against the bundle for the host architecture, so an aarch64 link would get x86-64 LLVM archives.
CHECKS=(
  "cargo check --workspace --target $target --all-targets"
  "cargo check -p nvtl-core -p gst-plugin-nvtl --features gst-plugin-nvtl/onnxruntime --target $target --all-targets"
)
verdicts=()
failed=0
for cmd in "${CHECKS[@]}"; do
  printf '\n==================== %s ====================\n' "$cmd"
  t0=$SECONDS
  if $cmd; then
    verdicts+=("PASS ($((SECONDS - t0))s): $cmd")
  else
    verdicts+=("FAIL ($((SECONDS - t0))s): $cmd")
    failed=$((failed + 1))
  fi
done

printf '\n==================== summary (%ss) ====================\n' "$((SECONDS - start_all))"
printf '%s\n' "${verdicts[@]}"
[ "$failed" -eq 0 ]
