"""The whole job on photographs: `natview embed` against PyTorch + torchvision's DataLoader and
ONNX Runtime, on the photo set bench/make-photo-set.py builds (12, 3 and 1 MP JPEGs), with
EfficientNet-Lite0 and natview's shipped weights everywhere; images/s and the peak memory of
each process tree, medians of alternating rounds. Also decoding alone per core (natview's
scaled decode vs Pillow's `draft`), and the network alone (natview vs ONNX Runtime vs PyTorch
on the same preprocessed inputs). Called by bench/compare.py (`--cases photos`).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "models/effnet-lite0.safetensors"
SIZE = 224
BATCH = 16


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tree_rss(pid):
    """Resident bytes of a process and all its descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


def timed(cmd, env=None):
    """Runs `cmd`; returns (seconds, peak resident bytes of its process tree, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    poller.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{err[-3000:]}")
    return seconds, peak[0], out


# ------------------------------------------------------------------ the peers (subprocesses)

PEER = r'''
import sys, time, json, os
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

kind, folder, threads, workers, onnx_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
SIZE, BATCH = 224, 16
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".jpg"))
# EfficientNet-Lite's normalisation: (x - 127) / 128 on 0-255 values.
to_input = transforms.Compose([
    transforms.Resize(SIZE), transforms.CenterCrop(SIZE), transforms.PILToTensor(),
    transforms.Lambda(lambda x: (x.float() - 127.0) / 128.0)])

class Photos(Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        im = Image.open(files[i])
        im.draft("RGB", (2 * SIZE, 2 * SIZE))  # libjpeg-turbo's DCT scaling, as natview's
        im = ImageOps.exif_transpose(im).convert("RGB")
        return to_input(im)

loader = DataLoader(Photos(), batch_size=BATCH, num_workers=workers)
if kind == "torch":
    sys.path.insert(0, os.environ["NATVIEW_BENCH_DIR"])
    from compare import torch_effnet_lite0
    model = torch_effnet_lite0(os.environ["NATVIEW_WEIGHTS"])
    run = lambda x: model(x).numpy()
else:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    run = lambda x: session.run(None, {"input": x.numpy()})[0]
rows = 0
with torch.inference_mode():
    for batch in loader:
        rows += len(run(batch))
print(json.dumps({"rows": rows}))
'''


def export_onnx(scratch):
    """EfficientNet-Lite0 with the shipped weights, pooled features, as ONNX (opset 17)."""
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from compare import torch_effnet_lite0

    path = scratch / "effnet-lite0.onnx"
    if not path.exists():
        model = torch_effnet_lite0(WEIGHTS)
        torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), str(path), opset_version=17,
                          input_names=["input"], output_names=["features"],
                          dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    return path


def natview_embed(natview, folder, threads):
    """`natview embed` of the folder from scratch (its workspace removed first)."""
    shutil.rmtree(folder / ".natview", ignore_errors=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), NATVIEW_MODELS=str(ROOT / "models"))
    return timed([natview, "embed", str(folder), "--model", "effnet-lite0", "--quiet"], env=env)


def peer_job(kind, folder, threads, onnx, scratch):
    script = scratch / "photos_peer.py"
    script.write_text(PEER)
    env = dict(os.environ, NATVIEW_WEIGHTS=str(WEIGHTS), OMP_NUM_THREADS=str(threads),
               NATVIEW_BENCH_DIR=str(ROOT / "bench"))
    # Two loader workers beside the network's threads: the DataLoader users run.
    return timed([sys.executable, str(script), kind, str(folder), str(threads), "2", str(onnx)],
                 env=env)


def jpeg_files(folder):
    """The .jpg files under `folder`, sorted."""
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".jpg"))


def square_input(im):
    """The centred square of a PIL image, resized to the network's input (bilinear)."""
    from PIL import Image

    w, h = im.size
    s = min(w, h)
    return im.resize((SIZE, SIZE), Image.BILINEAR, box=((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2))


def case_photos(natview, natview_bench, photos, threads, rounds, scratch):
    rows = []
    onnx = export_onnx(scratch)
    for size_name in ["12mp", "3mp", "1mp"]:
        folder = photos / size_name
        if not folder.is_dir():
            log(f"photos: {folder} missing (bench/make-photo-set.py); skipped")
            continue
        n = len(jpeg_files(folder))
        runs = {"natview": [], "PyTorch DataLoader": [], "ONNX Runtime + DataLoader": []}
        peaks = {k: [] for k in runs}
        for r in range(rounds):
            for name in runs:
                if name == "natview":
                    secs, peak, _ = natview_embed(natview, folder, threads)
                elif name == "PyTorch DataLoader":
                    secs, peak, _ = peer_job("torch", folder, threads, onnx, scratch)
                else:
                    secs, peak, _ = peer_job("onnx", folder, threads, onnx, scratch)
                runs[name].append(n / secs)
                peaks[name].append(peak / 2**20)
                log(f"photos {size_name} round {r + 1}: {name} {n / secs:.1f} images/s, peak {peak / 2**20:.0f} MiB")
        med = {k: statistics.median(v) for k, v in runs.items()}
        mem = {k: max(v) for k, v in peaks.items()}
        fastest = max(v for k, v in med.items() if k != "natview")
        rows.append({
            "case": f"photos {size_name}: whole job (decode + network + natview's thumbnails), {n} JPEGs",
            "unit": "images/s", "natview": med["natview"],
            "peers": {k: v for k, v in med.items() if k != "natview"},
            "ratio": med["natview"] / fastest, "goal": "≥ 1.0× the fastest peer",
            "met": med["natview"] >= fastest,
            "note": "peak MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()),
        })
    # Decoding alone, one thread each.
    folder = photos / "12mp"
    if folder.is_dir():
        nv, pil = [], []
        for _ in range(rounds):
            out = subprocess.run([natview_bench, "decode", str(folder), "--size", str(SIZE),
                                  "--limit", "120", "--json"], capture_output=True, text=True,
                                 env=dict(os.environ, RAYON_NUM_THREADS="1"))
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            nv.append(json.loads(out.stdout)["images_per_sec"])
            pil.append(pillow_decode(folder, 120))
        nv_med, pil_med = statistics.median(nv), statistics.median(pil)
        rows.append({
            "case": "photos 12mp: decode + resize to the 224-px input alone, one core, 120 JPEGs",
            "unit": "images/s", "natview": nv_med, "peers": {"Pillow draft + resize": pil_med},
            "ratio": nv_med / pil_med, "goal": "≥ 1/1.1 of Pillow's draft",
            "met": nv_med >= pil_med / 1.1, "note": "",
        })
    rows.append(network_row(natview_bench, photos, threads, rounds, onnx, scratch))
    return rows


def network_row(natview_bench, photos, threads, rounds, onnx, scratch, count=64):
    """The network alone on the same preprocessed photos: natview's forward pass against ONNX
    Runtime's session and PyTorch's module (EfficientNet-Lite0 @224, batch 16)."""
    import onnxruntime as ort
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT / "bench"))
    from compare import Natview, forward_row, torch_effnet_lite0

    arrays = []
    for path in jpeg_files(photos / "1mp")[:count]:
        im = square_input(Image.open(path).convert("RGB"))
        arrays.append((np.asarray(im, dtype=np.float32).transpose(2, 0, 1) - 127.0) / 128.0)
    images = np.ascontiguousarray(np.stack(arrays))
    images_path = scratch / "photos-preprocessed.npy"
    np.save(images_path, images)
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    run = lambda: np.concatenate([session.run(None, {"input": images[i:i + BATCH]})[0]
                                  for i in range(0, len(images), BATCH)])
    run()  # warm-up

    def ort_rate(passes=5):
        """ONNX Runtime's median of `passes` timed passes, as natview's `--repeat 5`."""
        rates = []
        for _ in range(passes):
            t = time.perf_counter()
            run()
            rates.append(len(images) / (time.perf_counter() - t))
        return statistics.median(rates)

    # natview and ONNX Runtime alternate within each round, five timed passes each: single
    # passes of 64 images (a fifth of a second) moved by ±15 % between runs on a shared host.
    row = forward_row(
        Natview(natview_bench, threads), "network alone", torch_effnet_lite0(WEIGHTS),
        torch.from_numpy(images), images_path, scratch / "photos-natview-out.npy",
        ("--model", "effnet-lite0", "--weights", WEIGHTS), rounds, BATCH, 1.0,
        f"photos: the network alone, EfficientNet-Lite0 @{SIZE}, batch {BATCH}, {count} photos",
        repeat=5, other_peer=ort_rate)
    ort_rate = statistics.median(row.pop("other_rates"))
    out = run()
    mine = np.load(scratch / "photos-natview-out.npy")
    out = out / np.linalg.norm(out, axis=1, keepdims=True)
    cosine = float((mine * out).sum(axis=1).min())
    row["peers"] = {f"ONNX Runtime {ort.__version__}": ort_rate, **row["peers"]}
    row["ratio"] = row["natview"] / ort_rate
    row["goal"] = "≥ 1.0× ONNX Runtime"
    row["met"] = row["ratio"] >= 1.0
    row["note"] += f"; vs ONNX Runtime min cosine {cosine:.6f}"
    return row


def pillow_decode(folder, limit):
    from PIL import Image, ImageOps

    files = jpeg_files(folder)[:limit]
    started = time.perf_counter()
    for path in files:
        im = Image.open(path)
        im.draft("RGB", (2 * SIZE, 2 * SIZE))
        square_input(ImageOps.exif_transpose(im).convert("RGB"))
    return len(files) / (time.perf_counter() - started)
