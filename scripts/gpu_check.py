#!/usr/bin/env python3
"""natview's GPU check, run by scripts/gpu-check.sh inside the bundle scripts/gpu-bundle.sh made:

1. every encoder family of families.tsv on the GPU against the CPU's outputs made when the
   bundle was built (cosine of every row >= 0.9999), then through natview's own CUDA kernels,
   and in half precision (--precision f16: cosine >= 0.999; bf16: >= 0.99);
2. a fine-tune of each method (SimSiam, InfoNCE, BYOL, MoBY, SwAV; compact model, the bundled
   demo slice): the loss falls, and the checkpoint resumes;
3. the benchmark against PyTorch on the same device: forward images/s of EfficientNet-Lite0 and
   ResNet-50 (in f32, and in f16 against PyTorch's model.half()) (natview-bench forward; PyTorch: the same architectures written out below, weights
   random — speed does not depend on them), and one training step per method
   (torch_train_step.py, the PyTorch twin of natview's step);

then prints one table (and writes it as JSON). Needs numpy and torch; `--cpu` runs everything on
the CPU (a dry run of the check where there is no GPU).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("simsiam", "infonce", "byol", "moby", "swav")


def run(cmd, env, cwd, log):
    """Runs `cmd`, appending its output to `log`; returns stdout+stderr, raising on failure."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    text = done.stdout + done.stderr
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n" + text + "\n")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{text[-2000:]}")
    return text


def last_json(text):
    """The last line of `text` that is a JSON object (tools print notes around it)."""
    return json.loads(next(l for l in reversed(text.splitlines()) if l.startswith("{")))


def families(bundle, device_args, env, work, log, label="", floor=0.9999):
    rows = []
    for line in (bundle / "families.tsv").read_text().splitlines():
        name, inputs, args = line.split("\t")
        out = work / f"{name}{label.replace(' ', '-')}.npy"
        started = time.perf_counter()
        try:
            run([str(bundle / "bin/natview-bench"), "forward", *device_args, "--input", inputs,
                 "--out", str(out), "--repeat", "1", *args.split()], env, bundle, log)
            got, ref = np.load(out), np.load(bundle / "reference" / f"{name}.npy")
            cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
            worst = float(cos.min())
            rows.append({"family": name + label, "min_cosine": worst, "ok": worst >= floor,
                         "seconds": time.perf_counter() - started})
        except (RuntimeError, OSError, ValueError) as e:
            rows.append({"family": name + label, "ok": False, "error": str(e).splitlines()[-1]})
    return rows


def interrupted_run(cmd, env, cwd, log, at_step):
    """Runs a fine-tune and stops it with Ctrl-C (SIGINT) once its health line for `at_step`
    is out; returns its output and whether it said it was interrupted."""
    import signal
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, sent = [], False
    for line in proc.stdout:
        lines.append(line)
        if not sent and line.startswith(f"step {at_step}:"):
            proc.send_signal(signal.SIGINT)
            sent = True
    proc.wait()
    text = "".join(lines)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + " (Ctrl-C at step " + str(at_step) + ")\n" + text + "\n")
    return text, "interrupted after step" in text


def finetunes(bundle, device_args, env, work, log, steps):
    rows = []
    for method in METHODS:
        ws = work / f"ws-{method}"
        base = [str(bundle / "bin/natview"), "finetune", "data/manifest.csv", "--model", "compact",
                "--from", "compact", "--method", method, "--batch", "16", "--workspace", str(ws),
                "--steps", str(steps), "--health-every", "10", *device_args]
        try:
            _, interrupted = interrupted_run(base, env, bundle, log, 10)
            text = run(base + (["--resume"] if interrupted else []), env, bundle, log)
            loss = re.search(r"loss \(mean of \d+ steps\): first ([-+0-9.e]+), last ([-+0-9.e]+)", text)
            rate = re.search(r"\(([0-9.]+) steps/s this run\)", text)
            first, last = (float(loss.group(1)), float(loss.group(2))) if loss else (None, None)
            rows.append({
                "method": method, "loss_first": first, "loss_last": last,
                "steps_per_s": float(rate.group(1)) if rate else None,
                "resumed": interrupted,
                "ok": first is not None and last < first and interrupted,
            })
        except RuntimeError as e:
            rows.append({"method": method, "ok": False, "error": str(e).splitlines()[0]})
    return rows


def own_kernel_finetune(bundle, env, work, log, steps):
    """A short EfficientNet-Lite0 fine-tune through natview's own CUDA kernels (the depthwise
    convolutions' gradients included): the loss falls."""
    cmd = [str(bundle / "bin/natview"), "finetune", "data/manifest.csv", "--model", "effnet-lite0",
           "--from", "effnet-lite0", "--method", "infonce", "--batch", "16", "--size", "96",
           "--steps", str(steps), "--workspace", str(work / "ws-own-kernels")]
    try:
        text = run(cmd, dict(env, NATVIEW_CUDA_KERNELS="own"), bundle, log)
        loss = re.search(r"loss \(mean of \d+ steps\): first ([-+0-9.e]+), last ([-+0-9.e]+)", text)
        first, last = (float(loss.group(1)), float(loss.group(2))) if loss else (None, None)
        return {"method": "infonce, effnet-lite0, own CUDA kernels", "loss_first": first,
                "loss_last": last, "resumed": "-", "ok": first is not None and last < first}
    except RuntimeError as e:
        return {"method": "infonce, effnet-lite0, own CUDA kernels", "ok": False,
                "error": str(e).splitlines()[0]}


def torch_models():
    import torch.nn as nn
    import torch.nn.functional as F

    def cbr(c_in, c_out, k, s, groups=1, act=True):
        layers = [nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)

    class MBConv(nn.Module):
        def __init__(self, c_in, c_out, expand, k, s):
            super().__init__()
            mid = c_in * expand
            self.body = nn.Sequential(*([cbr(c_in, mid, 1, 1)] if expand != 1 else []),
                                      cbr(mid, mid, k, s, groups=mid), cbr(mid, c_out, 1, 1, act=False))
            self.skip = s == 1 and c_in == c_out

        def forward(self, x):
            return x + self.body(x) if self.skip else self.body(x)

    class EffNetLite0(nn.Module):
        # (expand, kernel, stride, channels, repeats): EfficientNet-Lite0, no squeeze-excite, ReLU6.
        STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                  (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

        def __init__(self):
            super().__init__()
            blocks, c = [cbr(3, 32, 3, 2)], 32
            for e, k, s, out, n in self.STAGES:
                for i in range(n):
                    blocks.append(MBConv(c, out, e, k, s if i == 0 else 1))
                    c = out
            blocks.append(cbr(c, 1280, 1, 1))
            self.features = nn.Sequential(*blocks)

        def forward(self, x):
            return F.normalize(self.features(x).mean((2, 3)), dim=1)

    class Bottleneck(nn.Module):
        def __init__(self, c_in, width, s):
            super().__init__()
            out = width * 4
            self.body = nn.Sequential(cbr(c_in, width, 1, 1), cbr(width, width, 3, s),
                                      cbr(width, out, 1, 1, act=False))
            self.down = cbr(c_in, out, 1, s, act=False) if s != 1 or c_in != out else None

        def forward(self, x):
            return F.relu(self.body(x) + (self.down(x) if self.down is not None else x))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1)], 64
            for width, n, s in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
                for i in range(n):
                    layers.append(Bottleneck(c, width, s if i == 0 else 1))
                    c = width * 4
            self.features = nn.Sequential(*layers)

        def forward(self, x):
            return F.normalize(self.features(x).mean((2, 3)), dim=1)

    return {"effnet-lite0": EffNetLite0, "resnet50": ResNet50}


def torch_forward(name, images, batch, device, repeat=3, half=False):
    import torch
    torch.backends.cudnn.benchmark = True
    model = torch_models()[name]().to(device).eval()
    x = torch.from_numpy(images).to(device)
    if half:
        model, x = model.half(), x.half()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def once():
        with torch.no_grad():
            for start in range(0, len(x), batch):
                model(x[start:start + batch])
        sync()

    once()
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        once()
        rates.append(len(x) / (time.perf_counter() - t))
    return statistics.median(rates)


def benchmark(bundle, device_args, env, work, log, count, batch, device, steps):
    rows = []
    images = np.random.default_rng(1).standard_normal((count, 3, 224, 224), dtype=np.float32)
    np.save(work / "bench_224.npy", images)
    cases = [("effnet-lite0", ["--model", "effnet-lite0"], env),
             ("resnet50", ["--model", "resnet50", "--untrained", "--seed", "0"], env)]
    if device == "cuda":
        cases.append(("effnet-lite0", ["--model", "effnet-lite0"], dict(env, NATVIEW_CUDA_KERNELS="own")))
        cases += [(name, args + ["--precision", "f16"], env) for name, args, _ in cases[:2]]
    for name, args, case_env in cases:
        own = " own CUDA kernels," if case_env.get("NATVIEW_CUDA_KERNELS") == "own" else ""
        half = "f16" in args
        own += " f16," if half else ""
        row = {"case": f"embed {name} ({own} images/s, batch {batch})".replace("( ", "(")}
        try:
            text = run([str(bundle / "bin/natview-bench"), "forward", *device_args, "--input",
                        str(work / "bench_224.npy"), "--repeat", "3", "--json", "--batch", str(batch),
                        *args], case_env, bundle, log)
            row["natview"] = last_json(text)["images_per_s"]
            row["pytorch"] = torch_forward(name, images, batch, device, half=half)
        except Exception as e:  # a failed row is reported, the rest still runs
            row["error"] = str(e).splitlines()[0]
        rows.append(row)
    for method in METHODS:
        row = {"case": f"train step {method} (steps/s, compact @64 px, batch 16; natview: its whole run, data loading included)"}
        try:
            text = run([sys.executable, str(bundle / "torch_train_step.py"), "--method", method,
                        "--batch", "16", "--size", "64", "--steps", str(steps), "--device", device,
                        "--json"], env, bundle, log)
            row["pytorch"] = 1.0 / last_json(text)["s_per_step"]
        except Exception as e:
            row["error"] = str(e).splitlines()[0]
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--cpu", action="store_true", help="run everything on the CPU (dry run)")
    parser.add_argument("--work", default=None, help="scratch folder (default: BUNDLE/work)")
    parser.add_argument("--steps", type=int, default=50, help="fine-tuning steps per method")
    parser.add_argument("--images", type=int, default=256, help="images per forward benchmark")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    bundle = Path(args.bundle)
    work = Path(args.work or bundle / "work")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "gpu-check.log"
    log.write_text("")
    env = dict(os.environ, NATVIEW_MODELS=str(bundle / "models"))
    device_args = ["--cpu"] if args.cpu else []
    device = "cpu" if args.cpu else "cuda"
    started = time.perf_counter()
    checked = families(bundle, device_args, env, work, log)
    if not args.cpu:
        # natview's own CUDA kernels (off by default until this check passes): the grouped and
        # depthwise convolutions here; their batch norm trains only, in own_kernel_finetune.
        own = dict(env, NATVIEW_CUDA_KERNELS="own")
        checked += families(bundle, device_args, own, work, log, " (own CUDA kernels)")
        checked += families(bundle, device_args + ["--precision", "bf16"], env, work, log,
                            " (bf16)", floor=0.99)
    # f16 (on the CPU too: candle's device-generic ops in half precision).
    checked += families(bundle, device_args + ["--precision", "f16"], env, work, log, " (f16)",
                        floor=0.999)
    report = {"device": device,
              "families": checked,
              "finetunes": finetunes(bundle, device_args, env, work, log, args.steps)}
    if not args.cpu:
        report["finetunes"].append(own_kernel_finetune(bundle, env, work, log, args.steps))
    fine = {r["method"]: r for r in report["finetunes"]}
    report["benchmark"] = benchmark(bundle, device_args, env, work, log, args.images, args.batch,
                                    device, 8)
    for row in report["benchmark"]:
        method = row["case"].split()[2] if row["case"].startswith("train step") else None
        if method in fine and fine[method].get("steps_per_s"):
            # natview's rate is its whole fine-tuning run (data loading and augmentation included).
            row["natview"] = fine[method]["steps_per_s"]
    report["seconds"] = time.perf_counter() - started
    (work / "gpu-check.json").write_text(json.dumps(report, indent=1))
    print_table(report)
    ok = all(r["ok"] for r in report["families"] + report["finetunes"])
    print(f"\n{'PASSED' if ok else 'FAILED'} in {report['seconds']:.0f} s on {device}; "
          f"log: {log}, JSON: {work / 'gpu-check.json'}")
    sys.exit(0 if ok else 1)


def print_table(report):
    print(f"\n| check | natview | PyTorch | ratio | verdict |\n|---|---|---|---|---|")
    for r in report["families"]:
        verdict = "ok" if r["ok"] else "FAIL " + r.get("error", "")
        value = f"min cosine {r['min_cosine']:.6f}" if "min_cosine" in r else "-"
        print(f"| {r['family']} vs the CPU | {value} | - | - | {verdict} |")
    for r in report["finetunes"]:
        verdict = "ok" if r["ok"] else "FAIL " + r.get("error", "")
        value = (f"loss {r['loss_first']:+.3f} → {r['loss_last']:+.3f}, resumed {r['resumed']}"
                 if r.get("loss_first") is not None else "-")
        print(f"| fine-tune {r['method']} | {value} | - | - | {verdict} |")
    for r in report["benchmark"]:
        nv, pt = r.get("natview"), r.get("pytorch")
        ratio = f"{nv / pt:.2f}×" if nv and pt else "-"
        print(f"| {r['case']} | {nv or 0:.1f} | {pt or 0:.1f} | {ratio} | {r.get('error', '')} |")


if __name__ == "__main__":
    main()
