"""natview against the libraries users would otherwise pick, on the same inputs, in one run.

Reads the files `natview-bench vectors` wrote (base.npy, queries.npy, pca512.npy,
images-*.npy), runs each case's natview command (`natview-bench forward|ann|exact|pca --json`)
and its peers (PyTorch, hnswlib, FAISS, NumPy, scikit-learn) alternately, and prints one
Markdown table of medians and ratios, preceded by the machine, versions and command.
bench/run.sh sets everything up and calls this; see BENCHMARKS.md.

    python bench/compare.py --natview target/bench/dist/natview-bench --data data/bench
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EF_SWEEP = [10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512]
RECALL_TARGETS = [0.90, 0.95, 0.99]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Natview:
    def __init__(self, binary, threads):
        self.binary = binary
        self.env = dict(os.environ, RAYON_NUM_THREADS=str(threads))

    def run(self, *args):
        cmd = [self.binary, *map(str, args), "--quiet", "--json"]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- embedding (PyTorch)


def torch_compact():
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width)
            )

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            return F.relu(h + self.downsample(x))

    class Compact(nn.Module):
        """natview's compact ResNet, with the tensor names of its safetensors files."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(32)
            c_in = 32
            for i, w in enumerate([32, 64, 128, 256]):
                setattr(self, f"layer{i + 1}", nn.Sequential(Block(c_in, w, 2)))
                c_in = w

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
            return h.mean(dim=(2, 3))

    return Compact()


def torch_effnet_lite0(weights, variant="efficientnet-lite0"):
    """EfficientNet-Lite0 (or another `variant`) of the PyPI package `efficientnet-lite-pytorch`
    (the architecture the shipped weights come from) with natview's shipped weights, returning
    the pooled features."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from safetensors.torch import load_file

    net = EfficientNet.from_name(variant)
    missing, unexpected = net.load_state_dict(load_file(str(weights)), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), missing

    class Pooled(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.extract_features(x).mean((2, 3))

    return Pooled(net).eval()


def load_weights(model, path):
    import torch
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing, _ = model.load_state_dict(
        {k: v for k, v in state.items() if k in model.state_dict()}, strict=False
    )
    wanted = [m for m in missing if not m.endswith("num_batches_tracked")]
    if wanted:
        raise SystemExit(f"{path}: missing tensors {wanted[:5]}")
    return model.eval()


def torch_forward(model, images, batch):
    import torch

    with torch.inference_mode():
        out = [model(images[i : i + batch]) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def case_embedding(nv, data, threads, rounds, weights_dir):
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.set_num_threads(threads)
    rows = []
    compact_weights = Path(__file__).resolve().parent.parent / "models/compact-emoji.safetensors"
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18()
    resnet.fc = torch.nn.Identity()
    # Random weights (no download here); perturbed batch-norm statistics so they matter.
    for m in resnet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    resnet18_weights = weights_dir / "resnet18-random.safetensors"
    save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, str(resnet18_weights))
    effnet_weights = Path(__file__).resolve().parent.parent / "models/effnet-lite0.safetensors"
    cases = [
        ("compact", 64, 16, 256, compact_weights, load_weights(torch_compact(), compact_weights), 0.8),
        ("resnet18", 224, 16, 64, resnet18_weights, resnet.eval(), 0.8),
        ("effnet-lite0", 224, 16, 64, effnet_weights, torch_effnet_lite0(effnet_weights), 1.0),
    ]
    for model, size, batch, count, weights, tmodel, goal in cases:
        array = np.load(data / f"images-{model}.npy")[:count]
        subset = weights_dir / f"images-{model}-{count}.npy"
        np.save(subset, np.ascontiguousarray(array))
        images = torch.from_numpy(array)
        rows.append(
            forward_row(
                nv, f"embedding {model}", tmodel, images, subset,
                weights_dir / f"natview-{model}-out.npy", ("--model", model, "--weights", weights),
                rounds, batch, goal,
                f"embedding {model} @{size}px, batch {batch}, {len(images)} images",
            )
        )
    return rows


def case_effnet_lite2(nv, threads, rounds, scratch, count=64, batch=16):
    """The stronger shipped model, EfficientNet-Lite2, at its own 260 px: natview with
    `models/effnet-lite2.safetensors` against the PyPI `efficientnet-lite-pytorch` network
    holding the same weights, on demo images preprocessed here ((x - 127) / 128)."""
    import torch

    torch.set_num_threads(threads)
    weights = Path(__file__).resolve().parent.parent / "models/effnet-lite2.safetensors"
    size = 260
    images_path = scratch / f"demo-{size}-{count}-centred.npy"
    np.save(images_path, demo_images(count, size, centred127=True))
    images = torch.from_numpy(np.load(images_path))
    return [
        forward_row(
            nv, "embedding effnet-lite2", torch_effnet_lite0(weights, "efficientnet-lite2"),
            images, images_path, scratch / "natview-effnet-lite2-out.npy",
            ("--model", "effnet-lite2", "--weights", weights), rounds, batch, 1.0,
            f"embedding effnet-lite2 @{size}px, batch {batch}, {count} images",
        )
    ]


def forward_row(nv, label, tmodel, images, images_path, out_path, model_args, rounds, batch, goal, case,
                repeat=1, other_peer=None):
    """natview's `forward` and PyTorch's module on the same preprocessed images, alternating
    `rounds` times: the table row of their median images/s and the lowest cosine per image.
    `repeat`: natview's timed passes per round (their median); `other_peer`: a function run in
    each round after natview's, returning a third rate (its medians land in `other_rates`)."""
    import torch

    ours, theirs, others = [], [], []
    torch_forward(tmodel, images[:batch], batch)  # warm-up
    for r in range(rounds):
        log(f"{label}: round {r + 1}/{rounds}")
        res = nv.run(
            "forward", "--input", images_path, "--out", out_path, "--repeat", repeat,
            *model_args, "--batch", batch, "--cpu",
        )
        ours.append(res["images_per_s"])
        if other_peer is not None:
            others.append(other_peer())
        t = time.perf_counter()
        reference = torch_forward(tmodel, images, batch)
        theirs.append(len(images) / (time.perf_counter() - t))
    mine = np.load(out_path)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = float((mine * reference).sum(axis=1).min())
    a, b = statistics.median(ours), statistics.median(theirs)
    return {
        "case": case,
        "unit": "images/s (higher is better)",
        "natview": a,
        "peers": {f"PyTorch {torch.__version__}": b},
        "ratio": a / b,
        "goal": f"≥ {goal}× PyTorch",
        "met": a / b >= goal and cosine >= 0.999,
        "note": f"min cosine per image {cosine:.6f}",
        **({"other_rates": others} if other_peer is not None else {}),
    }


def demo_images_224(count):
    """`count` demo images preprocessed as torchvision does for ResNets and ConvNeXts (square
    centre crop, 224 px, ImageNet mean/std): the same input for natview and PyTorch."""
    return demo_images(count, 224, centred127=False)


def demo_images(count, size, centred127):
    """`count` demo images, square centre crop, bilinear to `size` px, normalised by ImageNet
    mean/std or (EfficientNet-Lite's) (x - 127) / 128: the same input for natview and PyTorch."""
    from PIL import Image

    root = Path(__file__).resolve().parent.parent / "assets/demo/images"
    files = sorted(root.glob("*/*"))[:count]
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    out = []
    for f in files:
        im = Image.open(f).convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        pixels = np.asarray(im, dtype=np.float32)
        x = (pixels - 127.0) / 128.0 if centred127 else (pixels / 255.0 - mean) / std
        out.append(x.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out))


def randomised(model):
    """Random batch-norm statistics, layer norms and layer scales (a fresh network's are
    0/1 and 1e-6), so that every tensor matters to the output."""
    import torch

    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
        if isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == "LayerNorm2d":
            m.weight.data.uniform_(0.75, 1.25, generator=g)
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):
            p.data.uniform_(0.1, 0.5, generator=g)
    return model.eval()


def torch_demo_224(threads, scratch, count):
    """PyTorch set to `threads` and seeded, and `count` demo images preprocessed once at 224 px:
    as a tensor, and saved for natview's `forward`."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    images_np = demo_images_224(count)
    images_path = scratch / f"demo-224-{count}.npy"
    np.save(images_path, images_np)
    return torch.from_numpy(images_np), images_path


def case_vit(nv, threads, rounds, scratch, count=64, batch=16):
    """ViT-S/16 and ViT-B/16 at 224 px (timm's classes, random weights, class-token pre-logits)
    on both sides: timm's module under PyTorch, and natview opening the state dict
    `torch.save` wrote (`--model checkpoint`)."""
    import timm
    import torch

    images, images_path = torch_demo_224(threads, scratch, count)

    class PreLogits(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    rows = []
    for name, arch in [("ViT-S/16", "vit_small_patch16_224"), ("ViT-B/16", "vit_base_patch16_224")]:
        model = randomised(timm.create_model(arch, pretrained=False))
        weights = scratch / f"{arch}-random.pth"
        torch.save(model.state_dict(), weights)
        rows.append(
            forward_row(
                nv, f"vit {name}", PreLogits(model).eval(), images, images_path,
                scratch / f"natview-{arch}-out.npy",
                ("--model", "checkpoint", "--weights", weights), rounds, batch, 1.0,
                f"vision transformer: timm {name} @224px (torch.save state dict), batch {batch}, "
                f"{count} images",
            )
        )
    return rows


def case_own_encoders(nv, threads, rounds, scratch, count=64, batch=16):
    """ResNet-50 and ConvNeXt-T at 224 px with the same random weights on both sides: PyTorch's
    module, and natview opening the file `torch.save(model.state_dict())` wrote (`--model
    checkpoint`, the path an analyst's own checkpoint takes)."""
    import torch
    import torchvision

    images, images_path = torch_demo_224(threads, scratch, count)

    resnet = randomised(torchvision.models.resnet50())
    resnet_file = scratch / "resnet50-random.pth"
    torch.save(resnet.state_dict(), resnet_file)
    resnet.fc = torch.nn.Identity()

    convnext = randomised(torchvision.models.convnext_tiny())
    convnext_file = scratch / "convnext_tiny-random.pth"
    torch.save(convnext.state_dict(), convnext_file)

    class PreLogits(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            c = self.net.classifier
            return c[1](c[0](self.net.avgpool(self.net.features(x))))

    rows = []
    for name, weights, tmodel in [
        ("ResNet-50", resnet_file, resnet.eval()),
        ("ConvNeXt-T", convnext_file, PreLogits(convnext).eval()),
    ]:
        rows.append(
            forward_row(
                nv, f"own encoder {name}", tmodel, images, images_path,
                scratch / f"natview-{weights.stem}-out.npy",
                ("--model", "checkpoint", "--weights", weights), rounds, batch, 1.0,
                f"own checkpoint: {name} @224px (torch.save state dict), batch {batch}, {count} images",
            )
        )
    return rows


# ---------------------------------------------------------------- training step (PyTorch)


def case_train(nv, threads, rounds, methods=("simsiam", "infonce", "byol", "moby", "swav")):
    """One fine-tuning step of each method (compact @64 px, batch 64 x 2 views, random input),
    `natview-bench train` and bench/torch_train_step.py alternately; steps/s medians."""
    script = Path(__file__).resolve().parent / "torch_train_step.py"
    rows = []
    for method in methods:
        ours, theirs = [], []
        for r in range(rounds):
            log(f"train {method}: round {r + 1}/{rounds}")
            res = nv.run("train", "--method", method, "--steps", 5, "--model", "compact",
                         "--untrained", "--size", 64, "--batch", 64, "--cpu")
            ours.append(1 / res["s_per_step"])
            out = subprocess.run(
                [sys.executable, str(script), "--method", method, "--steps", "5", "--batch", "64",
                 "--size", "64", "--threads", str(threads), "--json"],
                capture_output=True, text=True, check=True,
            )
            torch_res = json.loads(out.stdout.strip().splitlines()[-1])
            theirs.append(1 / torch_res["s_per_step"])
        a, b = statistics.median(ours), statistics.median(theirs)
        rows.append(
            {
                "case": f"fine-tuning step {method}, compact @64px, batch 64 x 2 views",
                "unit": "steps/s (higher is better)",
                "natview": a,
                "peers": {f"PyTorch {torch_res['torch']}": b},
                "ratio": a / b,
                "goal": "step time ≤ 1.2× PyTorch (ratio ≥ 0.83)",
                "met": a / b >= 1 / 1.2,
                "note": "",
            }
        )
    return rows


# ---------------------------------------------------------------- HNSW


def exact_truth(base, queries, k):
    scores = queries @ base.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return top


def recall(found, truth):
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def qps_at(sweep, target):
    """Queries/s at the smallest ef whose recall reaches `target` (None if none does)."""
    for point in sorted(sweep, key=lambda p: p["ef"]):
        if point["recall"] >= target:
            return point["qps"], point["ef"]
    return None, None


def hnswlib_run(base, queries, truth, m, ef_c, threads, k):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=base.shape[1])
    t = time.perf_counter()
    index.init_index(max_elements=len(base), ef_construction=ef_c, M=m, random_seed=0)
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    build = time.perf_counter() - t
    sweep = []
    for ef in EF_SWEEP:
        index.set_ef(ef)
        t = time.perf_counter()
        labels, _ = index.knn_query(queries, k=k, num_threads=1)
        secs = time.perf_counter() - t
        sweep.append({"ef": ef, "recall": recall(labels, truth), "qps": len(queries) / secs})
    return {"build_s": build, "sweep": sweep}


def faiss_run(base, queries, truth, m, ef_c, threads, k):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_c
    t = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    sweep = []
    for ef in EF_SWEEP:
        index.hnsw.efSearch = ef
        t = time.perf_counter()
        _, labels = index.search(queries, k)
        secs = time.perf_counter() - t
        sweep.append({"ef": ef, "recall": recall(labels, truth), "qps": len(queries) / secs})
    faiss.omp_set_num_threads(threads)
    return {"build_s": build, "sweep": sweep}


def median_sweep(runs):
    out = []
    for i, point in enumerate(runs[0]["sweep"]):
        out.append(
            {
                "ef": point["ef"],
                "recall": statistics.median(r["sweep"][i]["recall"] for r in runs),
                "qps": statistics.median(r["sweep"][i]["qps"] for r in runs),
            }
        )
    return out


def case_hnsw(nv, data, threads, rounds, m=16, ef_c=200, k=10):
    import faiss
    import hnswlib

    base = np.load(data / "base.npy")
    queries = np.load(data / "queries.npy")
    truth = exact_truth(base, queries, k)
    runs = {"natview": [], "hnswlib": [], "faiss": []}
    for r in range(rounds):
        log(f"hnsw {base.shape[0]} × {base.shape[1]}: round {r + 1}/{rounds}")
        runs["natview"].append(
            nv.run(
                "ann", "--base", data / "base.npy", "--queries", data / "queries.npy",
                "--m", m, "--ef-construction", ef_c, "--k", k,
                "--ef", ",".join(map(str, EF_SWEEP)),
            )
        )
        runs["hnswlib"].append(hnswlib_run(base, queries, truth, m, ef_c, threads, k))
        runs["faiss"].append(faiss_run(base, queries, truth, m, ef_c, threads, k))
    names = {
        "hnswlib": f"hnswlib {getattr(hnswlib, '__version__', '0.8')}",
        "faiss": f"FAISS {faiss.__version__} HNSWFlat",
    }
    build = {lib: statistics.median(x["build_s"] for x in rs) for lib, rs in runs.items()}
    sweeps = {lib: median_sweep(rs) for lib, rs in runs.items()}
    shape = f"{base.shape[0]:,} × {base.shape[1]}, M={m}, ef_c={ef_c}"
    rows = [
        {
            "case": f"HNSW build, {shape}, {threads} threads",
            "unit": "seconds (lower is better)",
            "natview": build["natview"],
            "peers": {names[l]: build[l] for l in ("hnswlib", "faiss")},
            "ratio": build["natview"] / build["hnswlib"],
            "goal": "≤ 1.5× hnswlib",
            "met": build["natview"] <= 1.5 * build["hnswlib"],
            "note": "",
        }
    ]
    for target in RECALL_TARGETS:
        got = {lib: qps_at(sweeps[lib], target) for lib in sweeps}
        ours = got["natview"][0]
        ref = got["hnswlib"][0]
        ratio = ours / ref if ours and ref else None
        rows.append(
            {
                "case": f"HNSW queries/s at recall@{k} ≥ {target:.2f}, 1 thread, {len(queries)} queries",
                "unit": "queries/s (higher is better)",
                "natview": ours,
                "peers": {names[l]: got[l][0] for l in ("hnswlib", "faiss")},
                "ratio": ratio,
                "goal": "≥ hnswlib" if target == 0.95 else "",
                "met": (ratio is not None and ratio >= 1.0) if target == 0.95 else None,
                "note": "ef: " + ", ".join(f"{l} {got[l][1]}" for l in ("natview", "hnswlib", "faiss")),
            }
        )
    return rows, sweeps


# ---------------------------------------------------------------- exact search, quadrant chart


def numpy_quadrant(base, views_per_image, listings, views, seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(base) // views_per_image, listings, replace=False)
    rows = (chosen[:, None] * views_per_image + np.arange(views)[None, :]).ravel()
    sub = base[rows]
    sim = sub @ sub.T
    n = len(rows)
    iu = np.triu_indices(n, 1)
    same = (iu[0] // views) == (iu[1] // views)
    values = sim[iu]
    intra, inter = values[same], values[~same]
    auc = roc_auc_score(same, values)
    return sim, intra.mean(), inter.mean(), auc


def case_exact(nv, data, threads, rounds, k=10):
    import faiss

    meta = json.loads((data / "meta.json").read_text())
    base = np.load(data / "base.npy")
    queries = np.load(data / "queries.npy")
    faiss.omp_set_num_threads(threads)
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    ours, numpy_s, faiss_s, ours_q, numpy_q = [], [], [], [], []
    for r in range(rounds):
        log(f"exact search and quadrant: round {r + 1}/{rounds}")
        res = nv.run(
            "exact", "--base", data / "base.npy", "--queries", data / "queries.npy",
            "--k", k, "--views-per-image", meta["views_per_image"], "--repeat", 3,
        )
        ours.append(res["search_s"])
        ours_q.append(res["quadrant_s"])
        reps = []
        for _ in range(3):
            t = time.perf_counter()
            scores = queries @ base.T
            top = np.argpartition(-scores, k, axis=1)[:, :k]
            order = np.take_along_axis(scores, top, 1).argsort(axis=1)[:, ::-1]
            np.take_along_axis(top, order, 1)
            reps.append(time.perf_counter() - t)
        numpy_s.append(statistics.median(reps))
        reps = []
        for _ in range(3):
            t = time.perf_counter()
            flat.search(queries, k)
            reps.append(time.perf_counter() - t)
        faiss_s.append(statistics.median(reps))
        reps = []
        for rep in range(3):
            t = time.perf_counter()
            numpy_quadrant(base, meta["views_per_image"], 64, 8, rep)
            reps.append(time.perf_counter() - t)
        numpy_q.append(statistics.median(reps))
    a, n, f = (statistics.median(x) for x in (ours, numpy_s, faiss_s))
    aq, nq = statistics.median(ours_q), statistics.median(numpy_q)
    best = min(n, f)
    return [
        {
            "case": f"exact top-{k}, {len(queries)} queries over {base.shape[0]:,} × {base.shape[1]}",
            "unit": "seconds (lower is better)",
            "natview": a,
            "peers": {f"NumPy {np.__version__}": n, f"FAISS {faiss.__version__} FlatIP": f},
            "ratio": a / best,
            "goal": "",
            "met": None,
            "note": "ratio to the faster peer",
        },
        {
            "case": "quadrant chart 64 listings × 8 views (512² cosines + intra/inter stats + AUC)",
            "unit": "seconds (lower is better)",
            "natview": aq,
            "peers": {f"NumPy + scikit-learn AUC": nq},
            "ratio": aq / nq,
            "goal": "",
            "met": None,
            "note": "",
        },
    ]


# ---------------------------------------------------------------- PCA


def case_pca(nv, data, threads, rounds, scratch):
    import sklearn
    from sklearn.decomposition import PCA

    x = np.load(data / "pca512.npy")
    ours, theirs = [], []
    out = scratch / "natview-pca.npy"
    for r in range(rounds):
        log(f"pca {x.shape[0]} × {x.shape[1]}: round {r + 1}/{rounds}")
        ours.append(nv.run("pca", "--input", data / "pca512.npy", "--out", out, "--repeat", 1)["seconds"])
        t = time.perf_counter()
        reference = PCA(n_components=2, random_state=0).fit_transform(x)
        theirs.append(time.perf_counter() - t)
    mine = np.load(out)
    agreement = min(abs(np.corrcoef(mine[:, i], reference[:, i])[0, 1]) for i in range(2))
    a, b = statistics.median(ours), statistics.median(theirs)
    return [
        {
            "case": f"PCA {x.shape[0]:,} × {x.shape[1]} → 2-D",
            "unit": "seconds (lower is better)",
            "natview": a,
            "peers": {f"scikit-learn {sklearn.__version__}": b},
            "ratio": a / b,
            "goal": "≤ scikit-learn",
            "met": a <= b,
            "note": f"|correlation| of components with scikit-learn's ≥ {agreement:.6f}",
        }
    ]


# ---------------------------------------------------------------- 2-D layouts (umap-learn, openTSNE)


def peer_layout(method, x, threads):
    if method == "umap":
        import umap

        # No random_state: umap-learn then runs single-threaded.
        return umap.UMAP(n_neighbors=15, min_dist=0.1, n_jobs=threads).fit_transform(x)
    import openTSNE

    return np.asarray(
        openTSNE.TSNE(
            perplexity=30, n_jobs=threads, negative_gradient_method="fft", initialization="pca", random_state=0
        ).fit(x)
    )


def case_layout(nv, data, threads, rounds, scratch):
    """UMAP and t-SNE of the 105,882 × 256 embeddings: natview from the embeddings (its PCA to
    50 dimensions included in its time) against umap-learn and openTSNE given natview's PCA-50
    input (so they get the same neighbours), timed after a warm-up (numba JIT); quality of both
    layouts measured by the same natview code against the 256-d embeddings."""
    import importlib.metadata as md

    base = data / "base.npy"
    pca50 = scratch / "layout-input.npy"
    nv.run("layout", "--input", base, "--save-input", pca50)
    x = np.load(pca50)
    log(f"layouts: warming up umap-learn and openTSNE on 3,000 rows")
    for method in ("umap", "tsne"):
        peer_layout(method, x[:3000], threads)
    rows = []
    for method, peer in (("umap", f"umap-learn {md.version('umap-learn')}"), ("tsne", f"openTSNE {md.version('openTSNE')}")):
        ours, theirs = [], []
        mine, theirs_out = scratch / f"natview-{method}.npy", scratch / f"peer-{method}.npy"
        for r in range(rounds):
            log(f"{method} {x.shape[0]:,} points: round {r + 1}/{rounds}")
            ours.append(nv.run("layout", "--input", base, "--method", method, "--out", mine)["seconds"])
            t = time.perf_counter()
            layout = peer_layout(method, x, threads)
            theirs.append(time.perf_counter() - t)
            np.save(theirs_out, np.asarray(layout, dtype=np.float32))
        q_ours = nv.run("layout-quality", "--input", base, "--layout", mine)
        q_peer = nv.run("layout-quality", "--input", base, "--layout", theirs_out)
        a, b = statistics.median(ours), statistics.median(theirs)
        label = {"umap": "UMAP", "tsne": "t-SNE"}[method]
        rows.append(
            {
                "case": f"{label} {x.shape[0]:,} × 256 → 2-D",
                "unit": "seconds (lower is better)",
                "natview": a,
                "peers": {peer: b},
                "ratio": a / b,
                "goal": "≤ 1.0× and < 60 s",
                "met": a <= b and a < 60,
                "note": "natview's time includes its PCA to 50-d and kNN graph",
            }
        )
        for key, name in (("knn_preservation", "kNN preservation@10"), ("trustworthiness", "trustworthiness@10")):
            rows.append(
                {
                    "case": f"{label} {name} ({q_ours['sampled']:,} sampled points)",
                    "unit": "higher is better",
                    "natview": q_ours[key],
                    "peers": {peer: q_peer[key]},
                    "ratio": q_ours[key] / q_peer[key],
                    "goal": "≥ peer − 0.02",
                    "met": q_ours[key] >= q_peer[key] - 0.02,
                    "note": "",
                }
            )
    return rows


def case_layout_1m(nv, data, threads, scratch, count=1_000_000):
    """natview's UMAP of a 1M-point input made from the 105,882 embeddings (each row repeated
    with seeded noise, renormalised): time and peak memory. umap-learn is not run at 1M here."""
    import resource

    big = scratch / "base-1m.npy"
    if not big.exists():
        base = np.load(data / "base.npy")
        rng = np.random.default_rng(0)
        rows = base[np.arange(count) % base.shape[0]] + rng.normal(0, 0.02, (count, base.shape[1])).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        np.save(big, rows.astype(np.float32))
        del base, rows
    log(f"umap {count:,} points (natview only)")
    result = nv.run("layout", "--input", big, "--method", "umap")
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in result["phases"].items())
    return [
        {
            "case": f"UMAP {count:,} × 256 → 2-D (natview only)",
            "unit": "seconds",
            "natview": result["seconds"],
            "peers": {},
            "ratio": None,
            "goal": "minutes, bounded memory",
            "met": result["seconds"] < 900,
            "note": f"peak resident {peak_gib:.1f} GiB incl. the 0.95 GiB input; {phases}",
        }
    ]


# ---------------------------------------------------------------- report


def fmt(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}" if v >= 0.001 else f"{v:.2e}"


def machine_lines(args, natview_version):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    import importlib.metadata as md

    versions = []
    for pkg in ["torch", "torchvision", "faiss-cpu", "hnswlib", "scikit-learn", "umap-learn", "openTSNE", "numpy"]:
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            versions.append(f"{pkg} (missing)")
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
    mem = sh("free -g | awk '/^Mem:/{print $2}'")
    return [
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {cpu}, {os.cpu_count()} logical CPUs, {mem} GiB; {platform.platform()}",
        f"- Threads: {args.threads} for builds, batches, exact search and PCA; HNSW queries on 1 thread",
        f"- natview: {natview_version}; {sh('rustc --version')}",
        f"- Python {platform.python_version()}: " + ", ".join(versions),
        f"- Command: `{os.environ.get('NATVIEW_BENCH_COMMAND', ' '.join(sys.argv))}`, "
        f"{args.rounds} alternating rounds, medians",
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--natview", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="embedding,effnet-lite2,own-encoders,vit,train,hnsw,exact,pca,layout,layout1m")
    parser.add_argument("--natview-cli", help="the natview command (the photos case runs `natview embed`)")
    parser.add_argument("--photos", type=Path, default=Path("data/photos"),
                        help="the photo set (bench/make-photo-set.py) for the photos case")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    nv = Natview(args.natview, args.threads)
    scratch = args.data / "scratch"
    scratch.mkdir(exist_ok=True)
    rows, extra = [], {}
    started = time.perf_counter()
    for case in args.cases.split(","):
        if case == "embedding":
            rows += case_embedding(nv, args.data, args.threads, args.rounds, scratch)
        elif case == "effnet-lite2":
            rows += case_effnet_lite2(nv, args.threads, args.rounds, scratch)
        elif case == "own-encoders":
            rows += case_own_encoders(nv, args.threads, args.rounds, scratch)
        elif case == "vit":
            rows += case_vit(nv, args.threads, args.rounds, scratch)
        elif case == "train":
            rows += case_train(nv, args.threads, args.rounds)
        elif case == "hnsw":
            hnsw_rows, extra["hnsw_sweeps"] = case_hnsw(nv, args.data, args.threads, args.rounds)
            rows += hnsw_rows
        elif case == "exact":
            rows += case_exact(nv, args.data, args.threads, args.rounds)
        elif case == "pca":
            rows += case_pca(nv, args.data, args.threads, args.rounds, scratch)
        elif case == "layout":
            rows += case_layout(nv, args.data, args.threads, args.rounds, scratch)
        elif case == "layout1m":
            rows += case_layout_1m(nv, args.data, args.threads, scratch)
        elif case == "photos":
            from photos import case_photos

            cli = args.natview_cli or str(Path(args.natview).with_name("natview"))
            rows += case_photos(cli, args.natview, args.photos, args.threads, args.rounds, scratch)
        elif case == "photos-network":
            from photos import export_onnx, network_row

            rows.append(network_row(args.natview, args.photos, args.threads, args.rounds,
                                    export_onnx(scratch), scratch))
        else:
            raise SystemExit(f"unknown case {case}")
    version = subprocess.run(
        [args.natview, "--version"], capture_output=True, text=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print("\n".join(machine_lines(args, f"{version} (git {commit})")))
    print()
    print("| case | unit | natview | peers | natview / first peer | goal | met |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        peers = "; ".join(f"{name} {fmt(v)}" for name, v in row["peers"].items())
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}×"
        note = f" ({row['note']})" if row["note"] else ""
        print(
            f"| {row['case']}{note} | {row['unit']} | {fmt(row['natview'])} | {peers} | {ratio} | {row['goal']} | {met} |"
        )
    if "hnsw_sweeps" in extra:
        print("\nHNSW sweeps (medians): ef → recall@10 / queries/s")
        for lib, sweep in extra["hnsw_sweeps"].items():
            print(f"- {lib}: " + ", ".join(f"{p['ef']}: {p['recall']:.4f}/{p['qps']:,.0f}" for p in sweep))
    print(f"\nBenchmark time: {time.perf_counter() - started:.0f} s")
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, **extra}, indent=1))


if __name__ == "__main__":
    main()
