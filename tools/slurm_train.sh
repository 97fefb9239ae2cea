#!/usr/bin/env bash
# Training under slurm: tools/slurm_train.sh PARTITION JOB_NAME CONFIG GPUS [train.py args...]
# One task per GPU (srun); GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5), SRUN_ARGS pass through.
set -euo pipefail
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; GPUS=$4; shift 4
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
  --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 \
  ${SRUN_ARGS:-} "$PY" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "$@"
