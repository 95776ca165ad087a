#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages nvtl needs to build, test and run (needs root or sudo), and
# checks the Rust toolchain (cargo, rustfmt, clippy), which no Debian package provides new enough.
# Idempotent: touches apt only when something is missing.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PACKAGES=(
  pkg-config build-essential meson ninja-build python3-venv python3-pip
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-x
  curl ca-certificates
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)
# scripts/fetch-assets.sh uses `apt-get download`, which needs current apt lists.
lists_ok=1
apt-cache policy opencv-doc 2>/dev/null | grep -q 'Candidate: [^(]' || lists_ok=0
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ] || [ "$lists_ok" -eq 0 ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: the workspace needs rust-version 1.85+ with rustfmt and clippy (rustup's toolchain).
for tool in cargo rustc; do
  command -v "$tool" >/dev/null ||
    { echo "install-deps: error: '$tool' not found; install Rust >= 1.85 with rustup" >&2; exit 1; }
done
cargo fmt --version >/dev/null 2>&1 ||
  { echo "install-deps: error: rustfmt missing (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 ||
  { echo "install-deps: error: clippy missing (rustup component add clippy)" >&2; exit 1; }
echo "install-deps: OK ($(rustc --version | cut -d' ' -f1-2), $(gst-inspect-1.0 --version | sed -n 2p))"
