#!/usr/bin/env bash
# Training under slurm: tools/slurm_train.sh PARTITION JOB_NAME CONFIG GPUS [train.py args...]
# One task per GPU (srun, no torchrun); GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5), SRUN_ARGS pass through.
#
# Preemption and requeue: srun asks slurm to send SIGUSR1 to every task PREEMPT_SIGNAL_S seconds (default 120)
# before the time limit (--signal=USR1@120); each rank then finishes its iteration, they agree on it, rank 0 writes
# <work_dir>/preempted.pth and all exit with status 75 (classification.engine.preemption). Inside a batch job
# (sbatch --requeue ... --wrap "tools/slurm_train.sh ..."), status 75 requeues the job (scontrol requeue), and a
# requeued job (SLURM_RESTART_COUNT > 0) resumes with --resume auto. A job preempted by the scheduler itself gets
# SIGTERM, which the hook handles in the same way.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG GPUS [tools/train.py options ...]" >&2
  exit 2
fi
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; GPUS=$4; shift 4
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"
PREEMPTED=75  # classification.engine.preemption.PREEMPTED_EXIT_CODE
ARGS=("$@")
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && [[ " ${ARGS[*]} " != *" --resume"* ]]; then
  ARGS+=(--resume auto)
fi
status=0
PYTHONPATH="$ROOT:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
  --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 \
  --signal=USR1@"${PREEMPT_SIGNAL_S:-120}" \
  ${SRUN_ARGS:-} "$PY" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${ARGS[@]}" || status=$?
if [ "$status" = "$PREEMPTED" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "tools/slurm_train.sh: training was preempted (status $PREEMPTED): requeueing job $SLURM_JOB_ID" >&2
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
