#!/usr/bin/env bash
# Builds the GPU-check bundle here (no GPU needed): the CUDA builds of `natview` and
# `natview-bench` (stripped), the shipped weights the check uses, small checkpoints of every
# encoder family (the test fixtures: ResNet, RegNetX/Y, ConvNeXt, EfficientNet-B, ViT), fixed
# inputs with the CPU's outputs for each family (computed by the same binary with --cpu), a
# slice of the demo to fine-tune on, the PyTorch side of the benchmark, and scripts/gpu-check.sh
# — as one archive of at most 64 MiB to copy to a machine with an NVIDIA GPU.
#
#   scripts/gpu-bundle.sh [OUT.tar.xz]        # default target/gpu-bundle.tar.xz
#
# Needs what scripts/cuda-env.sh needs (pip, gcc) and numpy for Python 3 (NATVIEW_PYTHON).
# The build goes to target/cuda (CARGO_TARGET_DIR), kept warm between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/gpu-bundle.tar.xz}
python=${NATVIEW_PYTHON:-python3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}

# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh
cargo build --release --features cuda --bin natview
cargo build --release -p natview-bench --no-default-features --features natview-encoder/cuda

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/natview-gpu-check
mkdir -p "$b"/{bin,models,checkpoints,inputs,reference,data}
for bin in natview natview-bench; do
  cp "$CARGO_TARGET_DIR/release/$bin" "$b/bin/"
  strip "$b/bin/$bin"
done
cp models/effnet-lite0.safetensors models/compact-emoji.safetensors models/LICENSE-effnet-lite0.txt \
  "$b/models/"
fixtures=tests/fixtures/checkpoints
cp "$fixtures"/{moco_resnet50.pth,torchvision_regnetx.pth,torchvision_regnety_ddp.pth} \
  "$fixtures"/{torchvision_convnext.pth,torchvision_efficientnet.pth,inputs.npy} "$b/checkpoints/"
cp tests/fixtures/vit/{timm_vit.pth,inputs_32.npy} "$b/checkpoints/"
cp scripts/gpu-check.sh scripts/gpu_check.py bench/torch_train_step.py "$b/"

# Fixed inputs (seeded, normalised as the models take them): 8 images at 224 and at 64 px.
"$python" - "$b/inputs" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(0)
for size in (224, 64):
    np.save(f"{sys.argv[1]}/inputs_{size}.npy", rng.standard_normal((8, 3, size, size), dtype=np.float32))
EOF

# The encoder families: name, then natview-bench's arguments (input file, size, model).
families=$b/families.tsv
{
  printf 'effnet-lite0\tinputs/inputs_224.npy\t--model effnet-lite0\n'
  printf 'compact\tinputs/inputs_64.npy\t--model compact\n'
  printf 'resnet50\tinputs/inputs_224.npy\t--model resnet50 --untrained --seed 0\n'
  printf 'regnety-400mf\tinputs/inputs_224.npy\t--model regnety-400mf --untrained --seed 0\n'
  printf 'resnet50-moco\tcheckpoints/inputs.npy\t--weights checkpoints/moco_resnet50.pth --weights-key state_dict.module.encoder_q. --size 64\n'
  printf 'regnetx\tcheckpoints/inputs.npy\t--weights checkpoints/torchvision_regnetx.pth --size 64\n'
  printf 'regnety\tcheckpoints/inputs.npy\t--weights checkpoints/torchvision_regnety_ddp.pth --size 64\n'
  printf 'convnext\tcheckpoints/inputs.npy\t--weights checkpoints/torchvision_convnext.pth --size 64\n'
  printf 'efficientnet-b\tcheckpoints/inputs.npy\t--weights checkpoints/torchvision_efficientnet.pth --size 64\n'
  printf 'vit\tcheckpoints/inputs_32.npy\t--weights checkpoints/timm_vit.pth --size 32\n'
} >"$families"

# The CPU's outputs of each family, by the bundled binary itself (--cpu).
while IFS=$'\t' read -r name input args; do
  # shellcheck disable=SC2086 # the arguments are words
  (cd "$b" && NATVIEW_MODELS=models bin/natview-bench forward --cpu --input "$input" \
    --out "reference/$name.npy" --repeat 1 $args >/dev/null)
  echo "reference: $name"
done <"$families"

# A slice of the demo to fine-tune on: 40 listings × 5 designs.
"$python" - "$b/data" <<'EOF'
import csv, os, shutil, sys
out = sys.argv[1]
rows = list(csv.DictReader(open("assets/demo/manifest.csv")))
listings = []
for r in rows:
    if r["listing"] not in listings:
        listings.append(r["listing"])
keep = set(listings[:40])
kept = [r for r in rows if r["listing"] in keep]
for r in kept:
    os.makedirs(os.path.join(out, os.path.dirname(r["path"])), exist_ok=True)
    shutil.copy(os.path.join("assets/demo", r["path"]), os.path.join(out, r["path"]))
with open(os.path.join(out, "manifest.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(kept)
EOF

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out.tmp" natview-gpu-check
mv "$out.tmp" "$out"
size=$(stat -c %s "$out")
echo "bundle: $out ($((size / 1024 / 1024)) MiB)"
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
  echo "the bundle is over 64 MiB" >&2
  exit 1
fi
