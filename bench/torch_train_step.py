"""PyTorch CPU reference for natview's training step (`natview bench train`): the same trunk
(`--model compact`: 3x3 stem, one basic block per stage, widths 32-256, every stage stride 2;
or torchvision's resnet18 / resnet50 / regnet_y_400mf without the classifier), the same
projector (Linear-BN-ReLU-Linear-BN, features -> 512 -> 256) and, where the method has one,
predictor (256 -> 128 -> 256), the same losses as src/train/loss.rs and momentum.rs:

- infonce: normalised projections, tau 0.2, both directions;
- simsiam: negative cosine of predictions to the other view's stopped projections;
- byol: momentum target (trunk + projector, training-mode batch norm, no gradient), MSE of
  normalised predictions to the other view's target projections, symmetric; EMA after the step;
- moby: as byol, InfoNCE of predictions against target keys with a queue of 4096 earlier keys
  as negatives (tau 0.2), symmetric, keys enqueued;
- swav: 128 prototypes (normalised before use and after each step), Sinkhorn-Knopp (3
  iterations, epsilon 0.05), swapped prediction at temperature 0.1;

SGD with momentum 0.9 and weight decay 1e-4, on two batches of `--batch` random images.
Prints the median seconds per step (one JSON line with --json). `--device cuda` times it on a
GPU (scripts/gpu-check.sh); torchvision is needed only for the torchvision trunks.

    python bench/torch_train_step.py --batch 64 --threads 2 --steps 8 --method moby
"""

import argparse
import copy
import json
import math
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


def trunk_of(name):
    """The trunk and its feature width."""
    if name == "compact":
        return Compact(), 256
    import torchvision

    make, dim = {
        "resnet18": (torchvision.models.resnet18, 512),
        "resnet50": (torchvision.models.resnet50, 2048),
        "regnety-400mf": (torchvision.models.regnet_y_400mf, 440),
    }[name]
    net = make()
    net.fc = nn.Identity()
    return net, dim


def info_nce(z1, z2, tau=0.2):
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = a @ b.t() / tau
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def byol(p, t):
    return (2 - 2 * (F.normalize(p, dim=1) * F.normalize(t, dim=1)).sum(1)).mean()


def moby(q, k, queue, tau=0.2):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    positive = (q * k).sum(1, keepdim=True)
    logits = torch.cat([positive, q @ queue.t()], 1) / tau
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


@torch.no_grad()
def sinkhorn(scores, epsilon=0.05, iterations=3):
    b, k = scores.shape
    q = torch.exp((scores - scores.max()) / epsilon)
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(0, keepdim=True) * k
        q /= q.sum(1, keepdim=True) * b
    return q * b


def swav(s1, s2, tau=0.1):
    q1, q2 = sinkhorn(s1), sinkhorn(s2)
    a = (q1 * F.log_softmax(s2 / tau, dim=1)).sum(1).mean()
    b = (q2 * F.log_softmax(s1 / tau, dim=1)).sum(1).mean()
    return -(a + b) / 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", default="compact", choices=["compact", "resnet18", "resnet50", "regnety-400mf"])
    parser.add_argument("--method", choices=["infonce", "simsiam", "byol", "moby", "swav"], default="infonce")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    trunk, features = trunk_of(args.model)
    trunk = trunk.to(device)
    projector = mlp([features, 512, 256]).to(device)
    has_predictor = args.method in ("simsiam", "byol", "moby")
    predictor = mlp([256, 128, 256]).to(device) if has_predictor else None
    prototypes = (nn.Parameter(F.normalize(torch.randn(128, 256, device=device), dim=1))
                  if args.method == "swav" else None)
    params = list(trunk.parameters()) + list(projector.parameters())
    if predictor is not None:
        params += list(predictor.parameters())
    if prototypes is not None:
        params.append(prototypes)
    target = None
    if args.method in ("byol", "moby"):
        target = nn.Sequential(copy.deepcopy(trunk), copy.deepcopy(projector))
        for p in target.parameters():
            p.requires_grad_(False)
    queue = F.normalize(torch.randn(4096, 256, device=device), dim=1) if args.method == "moby" else None
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    x1 = torch.randn(args.batch, 3, args.size, args.size, device=device)
    x2 = torch.randn(args.batch, 3, args.size, args.size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    online = list(trunk.parameters()) + list(projector.parameters())
    total = args.steps + 1
    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        z1, z2 = projector(trunk(x1)), projector(trunk(x2))
        if args.method == "infonce":
            loss = info_nce(z1, z2)
        elif args.method == "simsiam":
            p1, p2 = predictor(z1), predictor(z2)
            loss = -(F.cosine_similarity(p1, z2.detach()).mean()
                     + F.cosine_similarity(p2, z1.detach()).mean()) / 2
        elif args.method == "swav":
            c = F.normalize(prototypes, dim=1)
            s1, s2 = F.normalize(z1, dim=1) @ c.t(), F.normalize(z2, dim=1) @ c.t()
            loss = swav(s1, s2)
        else:
            p1, p2 = predictor(z1), predictor(z2)
            with torch.no_grad():
                t1, t2 = target(x1), target(x2)
            if args.method == "byol":
                loss = (byol(p1, t2) + byol(p2, t1)) / 2
            else:
                loss = (moby(p1, t2, queue) + moby(p2, t1, queue)) / 2
                keys = F.normalize(torch.cat([t1, t2]), dim=1)
                queue = torch.cat([queue[len(keys):], keys])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            if target is not None:
                m = 1 - (1 - 0.99) * (math.cos(math.pi * (step + 1) / total) + 1) / 2
                for t, o in zip(target.parameters(), online):
                    t.mul_(m).add_(o, alpha=1 - m)
            if prototypes is not None:
                prototypes.copy_(F.normalize(prototypes, dim=1))
        sync()
        if step > 0:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    if args.json:
        print(json.dumps({"s_per_step": med, "torch": torch.__version__, "method": args.method,
                          "model": args.model, "size": args.size, "batch": args.batch,
                          "threads": args.threads, "device": args.device}))
        return
    print(
        f"torch {torch.__version__} {args.method} {args.model} @{args.size}px batch {args.batch} x2 views, "
        f"{args.threads} threads: median {med:.3f} s/step ({1 / med:.3f} steps/s) over {len(times)} steps"
    )


if __name__ == "__main__":
    main()
