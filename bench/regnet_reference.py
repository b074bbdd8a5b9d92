"""Reference for natview's RegNetY-400MF: torchvision's `regnet_y_400mf` with weights filled by a
hash that natview's test recomputes (so no weights file is committed), run on CPU torch in
evaluation mode and in training mode (batch statistics). Writes, under OUT_DIR:

- regnet_y_400mf.tensors.txt: every float tensor of torchvision's state_dict, `name AxBxC`
- regnet_y_400mf.reference.safetensors: `eval` and `train`, the pooled features [3, 440] of the
  hashed input [3, 3, 80, 80]

The hash (also in src/encoder/regnet.rs's test): FNV-1a 64 of the tensor name gives a base;
value i is the top 24 bits of splitmix64(base + (i + 1) * 0x9E3779B97F4A7C15) over 2^24, a
uniform u in [0, 1), mapped by tensor kind (computed in float64, rounded once to float32):
conv/fc weights (2u - 1) * sqrt(6 / fan_in); biases (2u - 1) * 0.1; batch-norm weight 0.5 + u,
bias and running_mean (u - 0.5) * 0.4, running_var 0.5 + u; the input 2u - 1.

    bench/.venv/bin/python bench/regnet_reference.py tests/data
"""

import sys

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def fnv1a(name: str) -> np.uint64:
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(h)


def uniform(name: str, count: int) -> np.ndarray:
    z = fnv1a(name) + (np.arange(count, dtype=np.uint64) + np.uint64(1)) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def hashed(name: str, shape, bn_names) -> np.ndarray:
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, count)
    module, kind = name.rsplit(".", 1)
    if module in bn_names:
        values = {
            "weight": 0.5 + u,
            "bias": (u - 0.5) * 0.4,
            "running_mean": (u - 0.5) * 0.4,
            "running_var": 0.5 + u,
        }[kind]
    elif kind == "weight":
        fan_in = int(np.prod(shape[1:]))
        values = (2 * u - 1) * np.sqrt(6.0 / fan_in)
    else:
        values = (2 * u - 1) * 0.1
    return values.astype(np.float32).reshape(shape)


def main() -> None:
    out = sys.argv[1]
    model = torchvision.models.regnet_y_400mf(weights=None)
    bn_names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    state = model.state_dict()
    lines = []
    with torch.no_grad():
        for name, tensor in state.items():
            if tensor.dtype != torch.float32:
                continue
            tensor.copy_(torch.from_numpy(hashed(name, tuple(tensor.shape), bn_names)))
            lines.append(f"{name} {'x'.join(str(d) for d in tensor.shape)}")
    model.load_state_dict(state)
    model.fc = torch.nn.Identity()
    x = torch.from_numpy((2 * uniform("input", 3 * 3 * 80 * 80) - 1).astype(np.float32))
    x = x.reshape(3, 3, 80, 80)
    with torch.no_grad():
        model.eval()
        evaluated = model(x)
        model.train()
        trained = model(x)
    with open(f"{out}/regnet_y_400mf.tensors.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    save_file(
        {"eval": evaluated.contiguous(), "train": trained.contiguous()},
        f"{out}/regnet_y_400mf.reference.safetensors",
        metadata={"torch": torch.__version__, "torchvision": torchvision.__version__},
    )
    print(f"{len(lines)} tensors; eval features |x| max {evaluated.abs().max():.4f}, "
          f"train {trained.abs().max():.4f}; torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
