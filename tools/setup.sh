#!/usr/bin/env bash
# One idempotent installer for MixPro: creates .venv/ and installs the pinned stack (see below), the embedded
# datasets (Debian packages, when run as root) and the project itself in editable mode, then self-checks.
#
#   tools/setup.sh            # or: make setup
#
# Environment:
#   MIXPRO_VENV        venv location (default: <repo>/.venv)
#   MIXPRO_WHEEL_CACHE where the locally built mmcv wheel is kept (default: ${XDG_CACHE_HOME:-~/.cache}/mixpro/wheels)
#   MIXPRO_SKIP_APT=1  do not install the Debian data packages
#
# A second run finds the stamp of the first (hash of this script and pyproject.toml) and only re-runs the self-check.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MIXPRO_VENV:-$REPO/.venv}"
WHEELS="${MIXPRO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mixpro/wheels}"
PY_BOOT="${PYTHON:-python3.11}"
command -v "$PY_BOOT" >/dev/null 2>&1 || PY_BOOT=python3

# The pinned stack. torch/torchvision are the registry's standard builds (they run on CPU here and on NVIDIA GPUs).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
# mmengine and mmcv go in with --no-deps (their requirement on opencv-python would pull opencv-python 5 over the
# headless build); what they need is listed here by hand. mmseg imports ftfy and regex without declaring them.
BASE_PINS=(
  "numpy==2.2.6" "opencv-python-headless==4.12.0.88" "timm==1.0.31" "scipy==1.15.3" "pycocotools==2.0.11"
  "matplotlib==3.10.8" "scikit-learn==1.7.2" "scikit-image==0.25.2" "pillow" "addict" "pyyaml" "rich" "termcolor" "yapf"
  "packaging" "prettytable" "ftfy" "regex" "six" "shapely" "terminaltables" "tqdm" "pytest" "pytest-timeout"
  "ninja" "setuptools<82" "wheel"
  # the optional RL-Mix extra (.[rlmix]): part of the development install so that its tests run
  "stable-baselines3==2.9.2" "gymnasium==1.4.0"
)
MM_PINS=(mmengine==0.10.7 mmsegmentation==1.2.2 mmdet==3.3.0)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
t0=$(date +%s)

# ---------------------------------------------------------------- embedded data (Debian packages)
install_data() {
  local want=(dataset-fashion-mnist labelme-examples) missing=()
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
  "$VENV/bin/python" - <<'PY'
import importlib, torch
mods = ["torchvision", "timm", "mmengine", "mmcv", "mmseg", "mmdet", "pycocotools", "scipy", "numpy", "cv2",
        "mixpro_core", "classification", "segmentation", "detection"]
versions = {m: getattr(importlib.import_module(m), "__version__", "-") for m in mods}
from mmcv.ops import nms, roi_align
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.arange(16.).view(1, 1, 4, 4)
out = roi_align(feat, torch.tensor([[0., 0., 0., 3., 3.]]), (2, 2), 1.0, 0, "avg", True)
assert out.shape == (1, 1, 2, 2), out.shape
print("self-check ok: mmcv.ops.nms and roi_align run on CPU")
print("  torch", torch.__version__, "| cuda available:", torch.cuda.is_available())
for m, v in versions.items():
    print(f"  {m:14s} {v}")
PY
}

# ---------------------------------------------------------------- mmcv from source
# mmcv 2.1.0 publishes no wheels for torch 2.14, so it is built from the PyPI sdist with its C++ ops.
# The one source patch: its setup.py hard-codes `-std=c++17`, but torch 2.14's ATen headers refuse anything below
# C++20 ("#error C++20 or later compatible compiler is required to use ATen"), so the flag becomes -std=c++20.
# The build runs against the installed torch (--no-build-isolation; a build environment would pull a second torch)
# with setuptools < 82 (mmcv's setup.py imports pkg_resources, which setuptools 82 removed). The wheel is cached
# outside the repo, keyed by torch version and CUDA flag, so later setups (and fresh clones) reuse it.
build_mmcv() {
  local torch_ver cuda_tag force_cuda=0
  torch_ver=$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")
  if command -v nvcc >/dev/null 2>&1 && "$VENV/bin/python" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    force_cuda=1
  fi
  cuda_tag=$([ $force_cuda = 1 ] && echo cuda || echo cpu)
  local dest="$WHEELS/mmcv-$MMCV_VERSION-torch$torch_ver-$cuda_tag"
  mkdir -p "$dest"
  if ! ls "$dest"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with ops (FORCE_CUDA=$force_cuda) — about 13 minutes on 2 cores, once"
    local work; work=$(mktemp -d)
    "$VENV/bin/pip" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work"
    tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
    sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- '-std=c++20' "$work/mmcv-$MMCV_VERSION/setup.py" || { echo "mmcv setup.py patch did not apply" >&2; exit 1; }
    (cd "$work/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$force_cuda MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$VENV/bin/pip" wheel -q --no-build-isolation --no-deps . -w "$work/dist")
    # The extension is built with -g (~80 MB of debug info): strip it inside the wheel before caching.
    (cd "$work/dist" && "$VENV/bin/python" -m wheel unpack -d unpacked mmcv-*.whl >/dev/null \
      && find unpacked -name '_ext*.so' -exec strip --strip-debug {} + \
      && rm mmcv-*.whl && "$VENV/bin/python" -m wheel pack -d . unpacked/* >/dev/null)
    mv "$work"/dist/mmcv-*.whl "$dest/"
    rm -rf "$work"
  else
    log "reusing cached mmcv wheel from $dest"
  fi
  "$VENV/bin/pip" install -q --no-deps "$dest"/mmcv-*.whl
}

# ---------------------------------------------------------------- main
STAMP_SRC=$(cat "$REPO/tools/setup.sh" "$REPO/pyproject.toml" | sha256sum | cut -c1-16)
STAMP="$VENV/.mixpro-setup-$STAMP_SRC"

install_data

if [ -f "$STAMP" ]; then
  log "environment up to date ($VENV)"
else
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY_BOOT" -m venv "$VENV"; }
  PIP=("$VENV/bin/pip" install -q)
  log "installing ${TORCH_PINS[*]}"
  "${PIP[@]}" "${TORCH_PINS[@]}"
  log "installing the base requirements"
  # torch is listed again so that no requirement can move it (a second torch must never be installed).
  "${PIP[@]}" "${TORCH_PINS[@]}" "${BASE_PINS[@]}"
  "${PIP[@]}" --no-deps "${MM_PINS[@]}"
  "$VENV/bin/python" -c "import mmcv" 2>/dev/null || build_mmcv
  log "installing the project (editable)"
  "${PIP[@]}" --no-deps --no-build-isolation -e "$REPO"
  "$VENV/bin/pip" check >/dev/null 2>&1 || "$VENV/bin/pip" check | grep -v -E "^(mmcv|mmengine|mmdet|mmsegmentation) " || true
  rm -f "$VENV"/.mixpro-setup-*
  touch "$STAMP"
fi

self_check
log "done in $(( $(date +%s) - t0 )) s"
