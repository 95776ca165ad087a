"""CPU latency of an FP32 model and its INT8 QDQ model in onnxruntime (same synthetic input,
same threads); accuracy is measured by `trainer calibrate --spec` on real images. Usage: python int8_latency.py FP32.onnx QDQ.onnx
[--threads N] [--runs N]. Prints one line per model and the ratio."""
import argparse
import time

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser()
parser.add_argument("fp32")
parser.add_argument("qdq")
parser.add_argument("--threads", type=int, default=0)
parser.add_argument("--runs", type=int, default=30)
args = parser.parse_args()


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_ms(s, x):
    name = s.get_inputs()[0].name
    s.run(None, {name: x})
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        s.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


fp32, qdq = session(args.fp32), session(args.qdq)
shape = [d if isinstance(d, int) and d > 0 else 1 for d in fp32.get_inputs()[0].shape]
x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
a, b = median_ms(fp32, x), median_ms(qdq, x)
print(f"onnxruntime CPU fp32 {a:.2f} ms, int8 qdq {b:.2f} ms: int8 is {a / b:.2f}x the speed of fp32")
