#!/usr/bin/env bash
# Round trip train -> export -> run in nvtlinfer, classifier: MobileNetV2 from the zoo is
# fine-tuned on 300 of opencv's hand-written digits (48x48, 2 epochs), `trainer eval` scores the
# exported bundle on the held-out digits, then gst-launch-1.0 runs the same bundle in nvtlinfer
# over the same images; every prediction must be the same, and the model must have learnt
# (accuracy well above the 0.1 of chance). The same for the model pruned to half its FLOPs and
# retrained (5 epochs, the unpruned model as teacher), and for its INT8 QDQ model.
# Env: NVTL_TRAINER (trainer binary), GST_PLUGIN_PATH (the plugin), NVTL_ASSETS.
set -euo pipefail
repo="${NVTL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
target="${CARGO_TARGET_DIR:-$repo/target}/release"
trainer="${NVTL_TRAINER:-$target/trainer}"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$target}"
assets="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$trainer" --quiet data grid "$assets/digits.png" --cell 20x20 --rows-per-class 5 --out "$work/all" >/dev/null
for c in 0 1 2 3 4 5 6 7 8 9; do
  mkdir -p "$work/digits/$c"
  ls "$work/all/$c"/*.png | awk 'NR % 16 == 1' | head -n 30 | xargs -I{} cp {} "$work/digits/$c/"
done
cat >"$work/spec.toml" <<SPEC
[model]
zoo = "mobilenet_v2_imagenet"
task = "classifier"
input = [48, 48]
[dataset]
format = "folders"
train = "$work/digits"
val_split = 0.25
[augment]
flip = 0.0
[train]
epochs = 2
batch = 16
lr = 0.001
schedule = "constant"
[export]
dir = "$work/run"
SPEC
"$trainer" --quiet finetune --spec "$work/spec.toml"

# `export --engine`: the bundle is written and loads; the TensorRT engine needs the onnxruntime
# feature and TensorRT, so where they are missing the export fails naming what to build.
rc=0
"$trainer" --quiet export --spec "$work/spec.toml" --from "$work/run" --out "$work/exported" \
  --engine >"$work/export.out" 2>"$work/export.err" || rc=$?
doctor="$("$trainer" doctor)"
if grep -q "tensorrt     usable" <<<"$doctor"; then
  [ "$rc" -eq 0 ] && grep -q "^engine: " "$work/export.out" || { cat "$work/export.err"; exit 1; }
else
  [ "$rc" -ne 0 ] || { echo "export --engine succeeded without TensorRT" >&2; exit 1; }
  grep -q -e "--features onnxruntime" -e "TensorRT" "$work/export.err" || { cat "$work/export.err"; exit 1; }
  [ -f "$work/exported/config_infer.txt" ] && [ -f "$work/exported/model.onnx" ] ||
    { echo "export --engine lost the bundle" >&2; exit 1; }
  echo "export --engine without TensorRT: $(grep -m1 error "$work/export.err")"
fi

# in_nvtlinfer NAME BUNDLE: trainer eval, then the same images through gst-launch-1.0 and
# nvtlinfer with the bundle's config; every prediction must agree, accuracy above chance.
in_nvtlinfer() {
  local name="$1" bundle="$2" eval="$work/eval-$1"
  "$trainer" --quiet eval --spec "$work/spec.toml" --model "$bundle" --out "$eval" >/dev/null
  python3 - "$eval/metrics.json" "$eval/frames" <<'PY'
import json, os, shutil, sys
d = json.load(open(sys.argv[1]))
os.makedirs(sys.argv[2])
for i, item in enumerate(d["images"]):
    shutil.copy(item["image"], f"{sys.argv[2]}/{i:05d}.png")
PY
  gst-launch-1.0 -q multifilesrc location="$eval/frames/%05d.png" caps="image/png,framerate=10/1" \
    ! pngdec ! videoconvert ! nvtlinfer config-file-path="$bundle/config_infer.txt" \
    ! nvtljson location="$eval/nvtlinfer.jsonl" ! fakesink

  python3 - "$eval/metrics.json" "$eval/nvtlinfer.jsonl" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == len(d["images"]), f"{len(lines)} frames out of nvtlinfer for {len(d['images'])} images"
same = right = 0
for item, line in zip(d["images"], lines):
    got = [c["class_id"] for o in line["objects"] for c in o.get("classifier", [])]
    assert len(got) == 1, f"frame {line['frame']}: classifier results {got}"
    same += got[0] == item["predicted"]
    right += got[0] == item["truth"]
n = len(lines)
print(f"{sys.argv[3]}: {n} held-out digits: nvtlinfer agrees with trainer eval on {same}, accuracy {right / n:.3f} (trainer eval {d['value']:.3f})")
assert same == n, "nvtlinfer and the trainer disagree"
assert right / n > 0.5, "the fine-tuned model did not learn the digits"
PY
}

in_nvtlinfer trained "$work/run/bundle"
"$trainer" --quiet prune -m "$work/run/bundle" -o "$work/pruned" --target-flops 0.5 --latency-runs 1 >/dev/null
"$trainer" --quiet finetune --spec "$work/spec.toml" --from "$work/pruned" --teacher "$work/run/bundle" \
  --set train.epochs=5 --out "$work/retrained" >/dev/null
in_nvtlinfer pruned-retrained "$work/retrained/bundle"
"$trainer" --quiet calibrate -m "$work/retrained/bundle" -o "$work/int8" --spec "$work/spec.toml" \
  --method percentile >/dev/null
in_nvtlinfer int8-qdq "$work/int8/qdq"
