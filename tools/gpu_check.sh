#!/usr/bin/env bash
# One prepared check for a CUDA machine with MixPro installed (≤ 8 minutes on one H100/H200); writes one Markdown
# report (device, versions, every result with its time, pass/fail per item) that can be pasted into
# docs/benchmarks.md.
#
#   tools/gpu_check.sh                      # or: make gpu-check
#   tools/gpu_check.sh --device cpu --quick # the same steps, CPU-sized (tests the script without a GPU)
#   tools/gpu_check.sh --only env,segmentation,detection   # a subset of the steps (the others: "not run (--only)")
#
# Environment: PYTHON (interpreter with torch; default .venv/bin/python, else python3), OUT (results folder,
# default work_dirs/gpu_check), REPORT (default $OUT/report.md), BUDGET_S (total seconds for the steps, default 450).
# Without a GPU (and without --device cpu) it exits with status 2 and says so.
#
# Steps, most important first, each under its own `timeout` and within what is left of BUDGET_S:
#   env             device, driver/CUDA, versions, whether mmcv has CUDA ops
#   segmentation    Segmenter DeiT-T (mask head, linear head), 512² crops, 20 iterations + an mIoU pass
#   detection       Mask R-CNN PVT-T, 800-px images, 20 iterations + an inference pass (mmcv RoIAlign/NMS on the GPU)
#                   (both: "skipped: mmcv without CUDA ops" when mmcv was built without them)
#   classification  every classification config, 3 bf16 training steps each at batch 32
#   bench-*         tools/benchmark.py mix | attention | step | throughput at B=128, bf16
#   nccl            with ≥ 2 GPUs: the classification step under torchrun, 2 processes, DDP over NCCL
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3 )}"
DEVICE=cuda
QUICK=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --only) ONLY=",$2,"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "tools/gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$ROOT/work_dirs/gpu_check}"
REPORT="${REPORT:-$OUT/report.md}"
BUDGET_S="${BUDGET_S:-450}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONFAULTHANDLER=1  # a step that dies on a signal (SIGSEGV in an extension) prints its Python stack to its log
cd "$ROOT"

if [ "$DEVICE" = cuda ]; then
  if ! gpus=$("$PY" -c "import torch; assert torch.cuda.is_available(); print(torch.cuda.device_count())" 2>/dev/null); then
    echo "tools/gpu_check.sh: no CUDA GPU visible to $PY ($("$PY" -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda)' 2>&1 | tail -n1))." >&2
    echo "Run it on a GPU machine (PYTHON=... for another interpreter), or test the script with --device cpu --quick." >&2
    exit 2
  fi
else
  gpus=0
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/steps.tsv" "$REPORT"  # this check's own files from an earlier run only
START=$(date +%s)
STEPS="$OUT/steps.tsv"
: > "$STEPS"

# step NAME LIMIT_S CMD...: run CMD under `timeout` (LIMIT_S, capped by what is left of BUDGET_S), log to
# $OUT/NAME.log, record "name<TAB>status<TAB>seconds<TAB>log" with status pass / fail (rc) / timeout / not run
step() {
  local name=$1 limit=$2 left t0 rc status; shift 2
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then
    printf '%s\tnot run (--only)\t0\t-\n' "$name" >> "$STEPS"
    return
  fi
  left=$(( BUDGET_S - ($(date +%s) - START) ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    printf '%s\tnot run (budget spent)\t0\t%s\n' "$name" "$OUT/$name.log" >> "$STEPS"
    echo "[gpu-check] $name: not run, the budget of $BUDGET_S s is spent"
    return
  fi
  echo "[gpu-check] $name (limit ${limit} s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  case $rc in 0) status=pass ;; 124|137) status=timeout ;; *) status="fail (exit $rc)" ;; esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$OUT/$name.log" >> "$STEPS"
  echo "[gpu-check] $name: $status in $(( $(date +%s) - t0 )) s"
}

CHECK=("$PY" -m classification.benchmarks.gpu_check)
if [ "$QUICK" = 1 ]; then
  Q=(--quick --device "$DEVICE")
  BENCH=(--device "$DEVICE" --batch 4 --repeats 1 --warmup 0)
  MODEL=(--model tiny_vit); MODELS=(--models tiny_vit); AMP=()
else
  Q=(--device "$DEVICE")
  BENCH=(--device "$DEVICE" --batch 128 --repeats 10)
  MODEL=(); MODELS=(); AMP=(--amp bf16)
fi

step env 60 "${CHECK[@]}" env --out "$OUT/env.json" --device "$DEVICE"
step segmentation 90 "${CHECK[@]}" segmentation --out "$OUT/segmentation.json" "${Q[@]}"
step detection 100 "${CHECK[@]}" detection --out "$OUT/detection.json" "${Q[@]}"
step classification 150 "${CHECK[@]}" classification --out "$OUT/classification.json" "${Q[@]}"
step bench-mix 45 "$PY" tools/benchmark.py mix "${BENCH[@]}" --json "$OUT/bench-mix.bench.json"
step bench-attention 60 "$PY" tools/benchmark.py attention "${BENCH[@]}" "${AMP[@]}" "${MODEL[@]}" \
  --json "$OUT/bench-attention.bench.json"
step bench-step 60 "$PY" tools/benchmark.py step "${BENCH[@]}" "${AMP[@]}" "${MODELS[@]}" \
  --json "$OUT/bench-step.bench.json"
step bench-throughput 60 "$PY" tools/benchmark.py throughput "${BENCH[@]}" "${AMP[@]}" "${MODEL[@]}" \
  --json "$OUT/bench-throughput.bench.json"
if [ "$gpus" -ge 2 ]; then
  step nccl 90 "$PY" -m torch.distributed.run --nproc_per_node=2 --master_port="${PORT:-29511}" \
    -m classification.benchmarks.gpu_check classification --launcher-ddp --out "$OUT/nccl.json" --device cuda \
    --configs configs/classification/deit-t_mixpro_8xb128-300e_in1k.py configs/classification/deit-s_mixpro_8xb128-300e_in1k.py
else
  printf 'nccl\tskipped (%s GPU)\t0\t-\n' "$gpus" >> "$STEPS"
fi

"${CHECK[@]}" report "$OUT" --out "$REPORT"
rc=$?
echo "[gpu-check] report: $REPORT (total $(( $(date +%s) - START )) s)"
exit $rc
