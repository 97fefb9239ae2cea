#!/usr/bin/env bash
# Distributed evaluation on one node with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT select a multi-node run. Without CUDA, ranks use gloo on the CPU.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options ...]" >&2
  exit 2
fi
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
  "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
