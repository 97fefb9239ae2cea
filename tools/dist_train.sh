#!/usr/bin/env bash
# Distributed training on one node with torchrun: tools/dist_train.sh CONFIG GPUS [train.py args...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT select a multi-node run (tools/dist_launch.sh; one node without PORT takes
# a free port). Without CUDA, ranks use gloo on the CPU.
# PYTHON: the interpreter with torch (default .venv/bin/python, else python). Preemption: SIGTERM to torchrun reaches
# the workers, which checkpoint and exit 75 (torchrun itself exits non-zero); rerun with --resume auto.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tools/dist_train.sh CONFIG GPUS [tools/train.py options ...]" >&2
  exit 2
fi
CONFIG=$1; GPUS=$2; shift 2
source "$(dirname "$0")/dist_launch.sh"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "${TORCHRUN[@]}" --nproc_per_node="$GPUS" \
  "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
