#!/usr/bin/env bash
# Distributed training on one node with torchrun: tools/dist_train.sh CONFIG GPUS [train.py args...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT select a multi-node run. Without CUDA, ranks use gloo on the CPU.
# PYTHON: the interpreter with torch (default .venv/bin/python, else python). Preemption: SIGTERM to torchrun reaches
# the workers, which checkpoint and exit 75 (torchrun itself exits non-zero); rerun with --resume auto.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tools/dist_train.sh CONFIG GPUS [tools/train.py options ...]" >&2
  exit 2
fi
CONFIG=$1; GPUS=$2; shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
  "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
