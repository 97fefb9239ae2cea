"""The scripts of a ``tools/paper_tables.py plan``: one node (``one_node.sh``: the jobs in order through
``tools/dist_train.sh`` / ``dist_test.sh``, a job whose output exists is skipped) and slurm (``slurm.sh``: one
``sbatch --parsable`` per job, ``--dependency=afterok`` on the jobs it needs; a job whose output exists, or that is
queued or running under its name — ``squeue --name`` — is not submitted again). Above each training step a comment
states the job's recipe (total batch = GPUs × per-GPU batch × accumulation steps, lr; :mod:`.paper_recipe`).
"""
from __future__ import annotations

import os.path as osp
import shlex
from typing import List, Sequence

from classification.foundation.host import ROOT

PY = "$PY"  # first word of a command run by the scripts' interpreter (".venv/bin/python" or $PYTHON)


def _word(arg: str) -> str:
    return '"$PY"' if arg == PY else shlex.quote(arg)


def command(job, slurm: bool = False, gpus_per_node: int = 8) -> List[str]:
    """The command of ``job`` (a :class:`.paper_plan.Job`; words, ``$PY`` / ``$PARTITION`` expanded by the script).
    On slurm, training goes through ``tools/slurm_train.sh`` (srun, requeue on preemption) and a test uses at most
    one node's GPUs."""
    if job.kind in ("pretrain", "finetune"):
        if slurm:
            return ["tools/slurm_train.sh", "$PARTITION", job.name, job.args[0], str(job.gpus), *job.args[1:]]
        return ["tools/dist_train.sh", job.args[0], str(job.gpus), *job.args[1:]]
    if job.kind == "test":
        n = min(job.gpus, gpus_per_node) if slurm else job.gpus
        return ["tools/dist_test.sh", job.args[0], job.args[1], str(n), *job.args[2:]]
    tool = "tools/convert_checkpoint.py" if job.kind == "convert" else "tools/paper_tables.py"
    return [PY, tool, *(("quick-data",) if job.kind == "data" else ()), *job.args]


def _render(words: Sequence[str]) -> str:
    return " ".join('"$PARTITION"' if w == "$PARTITION" else _word(w) for w in words)


def _recipe_comment(job) -> List[str]:
    return [f"# {job.name}: {job.recipe}"] if job.recipe else []


def _header(jobs: Sequence, invocation: str, what: str) -> List[str]:
    return ["#!/usr/bin/env bash",
            f"# MixPro paper tables: {len(jobs)} jobs {what}",
            f"# Written by: {invocation}",
            "# (rerun that command to change the plan; `python tools/paper_tables.py collect WORK_ROOT` prints the "
            "tables)",
            "set -euo pipefail",
            f"ROOT={shlex.quote(ROOT)}",
            'cd "$ROOT"',
            'PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"',
            'export PYTHON="$PY" PYTHONPATH="$ROOT:${PYTHONPATH:-}"',
            f"TOTAL={len(jobs)}"]


def bash_script(jobs: Sequence, invocation: str) -> str:
    """One node, one job after the other; a job whose output exists is skipped, so a rerun continues (training with
    ``--resume auto`` picks up its last checkpoint); a job that ends without its output stops the script."""
    lines = _header(jobs, invocation, "on one node, in order; run it again to continue after a failure or a kill")
    lines += ["step() {  # N NAME OUTPUT COMMAND...: run COMMAND unless OUTPUT exists; COMMAND must leave OUTPUT",
              '  local n=$1 name=$2 out=$3; shift 3',
              '  if [ -e "$out" ]; then echo "[$n/$TOTAL] skip $name: $out exists"; return 0; fi',
              '  echo "[$n/$TOTAL] $(date "+%F %T") start $name"',
              '  "$@"',
              '  if [ ! -e "$out" ]; then echo "[$n/$TOTAL] $name finished without $out" >&2; exit 1; fi',
              '  echo "[$n/$TOTAL] $(date "+%F %T") done $name"',
              "}"]
    for i, job in enumerate(jobs, 1):
        lines += _recipe_comment(job)
        lines.append(f"step {i} {shlex.quote(job.name)} {shlex.quote(job.output)} {_render(command(job))}")
    lines.append('echo "all $TOTAL jobs done"')
    return "\n".join(lines) + "\n"


def slurm_resources(job, gpus_per_node: int = 8, cpus_per_gpu: int = 5) -> str:
    """sbatch options of ``job``: training one task per GPU over as many nodes as needed (requeueable, for
    ``tools/slurm_train.sh``), a test one node's GPUs under one task (torchrun), the rest one CPU task."""
    if job.kind in ("pretrain", "finetune"):
        per_node = min(job.gpus, gpus_per_node)
        return (f"--nodes={-(-job.gpus // per_node)} --ntasks={job.gpus} --ntasks-per-node={per_node} "
                f"--gres=gpu:{per_node} --cpus-per-task={cpus_per_gpu} --requeue --open-mode=append "
                f"--export=ALL,GPUS_PER_NODE={per_node}")
    if job.gpus:
        n = min(job.gpus, gpus_per_node)
        return f"--nodes=1 --ntasks=1 --gres=gpu:{n} --cpus-per-task={cpus_per_gpu * n}"
    return "--nodes=1 --ntasks=1 --cpus-per-task=4"


def slurm_script(jobs: Sequence, invocation: str, work_root: str, gpus_per_node: int = 8,
                 cpus_per_gpu: int = 5) -> str:
    """sbatch per job (``--parsable``), each with ``--dependency=afterok:`` the ids of the jobs it needs. A job whose
    output exists is not submitted and its dependents do not wait for it; a job queued or running under its name
    (``squeue --name``, the user's jobs) is not submitted again and its dependents wait for that job — so running the
    script again submits only what is neither done nor under way. Training: ``tools/slurm_train.sh`` in a
    requeueable allocation (one task per GPU)."""
    index = {job.name: i for i, job in enumerate(jobs, 1)}
    logs = osp.join(osp.abspath(work_root), "logs")
    lines = _header(jobs, invocation, "submitted with sbatch, each waiting (--dependency=afterok) for the jobs it "
                                      "needs")
    lines[4:4] = ["# Submit from a login node: PARTITION=<partition> bash THIS_SCRIPT; SBATCH_ARGS (e.g. "
                  "\"--time=3-00:00:00 --account=X\")", f"# is added to every sbatch call. Logs: {logs}/<job>-<id>.out",
                  "# Running it again submits nothing that is done, queued or running (job names must be unique "
                  "among your jobs)."]
    lines += [': "${PARTITION:?set PARTITION to the slurm partition}"',
              f"LOGS={shlex.quote(logs)}",
              'mkdir -p "$LOGS"',
              "submit() {  # N NAME OUTPUT SBATCH-OPTIONS NEEDED-JOB-IDS COMMAND...: prints the job id (none: done)",
              '  local n=$1 name=$2 out=$3 res=() ids=() dep=() jid',
              '  read -ra res <<< "$4"',
              '  read -ra ids <<< "$5"',
              '  shift 5',
              '  if [ -e "$out" ]; then echo "[$n/$TOTAL] skip $name: $out exists" >&2; return 0; fi',
              '  jid=$(squeue -h -u "$(id -un)" --name="$name" -o %i | head -n 1)',
              '  if [ -n "$jid" ]; then echo "[$n/$TOTAL] skip $name: queued or running as job $jid" >&2; '
              'echo "$jid"; return 0; fi',
              '  if [ ${#ids[@]} -gt 0 ]; then dep=("--dependency=afterok:$(IFS=:; echo "${ids[*]}")"); fi',
              '  jid=$(sbatch --parsable --job-name="$name" --partition="$PARTITION" --output="$LOGS/%x-%j.out" \\',
              '        "${res[@]}" "${dep[@]}" ${SBATCH_ARGS:-} --wrap "$(printf "%q " "$@")")',
              '  jid=${jid%%;*}',
              '  echo "[$n/$TOTAL] $name: job $jid ${dep[*]}" >&2',
              '  echo "$jid"',
              "}"]
    for i, job in enumerate(jobs, 1):
        needs = " ".join(f"$j{index[n]}" for n in job.needs)
        lines += _recipe_comment(job)
        lines.append(f'j{i}=$(submit {i} {shlex.quote(job.name)} {shlex.quote(job.output)} '
                     f'"{slurm_resources(job, gpus_per_node, cpus_per_gpu)}" "{needs}" '
                     f'{_render(command(job, slurm=True, gpus_per_node=gpus_per_node))})')
    lines.append('echo "submitted; progress: squeue -u $(id -un)" >&2')
    return "\n".join(lines) + "\n"
