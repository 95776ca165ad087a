"""PyTorch baseline for trainer/benches/finetune.rs: torchvision MobileNetV2 at 224x224, one
Adam step (forward, cross-entropy, backward, update) per batch in train mode, on the CPU.
Prints `images_per_second N`."""
import argparse
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

torch.set_num_threads(args.threads)
model = torchvision.models.mobilenet_v2()
model.train()
optim = torch.optim.Adam(model.parameters(), lr=1e-4)
n = args.batch
index = torch.arange(n * 3 * 224 * 224, dtype=torch.int64)
x = ((index * 7919) % 255).to(torch.float32).div(64.0).sub(2.0).reshape(n, 3, 224, 224)
y = (torch.arange(n) * 37) % 1000


def step():
    optim.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optim.step()


step()  # warm-up
started = time.perf_counter()
for _ in range(args.steps):
    step()
print(f"images_per_second {args.steps * n / (time.perf_counter() - started):.4f}")
