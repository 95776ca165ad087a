#!/usr/bin/env bash
# Round trip pseudo-label -> train -> export -> run in nvtlinfer, detector: CenterNet COCO-80
# labels 16 vtest.avi frames (person, car), a 320x256 person/car CenterNet is fine-tuned on them
# for one epoch, then gst-launch-1.0 runs the exported bundle in nvtlinfer on 8 later frames and
# `trainer infer` runs it on the same frames: the same objects must come out of both, and the
# student must find most of the teacher's people there. (GStreamer ROI metas hold whole pixels, so
# boxes agree to 1 px.)
# Env: NVTL_TRAINER (trainer binary), GST_PLUGIN_PATH (the plugin), NVTL_ASSETS.
set -euo pipefail
repo="${NVTL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
target="${CARGO_TARGET_DIR:-$repo/target}/release"
trainer="${NVTL_TRAINER:-$target/trainer}"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$target}"
assets="${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

teacher="$("$trainer" --quiet zoo pull centernet_mobilenetv3_coco | head -n 1)"
"$trainer" --quiet data extract-frames "$assets/vtest.avi" --out "$work/frames" --every 25 >/dev/null
frames=("$work"/frames/*.png)
"$trainer" --quiet data pseudo-label --model "$teacher" --classes person,car --out "$work/train" "${frames[@]:0:16}" >/dev/null
"$trainer" --quiet data pseudo-label --model "$teacher" --classes person,car --out "$work/val" "${frames[@]:16:8}" >/dev/null
"$trainer" --quiet finetune --spec "$repo/configs/train/vtest_person_car_centernet.toml" \
  --set "dataset.train=\"$work/train\"" --set "dataset.val=\"$work/val\"" \
  --set train.epochs=1 --set train.batch=4 --out "$work/run" >/dev/null

mkdir -p "$work/seq"
i=0
for f in "${frames[@]:16:8}"; do cp "$f" "$work/seq/$(printf %05d $i).png"; i=$((i + 1)); done
gst-launch-1.0 -q multifilesrc location="$work/seq/%05d.png" caps="image/png,framerate=10/1" \
  ! pngdec ! videoconvert ! nvtlinfer config-file-path="$work/run/bundle/config_infer.txt" \
  ! nvtljson location="$work/nvtlinfer.jsonl" ! fakesink
"$trainer" --quiet infer --model "$work/run/bundle" --out "$work/infer" "$work/seq" >/dev/null

python3 - "$work/nvtlinfer.jsonl" "$work/infer/label_2" "$work/val/label_2" "${frames[@]:16:8}" <<'PY'
import json, os, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 8, f"{len(lines)} frames"
def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0]); h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0: return 0.0
    i = w * h
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)
def kitti(path):
    out = []
    for l in open(path):
        f = l.split()
        out.append((f[0], [float(v) for v in f[4:8]]))
    return out
found = teacher_people = 0
for k, line in enumerate(lines):
    gst = sorted((o["label"], [o["left"], o["top"], o["left"] + o["width"], o["top"] + o["height"]]) for o in line["objects"])
    cli = sorted(kitti(f"{sys.argv[2]}/{k:05d}.txt"))
    assert len(gst) == len(cli), f"frame {k}: nvtlinfer {len(gst)} objects, trainer infer {len(cli)}"
    for (lg, bg), (lc, bc) in zip(gst, cli):
        assert lg == lc and max(abs(x - y) for x, y in zip(bg, bc)) <= 1.0, f"frame {k}: {lg} {bg} vs {lc} {bc}"
    stem = os.path.splitext(os.path.basename(sys.argv[4 + k]))[0]
    people = [b for c, b in kitti(f"{sys.argv[3]}/{stem}.txt") if c == "person"]
    teacher_people += len(people)
    found += sum(any(c == "person" and iou(b, p) > 0.5 for c, b in gst) for p in people)
print(f"8 frames: nvtlinfer == trainer infer; the student finds {found} of the teacher's {teacher_people} people")
assert teacher_people > 0 and found >= 0.6 * teacher_people, "the student lost the teacher's people"
PY
