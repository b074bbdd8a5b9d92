#!/usr/bin/env bash
# A CUDA 13.0 toolchain from PyPI wheels, for `cargo build --features cuda` on a machine without a
# CUDA install (and without a GPU): nvcc, its headers and the libraries candle links to, laid out
# as one CUDA_HOME tree under a cache folder, and the environment candle's build scripts read.
#
#   source scripts/cuda-env.sh                        # installs if needed, then sets the
#                                                     #   environment in this shell
#   scripts/cuda-env.sh cargo build --release --features cuda
#                                                     # runs one command with it
#   scripts/cuda-env.sh                               # installs (if needed) and says where
#   scripts/cuda-env.sh --print-env                   # the export lines, for eval or a CI file
#
# Environment (all optional):
#   NATVIEW_CUDA_DIR   the cache folder (default ~/.cache/natview/cuda-13.0; 1.2 GB, from
#                      about 680 MB of wheels)
#   CUDA_COMPUTE_CAP   the GPU generation the kernels are compiled for (default 90: H100/H200;
#                      80 for A100, 89 for L4/RTX 40xx, 120 for RTX 50xx). The build cannot ask a
#                      GPU, so it must be told; kernels for 90 (sm_90a) run on compute 9.0 only.
#   NATVIEW_PYTHON     the Python whose pip fetches the wheels (default python3)
#   NATVIEW_CUDA_STUB_AT_RUNTIME  1: put the stub libcuda on LD_LIBRARY_PATH (lets a CUDA build
#                      start where no NVIDIA driver is installed; it then runs on the CPU);
#                      0: never; unset: only when no libcuda.so.1 is installed on this machine.
#
# CUDA 13.0 on purpose: it matches NVIDIA driver 580, the driver of the GPUs we use; PTX from a
# newer nvcc does not load on an older driver. The wheels are pinned below (13.0.*).
#
# What it makes, under NATVIEW_CUDA_DIR:
#   site/       the wheels, installed with `pip install --target` (all in site/nvidia/cu13)
#   toolkit/    CUDA_HOME: bin, include, nvvm (links into site/), lib64 (links to each library,
#               plus the unversioned libX.so links the wheels lack), lib -> lib64, and
#               lib64/stubs/libcuda.so: a link stub for the driver library (no wheel ships one),
#               compiled here from cuda.h's function names; each returns CUDA_ERROR_STUB_LIBRARY.
#
# When sourced, it never exits your shell: failures are reported and `return` non-zero.

_nvcuda_pins=(
  'nvidia-cuda-nvcc==13.0.*'
  'nvidia-nvvm==13.0.*'
  'nvidia-cuda-crt==13.0.*'
  'nvidia-cuda-runtime==13.0.*'
  'nvidia-cuda-cccl==13.0.*'
  'nvidia-cuda-nvrtc==13.0.*'
  'nvidia-cublas==13.0.*'
  # cuRAND keeps its own numbering: 10.4.0 is the one released with CUDA 13.0.
  'nvidia-curand==10.4.0.*'
)
# Bump when the layout below changes, so that existing caches are rebuilt.
_nvcuda_layout=1

_nvcuda_say() { printf 'cuda-env: %s\n' "$*" >&2; }

# The installation itself. It runs only in a bash process of its own under `set -Eeuo pipefail`
# (this file run as a script; when sourced, as `bash cuda-env.sh --install`), so that strict error
# handling neither leaks into the caller's shell nor is switched off by an `if` around it, and so
# that it may `exit` on failure.
_nvcuda_install() {
  local root="$1" py="${NATVIEW_PYTHON:-python3}" stamp want cu tk f name base stubsrc count defs
  local need version
  stamp="$root/installed"
  want="layout=$_nvcuda_layout ${_nvcuda_pins[*]}"

  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$root/toolkit/bin/nvcc" ]]; then
    return 0
  fi

  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64) ;;
    *) _nvcuda_say "CUDA wheels exist for Linux x86_64 and aarch64 only, not $(uname -sm)"; exit 1 ;;
  esac
  if ! command -v "$py" >/dev/null 2>&1; then
    _nvcuda_say "needs Python with pip to fetch the CUDA wheels: '$py' not found (set NATVIEW_PYTHON)"
    exit 1
  fi
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    _nvcuda_say "'$py -m pip' does not work: install pip (e.g. apt-get install python3-pip) or set NATVIEW_PYTHON"
    exit 1
  fi
  if ! command -v gcc >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then
    _nvcuda_say "needs gcc and g++ (nvcc's host compiler, and for the libcuda link stub): apt-get install build-essential"
    exit 1
  fi

  mkdir -p "$root"
  rm -f "$stamp"
  _nvcuda_say "installing the CUDA 13.0 wheels into $root/site (about 680 MB to download) ..."
  rm -rf "$root/site.new"
  if ! "$py" -m pip install --disable-pip-version-check --no-input --quiet \
    --no-deps --no-cache-dir --only-binary=:all: --target "$root/site.new" "${_nvcuda_pins[@]}"; then
    _nvcuda_say "pip could not install the CUDA wheels (is PyPI reachable?): ${_nvcuda_pins[*]}"
    rm -rf "$root/site.new"
    exit 1
  fi
  rm -rf "$root/site"
  mv "$root/site.new" "$root/site"

  cu="$root/site/nvidia/cu13"
  for need in bin/nvcc nvvm/bin/cicc include/cuda.h include/crt/host_config.h include/cccl \
    lib/libcudart.so.13 lib/libcublas.so.13 lib/libcublasLt.so.13 lib/libcurand.so.10 \
    lib/libnvrtc.so.13; do
    if [[ ! -e "$cu/$need" ]]; then
      _nvcuda_say "the wheels did not provide $need (expected under $cu); the wheel layout may have changed"
      exit 1
    fi
  done

  # CUDA_HOME as nvcc, cudarc and cudaforge expect it.
  tk="$root/toolkit.new"
  rm -rf "$tk"
  mkdir -p "$tk/lib64/stubs"
  ln -s ../site/nvidia/cu13/bin "$tk/bin"
  ln -s ../site/nvidia/cu13/include "$tk/include"
  ln -s ../site/nvidia/cu13/nvvm "$tk/nvvm"
  ln -s lib64 "$tk/lib"
  for f in "$cu"/lib/*; do
    name="${f##*/}"
    ln -s "../../site/nvidia/cu13/lib/$name" "$tk/lib64/$name"
  done
  # The linker looks for libX.so; the wheels only have libX.so.N (the runtime names).
  for f in "$tk"/lib64/*.so.*; do
    name="${f##*/}"
    base="${name%%.so.*}.so"
    [[ -e "$tk/lib64/$base" ]] || ln -s "$name" "$tk/lib64/$base"
  done

  # libcuda comes with the NVIDIA driver, not with any wheel. For linking, a stub exporting every
  # driver API function that cuda.h declares (under all its versioned names). Its soname is the
  # driver's, libcuda.so.1, so the binary loads the real driver at run time.
  stubsrc="$tk/lib64/stubs/libcuda-stub.c"
  {
    echo '/* Link stub for libcuda.so.1, generated by scripts/cuda-env.sh from cuda.h. */'
    echo '/* Every function returns CUDA_ERROR_STUB_LIBRARY (34). */'
    for defs in "" "-D__CUDA_API_VERSION_INTERNAL" "-DCUDA_API_PER_THREAD_DEFAULT_STREAM" \
      "-DCUDA_ENABLE_DEPRECATED"; do
      # shellcheck disable=SC2086 # $defs is one flag or none
      gcc -E -P $defs -I"$cu/include" -x c "$cu/include/cuda.h"
    done | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u |
      sed 's/.*/int &(void) { return 34; }/'
  } >"$stubsrc"
  count=$(grep -c 'return 34' "$stubsrc" || true)
  if ((count < 300)); then
    _nvcuda_say "found only $count driver functions in cuda.h for the libcuda stub; expected 500+"
    exit 1
  fi
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$tk/lib64/stubs/libcuda.so" "$stubsrc"
  ln -s libcuda.so "$tk/lib64/stubs/libcuda.so.1"

  rm -rf "$root/toolkit"
  mv "$tk" "$root/toolkit"

  if ! version="$("$root/toolkit/bin/nvcc" --version 2>&1)"; then
    _nvcuda_say "the installed nvcc does not run: $version"
    exit 1
  fi
  if ! grep -q 'release 13\.0' <<<"$version"; then
    _nvcuda_say "expected nvcc 13.0, got: $(grep release <<<"$version")"
    exit 1
  fi
  echo "$want" >"$stamp"
  _nvcuda_say "CUDA 13.0 toolkit ready: $root/toolkit ($(du -sh "$root" | cut -f1) in $root)"
}

# Adds $2 in front of the colon list named $1 unless it is already in it.
_nvcuda_prepend() {
  local var="$1" dir="$2" cur
  cur="${!var:-}"
  case ":$cur:" in
    *":$dir:"*) ;;
    *) export "$var=$dir${cur:+:$cur}" ;;
  esac
}

# Sets the environment in the current shell (the caller's, when sourced).
_nvcuda_export() {
  local root="$1" home="$1/toolkit"
  export NATVIEW_CUDA_DIR="$root"
  # cudarc reads CUDA_HOME/CUDA_PATH/CUDA_ROOT/CUDA_TOOLKIT_ROOT_DIR for its link search (lib,
  # lib64, lib64/stubs) and runs `nvcc --version` from PATH for the CUDA version; cudaforge
  # (candle-kernels) takes NVCC, else nvcc on PATH, else CUDA_HOME/bin/nvcc.
  export CUDA_HOME="$home" CUDA_PATH="$home" CUDA_ROOT="$home" CUDA_TOOLKIT_ROOT_DIR="$home"
  export NVCC="$home/bin/nvcc"
  export CUDARC_CUDA_VERSION=13000
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  _nvcuda_prepend PATH "$home/bin"
  _nvcuda_prepend LIBRARY_PATH "$home/lib64/stubs"
  _nvcuda_prepend LIBRARY_PATH "$home/lib64"
  # At run time a CUDA build loads libcudart, libcublas (and libcublasLt) and libcurand from here,
  # and the driver's libcuda.so.1.
  _nvcuda_prepend LD_LIBRARY_PATH "$home/lib64"
  local stub="${NATVIEW_CUDA_STUB_AT_RUNTIME:-}" cache
  if [[ -z "$stub" ]]; then
    # Not `ldconfig -p | grep -q`: under pipefail, grep leaving early can fail the pipeline.
    cache="$({ /sbin/ldconfig -p || ldconfig -p; } 2>/dev/null || true)"
    if [[ "$cache" == *"libcuda.so.1 "* ]]; then stub=0; else stub=1; fi
  fi
  if [[ "$stub" == 1 ]]; then
    # No driver here: the stub lets the binary start; CUDA then fails to initialise (every stub
    # function returns CUDA_ERROR_STUB_LIBRARY) and natview runs on the CPU.
    _nvcuda_prepend LD_LIBRARY_PATH "$home/lib64/stubs"
  fi
}

_nvcuda_print_env() {
  local v
  for v in NATVIEW_CUDA_DIR CUDA_HOME CUDA_PATH CUDA_ROOT CUDA_TOOLKIT_ROOT_DIR NVCC \
    CUDARC_CUDA_VERSION CUDA_COMPUTE_CAP PATH LIBRARY_PATH LD_LIBRARY_PATH; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
}

_nvcuda_root="${NATVIEW_CUDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/natview/cuda-13.0}"

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced: install (in a bash of its own) if needed, export, and leave nothing else behind.
  if "${BASH:-bash}" "${BASH_SOURCE[0]}" --install; then
    _nvcuda_export "$_nvcuda_root"
    _nvcuda_say "CUDA_HOME=$CUDA_HOME CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
    unset -v _nvcuda_root _nvcuda_pins _nvcuda_layout
    unset -f _nvcuda_say _nvcuda_install _nvcuda_prepend _nvcuda_export _nvcuda_print_env
    true
  else
    _nvcuda_say "failed; this shell's environment is unchanged"
    unset -v _nvcuda_root _nvcuda_pins _nvcuda_layout
    unset -f _nvcuda_say _nvcuda_install _nvcuda_prepend _nvcuda_export _nvcuda_print_env
    false
  fi
  return
fi

set -Eeuo pipefail
# Unforeseen failures name the command; the foreseen ones explain themselves and exit 1.
trap '_nvcuda_say "failed at line $LINENO: $BASH_COMMAND"' ERR
case "${1:-}" in
  -h | --help)
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
_nvcuda_install "$_nvcuda_root"
case "${1:-}" in
  --install) ;;
  "")
    _nvcuda_export "$_nvcuda_root"
    _nvcuda_say "ready in $NATVIEW_CUDA_DIR. Use: source $0 (sets this shell), or $0 COMMAND..."
    ;;
  --print-env)
    _nvcuda_export "$_nvcuda_root"
    _nvcuda_print_env
    ;;
  *)
    _nvcuda_export "$_nvcuda_root"
    trap - ERR
    exec "$@"
    ;;
esac
