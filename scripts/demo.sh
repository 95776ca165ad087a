#!/usr/bin/env bash
# nvtl's main job (README command 1): installs what is missing, builds, pulls the CenterNet model
# from the zoo, runs pipelines/vtest_centernet.txt over vtest.avi, and prints a summary.
# Outputs (annotated video, JSON lines) go to ${NVTL_DEMO_OUT:-./out}/vtest_centernet/.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${NVTL_DEMO_OUT:-$repo/out}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"

echo "== installing packages and fetching vtest.avi"
./scripts/install-deps.sh
./scripts/fetch-assets.sh

echo "== building (release)"
cargo build --release -p gst-plugin-nvtl -p nvtl-trainer

echo "== pulling centernet_mobilenetv3_coco"
"$target_dir/release/trainer" zoo pull centernet_mobilenetv3_coco

echo "== running pipelines/vtest_centernet.txt"
mkdir -p "$out"
start=$(date +%s.%N)
NVTL_PIPELINE_OUT="$out" ./scripts/run-pipeline.sh pipelines/vtest_centernet.txt -q
end=$(date +%s.%N)

python3 - "$out/vtest_centernet/vtest.jsonl" "$start" "$end" <<'PY'
import collections, json, sys
path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
frames = 0
per_class = collections.Counter()
with open(path) as f:
    for line in f:
        record = json.loads(line)
        frames += 1
        for obj in record["objects"]:
            per_class[obj["label"] or "(frame)"] += 1
seconds = end - start
print(f"\nframes: {frames}   time: {seconds:.1f} s   FPS (decode + inference + overlay + encode): {frames / seconds:.2f}")
print("objects per class (all frames):")
for label, count in per_class.most_common():
    print(f"  {label:<14} {count:>6}   ({count / max(frames, 1):.2f} per frame)")
print(f"annotated video: {path.rsplit('/', 1)[0]}/vtest_annotated.avi\nJSON lines:      {path}")
PY
