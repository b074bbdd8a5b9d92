"""PyTorch CPU reference for natview's training step: the same compact ResNet (3x3 stem, one
basic block per stage, widths 32-256, first stage stride 2), the same projector
(Linear-BN-ReLU-Linear-BN, 256 -> 512 -> 256), InfoNCE (tau 0.2, both directions) or SimSiam
(with the 256 -> 128 -> 256 predictor), SGD with momentum 0.9 and weight decay 1e-4, on two
batches of `--batch` random 64 px images. Prints the median seconds per step.

    python bench/torch_train_step.py --batch 64 --threads 2 --steps 8 --method infonce
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c_in, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or c_in != width:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width)
            )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(h + shortcut)


class Compact(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        widths = [32, 64, 128, 256]
        blocks, c_in = [], 32
        for i, w in enumerate(widths):
            blocks.append(Block(c_in, w, 2))  # compact: every stage halves (first stage too)
            c_in = w
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return self.blocks(h).mean(dim=(2, 3))


def mlp(dims):
    layers = []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.BatchNorm1d(dims[i + 1])]
        if i + 2 < len(dims):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--method", choices=["infonce", "simsiam"], default="infonce")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    trunk, projector = Compact(), mlp([256, 512, 256])
    predictor = mlp([256, 128, 256]) if args.method == "simsiam" else None
    params = list(trunk.parameters()) + list(projector.parameters())
    if predictor is not None:
        params += list(predictor.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    x1 = torch.randn(args.batch, 3, args.size, args.size)
    x2 = torch.randn(args.batch, 3, args.size, args.size)
    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        z1, z2 = projector(trunk(x1)), projector(trunk(x2))
        if predictor is None:
            a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
            logits = a @ b.t() / 0.2
            target = torch.arange(args.batch)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        else:
            p1, p2 = predictor(z1), predictor(z2)
            loss = -(F.cosine_similarity(p1, z2.detach()).mean()
                     + F.cosine_similarity(p2, z1.detach()).mean()) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step > 0:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    print(
        f"torch {torch.__version__} {args.method} compact @{args.size}px batch {args.batch} x2 views, "
        f"{args.threads} threads: median {med:.3f} s/step ({1 / med:.3f} steps/s) over {len(times)} steps"
    )


if __name__ == "__main__":
    main()
