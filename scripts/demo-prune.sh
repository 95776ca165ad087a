#!/usr/bin/env bash
# nvtl pruning demos with their numbers in $OUT/prune/results.md:
#   digits  the MobileNetV2 digits classifier (scripts/demo-transfer.sh digits trains it here if
#           missing) pruned to FLOPs ratios 0.5, 0.35 and 0.25, each retrained with the unpruned
#           model as distillation teacher; accuracy, FLOPs, params, size and CPU latency of all,
#           a plot of accuracy against latency; granularity 8 vs 1 at ratio 0.5
#   scene   the same for the scene-adapted CenterNet person/car detector (mAP@0.5)
#   and for both: INT8 (trainer calibrate, percentile): QDQ accuracy and latency against FP32 in
#   the element's CPU engine, and the latency ratio in onnxruntime (bench/int8_latency.py)
# Usage: scripts/demo-prune.sh [digits|scene|all]   (default all)
# Honours OUT (default ./out), NVTL_ASSETS, CARGO_TARGET_DIR, RATIOS (default: digits
# "0.5 0.35 0.25", scene "0.5 0.4"), RETRAIN_EPOCHS and RETRAIN_LR (default: digits 3 epochs at
# the spec's lr; scene 14 epochs at 5e-4: a pruned detector needs more than fine-tuning's 1e-4);
# NVTL_TRAINER (a trainer binary: then nothing is built).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
what="${1:-all}"
case "$what" in digits | scene | all) ;; *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;; esac

root="${OUT:-$repo/out}"
out="$root/prune"
mkdir -p "$out"
results="$out/results.md"

if [ -n "${NVTL_TRAINER:-}" ]; then
  trainer="$NVTL_TRAINER"
else
  cargo build --release -p nvtl-trainer
  trainer="${CARGO_TARGET_DIR:-$repo/target}/release/trainer"
fi

note() { printf '%s\n' "$*" | tee -a "$results"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# prune_family NAME SPEC BASE_BUNDLE RATIOS EPOCHS LR SET...: prune at every ratio, retrain
# (LR "-" = the spec's), compare.
prune_family() {
  local name="$1" spec="$2" base="$3" ratios="$4" epochs="$5" lr="$6"
  shift 6
  local set=("$@") dir="$out/$name" compare=() retrain_lr=()
  [ "$lr" = - ] || retrain_lr=(--set "train.lr=$lr")
  mkdir -p "$dir"
  for r in $ratios; do
    "$trainer" --quiet prune -m "$base" -o "$dir/p$r" --target-flops "$r" | tee "$dir/p$r.log" | sed -n 1p
    "$trainer" --quiet finetune --spec "$spec" "${set[@]}" --from "$dir/p$r" --teacher "$base" \
      --set "train.epochs=$epochs" --set train.warmup_epochs=0 --set train.early_stopping=6 \
      "${retrain_lr[@]}" \
      --out "$dir/p$r-retrained" | tail -n 2
    compare+=(--compare "pruned $r=$dir/p$r" --compare "retrained $r=$dir/p$r-retrained/bundle")
  done
  # Channel counts rounded to multiples of 8 (-pg 8, TAO's default) or not (-pg 1), same ratio.
  "$trainer" --quiet prune -m "$base" -o "$dir/p0.5-pg1" --target-flops 0.5 -pg 1 | sed -n 1p
  compare+=(--compare "pruned 0.5 pg1=$dir/p0.5-pg1")
  "$trainer" --quiet eval --spec "$spec" "${set[@]}" --model "$base" --out "$dir/eval" \
    --latency-runs 40 "${compare[@]}" | tail -n $((2 * $(wc -w <<<"$ratios") + 5)) | tee -a "$results"
  # INT8 of the unpruned model.
  "$trainer" --quiet calibrate -m "$base" -o "$dir/int8" --spec "$spec" "${set[@]}" \
    --method percentile --max-images 200 | tail -n 4 | tee -a "$results"
  bash scripts/ort-venv.sh >/dev/null
  "${NVTL_ORT_VENV:-$HOME/.cache/nvtl/venv-ort}/bin/python" bench/int8_latency.py \
    "$dir/int8/model.onnx" "$dir/int8/qdq/model.onnx" | tee -a "$results"
}

digits() {
  note "## Pruning MobileNetV2 digits ($(date -u +%FT%TZ))"
  local base="$root/transfer/digits/bundle"
  [ -f "$base/config_infer.txt" ] || NVTL_TRAINER="$trainer" bash scripts/demo-transfer.sh digits
  prune_family digits configs/train/digits_mobilenet_v2.toml "$base" \
    "${RATIOS:-0.5 0.35 0.25}" "${RETRAIN_EPOCHS:-3}" "${RETRAIN_LR:--}" \
    --set "dataset.train=\"$root/transfer/data/digits\""
}

scene() {
  note "## Pruning the scene-adapted CenterNet ($(date -u +%FT%TZ))"
  local base="$root/transfer/scene/bundle"
  [ -f "$base/config_infer.txt" ] || NVTL_TRAINER="$trainer" bash scripts/demo-transfer.sh scene
  prune_family scene configs/train/vtest_person_car_centernet.toml "$base" \
    "${RATIOS:-0.5 0.4}" "${RETRAIN_EPOCHS:-14}" "${RETRAIN_LR:-5e-4}" \
    --set "dataset.train=\"$root/transfer/data/vtest/train\"" \
    --set "dataset.val=\"$root/transfer/data/vtest/val\""
}

case "$what" in
  digits) digits ;;
  scene) scene ;;
  all) digits; scene ;;
esac
echo "results: $results"
