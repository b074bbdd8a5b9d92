#!/usr/bin/env bash
# Builds natview's "multiview" development dataset: 1,000 3-D objects, each photographed from 8
# named camera kinds (front, front-left, left, back-left, back, back-right, right, top), like the
# photos of a marketplace listing. One listing per object (object-000 … object-999, less
# object-168 whose mesh is broken: 999 listings, 7,992 images), label = the object's colour
# name (10 names), and the camera kind, yaw, pitch and distance as manifest columns, so a whole
# kind of view can be held out (`natview eval … --queries-where camera=top`).
#
# The meshes are pybullet's random_urdfs (pybullet_data/random_urdfs/000-999), rendered on the
# CPU with pybullet's TinyRenderer (scripts/render_multiview.py). pybullet and its data are under
# the zlib licence; its LICENSE is copied into OUT/licenses/. Nothing here is committed: data/ is
# git-ignored. Rerunning rebuilds the same images (seeded); the venv is reused.
#
#   scripts/build-multiview.sh                       # → data/multiview (1,000 objects × 8 views)
#   scripts/build-multiview.sh OUT [--objects N]     # another folder / fewer objects
#   (any further options go to render_multiview.py: --views, --size, --seed)
set -euo pipefail
cd "$(dirname "$0")/.."

PYBULLET=pybullet==3.2.7     # has a manylinux wheel for CPython 3.11 (no C++ build)
venv=data/.venv-multiview

out=data/multiview
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  out=$1
  shift
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pybullet, numpy, PIL' 2>/dev/null ||
   [ "$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("pybullet"))')" != "${PYBULLET#pybullet==}" ]; then
  "$venv/bin/pip" install --quiet --only-binary=pybullet "$PYBULLET" numpy pillow
fi

rm -rf "$out/images" "$out/manifest.csv"
mkdir -p "$out"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$venv/bin/python" scripts/render_multiview.py --out "$out" "$@"
echo "built the multiview set in $out ($(du -sh "$out" | cut -f1), $(($(wc -l <"$out/manifest.csv") - 1)) images)"
