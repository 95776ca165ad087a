#!/usr/bin/env bash
# nvtl transfer-learning demos at full scale, with their numbers in $OUT/transfer/results.md:
#   digits     MobileNetV2 (ImageNet, zoo) -> opencv's 5000 hand-written digits; then the bundle
#              runs in nvtlinfer (gst-launch) on every validation image: same predictions?
#   scene      CenterNet COCO-80 -> person/car for the vtest.avi camera at 320x256, trained on the
#              teacher's pseudo-labels of frames 0-599, scored on frames 600-794; FPS of both in
#              nvtlinfer; the student boxes vtest.avi with gst-launch
#   add-class  a digits 0-8 model gets class 9: with old data (merged), without (distill), and
#              plain fine-tuning (naive); old-class retention of each
# Usage: scripts/demo-transfer.sh [digits|scene|add-class|all]   (default all)
# Honours OUT (default ./out), NVTL_ASSETS, NVTL_CACHE_DIR, CARGO_TARGET_DIR; NVTL_TRAINER (a
# trainer binary: then nothing is built and GST_PLUGIN_PATH must reach the plugin).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
what="${1:-all}"
case "$what" in digits | scene | add-class | all) ;; *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;; esac

out="${OUT:-$repo/out}/transfer"
assets="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
target="${CARGO_TARGET_DIR:-$repo/target}/release"
mkdir -p "$out"
results="$out/results.md"

bash scripts/install-deps.sh >/dev/null
bash scripts/fetch-assets.sh >/dev/null
if [ -n "${NVTL_TRAINER:-}" ]; then
  # Installed or prebuilt binaries (meson install, a copied build): no cargo build.
  trainer="$NVTL_TRAINER"
else
  cargo build --release -p nvtl-trainer -p gst-plugin-nvtl
  trainer="$target/trainer"
  export GST_PLUGIN_PATH="$target${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
fi

note() { printf '%s\n' "$*" | tee -a "$results"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
seconds() { python3 -c "import time; print(time.time())"; }

digits() {
  note "## Classification transfer: MobileNetV2 -> digits ($(date -u +%FT%TZ))"
  "$trainer" --quiet data grid "$assets/digits.png" --cell 20x20 --rows-per-class 5 --out "$out/data/digits"
  "$trainer" finetune --spec configs/train/digits_mobilenet_v2.toml \
    --set "dataset.train=\"$out/data/digits\"" --out "$out/digits" | tee "$out/digits.log"
  "$trainer" --quiet eval --spec configs/train/digits_mobilenet_v2.toml \
    --set "dataset.train=\"$out/data/digits\"" --model "$out/digits/bundle" --out "$out/digits/eval" | tail -n 3
  note "$(grep -E '^epoch' "$out/digits.log")"
  note "$(grep 'training speed' "$out/digits.log")"
  note "held-out accuracy (trainer eval, the element's engine): $(json "$out/digits/eval/metrics.json" "round(d['value'], 4)") on $(json "$out/digits/eval/metrics.json" "len(d['images'])") images"

  # The same validation images through gst-launch + nvtlinfer, one frame per image.
  local frames="$out/digits/eval/frames"
  rm -rf "$frames" && mkdir -p "$frames"
  python3 - "$out/digits/eval/metrics.json" "$frames" <<'PY'
import json, shutil, sys
d = json.load(open(sys.argv[1]))
for i, item in enumerate(d["images"]):
    shutil.copy(item["image"], f"{sys.argv[2]}/{i:05d}.png")
PY
  gst-launch-1.0 -q multifilesrc location="$frames/%05d.png" caps="image/png,framerate=10/1" \
    ! pngdec ! videoconvert ! nvtlinfer config-file-path="$out/digits/bundle/config_infer.txt" \
    ! nvtljson location="$out/digits/eval/nvtlinfer.jsonl" ! fakesink
  note "$(python3 - "$out/digits/eval/metrics.json" "$out/digits/eval/nvtlinfer.jsonl" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2])]
names = d["classes"]
same = right = 0
for item, line in zip(d["images"], lines):
    got = None
    for o in line["objects"]:
        for c in o.get("classifier", []):
            got = c["class_id"]
    same += got == item["predicted"]
    right += got == item["truth"]
n = len(d["images"])
print(f"nvtlinfer (gst-launch) on the {len(lines)} validation images: {same}/{n} predictions equal to trainer eval's, accuracy {right / n:.4f}")
PY
)"
}

scene() {
  note "## Scene adaptation: CenterNet COCO-80 -> person/car at 320x256 on vtest.avi ($(date -u +%FT%TZ))"
  local teacher
  teacher="$("$trainer" --quiet zoo pull centernet_mobilenetv3_coco | head -n 1)"
  "$trainer" --quiet data extract-frames "$assets/vtest.avi" --out "$out/data/vtest/frames"
  rm -rf "$out/data/vtest/train" "$out/data/vtest/val"
  # Training: every 2nd frame of 0-599; validation: every frame of 600-794.
  "$trainer" --quiet data pseudo-label --model "$teacher" --classes person,car --out "$out/data/vtest/train" \
    $(ls "$out/data/vtest/frames"/frame_000*.png | head -n 600 | awk 'NR % 2 == 1') | tee -a "$results"
  "$trainer" --quiet data pseudo-label --model "$teacher" --classes person,car --out "$out/data/vtest/val" \
    $(ls "$out/data/vtest/frames"/frame_000*.png | tail -n +601) | tee -a "$results"
  local set=(--set "dataset.train=\"$out/data/vtest/train\"" --set "dataset.val=\"$out/data/vtest/val\"")
  # Before training: the teacher's person/car channels at 320x256 as they are.
  "$trainer" --quiet finetune --spec configs/train/vtest_person_car_centernet.toml "${set[@]}" \
    --set train.epochs=0 --out "$out/scene-untrained" >/dev/null
  "$trainer" --quiet eval --spec configs/train/vtest_person_car_centernet.toml "${set[@]}" \
    --model "$out/scene-untrained/bundle" --out "$out/scene-untrained/eval" >/dev/null
  note "before training (teacher weights cut to person/car, 320x256): mAP@0.5 $(json "$out/scene-untrained/eval/metrics.json" "round(d['value'], 4)")"
  "$trainer" finetune --spec configs/train/vtest_person_car_centernet.toml "${set[@]}" \
    --out "$out/scene" | tee "$out/scene.log"
  "$trainer" --quiet eval --spec configs/train/vtest_person_car_centernet.toml "${set[@]}" \
    --model "$out/scene/bundle" --out "$out/scene/eval" | tail -n 5 | tee -a "$results"
  note "$(grep -E '^epoch' "$out/scene.log")"
  note "$(grep 'training speed' "$out/scene.log")"
  note "after training: mAP@0.5 against the teacher on frames 600-794: $(json "$out/scene/eval/metrics.json" "round(d['value'], 4)")"

  # FPS of teacher and student in nvtlinfer on the same 200 frames (decode included).
  for who in teacher student; do
    local config="$teacher/config_infer.txt"
    [ "$who" = student ] && config="$out/scene/bundle/config_infer.txt"
    local t0 t1
    t0=$(seconds)
    gst-launch-1.0 -q filesrc location="$assets/vtest.avi" ! decodebin ! videoconvert \
      ! identity eos-after=200 ! nvtlinfer config-file-path="$config" ! fakesink
    t1=$(seconds)
    note "nvtlinfer $who: $(python3 -c "print(f'{200 / ($t1 - $t0):.2f}')") FPS over 200 frames"
  done
  # The student boxes the whole clip.
  gst-launch-1.0 -q filesrc location="$assets/vtest.avi" ! decodebin ! videoconvert \
    ! nvtlinfer config-file-path="$out/scene/bundle/config_infer.txt" ! nvtlosd ! videoconvert \
    ! jpegenc ! avimux ! filesink location="$out/scene/vtest_student.avi"
  note "annotated video: $out/scene/vtest_student.avi"
}

add_class() {
  note "## Add a class: digits 0-8 + class 9 ($(date -u +%FT%TZ))"
  local data="$out/data/digits"
  [ -d "$data/9" ] || "$trainer" --quiet data grid "$assets/digits.png" --cell 20x20 --rows-per-class 5 --out "$data"
  mkdir -p "$out/data/digits_9_only" && rm -rf "$out/data/digits_9_only/9" && cp -r "$data/9" "$out/data/digits_9_only/9"
  local spec=configs/train/digits_mobilenet_v2.toml
  local classes08='["0","1","2","3","4","5","6","7","8"]'
  "$trainer" --quiet finetune --spec "$spec" --set "dataset.train=\"$data\"" \
    --set "dataset.classes=$classes08" --set dataset.ignore_unknown=true --set train.epochs=2 \
    --out "$out/digits_0_8" | tail -n 1
  for method in merged distill naive; do
    local train="$out/data/digits_9_only"
    [ "$method" = merged ] && train="$data"
    "$trainer" --quiet add-class --method "$method" --spec "$spec" \
      --set "model.bundle=\"$out/digits_0_8/bundle\"" --set "dataset.train=\"$train\"" \
      --set train.epochs=1 --set train.lr=0.0005 --out "$out/add_$method" | tail -n 1
    "$trainer" --quiet eval --spec "$spec" --set "dataset.train=\"$data\"" \
      --model "$out/add_$method/bundle" --out "$out/add_$method/eval" >/dev/null
    note "$method: $(json "$out/add_$method/eval/metrics.json" "'old classes 0-8 accuracy %.4f, new class 9 recall %.4f, all %.4f' % (sum(d['classification']['confusion'][c][c] for c in range(9)) / sum(sum(d['classification']['confusion'][c]) for c in range(9)), d['classification']['per_class'][9]['recall'], d['value'])")"
  done
}

case "$what" in
  digits) digits ;;
  scene) scene ;;
  add-class) add_class ;;
  all) digits; scene; add_class ;;
esac
echo "results: $results"
