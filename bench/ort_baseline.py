#!/usr/bin/env python3
"""Python + onnxruntime baseline for nvtlinfer's CenterNet benchmark.

Per frame of a video it does the work nvtlinfer does with the centernet_mobilenetv3_coco bundle
(configs/zoo.toml):
  pre-process  resize to the model's input size (bilinear, aspect ratio not kept), BGR -> RGB,
               float32 raw 0..255 (net-scale-factor 1, offsets 0), NHWC (or NCHW if the model
               says so), batch 1;
  inference    onnxruntime CPU execution provider, intra_op_num_threads = --threads;
  decode       heat map [1,C,H,W] (already sigmoid) + ltrb [1,4,H,W]: 3x3 max-pool peak test,
               peaks >= --threshold, top-K (--topk) over all classes, box = (sx*x - l, sy*y - t,
               sx*x + r, sy*y + b) clipped to the input, scaled to the frame, greedy NMS per
               class (--iou).
Video decoding is done before the clock starts and is not counted.

Prints one JSON object: frames, fps, mean milliseconds per frame of each stage, and what it found.
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="CenterNet ONNX (the zoo bundle's model.onnx)")
    p.add_argument("--video", required=True, help="video file, e.g. $NVTL_ASSETS/vtest.avi")
    p.add_argument("--frames", type=int, default=200, help="frames to time (the video loops if shorter)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (and OpenCV's)")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    p.add_argument("--threshold", type=float, default=0.35, help="pre-cluster-threshold (configs/zoo.toml: 0.35)")
    p.add_argument("--iou", type=float, default=0.5, help="nms-iou-threshold")
    p.add_argument("--topk", type=int, default=100, help="peaks kept per frame")
    return p.parse_args()


def read_frames(path, count):
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        sys.exit(f"ort_baseline: cannot open video {path}")
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            if not frames:
                sys.exit(f"ort_baseline: no frame decoded from {path}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
            if not ok:  # a container that cannot seek: reopen
                cap = cv2.VideoCapture(path)
                ok, frame = cap.read()
            if not ok:
                sys.exit(f"ort_baseline: cannot loop {path}")
        frames.append(frame)
    return frames


class Model:
    def __init__(self, path, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = [d if isinstance(d, int) else -1 for d in inp.shape]
        if len(shape) != 4:
            sys.exit(f"ort_baseline: input {inp.name} has shape {inp.shape}, expected rank 4")
        self.nchw = shape[1] == 3 and shape[3] != 3
        h, w = (shape[2], shape[3]) if self.nchw else (shape[1], shape[2])
        self.h = h if h > 0 else 512
        self.w = w if w > 0 else 512
        outs = self.session.get_outputs()
        self.output_names = [o.name for o in outs]
        four = [i for i, o in enumerate(outs) if len(o.shape) == 4 and o.shape[1] == 4]
        if len(four) > 1:
            four = [i for i in four if any(k in outs[i].name.lower() for k in ("wh", "ltrb", "reg", "box"))]
        if len(outs) < 2 or len(four) != 1:
            sys.exit(f"ort_baseline: cannot tell heat map from ltrb in outputs {[(o.name, o.shape) for o in outs]}")
        self.ltrb_index = four[0]
        self.heat_index = next(i for i, o in enumerate(outs) if i != self.ltrb_index and len(o.shape) == 4)

    def preprocess(self, frame_bgr):
        resized = cv2.resize(frame_bgr, (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32)  # net-scale-factor 1, offsets 0
        if self.nchw:
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[np.newaxis])

    def infer(self, x):
        outs = self.session.run(self.output_names, {self.input_name: x})
        return outs[self.heat_index], outs[self.ltrb_index]


KERNEL_3X3 = np.ones((3, 3), np.uint8)


def nms(boxes, scores, iou):
    """Greedy NMS; boxes [N,4] x1,y1,x2,y2; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0)
        order = rest[overlap <= iou]
    return keep


def decode(heat, ltrb, net_w, net_h, frame_w, frame_h, threshold, topk, iou):
    """Returns a list of (class_id, score, x1, y1, x2, y2) in frame pixels."""
    heat = heat[0]
    ltrb = ltrb[0]
    c, h, w = heat.shape
    # 3x3 max-pool per class plane (cv2.dilate pads with -inf-like values at the border).
    pooled = np.empty_like(heat)
    for k in range(c):
        cv2.dilate(heat[k], KERNEL_3X3, dst=pooled[k])
    cls, ys, xs = np.nonzero((heat >= pooled) & (heat >= threshold))
    if cls.size == 0:
        return []
    scores = heat[cls, ys, xs]
    if scores.size > topk:
        # top-K by score, ties to the lower flat index (nonzero is already in index order)
        order = np.argsort(-scores, kind="stable")[:topk]
        cls, ys, xs, scores = cls[order], ys[order], xs[order], scores[order]
    sx, sy = net_w / w, net_h / h
    l, t, r, b = (ltrb[k, ys, xs] for k in range(4))
    boxes = np.stack([sx * xs - l, sy * ys - t, sx * xs + r, sy * ys + b], axis=1)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, net_w) * (frame_w / net_w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, net_h) * (frame_h / net_h)
    out = []
    for k in np.unique(cls):
        idx = np.nonzero(cls == k)[0]
        for j in nms(boxes[idx], scores[idx], iou):
            i = idx[j]
            out.append((int(k), float(scores[i]), *map(float, boxes[i])))
    return out


def main():
    args = parse_args()
    if args.frames < 1 or args.threads < 1:
        sys.exit("ort_baseline: --frames and --threads must be >= 1")
    cv2.setNumThreads(args.threads)
    model = Model(args.model, args.threads)
    frames = read_frames(args.video, args.frames + args.warmup)
    fh, fw = frames[0].shape[:2]

    t_pre = t_inf = t_dec = 0.0
    objects = 0
    per_class = {}
    for n, frame in enumerate(frames):
        timed = n >= args.warmup
        t0 = time.perf_counter()
        x = model.preprocess(frame)
        t1 = time.perf_counter()
        heat, ltrb = model.infer(x)
        t2 = time.perf_counter()
        dets = decode(heat, ltrb, model.w, model.h, fw, fh, args.threshold, args.topk, args.iou)
        t3 = time.perf_counter()
        if timed:
            t_pre += t1 - t0
            t_inf += t2 - t1
            t_dec += t3 - t2
            objects += len(dets)
            for d in dets:
                per_class[d[0]] = per_class.get(d[0], 0) + 1

    total = t_pre + t_inf + t_dec
    n = args.frames
    print(
        json.dumps(
            {
                "frames": n,
                "fps": n / total if total > 0 else 0.0,
                "preprocess_ms": 1000 * t_pre / n,
                "inference_ms": 1000 * t_inf / n,
                "decode_ms": 1000 * t_dec / n,
                "threads": args.threads,
                "frame_size": [fw, fh],
                "input_size": [model.w, model.h],
                "objects_per_frame": objects / n,
                "objects_per_class": {str(k): v for k, v in sorted(per_class.items())},
                "onnxruntime": ort.__version__,
                "opencv": cv2.__version__,
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
