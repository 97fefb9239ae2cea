#!/usr/bin/env bash
# One idempotent installer for MixPro: the pinned stack (or the stack around a PyTorch that is already installed),
# mmcv built from source with its C++/CUDA ops, the embedded datasets (Debian packages, when run as root) and the
# project itself in editable mode, then a self-check. Every phase is timed in the log.
#
#   tools/setup.sh                          # or: make setup — creates .venv with the pinned torch 2.14.1
#   MIXPRO_TORCH=system tools/setup.sh      # keep the torch that `$PYTHON` already has (NGC container, cluster module)
#   MIXPRO_WHEELHOUSE=DIR tools/setup.sh    # offline: pip --no-index --find-links DIR, mmcv sdist from DIR
#   tools/setup.sh --fill-wheelhouse DIR    # on a machine with registry access: download everything into DIR
#
# Environment:
#   MIXPRO_TORCH       pinned (default): install torch==2.14.1/torchvision==0.29.1 from the registry;
#                      system: use the torch/torchvision importable by $PYTHON and never install or upgrade them
#                      (a pip constraints file pins their present versions, and numpy's, in every pip call). Other
#                      packages the environment already has are kept; missing ones are added (timm and the mm* stack
#                      at the project's pinned versions).
#   MIXPRO_VENV        venv location (default: <repo>/.venv). In system mode the venv is created with
#                      --system-site-packages on top of $PYTHON. MIXPRO_VENV=active installs into $PYTHON's own
#                      environment instead (e.g. inside a container, or an activated conda/venv; a distribution's
#                      "externally managed" Python needs PIP_BREAK_SYSTEM_PACKAGES=1 — prefer a venv there).
#   PYTHON             interpreter to build the venv from / install into (default: python3.11 for pinned, else python3)
#   MIXPRO_WHEELHOUSE  directory of wheels + mmcv-2.1.0.tar.gz (filled by --fill-wheelhouse): no registry is used;
#                      optional packages (tests, RL-Mix, scikit-learn/-image, ninja) it lacks are named and left out
#   MIXPRO_WHEEL_PYTHON with --fill-wheelhouse: download for this Python version (e.g. 3.12) and manylinux x86_64
#                      instead of the running interpreter's
#   MIXPRO_WHEEL_CACHE where the locally built mmcv wheel is kept (default: ${XDG_CACHE_HOME:-~/.cache}/mixpro/wheels)
#   MIXPRO_SKIP_APT=1  do not install the Debian data packages
#   TORCH_CUDA_ARCH_LIST, MAX_JOBS  mmcv CUDA build: default the compute capability of the GPUs present, nproc jobs
#
# mmcv gets CUDA ops when nvcc is on PATH and torch sees a GPU (built for that GPU's architecture only), CPU ops
# otherwise; it is compiled with the C++ standard that torch's headers demand (read from ATen/ATen.h).
# A second run finds the stamp of the first (hash of this script, pyproject.toml and the mode) and only re-runs the
# self-check (where the wheels came from does not matter).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${MIXPRO_TORCH:-pinned}"
WHEELHOUSE="${MIXPRO_WHEELHOUSE:-}"
WHEELS="${MIXPRO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mixpro/wheels}"

# The pinned stack. torch/torchvision are the registry's standard builds (they run on CPU here and on NVIDIA GPUs).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
# mmengine and mmcv go in with --no-deps (their requirement on opencv-python would pull opencv-python 5 over the
# headless build); what they need is listed here by hand. mmseg imports ftfy and regex without declaring them.
# Packages that depend on torch (timm, stable-baselines3) also go in with --no-deps, their other requirements listed
# here, so that no pip call ever resolves (or downloads) a torch.
BASE_PINS=(
  "numpy==2.2.6" "opencv-python-headless==4.12.0.88" "scipy==1.15.3" "pycocotools==2.0.11"
  "matplotlib==3.10.8" "pillow" "addict" "pyyaml" "rich" "termcolor" "yapf"
  "packaging" "prettytable" "ftfy" "regex" "six" "shapely" "terminaltables" "tqdm" "setuptools<82" "wheel"
  "huggingface_hub" "safetensors"                       # timm's requirements
)
# Needed by the tests, the robustness tools (scikit-learn), the composite data (scikit-image), the optional RL-Mix
# extra .[rlmix] (stable-baselines3 and its requirements), the GPU-decode extra .[dali] (NVIDIA DALI, whose CPU
# pipeline the tests run), the curves of `tools/train.py --vis tensorboard` (tensorboard), `make mutate` (mutmut, the
# extra .[dev]) and a fast mmcv build (ninja). Offline (MIXPRO_WHEELHOUSE), those the wheelhouse lacks are
# reported and left out; online they are required like the rest.
OPTIONAL_PINS=(
  "scikit-learn==1.7.2" "scikit-image==0.25.2" "pytest" "pytest-timeout" "ninja"
  "gymnasium==1.4.0" "cloudpickle" "pandas"             # stable-baselines3's requirements
  "nvidia-dali-cuda130==2.4.0"                          # the extra .[dali] (GPU JPEG decoding; ~200 MB wheel)
  "tensorboard==2.21.0" "mutmut==3.8.1"
)
TORCH_DEPENDENT_PINS=("timm==1.0.31" "stable-baselines3==2.9.2")
MM_PINS=(mmengine==0.10.7 mmsegmentation==1.2.2 mmdet==3.3.0)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# phase NAME CMD...: run CMD and log how long it took
phase() {
  local name=$1 start; shift
  start=$(date +%s)
  "$@"
  log "phase '$name': $(( $(date +%s) - start )) s"
}

# ---------------------------------------------------------------- detection (also used by tests/test_setup_modes.py)
# cxx_std_of_headers INCLUDE_DIR: the -std flag torch's headers demand, read from the guard at the top of
# ATen/ATen.h (`#if ... __cplusplus < 202002L` + `#error C++20 or later ...`).
cxx_std_of_headers() {
  local header="$1/ATen/ATen.h" value
  [ -f "$header" ] || { echo "no $header: cannot tell which C++ standard torch needs" >&2; return 1; }
  value=$(grep -oE '__cplusplus < 20[0-9]{4}L' "$header" | head -n1 | grep -oE '20[0-9]{4}' || true)
  case "$value" in
    201402) echo c++14 ;; 201703) echo c++17 ;; 202002) echo c++20 ;; 202302) echo c++23 ;;
    "") echo "no __cplusplus check in $header: cannot tell which C++ standard torch needs" >&2; return 1 ;;
    *) echo "unknown __cplusplus value $value in $header" >&2; return 1 ;;
  esac
}

# torch_cxx_std PYTHON: cxx_std_of_headers for the torch that PYTHON imports
torch_cxx_std() {
  cxx_std_of_headers "$("$1" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')"
}

# cuda_arch_list PYTHON: "8.0;9.0" — the compute capabilities of the visible GPUs (empty without one)
cuda_arch_list() {
  "$1" - <<'PY'
import torch
if torch.cuda.is_available():
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    print(";".join(f"{major}.{minor}" for major, minor in caps))
PY
}

# write_constraints PYTHON FILE: pip constraints pinning the present torch, torchvision and numpy of PYTHON
write_constraints() {
  "$1" - "$2" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
lines = []
for name in ("torch", "torchvision", "numpy"):
    try:
        lines.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        if name != "numpy":
            sys.exit(f"MIXPRO_TORCH=system: {name} is not installed for {sys.executable}")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
}

# unpinned REQ...: the requirement names without versions (system mode keeps what the environment has), except
# the ones whose version the project depends on (timm, the mm* stack, gymnasium for stable-baselines3) and setuptools
unpinned() {
  local r
  for r in "$@"; do
    case "$r" in
      timm==*|stable-baselines3==*|gymnasium==*|mm*|setuptools*) echo "$r" ;;
      *) echo "${r%%[=<>]*}" ;;
    esac
  done
}

# ---------------------------------------------------------------- embedded data (Debian packages)
install_data() {
  local want=(dataset-fashion-mnist labelme-examples) missing=()
  command -v dpkg >/dev/null 2>&1 || { log "no dpkg: embedded data packages not checked (tests that need them skip)"; return; }
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { log "embedded data packages present"; return; }
  if [ "${MIXPRO_SKIP_APT:-0}" = 1 ]; then
    log "MIXPRO_SKIP_APT=1: not installing ${missing[*]} (tests that need them will skip)"; return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "not root (or no apt-get): cannot install ${missing[*]}; tests that need them will skip." \
        "Install them with: sudo apt-get install -y ${missing[*]}"
    return
  fi
  log "installing Debian data packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- self-check
self_check() {
  "$PY" - <<'PY'
import importlib, torch
mods = ["torchvision", "timm", "mmengine", "mmcv", "mmseg", "mmdet", "pycocotools", "scipy", "numpy", "cv2",
        "mixpro_core", "classification", "segmentation", "detection"]
versions = {m: getattr(importlib.import_module(m), "__version__", "-") for m in mods}
from mmcv.ops import nms, roi_align
devices = ["cpu"]
# whether mmcv has CUDA ops: run one (mmcv.ops.get_compiling_cuda_version crashed with SIGSEGV on an H200 with torch
# 2.11 + CUDA 13.0 while the ops themselves ran: docs/benchmarks.md)
cuda_ops = False
if torch.cuda.is_available():
    try:
        nms(torch.zeros(1, 4, device="cuda"), torch.ones(1, device="cuda"), iou_threshold=0.5)
        cuda_ops = True
        devices.append("cuda")
    except Exception as e:  # mmcv built without CUDA ops: "... not found" / "not compiled with GPU support"
        print(f"WARNING: a GPU is present but mmcv's ops do not run on it ({e}; no nvcc at build time?): "
              f"segmentation and detection will not run on the GPU")
for dev in devices:
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]], device=dev)
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev), iou_threshold=0.5)
    assert keep.tolist() == [0, 2], (dev, keep)
    feat = torch.arange(16., device=dev).view(1, 1, 4, 4)  # value 4y + x
    out = roi_align(feat, torch.tensor([[0., 0., 0., 3., 3.]], device=dev), (2, 2), 1.0, 0, "avg", True)
    # aligned: the box is (-0.5, -0.5)-(2.5, 2.5), 2×2 samples per bin at -0.125 (clamped to 0), 0.625 | 1.375, 2.125
    want = torch.tensor([[1.5625, 3.0], [7.3125, 8.75]], device=dev)
    assert torch.allclose(out[0, 0], want), (dev, out)
print(f"self-check ok: mmcv.ops.nms and roi_align run on {' and '.join(d.upper() for d in devices)}")
print("  torch", torch.__version__, "| cuda available:", torch.cuda.is_available(),
      "| mmcv CUDA ops:", f"yes (torch CUDA {torch.version.cuda})" if cuda_ops else "no")
for m, v in versions.items():
    print(f"  {m:14s} {v}")
PY
}

# ---------------------------------------------------------------- mmcv from source
# mmcv 2.1.0 publishes no wheels for recent torch, so it is built from the sdist with its C++ ops (and CUDA ops for
# the local GPU when nvcc and a GPU are present). The one source patch: its setup.py hard-codes `-std=c++17`; the
# flag becomes the standard the installed torch's headers require (torch 2.14: C++20). The build runs against the
# installed torch (--no-build-isolation; a build environment would pull a second torch) with setuptools < 82 (mmcv's
# setup.py imports pkg_resources). The wheel is cached outside the repo, keyed by torch version and the CUDA
# architectures, so later setups (and fresh clones) reuse it.
build_mmcv() {
  local torch_ver cuda_tag force_cuda=0 arch="" cxx
  torch_ver=$("$PY" -c "import torch; print(torch.__version__)")
  if command -v nvcc >/dev/null 2>&1 && "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    force_cuda=1
    arch="${TORCH_CUDA_ARCH_LIST:-$(cuda_arch_list "$PY")}"
  fi
  cuda_tag=$([ $force_cuda = 1 ] && echo "cuda-sm${arch//[;. ]/}" || echo cpu)
  # the registry's +cuXXX/+cpu builds of one torch version share their headers; other local versions (NGC's
  # 2.x.0a0+git...) are distinct builds
  case "$torch_ver" in *+cu[0-9]*|*+cpu) torch_ver=${torch_ver%%+*} ;; esac
  local dest="$WHEELS/mmcv-$MMCV_VERSION-torch${torch_ver/+/-}-$cuda_tag"
  mkdir -p "$dest"
  if ! ls "$dest"/mmcv-*.whl >/dev/null 2>&1; then
    cxx=$(torch_cxx_std "$PY")
    log "building mmcv $MMCV_VERSION with ops (FORCE_CUDA=$force_cuda${arch:+, TORCH_CUDA_ARCH_LIST=$arch}, -std=$cxx," \
        "MAX_JOBS=${MAX_JOBS:-$(nproc)}) — CPU ops take about 13 minutes on 2 cores, once"
    local work start; work=$(mktemp -d); start=$(date +%s)
    if [ -n "$WHEELHOUSE" ]; then
      [ -f "$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz" ] || die "offline: $WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz is missing" \
        "(tools/setup.sh --fill-wheelhouse $WHEELHOUSE downloads it)"
      cp "$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz" "$work/"
    else
      download_mmcv_sdist "$PY" "$work"
    fi
    tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
    sed -i "s/-std=c++17/-std=$cxx/g" "$work/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- "-std=$cxx" "$work/mmcv-$MMCV_VERSION/setup.py" || die "mmcv setup.py patch (-std=$cxx) did not apply"
    # the build's variables as NAME=value words for `env` (an optional word between shell assignments would turn
    # the next assignment into the command name when it expands to nothing)
    local build_env=(MMCV_WITH_OPS=1 "FORCE_CUDA=$force_cuda" "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    [ -n "$arch" ] && build_env+=("TORCH_CUDA_ARCH_LIST=$arch")
    (cd "$work/mmcv-$MMCV_VERSION" \
      && env "${build_env[@]}" "$PY" -m pip wheel -q --no-build-isolation --no-deps --no-index . -w "$work/dist")
    log "mmcv build (FORCE_CUDA=$force_cuda${arch:+, arch $arch}): $(( $(date +%s) - start )) s"
    # The extension is built with -g (~80 MB of debug info): strip it inside the wheel before caching.
    (cd "$work/dist" && "$PY" -m wheel unpack -d unpacked mmcv-*.whl >/dev/null \
      && find unpacked -name '_ext*.so' -exec strip --strip-debug {} + \
      && rm mmcv-*.whl && "$PY" -m wheel pack -d . unpacked/* >/dev/null)
    mv "$work"/dist/mmcv-*.whl "$dest/"
    rm -rf "$work"
  else
    log "reusing cached mmcv wheel from $dest"
  fi
  "${PIP[@]}" --no-deps "$dest"/mmcv-*.whl
}

# download_mmcv_sdist PYTHON DIR: pip prepares the sdist's metadata in an isolated build environment, where mmcv's
# setup.py needs pkg_resources (gone in setuptools 82); PIP_CONSTRAINT is the constraint that reaches that environment
download_mmcv_sdist() {
  local constraint; constraint=$(mktemp)
  echo "setuptools<82" > "$constraint"
  PIP_CONSTRAINT="$constraint" "$1" -m pip download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$2"
  rm -f "$constraint"
}

# ---------------------------------------------------------------- --fill-wheelhouse DIR
# Downloads what an offline MIXPRO_WHEELHOUSE install needs: the base requirements with their dependencies, the
# torch-dependent and mm* packages without theirs, the mmcv sdist, and (pinned mode only) torch/torchvision.
fill_wheelhouse() {
  local dir=$1 py="${PYTHON:-python3}" target=() base=()
  mkdir -p "$dir"
  [ -n "${MIXPRO_WHEEL_PYTHON:-}" ] && target=(--python-version "$MIXPRO_WHEEL_PYTHON" --only-binary=:all:
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64)
  if [ "$MODE" = system ]; then mapfile -t base < <(unpinned "${BASE_PINS[@]}"); else base=("${BASE_PINS[@]}"); fi
  local dl=("$py" -m pip download -q -d "$dir" "${target[@]}")
  if [ "$MODE" = system ] && "$py" -c "import torch, torchvision" 2>/dev/null; then
    # filling on the target machine itself: choose versions that go with its numpy (and never a torch)
    local constraints; constraints=$(mktemp)
    write_constraints "$py" "$constraints"
    dl+=(-c "$constraints")
  fi
  if [ "$MODE" = system ]; then mapfile -t -O "${#base[@]}" base < <(unpinned "${OPTIONAL_PINS[@]}")
  else base+=("${OPTIONAL_PINS[@]}"); fi
  phase "download base requirements" "${dl[@]}" "${base[@]}"
  phase "download timm, stable-baselines3, mm*" "${dl[@]}" --no-deps "${TORCH_DEPENDENT_PINS[@]}" "${MM_PINS[@]}"
  phase "download mmcv sdist" download_mmcv_sdist "$py" "$dir"
  [ "$MODE" = system ] || phase "download torch" "${dl[@]}" "${TORCH_PINS[@]}"
  log "wheelhouse $dir: $(ls "$dir" | wc -l) files, $(du -sh "$dir" | cut -f1)." \
      "Install offline with: MIXPRO_WHEELHOUSE=$dir${MIXPRO_TORCH:+ MIXPRO_TORCH=$MODE} tools/setup.sh"
}

# ---------------------------------------------------------------- environment
# Sets PY (the interpreter of the target environment) and STAMP_DIR; creates the venv when needed.
prepare_environment() {
  local boot
  if [ "$MODE" = system ]; then boot="${PYTHON:-python3}"; else boot="${PYTHON:-python3.11}"; fi
  command -v "$boot" >/dev/null 2>&1 || boot=python3
  if [ "${MIXPRO_VENV:-}" = active ]; then
    PY=$(command -v "$boot")
    STAMP_DIR="$WHEELS/../stamps/$("$PY" -c 'import sys; print(sys.prefix)' | sha256sum | cut -c1-16)"
    log "installing into the active environment of $PY"
  else
    VENV="${MIXPRO_VENV:-$REPO/.venv}"
    if [ ! -x "$VENV/bin/python" ]; then
      log "creating $VENV ($MODE torch)"
      if [ "$MODE" = system ]; then "$boot" -m venv --system-site-packages "$VENV"; else "$boot" -m venv "$VENV"; fi
    fi
    PY="$VENV/bin/python"
    STAMP_DIR="$VENV"
  fi
  mkdir -p "$STAMP_DIR"
  if [ "$MODE" = system ]; then
    "$PY" -c "import torch, torchvision" 2>/dev/null \
      || die "MIXPRO_TORCH=system: $PY cannot import torch and torchvision (an existing venv must see them:" \
             "--system-site-packages; or install them, or use the default mode)"
  fi
}

install_stack() {
  PIP=("$PY" -m pip install -q)
  [ -n "$WHEELHOUSE" ] && PIP+=(--no-index --find-links "$WHEELHOUSE")
  local constraints="$STAMP_DIR/.mixpro-constraints.txt" base=()
  if [ "$MODE" = system ]; then
    write_constraints "$PY" "$constraints"
    log "system torch: keeping $(tr '\n' ' ' < "$constraints")(pip constraints $constraints)"
    # torch and torchvision are named (the constraints hold them at their present versions) so that pip also
    # satisfies their own requirements, e.g. torch 2.14's setuptools>=77 against a venv's older setuptools
    mapfile -t base < <(unpinned torch torchvision "${BASE_PINS[@]}")
    # an existing cv2 (opencv-python or the headless build) stays; installing the other one would shadow it
    if "$PY" -c "import cv2" 2>/dev/null; then base=("${base[@]/opencv-python-headless/}"); fi
  else
    printf '%s\n' "${TORCH_PINS[@]}" > "$constraints"
    phase "torch" "${PIP[@]}" "${TORCH_PINS[@]}"
    base=("${BASE_PINS[@]}")
  fi
  PIP+=(-c "$constraints")  # no requirement of any later pip call can move torch/torchvision
  mapfile -t base < <(printf '%s\n' "${base[@]}" | grep -v '^$')
  phase "base requirements" "${PIP[@]}" "${base[@]}"
  phase "optional requirements" install_optional
  phase "timm, stable-baselines3, mm*" "${PIP[@]}" --no-deps "${TORCH_DEPENDENT_PINS[@]}" "${MM_PINS[@]}"
  if "$PY" -c "import mmcv.ops" 2>/dev/null; then log "mmcv with ops already importable"; else phase "mmcv" build_mmcv; fi
  phase "project (editable)" "${PIP[@]}" --no-deps --no-build-isolation -e "$REPO"
  "$PY" -m pip check >/dev/null 2>&1 \
    || "$PY" -m pip check | grep -v -E "^(mmcv|mmengine|mmdet|mmsegmentation) " || true
}

# install_optional: OPTIONAL_PINS (system mode: unpinned, as the base requirements); offline, each one the
# wheelhouse cannot provide is named and skipped (with stable-baselines3 when one of its requirements is missing)
install_optional() {
  local opt=() missing=() r
  if [ "$MODE" = system ]; then mapfile -t opt < <(unpinned "${OPTIONAL_PINS[@]}"); else opt=("${OPTIONAL_PINS[@]}"); fi
  if [ -z "$WHEELHOUSE" ]; then "${PIP[@]}" "${opt[@]}"; return; fi
  "${PIP[@]}" "${opt[@]}" 2>/dev/null && return
  for r in "${opt[@]}"; do "${PIP[@]}" "$r" 2>/dev/null || missing+=("$r"); done
  log "offline: not in $WHEELHOUSE and not installed, left out: ${missing[*]}"
  case " ${missing[*]} " in
    *" gymnasium"*|*" cloudpickle "*|*" pandas "*)
      TORCH_DEPENDENT_PINS=("${TORCH_DEPENDENT_PINS[@]/stable-baselines3*/}")
      mapfile -t TORCH_DEPENDENT_PINS < <(printf '%s\n' "${TORCH_DEPENDENT_PINS[@]}" | grep -v '^$')
      log "offline: stable-baselines3 (RL-Mix) left out with its requirements" ;;
  esac
}

main() {
  if [ "${1:-}" = --fill-wheelhouse ]; then
    [ -n "${2:-}" ] || die "usage: tools/setup.sh --fill-wheelhouse DIR"
    fill_wheelhouse "$2"
    return
  fi
  [ $# -eq 0 ] || die "unknown arguments: $* (see the header of tools/setup.sh)"
  case "$MODE" in pinned|system) ;; *) die "MIXPRO_TORCH=$MODE: use 'pinned' (default) or 'system'" ;; esac
  [ -z "$WHEELHOUSE" ] || [ -d "$WHEELHOUSE" ] || die "MIXPRO_WHEELHOUSE=$WHEELHOUSE is not a directory"
  local t0; t0=$(date +%s)
  install_data
  prepare_environment
  local stamp_src
  stamp_src=$( (cat "$REPO/tools/setup.sh" "$REPO/pyproject.toml"; echo "$MODE ${MIXPRO_VENV:-}") \
    | sha256sum | cut -c1-16)
  local stamp="$STAMP_DIR/.mixpro-setup-$stamp_src"
  if [ -f "$stamp" ]; then
    log "environment up to date ($("$PY" -c 'import sys; print(sys.prefix)'))"
  else
    install_stack
    rm -f "$STAMP_DIR"/.mixpro-setup-*
    touch "$stamp"
  fi
  phase "self-check" self_check
  log "done in $(( $(date +%s) - t0 )) s"
}

# sourced by tests/test_setup_modes.py for the detection functions; run as a script otherwise
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
