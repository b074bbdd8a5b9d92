"""Writes a torchvision ResNet's weights and a reference input/output pair as safetensors, for
examples/check_torchvision.rs. Weights are random (no download) with batch-norm statistics
perturbed so that every layer's eval-mode arithmetic is exercised.

usage: python bench/torchvision_reference.py resnet18 OUT_DIR [SIZE]
"""
import sys

import torch
import torchvision
from safetensors.torch import save_file

name, out = sys.argv[1], sys.argv[2]
size = int(sys.argv[3]) if len(sys.argv) > 3 else 224
torch.manual_seed(0)
model = getattr(torchvision.models, name)(weights=None)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
model.eval()
state = {k: v.contiguous() for k, v in model.state_dict().items() if v.dtype == torch.float32}
save_file(state, f"{out}/{name}.safetensors")
model.fc = torch.nn.Identity()
x = torch.randn(4, 3, size, size)
with torch.no_grad():
    y = model(x)
save_file({"input": x.contiguous(), "expected": y.contiguous()}, f"{out}/{name}-io.safetensors")
print(f"wrote {out}/{name}.safetensors and {out}/{name}-io.safetensors")
