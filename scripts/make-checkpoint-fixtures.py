#!/usr/bin/env python3
"""Writes tests/fixtures/checkpoints/: small randomly initialised encoders built and saved by the
real libraries and training frameworks, as their users' training code saves them, and each
one's output on the same preprocessed inputs. tests/checkpoints.rs checks that natview opens
every file with `--weights` alone (no conversion) and gives the same embeddings.

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install torch torchvision timm lightning lightly \
        fvcore iopath && /tmp/fx/bin/pip install --no-deps classy_vision==0.7.0
    /tmp/fx/bin/python scripts/make-checkpoint-fixtures.py

(bench/.venv, made by bench/run.sh, has torch, torchvision and timm; add the rest to it.)

The layouts are the libraries' own; the networks are narrower or shallower than the published
sizes so that the fixtures stay a few MB (natview reads the size from the shapes, so a narrow
network exercises the same code as a wide one):
- moco_resnet50.pth: a ResNet-50 (bottleneck blocks 3-4-6-3, timm's ResNet class at 1/8
  width, whose names are torchvision's: asserted below) inside MoCo v2's module (encoder_q,
  encoder_k, queue; MLP `fc`), under DDP's `module.`, saved as MoCo's main_moco.py saves:
  {"epoch", "arch", "state_dict", "optimizer"} after a real SGD step.
- lightning_byol.ckpt: lightly's BYOL recipe (backbone = nn.Sequential of a ResNet-18's
  children, BYOL projection/prediction heads, momentum copies) as a LightningModule, trained
  two steps by a real Lightning Trainer and saved by Trainer.save_checkpoint.
- byol_online_target.pth: a BYOL module with `online_network` (encoder + projector),
  `target_network` and `predictor`, saved as {"model": state_dict, "optimizer": …}.
- dino_resnet_fp16.pth: DINO's checkpoint ({"student": DDP(MultiCropWrapper), "teacher":
  MultiCropWrapper, "optimizer", "epoch"}), the teacher stored in half precision.
- vissl_regnety.torch: classy-vision's RegNetY (SE), wrapped as VISSL's RegNet trunk does
  (`_feature_blocks`: conv1 = stem, res2…res5 = the stages) and saved in VISSL's checkpoint
  nesting classy_state_dict → base_model → model → trunk/heads. vissl itself no longer installs
  with current torch; its trunk wrapper is reproduced here from vissl/models/trunks/regnet.py.
- torchvision_regnetx.pth: torchvision's RegNet class with RegNetX block parameters (no SE),
  a bare state dict.
- torchvision_regnety_ddp.pth: torchvision's RegNetY as {"model": DDP state dict}.
- timm_convnext.pth: timm's ConvNeXt (depths 1-1-2-1, dims 16…128) saved as timm's train.py
  saves ({"epoch", "arch", "state_dict", "state_dict_ema", "optimizer", "version"}).
- torchvision_convnext.pth: torchvision's ConvNeXt class at the same size, a bare state dict.
- torchvision_efficientnet.pth: torchvision's EfficientNet class with B0's stage table at
  width 0.25 and depth 0.5 (all seven stages, SE, SiLU, symmetric padding), {"model": …}.
Layer norms and layer scales get random values too (a fresh ConvNeXt's layer scale of 1e-6
would make every block nearly the identity).
"""
import copy
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "checkpoints")
SIZE = 64
torch.manual_seed(0)
np.random.seed(0)


def randomise_norms(model):
    """Random batch-norm statistics and affine terms: a fresh network's are 0/1, which would let
    a reader that skipped them pass."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(m, nn.LayerNorm) or type(m).__name__ == "LayerNorm2d":
            n = m.weight.shape[0]
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    for name, p in model.named_parameters():
        if name.endswith("gamma") or name.endswith("layer_scale"):
            p.data.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.25)
    return model


@torch.no_grad()
def features(trunk, inputs):
    trunk.eval()
    out = trunk(inputs)
    return out.flatten(1).float().numpy()


def timm_resnet(bottleneck, layers, channels, stem):
    import timm.models.resnet as r

    block = r.Bottleneck if bottleneck else r.BasicBlock
    return r.ResNet(block, layers, channels=channels, stem_width=stem, num_classes=10)


def check_timm_names_are_torchvisions():
    import timm
    import torchvision

    for tv, tm in [("resnet50", "resnet50"), ("resnet18", "resnet18"), ("wide_resnet50_2", "wide_resnet50_2")]:
        a = {k: tuple(v.shape) for k, v in getattr(torchvision.models, tv)().state_dict().items()}
        b = {k: tuple(v.shape) for k, v in timm.create_model(tm).state_dict().items()}
        assert a == b, f"torchvision {tv} and timm {tm} differ"


class Ddp(nn.Module):
    """What DistributedDataParallel adds to a state dict: the `module.` prefix."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def pooled(backbone):
    """A trunk that returns pooled features (the reference natview must reproduce)."""
    return nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def one_sgd_step(model, params_of, inputs):
    opt = torch.optim.SGD(params_of(model), lr=1e-6, momentum=0.9, weight_decay=1e-4)
    model.train()
    model(inputs).float().pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    return opt


class MoCo(nn.Module):
    """MoCo v2's module (facebookresearch/moco, moco/builder.py): query and key encoders with an
    MLP head in `fc`, and the queue buffer."""

    def __init__(self, make_encoder, dim=16, queue=64):
        super().__init__()
        self.encoder_q = make_encoder()
        self.encoder_k = make_encoder()
        mlp = self.encoder_q.fc.weight.shape[1]
        self.encoder_q.fc = nn.Sequential(nn.Linear(mlp, mlp), nn.ReLU(), nn.Linear(mlp, dim))
        self.encoder_k.fc = nn.Sequential(nn.Linear(mlp, mlp), nn.ReLU(), nn.Linear(mlp, dim))
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        self.register_buffer("queue", nn.functional.normalize(torch.randn(dim, queue), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def forward(self, x):
        return self.encoder_q(x)


def make_moco(inputs, cases):
    moco = Ddp(MoCo(lambda: randomise_norms(timm_resnet(True, [3, 4, 6, 3], (8, 16, 32, 64), 8))))
    opt = one_sgd_step(moco, lambda m: [p for p in m.module.encoder_q.parameters()], inputs)
    q = copy.deepcopy(moco.module.encoder_q)
    q.fc = nn.Identity()
    torch.save(
        {"epoch": 200, "arch": "resnet50", "state_dict": moco.state_dict(), "optimizer": opt.state_dict()},
        os.path.join(OUT, "moco_resnet50.pth"),
    )
    cases.append(case("moco_resnet50.pth", "ResNet-50", "state_dict.module.encoder_q.", features(q, inputs)))


def make_lightning_byol(inputs, cases):
    import lightning as L
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
    from lightly.models.utils import deactivate_requires_grad, update_momentum

    class BYOL(L.LightningModule):
        """lightly's BYOL example (docs/examples/pytorch_lightning/byol.py)."""

        def __init__(self):
            super().__init__()
            resnet = randomise_norms(timm_resnet(False, [2, 2, 2, 2], (8, 16, 32, 64), 8))
            self.backbone = nn.Sequential(*list(resnet.children())[:-2])
            self.projection_head = BYOLProjectionHead(64, 128, 32)
            self.prediction_head = BYOLPredictionHead(32, 128, 32)
            self.backbone_momentum = copy.deepcopy(self.backbone)
            self.projection_head_momentum = copy.deepcopy(self.projection_head)
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.projection_head_momentum)
            self.criterion = NegativeCosineSimilarity()
            self.save_hyperparameters({"input_size": SIZE, "lr": 0.06})

        def forward(self, x):
            y = self.backbone(x).mean((2, 3))
            return self.prediction_head(self.projection_head(y))

        def forward_momentum(self, x):
            y = self.backbone_momentum(x).mean((2, 3))
            return self.projection_head_momentum(y).detach()

        def training_step(self, batch, batch_idx):
            update_momentum(self.backbone, self.backbone_momentum, m=0.99)
            update_momentum(self.projection_head, self.projection_head_momentum, m=0.99)
            x0, x1 = batch
            p0, z0 = self.forward(x0), self.forward_momentum(x0)
            p1, z1 = self.forward(x1), self.forward_momentum(x1)
            return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.06)

    model = BYOL()
    views = torch.randn(8, 3, SIZE, SIZE)
    data = torch.utils.data.TensorDataset(views, views.flip(3))
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=4))
    path = os.path.join(OUT, "lightning_byol.ckpt")
    trainer.save_checkpoint(path)
    cases.append(case("lightning_byol.ckpt", "ResNet-18", "state_dict.backbone.", features(pooled(model.backbone), inputs)))


class OnlineNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        resnet = randomise_norms(timm_resnet(False, [2, 2, 2, 2], (8, 16, 32, 64), 8))
        self.encoder = nn.Sequential(*list(resnet.children())[:-1])
        self.projector = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 32))

    def forward(self, x):
        return self.projector(self.encoder(x).flatten(1))


class Byol(nn.Module):
    def __init__(self):
        super().__init__()
        self.online_network = OnlineNetwork()
        self.target_network = copy.deepcopy(self.online_network)
        self.predictor = nn.Sequential(nn.Linear(32, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 32))

    def forward(self, x):
        return self.predictor(self.online_network(x))


def make_byol(inputs, cases):
    byol = Byol()
    opt = one_sgd_step(byol, lambda m: list(m.online_network.parameters()) + list(m.predictor.parameters()), torch.randn(4, 3, SIZE, SIZE))
    torch.save({"model": byol.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, os.path.join(OUT, "byol_online_target.pth"))
    cases.append(case("byol_online_target.pth", "ResNet-18", "model.online_network.encoder.", features(byol.online_network.encoder, inputs)))


class MultiCropWrapper(nn.Module):
    """DINO's wrapper (facebookresearch/dino, utils.py): backbone + head."""

    def __init__(self, backbone, head):
        super().__init__()
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = head


def make_dino(inputs, cases):
    def net():
        return MultiCropWrapper(
            randomise_norms(timm_resnet(True, [1, 1, 1, 1], (8, 16, 32, 64), 8)),
            nn.Sequential(nn.Linear(256, 64), nn.GELU(), nn.Linear(64, 32)),
        )

    student, teacher = Ddp(net()), net()
    teacher.half()
    torch.save(
        {"student": student.state_dict(), "teacher": teacher.state_dict(), "epoch": 10, "args": {"arch": "resnet50"}},
        os.path.join(OUT, "dino_resnet_fp16.pth"),
    )
    cases.append(case("dino_resnet_fp16.pth", "ResNet-14", "teacher.backbone.", features(teacher.float().backbone, inputs)))


def classy_regnet(se):
    from classy_vision.models import RegNet

    config = {"name": "regnet", "depth": 8, "w_0": 16, "w_a": 16.0, "w_m": 2.0, "group_width": 8, "bot_mul": 1.0}
    if se:
        config["se_ratio"] = 0.25
    return randomise_norms(RegNet.from_config(config))


class VisslRegNetTrunk(nn.Module):
    """vissl/models/trunks/regnet.py: the classy RegNet's stem and stages as `_feature_blocks`."""

    def __init__(self, model):
        super().__init__()
        blocks = [("conv1", model.stem)]
        for name, stage in model.trunk_output.named_children():
            assert name.startswith("block")
            blocks.append((f"res{len(blocks) + 1}", stage))
        blocks.append(("avgpool", nn.AdaptiveAvgPool2d((1, 1))))
        blocks.append(("flatten", nn.Flatten(1)))
        self._feature_blocks = nn.ModuleDict(OrderedDict(blocks))

    def forward(self, x):
        for block in self._feature_blocks.values():
            x = block(x)
        return x


def make_vissl(inputs, cases):
    trunk = VisslRegNetTrunk(classy_regnet(True))
    width = features(trunk, torch.zeros(1, 3, SIZE, SIZE)).shape[1]
    heads = nn.ModuleList([nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 16))])
    checkpoint = {
        "phase_idx": 3,
        "iteration": 40,
        "iteration_num": 40,
        "train_phase_idx": 1,
        "type": "consolidated",
        "loss": {},
        "classy_state_dict": {
            "train": True,
            "base_model": {"model": {"trunk": trunk.state_dict(), "heads": heads.state_dict()}, "meta": {}},
            "meters": [],
            "optimizer": {},
            "phase_idx": 3,
            "train_phase_idx": 1,
            "num_updates": 40,
            "losses": [],
            "hooks": {},
            "loss": {},
        },
    }
    torch.save(checkpoint, os.path.join(OUT, "vissl_regnety.torch"))
    cases.append(case("vissl_regnety.torch", "RegNetY", "classy_state_dict.base_model.model.trunk.", features(trunk, inputs)))


def torchvision_regnet(se):
    from torchvision.models.regnet import BlockParams, RegNet

    params = BlockParams.from_init_params(depth=8, w_0=16, w_a=16.0, w_m=2.0, group_width=8, se_ratio=0.25 if se else None)
    return randomise_norms(RegNet(params, num_classes=10))


def make_torchvision_regnets(inputs, cases):
    x = torchvision_regnet(False)
    torch.save(x.state_dict(), os.path.join(OUT, "torchvision_regnetx.pth"))
    x.fc = nn.Identity()
    cases.append(case("torchvision_regnetx.pth", "RegNetX", "", features(x, inputs)))

    y = torchvision_regnet(True)
    torch.save({"model": Ddp(y).state_dict()}, os.path.join(OUT, "torchvision_regnety_ddp.pth"))
    y.fc = nn.Identity()
    cases.append(case("torchvision_regnety_ddp.pth", "RegNetY", "model.module.", features(y, inputs)))


def make_convnexts(inputs, cases):
    import timm
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    model = randomise_norms(timm.create_model("convnext_tiny", depths=(1, 1, 2, 1), dims=(16, 32, 64, 128), num_classes=10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    model(torch.randn(2, 3, SIZE, SIZE)).pow(2).mean().backward()
    opt.step()
    ema = copy.deepcopy(model)
    torch.save(
        {"epoch": 5, "arch": "convnext_tiny", "state_dict": model.state_dict(), "state_dict_ema": ema.state_dict(),
         "optimizer": opt.state_dict(), "version": 2, "args": None, "metric": 0.5},
        os.path.join(OUT, "timm_convnext.pth"),
    )
    model.eval()
    with torch.no_grad():
        out = model.forward_head(model.forward_features(inputs), pre_logits=True).numpy()
    cases.append(case("timm_convnext.pth", "ConvNeXt (dims 16-32-64-128, depths 1-1-2-1)", "state_dict.", out))

    settings = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 2), CNBlockConfig(128, None, 1)]
    tv = randomise_norms(ConvNeXt(settings, num_classes=10))
    torch.save(tv.state_dict(), os.path.join(OUT, "torchvision_convnext.pth"))
    tv.eval()
    with torch.no_grad():
        out = tv.classifier[1](tv.classifier[0](tv.avgpool(tv.features(inputs)))).numpy()
    cases.append(case("torchvision_convnext.pth", "ConvNeXt (dims 16-32-64-128, depths 1-1-2-1)", "", out))


def make_efficientnet(inputs, cases):
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    net = randomise_norms(EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=10))
    torch.save({"model": net.state_dict(), "epoch": 1}, os.path.join(OUT, "torchvision_efficientnet.pth"))
    net.eval()
    with torch.no_grad():
        out = net.avgpool(net.features(inputs)).flatten(1).numpy()
    cases.append(case("torchvision_efficientnet.pth", "EfficientNet (stem 8", "model.", out))


def case(file, family, prefix, outputs):
    name = os.path.splitext(file)[0] + ".outputs.npy"
    np.save(os.path.join(OUT, name), outputs.astype(np.float32))
    return {"file": file, "family": family, "prefix": prefix, "dim": int(outputs.shape[1]), "outputs": name}


def main():
    os.makedirs(OUT, exist_ok=True)
    check_timm_names_are_torchvisions()
    inputs = torch.randn(3, 3, SIZE, SIZE)
    np.save(os.path.join(OUT, "inputs.npy"), inputs.numpy().astype(np.float32))
    cases = []
    make_moco(inputs, cases)
    make_lightning_byol(inputs, cases)
    make_byol(inputs, cases)
    make_dino(inputs, cases)
    make_vissl(inputs, cases)
    make_torchvision_regnets(inputs, cases)
    make_convnexts(inputs, cases)
    make_efficientnet(inputs, cases)
    versions = {"torch": torch.__version__}
    for module in ["torchvision", "timm", "lightning", "lightly", "classy_vision"]:
        versions[module] = getattr(__import__(module), "__version__", "?")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"input_size": SIZE, "inputs": "inputs.npy", "versions": versions, "cases": cases}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(cases)} cases, {total / 1e6:.1f} MB in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
