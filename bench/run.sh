#!/usr/bin/env bash
# natview against PyTorch, hnswlib, FAISS, NumPy and scikit-learn: one entry point.
#
#   bench/run.sh                  # everything; prints the table, saves it in bench/results/
#   bench/run.sh --rounds 5       # more alternating rounds (default 3)
#   bench/run.sh --cases hnsw,pca # some cases only (embedding, effnet-lite2, own-encoders, vit, train, hnsw, exact, pca, layout, layout1m, photos)
#   bench/run.sh --cases photos   # the whole job on photographs (12/3/1 MP JPEGs): natview embed
#                                 # vs PyTorch's DataLoader and ONNX Runtime; needs the photo set,
#                                 # built by bench/make-photo-set.py from Debian's wallpaper
#                                 # packages (apt-get install mate-backgrounds palapeli-data
#                                 # plasma-workspace-wallpapers lomiri-wallpapers) into data/photos
#   bench/run.sh --cases photos-network   # only its last row: the network alone against ONNX Runtime
#
# Idempotent steps, each skipped when already done:
#   1. a Python venv in bench/.venv with the peers from PyPI (torch CPU use, torchvision,
#      faiss-cpu, hnswlib, scikit-learn, safetensors, efficientnet-lite-pytorch, umap-learn, openTSNE); NATVIEW_BENCH_PYTHON=/path/to/python
#      uses another interpreter that has them;
#   2. the `dist` build (release + thin LTO) of the benchmark binary `natview-bench` (headless:
#      `--no-default-features`, into target/bench) and of the `natview` CLI;
#   3. the full emoji set (scripts/build-demo.sh --full → data/emoji-full, from npm);
#   4. the shared inputs (`natview-bench vectors` → data/bench: 105,882 × 256 embeddings of
#      every image and 13 augmented views each with the shipped model, 1,000 query views,
#      the 512-d PCA input, preprocessed images);
# then bench/compare.py runs each case's natview command and its peers alternately and prints
# one Markdown table of medians and ratios with the machine, versions and command.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

venv=bench/.venv
python=${NATVIEW_BENCH_PYTHON:-$venv/bin/python}
setup_pid=
if ! "$python" -c 'import torch, torchvision, faiss, hnswlib, sklearn, safetensors, efficientnet_lite_pytorch, umap, openTSNE, timm, onnx, onnxruntime' 2>/dev/null; then
  # Mostly downloading (about 2 min, 5.7 GB: PyPI's torch brings its CUDA libraries, used here
  # on the CPU), so it runs beside the Rust build.
  echo "== setting up $venv (PyPI: torch, torchvision, faiss-cpu, hnswlib, scikit-learn), log in $venv.log" >&2
  python=$venv/bin/python
  (python3 -m venv "$venv" &&
    "$python" -m pip install --quiet --upgrade pip &&
    "$python" -m pip install --quiet torch torchvision faiss-cpu hnswlib scikit-learn safetensors numpy efficientnet-lite-pytorch umap-learn openTSNE timm onnx onnxruntime) \
    >"$venv.log" 2>&1 &
  setup_pid=$!
fi

echo "== building natview-bench and natview (release, headless)" >&2
# Its own target folder (also for the example that builds the emoji set), so the GUI build
# in target/ is neither replaced nor rebuilt.
export CARGO_TARGET_DIR=target/bench
# The `dist` profile: release with thin LTO, as installs are built.
cargo build --profile dist --no-default-features --quiet -p natview -p natview-bench
bench=$CARGO_TARGET_DIR/dist/natview-bench

if [ ! -f data/emoji-full/manifest.csv ]; then
  echo "== building the full emoji set (data/emoji-full)" >&2
  scripts/build-demo.sh --full
fi

data=data/bench
if [ ! -f "$data/meta.json" ] || [ ! -f "$data/images-effnet-lite0.npy" ] || [ "$data/meta.json" -ot models/compact-emoji.safetensors ]; then
  echo "== embedding the benchmark inputs into $data (about 5 min on 2 cores)" >&2
  "$bench" vectors data/emoji-full/manifest.csv --model compact --out "$data" --views 13 --queries 1000
fi

if [ -n "$setup_pid" ] && ! wait "$setup_pid"; then
  echo "error: setting up $venv failed; see $venv.log" >&2
  exit 1
fi

if [[ " $* " == *photos* ]] && [ ! -d data/photos/1mp ]; then
  echo "== building the photo set (data/photos, about 3 min)" >&2
  "$python" bench/make-photo-set.py data/photos
fi

mkdir -p bench/results
stamp=$(date -u +%Y%m%d-%H%M)
NATVIEW_BENCH_COMMAND="bench/run.sh $*" "$python" bench/compare.py --natview "$bench" --data "$data" \
  --json-out "bench/results/$stamp.json" "$@" | tee "bench/results/$stamp.md"
cp "bench/results/$stamp.md" bench/results/latest.md
cp "bench/results/$stamp.json" bench/results/latest.json
echo "== bench/run.sh finished in $(( $(date +%s) - started )) s; table in bench/results/latest.md" >&2
