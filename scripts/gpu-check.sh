#!/usr/bin/env bash
# natview's one-command GPU check, run inside the bundle scripts/gpu-bundle.sh makes, on a machine
# with an NVIDIA GPU, its driver (580+), the CUDA 13 libraries and PyTorch — no Rust, no network:
#
#   tar xJf natview-gpu-bundle.tar.xz && natview-gpu-check/gpu-check.sh
#   natview-gpu-check/gpu-check.sh --cpu      # the same checks on the CPU (a dry run)
#
# It runs every encoder family on the GPU against the CPU's outputs (cosine >= 0.9999), a short
# fine-tune of each method (the loss falls; the run is stopped with Ctrl-C and resumes), and the
# benchmark against PyTorch on the same device, and prints one table (work/gpu-check.json keeps
# it). Options after the first go to gpu_check.py (--steps, --images, --batch, --work).
# NATVIEW_PYTHON picks the Python with torch and numpy (default python3); the whole check is cut
# at NATVIEW_GPU_CHECK_TIMEOUT seconds (default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${NATVIEW_PYTHON:-python3}
if ! "$python" -c 'import numpy, torch' 2>/dev/null; then
  echo "gpu-check: $python has no numpy or torch (set NATVIEW_PYTHON)" >&2
  exit 2
fi
# natview's CUDA build loads libcudart.so.13, libcublas(Lt).so.13 and libcurand.so.10: from the
# system when ldconfig knows them, else from the NVIDIA wheels PyTorch's installation brought.
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13'; then
  wheel_libs=$("$python" - <<'PY'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
found = []
for pattern in ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"):
    for root in roots:
        hits = glob.glob(os.path.join(root, "nvidia", "**", pattern), recursive=True)
        if hits:
            found.append(os.path.dirname(hits[0]))
            break
print(":".join(dict.fromkeys(found)))
PY
)
  if [ -n "$wheel_libs" ]; then
    export LD_LIBRARY_PATH="$wheel_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi
exec timeout "${NATVIEW_GPU_CHECK_TIMEOUT:-300}" "$python" "$here/gpu_check.py" --bundle "$here" "$@"
