#!/usr/bin/env bash
# Distributed evaluation on one node with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT select a multi-node run (tools/dist_launch.sh; one node without PORT takes
# a free port). Without CUDA, ranks use gloo on the CPU.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options ...]" >&2
  exit 2
fi
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
source "$(dirname "$0")/dist_launch.sh"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "${TORCHRUN[@]}" --nproc_per_node="$GPUS" \
  "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
