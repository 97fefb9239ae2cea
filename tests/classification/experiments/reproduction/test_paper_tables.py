"""tools/paper_tables.py: the plan's jobs, order and dependencies (bash script run with every output present or a
failing step; slurm script run against a fake sbatch and squeue), each training job's recipe at any GPU count (the
configs with the job's options merged, checked against the paper's batch and lr), the quick overrides, the collector
on metrics.json / curve.json files written in the plan's layout, and one slow end-to-end run of a --quick plan."""
import base64
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import time

import pytest

from classification.engine.launch import write_metrics
from classification.experiments.reproduction import paper_cli, paper_plan as P, paper_recipe as R
from classification.experiments.reproduction import paper_tables as T
from classification.foundation.errors import UserError

from classification.foundation.host import ROOT
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
SEG = "segmenter-{head}_deit-s_{m}_8xb2-80k_pascal-context-480x480"
REFS = ["deeplabv3plus_r101-d8_4xb4-40k_pascal-context-480x480", "mask-rcnn_r50_fpn_8xb2-1x_coco",
        "mask-rcnn_r101_fpn_8xb2-1x_coco"]


def _plan(work, *args):
    assert paper_cli.main(["plan", "--work-root", work, *args]) == 0
    with open(osp.join(work, "plan", "jobs.json")) as f:
        return [P.Job(**{k: tuple(v) if isinstance(v, list) else v for k, v in j.items()}) for j in json.load(f)]


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory):
    """The default rows (Tables 2 and 3 with their reference rows), all three methods, 8 GPUs: (work root, jobs,
    script folder)."""
    work = str(tmp_path_factory.mktemp("plan") / "w")
    return work, _plan(work, "--gpus", "8"), osp.join(work, "plan")


def _by_name(jobs):
    return {j.name: j for j in jobs}


# ------------------------------------------------------------------------------------------------ rows, numbers
def test_every_row_has_its_configs_and_the_paper_numbers():
    for row in T.TABLE1:
        for m in T.METHODS:
            assert osp.isfile(osp.join(ROOT, "configs", "classification", row.stem(m) + ".py")), row.stem(m)
    for model in T.P14_MODELS:
        assert osp.isfile(osp.join(ROOT, "configs", "classification", T.TABLE1_BY_MODEL[model].stem("mixpro", 14)
                                   + ".py"))
    for row in T.DOWNSTREAM.values():
        for m in T.METHODS:
            for suffix in row.tests:
                assert osp.isfile(osp.join(ROOT, "configs", row.folder, row.stem(m) + suffix + ".py"))
    for ref in T.REFERENCES.values():
        for suffix in ref.tests:
            assert osp.isfile(osp.join(ROOT, "configs", ref.folder, ref.stem + suffix + ".py"))
    assert T.paper_value("1", "DeiT-S", "top-1", "mixpro") == 81.3
    assert T.paper_value("1", "CaiT-XXS", "top-1", "transmix") == 79.8
    assert T.paper_value("2", "Linear", "mIoU +MS", "transmix") == 50.3
    assert T.paper_value("2", "Segmenter mask head", "mIoU", "baseline") == 49.7
    assert T.paper_value("3", "PVT-S", "mask AP75", "mixpro") == 41.7
    assert T.paper_value("3", "PVT-S", "box AP50", "transmix") == 63.8
    assert len(T.PAPER) == 14 + 4 + 6
    assert dict(T.REFERENCES["pascal-context-deeplabv3plus"].paper) == {"mIoU": 47.3, "mIoU +MS": 48.5}
    assert dict(T.REFERENCES["coco-mask-rcnn-r101"].paper)["mask AP75"] == 38.8
    assert T.REPORTED["smmix"]["pvt-l"] == 82.7 and T.REPORTED["tokenmix"]["deit-b"] == 82.9


def test_table2_is_pascal_context_with_60_classes_and_segmenters_recipe():
    for m in T.METHODS:
        for head in ("linear", "mask"):
            cfg = P.plan_config(f"configs/segmentation/{SEG.format(head=head, m=m)}.py", "t")
            assert cfg.train_dataloader.dataset.type == "PascalContextDataset"  # 60 classes, background = 0
            assert cfg.model.decode_head.num_classes == 60 and cfg.train_dataloader.batch_size * 8 == 16
            assert cfg.model.test_cfg == dict(mode="slide", crop_size=(480, 480), stride=(320, 320))
            assert cfg.train_cfg.max_iters == 80000 == round(256 * 4998 / 16, -3)
    assert {r.table for r in T.DOWNSTREAM.values() if r.paper} == {"2", "3"}
    assert all("ade20k" in r.finetune for r in T.DOWNSTREAM.values() if not r.paper)


def test_rows_resolve_groups_and_names_and_reject_unknown_ones():
    assert P.resolve_rows(["table2,table3"]) == ([], ["pascal-context-linear", "pascal-context-mask",
                                                      "coco-mask-rcnn"], list(T.REFERENCES))
    assert P.resolve_rows(["xcit-t24", "deit-t", "ade20k-mask"]) == (["deit-t", "xcit-t24"], ["ade20k-mask"], [])
    assert P.resolve_rows(["table1"])[0] == [r.model for r in T.TABLE1]
    with pytest.raises(ValueError, match="unknown row 'deit-q'"):
        P.resolve_rows(["deit-q"])


def test_any_method_with_configs_for_the_rows_is_planned_and_one_without_is_named(tmp_path, monkeypatch):
    shutil.copytree(osp.join(ROOT, "configs"), tmp_path / "configs",
                    ignore=lambda d, names: [n for n in names if n.startswith("xcit-t24_")])
    src = tmp_path / "configs" / "classification" / "deit-t_baseline_8xb128-300e_in1k.py"
    shutil.copy(src, src.parent / "deit-t_newmix_8xb128-300e_in1k.py")  # a method the paper has no column for
    monkeypatch.setattr(P, "ROOT", str(tmp_path))
    jobs = P.build_jobs(str(tmp_path / "w"), ["deit-t"], methods=["newmix", "baseline"], gpus=1)
    assert [j.name for j in jobs if j.kind == "pretrain"] == ["pretrain.deit-t_newmix_8xb128-300e_in1k",
                                                              "pretrain.deit-t_baseline_8xb128-300e_in1k"]
    with pytest.raises(ValueError, match=r"method 'newmix' has no config for the rows asked: "
                                         r"configs/classification/deit-s_newmix_8xb128-300e_in1k.py, "
                                         r"configs/segmentation/segmenter-mask_deit-s_newmix_8xb2-80k"):
        P.build_jobs(str(tmp_path / "w"), ["deit-t,pascal-context-mask"], methods=["newmix"], gpus=1)
    every = "; ".join(f"method '{m}' has no config for the rows asked: "
                      f"configs/classification/xcit-t24_{m}_8xb128-400e_in1k.py" for m in T.METHODS)
    with pytest.raises(ValueError, match=f"^{re.escape(every)}$"):  # every method lacking configs, in one message
        P.build_jobs(str(tmp_path / "w"), ["deit-t,xcit-t24"], gpus=1)
    assert paper_cli.main(["plan", "--work-root", str(tmp_path / "w"), "--gpus", "1", "--methods", "Bad!"]) == 2


# ------------------------------------------------------------------------------------------------ plan
def test_plan_orders_and_links_the_jobs_of_every_method(default_plan):
    work, jobs, _ = default_plan
    names = [j.name for j in jobs]
    # per method: 2 pretrain + 2 test, 2 convert, 3 finetune + 5 tests; reference rows: 3 trainings + 4 tests
    assert len(names) == len(set(names)) == 3 * (4 + 2 + 8) + 7
    position = {n: i for i, n in enumerate(names)}
    for j in jobs:
        assert all(position[n] < position[j.name] for n in j.needs), j.name
    job = _by_name(jobs)
    for m in T.METHODS:
        deit, pvt = f"deit-s_{m}_8xb128-300e_in1k", f"pvt-s_{m}_8xb128-300e_in1k"
        chains = [(deit, "mmseg-vit-480", "mmseg-vit", SEG.format(head=h, m=m), ["", "_ms"])
                  for h in ("linear", "mask")]
        chains += [(pvt, "mmdet-pvt", "mmdet-pvt", f"mask-rcnn_pvt-s_{m}_fpn_8xb2-1x_coco", [""])]
        for backbone, target, to, ft, tests in chains:
            pre, conv, fine = f"pretrain.{backbone}", f"convert.{backbone}_{target}", f"finetune.{ft}"
            assert job[f"test.{backbone}"].needs == (pre,) and job[conv].needs == (pre,)
            assert job[fine].needs == (conv,)
            for suffix in tests:
                t = job[f"test.{ft}{suffix}"]
                assert t.needs == (fine,)
                assert t.args[:2] == (f"configs/{'detection' if 'rcnn' in ft else 'segmentation'}/{ft}{suffix}.py",
                                      job[fine].output)
                assert t.output == osp.join(work, "test", ft + suffix, "metrics.json")
            assert job[pre].output == osp.join(work, "pretrain", backbone, "epoch_300.pth")
            assert job[conv].args[:4] == (job[pre].output, osp.join(work, "checkpoints", f"{backbone}_{target}.pth"),
                                          "--to", to)
            assert f"model.backbone.init_cfg.checkpoint={job[conv].output}" in job[fine].args
        assert job[f"convert.{deit}_mmseg-vit-480"].args[4:] == ("--img-size", "480", "480")
    assert job[f"finetune.{SEG.format(head='mask', m='mixpro')}"].output.endswith("/iter_80000.pth")
    assert job["finetune.mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco"].output.endswith("/epoch_12.pth")
    for stem, ckpt, tests in zip(REFS, ("iter_40000.pth", "epoch_12.pth", "epoch_12.pth"), (2, 1, 1)):
        train = job[f"finetune.{stem}"]
        assert train.needs == () and train.output == osp.join(work, "finetune", stem, ckpt)
        assert train.args[0] == f"configs/{'segmentation' if 'deeplab' in stem else 'detection'}/{stem}.py"
        assert sum(j.needs == (train.name,) for j in jobs) == tests


def _merged(job):
    """The job's config with its --cfg-options merged, as tools/train.py would build it."""
    cfg = P.plan_config(job.args[0], job.name)
    opts = list(job.args[job.args.index("--cfg-options") + 1:]) if "--cfg-options" in job.args else []
    P.apply_options(cfg, opts)
    return cfg


def _effective(job):
    """(total batch, base lr, optimiser steps or epochs, iteration-schedule end per step) of a training job, computed
    the way mmengine trains it: GPUs × loader batch × accumulative_counts, lr × real batch / base batch when
    auto-scaling is on (mmengine counts GPUs × loader batch only)."""
    cfg = _merged(job)
    accum = cfg.optim_wrapper.get("accumulative_counts", 1)
    per_gpu = cfg.train_dataloader.batch_size
    lr = cfg.optim_wrapper.optimizer.lr
    if (cfg.get("auto_scale_lr") or {}).get("enable"):
        lr *= job.gpus * per_gpu / cfg.auto_scale_lr.base_batch_size
    loop = cfg.train_cfg
    length = loop.max_iters / accum if "max_iters" in loop else loop.max_epochs
    ends = sorted(s["end"] / accum for s in cfg.param_scheduler if not s.get("by_epoch", True))
    return job.gpus * per_gpu * accum, round(lr, 12), length, ends


def _paper_recipe(name):
    """(total batch, lr) of the paper's setting of a training job, from the papers' recipes (docs/methods.md)."""
    for part, recipe in (("pretrain.", (1024, 1e-3)), ("ade20k", (8, 1e-3)), ("deeplabv3plus", (16, 0.004)),
                         ("pascal-context-480x480", (16, 1e-3)), ("mask-rcnn_pvt", (16, 2e-4)),
                         ("mask-rcnn_r", (16, 0.02))):
        if part in name:
            return recipe
    raise AssertionError(name)


@pytest.mark.parametrize("gpus", [1, 2, 4, 16])
def test_every_training_job_keeps_the_paper_batch_and_lr_at_any_gpu_count(default_plan, tmp_path, gpus):
    _, at8, _ = default_plan
    work = str(tmp_path / "w")
    jobs = _plan(work, "--gpus", str(gpus), "--rows", "table2", "table3", "deit-t", "pvt-m", "xcit-l24", "ade20k",
                 "--deit-patch", "14")
    eight = {j.name: j for j in _plan(str(tmp_path / "w8"), "--gpus", "8", "--rows", "table2", "table3", "deit-t",
                                      "pvt-m", "xcit-l24", "ade20k", "--deit-patch", "14")}
    training = [j for j in jobs if j.kind in ("pretrain", "finetune")]
    assert len(training) == 3 * 5 + 3 * 5 + 3  # per method 5 backbones and 5 fine-tunes; 3 reference rows
    for job in training:
        total, lr, length, ends = _effective(job)
        ref = _effective(eight[job.name])
        assert (total, lr, length, ends) == ref, job.name  # the same recipe as at 8 GPUs ...
        assert (total, lr) == _paper_recipe(job.name), job.name  # ... the paper's
        assert job.total_batch == total and job.lr == pytest.approx(lr) and job.gpus <= gpus
        assert job.recipe.startswith(f"total batch {total} = {job.gpus} GPU(s) x ")
        assert job.gpus == min(gpus, 8 if "ade20k" in job.name else gpus)  # 8 images spread over 8 GPUs at most
    deit = _by_name(jobs)["pretrain.deit-t-p14_mixpro_8xb128-300e_in1k"]
    assert f"# {deit.name}: {deit.recipe}" in open(osp.join(work, "plan", "one_node.sh")).read()
    assert f"# {deit.name}: {deit.recipe}" in open(osp.join(work, "plan", "slurm.sh")).read()


def test_batch_split_matches_a_search_over_every_split():
    for total, per_gpu, gpus in [(1024, 128, 1), (1024, 128, 3), (1024, 128, 16), (16, 2, 4), (16, 2, 16),
                                 (8, 1, 16), (16, 4, 6), (12, 4, 5)]:
        best = max((g, b) for g in range(1, gpus + 1) for b in range(1, per_gpu + 1) if total % (g * b) == 0)
        assert R.split_batch(total, per_gpu, gpus) == (*best, total // (best[0] * best[1]))
    with pytest.raises(ValueError, match="gives no NxbB setting"):
        R.paper_setting("mask-rcnn_r50_fpn_1x_coco")


def test_deit_patch_14_plans_mixpros_deit_rows_in_the_official_setting_beside_patch_16(tmp_path):
    jobs = _plan(str(tmp_path / "w"), "--gpus", "8", "--rows", "deit-s", "pascal-context-mask", "--deit-patch", "14")
    pretrain = [j.name for j in jobs if j.kind == "pretrain"]
    assert pretrain == ["pretrain.deit-s_baseline_8xb128-300e_in1k", "pretrain.deit-s_transmix_8xb128-300e_in1k",
                        "pretrain.deit-s-p14_mixpro_8xb128-300e_in1k", "pretrain.deit-s_mixpro_8xb128-300e_in1k"]
    converts = [j.args[0] for j in jobs if j.kind == "convert"]
    assert all("-p14_" not in c for c in converts) and len(converts) == 3  # downstream keeps patch-16 backbones
    assert "--deit-patch 14" in open(tmp_path / "w" / "plan" / "one_node.sh").read()


def _steps(script):
    """(name, output, command words) of every `step` line of a one-node script."""
    out = []
    for line in open(script):
        if line.startswith("step "):
            words = line.split()
            out.append((words[2], words[3], words[4:]))
    return out


def test_one_node_script_runs_pretrain_convert_finetune_test_in_order_and_skips_what_exists(default_plan):
    work, jobs, folder = default_plan
    script = osp.join(folder, "one_node.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    steps = _steps(script)
    assert [(n, o) for n, o, _ in steps] == [(j.name, j.output) for j in jobs]
    pre = next(c for n, _, c in steps if n.startswith("pretrain.deit-s_mixpro"))
    assert pre[:3] == ["tools/dist_train.sh", "configs/classification/deit-s_mixpro_8xb128-300e_in1k.py", "8"]
    assert "--resume" in pre and "auto" in pre
    assert next(c for n, _, c in steps if n.startswith("convert."))[:2] == ['"$PY"', "tools/convert_checkpoint.py"]
    assert next(c for n, _, c in steps if n.startswith("test."))[0] == "tools/dist_test.sh"
    for job in jobs:  # every output present: a rerun only skips
        os.makedirs(osp.dirname(job.output), exist_ok=True)
        open(job.output, "w").close()
    try:
        run = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60)
    finally:
        for job in jobs:
            os.remove(job.output)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(" skip ") == len(jobs) and f"all {len(jobs)} jobs done" in run.stdout


def test_one_node_script_stops_when_a_step_leaves_no_output(tmp_path):
    assert paper_cli.main(["plan", "--work-root", str(tmp_path / "w"), "--gpus", "1", "--quick", "--rows",
                           "pascal-context-mask", "--methods", "mixpro"]) == 0
    run = subprocess.run(["bash", str(tmp_path / "w" / "plan" / "one_node.sh")], capture_output=True, text=True,
                         env=dict(ENV, PYTHON="true"), timeout=60)  # the data step "succeeds" without writing
    assert run.returncode == 1
    assert f"data.quick finished without {tmp_path}/w/data/quick-data.json" in run.stderr
    assert "start pretrain" not in run.stdout


# a fake sbatch: logs its arguments, answers the next id and records "name id" as queued; a fake squeue: prints the
# id of a queued job of the --name it is asked for (as `squeue -h -u USER --name=NAME -o %i` does)
FAKE_SBATCH = """#!/usr/bin/env bash
n=$(( $(wc -l < "$SBATCH_LOG" 2>/dev/null || echo 0) + 101 ))
printf '%s\\0' "$@" | base64 -w0 >> "$SBATCH_LOG"; echo >> "$SBATCH_LOG"
for a in "$@"; do case "$a" in --job-name=*) echo "${a#--job-name=} $n" >> "$QUEUE" ;; esac; done
echo "$n;cluster"
"""
FAKE_SQUEUE = """#!/usr/bin/env bash
for a in "$@"; do case "$a" in --name=*) name="${a#--name=}" ;; esac; done
[ -f "$QUEUE" ] && awk -v n="$name" '$1 == n {print $2}' "$QUEUE"
exit 0
"""


def _submit_slurm(script, tmp_path, tag, queue="none"):
    """Run a slurm.sh against the fakes (``queue``: the fake queue's file, kept between calls of one test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / f"sbatch-{tag}.log"
    run = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60,
                         env=dict(ENV, PATH=f"{bin_dir}:{os.environ['PATH']}", SBATCH_LOG=str(log), PARTITION="gpu",
                                  QUEUE=str(tmp_path / f"queue-{queue if queue != 'none' else tag}")))
    assert run.returncode == 0, run.stderr
    calls = []
    for line in (log.read_text().splitlines() if log.exists() else []):
        args = base64.b64decode(line).decode().split("\0")[:-1]
        opt = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
        deps = opt["--dependency"].split(":") if "--dependency" in opt else ["afterok"]
        assert deps[0] == "afterok"
        calls.append(dict(id=str(100 + len(calls) + 1), name=opt["--job-name"], args=args, deps=deps[1:],
                          wrap=args[args.index("--wrap") + 1]))
    return calls, run.stderr


def test_slurm_script_submits_every_job_after_the_jobs_it_needs(default_plan, tmp_path):
    work, jobs, folder = default_plan
    script = osp.join(folder, "slurm.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    for line in open(script):  # statically: each job waits for the variables of the jobs it needs
        if line.startswith("j"):
            i, needs = re.match(r'j(\d+)=\$\(submit \d+ \S+ \S+ "[^"]*" "([^"]*)"', line).groups()
            assert needs.split() == [f"$j{[j.name for j in jobs].index(n) + 1}" for n in jobs[int(i) - 1].needs]
    calls, _ = _submit_slurm(script, tmp_path, "all")
    assert [c["name"] for c in calls] == [j.name for j in jobs]
    id_of = {c["name"]: c["id"] for c in calls}
    for job, call in zip(jobs, calls):
        assert sorted(call["deps"]) == sorted(id_of[n] for n in job.needs), job.name
        assert "--partition=gpu" in call["args"] and "--parsable" in call["args"]
        if job.kind in ("pretrain", "finetune"):
            assert call["wrap"].startswith(f"tools/slurm_train.sh gpu {job.name} {job.args[0]} {job.gpus} ")
            assert {f"--ntasks={job.gpus}", f"--gres=gpu:{job.gpus}", "--requeue"} <= set(call["args"])
        elif job.kind == "test":
            assert call["wrap"].startswith(f"tools/dist_test.sh {job.args[0]} {job.args[1]} 8 ")
        else:
            assert "tools/convert_checkpoint.py" in call["wrap"] and not any("gres" in a for a in call["args"])
    done = _by_name(jobs)["pretrain.deit-s_baseline_8xb128-300e_in1k"]
    os.makedirs(osp.dirname(done.output), exist_ok=True)
    open(done.output, "w").close()
    try:
        again, _ = _submit_slurm(script, tmp_path, "again")  # an empty queue: only the finished job is left out
    finally:
        os.remove(done.output)
    assert done.name not in [c["name"] for c in again] and len(again) == len(jobs) - 1
    convert = next(c for c in again if c["name"] == "convert.deit-s_baseline_8xb128-300e_in1k_mmseg-vit-480")
    assert convert["deps"] == []  # what it needed is done: no dependency


def test_running_slurm_script_twice_submits_nothing_queued_or_running(tmp_path):
    work = str(tmp_path / "w")
    jobs = _plan(work, "--gpus", "8", "--rows", "pascal-context-mask", "coco-mask-rcnn-r50", "--methods", "mixpro")
    script = osp.join(work, "plan", "slurm.sh")
    first, _ = _submit_slurm(script, tmp_path, "first", queue="shared")
    assert len(first) == len(jobs)
    second, err = _submit_slurm(script, tmp_path, "second", queue="shared")
    assert second == [] and err.count("queued or running as job") == len(jobs)
    # half-way: the first jobs are finished and gone from the queue, the rest still queued under their names
    (tmp_path / "queue-shared").write_text("".join(f"{c['name']} {c['id']}\n" for c in first[2:]))
    for job in jobs[:2]:
        os.makedirs(osp.dirname(job.output), exist_ok=True)
        open(job.output, "w").close()
    third, err = _submit_slurm(script, tmp_path, "third", queue="shared")
    assert third == [] and err.count(" exists") == 2 and err.count("queued or running") == len(jobs) - 2
    (tmp_path / "queue-shared").write_text("")  # the queue empties (e.g. jobs cancelled): all but the done resubmitted
    fourth, _ = _submit_slurm(script, tmp_path, "fourth", queue="shared")
    assert [c["name"] for c in fourth] == [j.name for j in jobs[2:]]


def test_slurm_job_waits_for_every_job_it_needs_and_spans_nodes_beyond_gpus_per_node(tmp_path):
    work = str(tmp_path / "w")
    assert paper_cli.main(["plan", "--work-root", work, "--gpus", "12", "--quick", "--rows", "pascal-context-mask",
                           "--methods", "mixpro"]) == 0
    calls = {c["name"]: c for c in _submit_slurm(osp.join(work, "plan", "slurm.sh"), tmp_path, "quick")[0]}
    fine = calls[f"finetune.{SEG.format(head='mask', m='mixpro')}"]
    assert sorted(fine["deps"]) == sorted([calls["convert.deit-s_mixpro_8xb128-300e_in1k_mmseg-vit-480"]["id"],
                                           calls["data.quick"]["id"]])  # two jobs: afterok:A:B
    assert {"--nodes=2", "--ntasks=12", "--ntasks-per-node=8", "--gres=gpu:8",
            "--export=ALL,GPUS_PER_NODE=8"} <= set(fine["args"])  # 12 GPUs: two nodes of at most 8
    test = calls[f"test.{SEG.format(head='mask', m='mixpro')}_ms"]
    assert "--gres=gpu:8" in test["args"] and " iter_4.pth 8 " in test["wrap"].replace("/", " ")


# ------------------------------------------------------------------------------------------------ quick
def test_quick_options_shrink_the_real_configs_where_their_pipelines_put_the_scales():
    cfg = P.plan_config(f"configs/segmentation/{SEG.format(head='mask', m='mixpro')}.py", "t")
    P.apply_options(cfg, P.quick_options(cfg, "segmentation", True, "/d"))
    types = {t["type"]: t for t in cfg.train_dataloader.dataset.pipeline}
    assert types["RandomCrop"]["crop_size"] == (64, 64) and types["RandomResize"]["scale"] == (256, 64)
    assert cfg.val_dataloader is None and cfg.train_cfg.max_iters == P.QUICK_SEG_ITERS
    assert cfg.train_dataloader.dataset.data_root == "/d/pascal_context/VOCdevkit/VOC2010"
    assert cfg.model.data_preprocessor.size == (64, 64)
    ms = P.plan_config(f"configs/segmentation/{SEG.format(head='mask', m='mixpro')}_ms.py", "t")
    P.apply_options(ms, P.quick_options(ms, "segmentation", False, "/d"))
    views = ms.test_dataloader.dataset.pipeline[1].transforms[0]  # Segmenter's absolute scales, every one at 64 px
    assert [[s.scale for s in (v.transforms if v.type == "Compose" else [v])] for v in views] == \
        [[(256, 64)] * 2] * 2 + [[(256, 64)]] * 4
    det = P.plan_config("configs/detection/mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco.py", "t")
    P.apply_options(det, P.quick_options(det, "detection", False, "/d"))
    resize = next(t for t in det.test_dataloader.dataset.pipeline if t["type"] == "Resize")
    assert resize["scale"] == (256, 64) and det.test_evaluator.ann_file == "/d/composite/annotations/instances_val.json"
    assert det.model.backbone.pretrain_img_size == 64 and det.model.test_cfg.rcnn.score_thr == 0.0
    assert P.quick_train_args(det) == ("--epochs", "1") and det.train_cfg.max_epochs == 1


def test_the_plan_refuses_a_mistyped_option_key_and_a_missing_config_in_one_line(tmp_path, monkeypatch, capsys):
    """The plan reads its configs through the tools' loader: its options get the --cfg-options key check, a missing
    config the one-line error."""
    cfg = P.plan_config("configs/classification/deit-t_mixpro_8xb128-300e_in1k.py", "t")
    with pytest.raises(UserError, match=r"^--cfg-options train_cfg.max_epoch=1: 'train_cfg' is built into "
                                        r"EpochBasedTrainLoop, which takes no option 'max_epoch'; did you mean "
                                        r"'max_epochs'\?$"):
        P.apply_options(cfg, ["train_cfg.max_epoch=1"])
    work = str(tmp_path / "w")
    args = ["plan", "--work-root", work, "--gpus", "1", "--quick", "--rows", "deit-t"]
    quick = P.quick_options
    monkeypatch.setattr(P, "quick_options", lambda *a: quick(*a) + ["train_dataloader.batch_sizes=4"])
    assert paper_cli.main(args + ["--methods", "mixpro"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --cfg-options train_dataloader.batch_sizes=4: ")
    assert "did you mean 'batch_size'?" in err and not osp.exists(osp.join(work, "plan", "jobs.json"))
    monkeypatch.setattr(P, "quick_options", quick)
    monkeypatch.setattr(P, "check_methods", lambda *a: None)  # the loader, not the method check, meets the gap
    assert paper_cli.main(args + ["--methods", "newmix"]) == 2
    stem = T.TABLE1_BY_MODEL["deit-t"].stem("newmix")
    assert capsys.readouterr().err == (f"error: Table 1 row {T.TABLE1_BY_MODEL['deit-t'].name}, newmix: config "
                                       f"configs/classification/{stem}.py does not exist\n")


# ------------------------------------------------------------------------------------------------ collect
def _rows(lines, label, n):
    """The cells (after the line-name column) of ``n`` lines from the line whose first cell is ``label``."""
    i = next(i for i, line in enumerate(lines) if line.startswith(f"| {label} |"))
    return [[c.strip() for c in line.strip("|").split("|")][2:] for line in lines[i:i + n]]


def _write(plan_root, work, test_job, metrics):
    """metrics.json at the plan's output path of ``test_job``, moved under ``work``."""
    folder = osp.dirname(test_job.output.replace(plan_root, work))
    os.makedirs(folder)
    write_metrics(folder, test_job.args[0], test_job.args[1], metrics)


def test_collect_prints_ours_the_paper_and_the_difference_and_marks_what_is_not_run(default_plan, tmp_path):
    plan_root, jobs, _ = default_plan
    work = str(tmp_path / "w")
    job = _by_name(jobs)
    _write(plan_root, work, job["test.deit-s_mixpro_8xb128-300e_in1k"], {"top1": 80.95, "top5": 95.1})
    linear, mask = SEG.format(head="linear", m="baseline"), SEG.format(head="mask", m="mixpro")
    _write(plan_root, work, job[f"test.{linear}"], {"aAcc": 80.0, "mIoU": 49.0})
    _write(plan_root, work, job[f"test.{linear}_ms"], {"mIoU": 49.8})
    _write(plan_root, work, job[f"test.{mask}"], {"mIoU": 51.3})
    coco = dict(zip([k for _, k in T.COCO_COLUMNS], (0.409, 0.637, 0.442, 0.384, 0.607, 0.413)))
    _write(plan_root, work, job["test.mask-rcnn_pvt-s_transmix_fpn_8xb2-1x_coco"],
           dict(coco, **{"coco/bbox_mAP_s": 0.2}))
    _write(plan_root, work, job[f"test.{REFS[0]}"], {"mIoU": 47.05})
    _write(plan_root, work, job[f"test.{REFS[1]}"], dict(zip([k for _, k in T.COCO_COLUMNS],
                                                              (0.381, 0.589, 0.413, 0.346, 0.558, 0.368))))
    out, js = tmp_path / "tables.md", tmp_path / "cells.json"
    assert paper_cli.main(["collect", work, "--out", str(out), "--json", str(js)]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert "QUICK" not in text and "Pascal Context (60 classes)" in text
    assert _rows(lines, "DeiT-S", 5) == [["—", "—", "80.95"], ["—", "—", "—"], ["79.8", "80.7", "81.3"],
                                         ["not run", "not run", "-0.35"], ["not run"] * 3]
    assert _rows(lines, "Linear", 3) == [["49.00 (49.80)", "— (—)", "— (—)"],
                                         ["49.1 (49.6)", "49.7 (50.3)", "50.3 (50.9)"],
                                         ["-0.10 (+0.20)", "not run (not run)", "not run (not run)"]]
    mask_lines = _rows(lines, "Segmenter mask head", 3)
    assert mask_lines[0][2] == "51.30 (—)" and mask_lines[2][2] == "+0.20 (not run)"
    assert _rows(lines, "DeepLabv3+ R-101", 5) == [["47.05 (—)"], ["47.3 (48.5)"], ["47.30 (48.47)"],
                                                   ["-0.25 (not run)"], ["-0.25 (not run)"]]
    r50 = _rows(lines, f"ResNet-50 (reference, `{REFS[1]}`)", 5)
    assert r50[0] == ["38.10", "58.90", "41.30", "34.60", "55.80", "36.80"]
    assert r50[1] == ["38.0", "58.6", "41.4", "34.4", "57.1", "36.7"]
    assert r50[2] == ["38.20", "—", "—", "34.70", "—", "—"] and r50[3][:2] == ["+0.10", "+0.30"]
    assert r50[4] == ["-0.10", "", "", "-0.10", "", ""]  # beside the model zoo's box and mask AP
    assert _rows(lines, "TransMix-PVT-S", 3) == [["40.90", "63.70", "44.20", "38.40", "60.70", "41.30"],
                                                 ["40.9", "63.8", "44.0", "38.4", "60.7", "41.3"],
                                                 ["+0.00", "-0.10", "+0.20", "+0.00", "+0.00", "+0.00"]]
    assert _rows(lines, "PVT-S", 1)[0] == ["—"] * 3 and _rows(lines, "MixPro-PVT-S", 1)[0] == ["—"] * 6
    assert "| Linear (ADE20K) | — (—) | — (—) | — (—) |" in lines  # the extra, no paper numbers
    name = T.display_name("tlalign")  # reported by TL-Align's authors, no run of ours
    assert f"| DeiT-S | {name} | — | — | 80.6 | not run |" in lines
    assert ("Runs with metrics: 7 of 73; not run yet: 41 in Table 1, 10 in Table 2, 3 in Table 3, "
            "12 in the extras") in lines[-1]  # 42 Table 1 runs, 12 + 2 Table 2, 3 + 2 Table 3, 12 ADE20K
    cells = json.loads(js.read_text())
    assert cells["quick"] is False
    cell = next(c for c in cells["cells"] if c["row"] == "PVT-S" and c["column"] == "box AP75"
                and c["method"] == "transmix")
    assert cell["ours"] == pytest.approx(44.2) and cell["paper"] == 44.0 and cell["diff"] == pytest.approx(0.2)
    assert cell["source"] == job["test.mask-rcnn_pvt-s_transmix_fpn_8xb2-1x_coco"].output.replace(plan_root, work)


def test_collect_reports_the_final_and_the_best_epoch_and_other_methods(tmp_path):
    work = tmp_path / "w"
    stem = "deit-t_mixpro_8xb128-300e_in1k"
    pre = work / "pretrain" / stem
    pre.mkdir(parents=True)
    curve = [[1250, 60.0], [2500, 74.1], [3750, 73.5]]  # best 74.1 at the second evaluation, final 73.5
    (pre / "curve.json").write_text(json.dumps({"loss": [[1, 6.9]], "val_top1": curve}))
    (pre / "best_top1_epoch_2.pth").write_text("")
    write_metrics(str(work / "test" / stem), "c.py", "epoch_3.pth", {"top1": 73.5})
    p14 = "deit-t-p14_mixpro_8xb128-300e_in1k"
    write_metrics(str(work / "test" / p14), "c.py", "epoch_300.pth", {"top1": 73.9})
    write_metrics(str(work / "test" / "deit-t_smmix_8xb128-300e_in1k"), "c.py", "epoch_300.pth", {"top1": 73.0})
    (work / "data").mkdir()
    (work / "data" / T.QUICK_MARKER).write_text("{}")  # a --quick work root
    out = tmp_path / "t.md"
    assert paper_cli.main(["collect", str(work), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[2].startswith("**QUICK WORK ROOT**")
    assert _rows(lines, "DeiT-T", 5) == [["—", "—", "73.50"], ["—", "—", "74.10 (epoch 2)"],
                                         ["72.2", "72.6", "73.8"], ["not run", "not run", "-0.30"],
                                         ["not run", "not run", "+0.30"]]
    assert _rows(lines, "DeiT-T p14", 5) == [["", "", "73.90"], ["", "", "—"], ["", "", "73.8"], ["", "", "+0.10"],
                                             ["", "", "not run"]]
    assert "DeiT-S p14" not in "\n".join(lines)  # no patch-14 run: no line
    smmix = [line for line in lines if f"| DeiT-T | {T.display_name('smmix')} |" in line]
    assert len(smmix) == 1 and smmix[0].endswith("| 73.00 | — | 73.6 | -0.60 |")
    cells = T.collect(str(work))
    best = next(c for c in cells if c["row"] == "DeiT-T" and c["column"] == "top-1 best" and c["method"] == "mixpro"
                and c["patch"] == 16)
    assert best["ours"] == max(v for _, v in curve) and best["epoch"] == 2 and best["diff"] == pytest.approx(0.3)


def test_collect_names_the_file_and_the_key_it_cannot_read(tmp_path, capsys):
    t = tmp_path / "test" / "mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco"
    t.mkdir(parents=True)
    write_metrics(str(t), "c.py", "k.pth", {"coco/bbox_mAP": 0.4})
    assert paper_cli.main(["collect", str(tmp_path)]) == 2
    assert f"error: {t}/metrics.json: no metric 'coco/bbox_mAP_50' (it has: coco/bbox_mAP)" in capsys.readouterr().err
    (t / "metrics.json").write_text('{"coco/bbox_mAP": 0.4}')
    with pytest.raises(ValueError, match=f"{t}/metrics.json: expected an object with 'metrics'"):
        T.collect(str(tmp_path))
    assert paper_cli.main(["collect", str(tmp_path / "nowhere")]) == 2


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.needs_data("/usr/share/datasets/fashion-mnist")
def test_quick_plan_runs_end_to_end_on_the_cpu_and_collect_reads_it(tmp_path):
    """MixPro only (15 jobs, every kind of step and both targets; 3 methods would be 43 jobs, ~8 min on 2 cores)."""
    work = str(tmp_path / "w")
    assert paper_cli.main(["plan", "--work-root", work, "--gpus", "1", "--quick", "--methods", "mixpro"]) == 0
    script = osp.join(work, "plan", "one_node.sh")
    t0 = time.time()
    run = subprocess.run(["bash", script], capture_output=True, text=True, env=ENV, timeout=540, cwd=str(tmp_path))
    seconds = time.time() - t0
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    steps = _steps(script)
    assert len(steps) == 15 and all(osp.isfile(o) for _, o, _ in steps)
    print(f"quick plan, 15 jobs: {seconds:.0f} s")
    again = subprocess.run(["bash", script], capture_output=True, text=True, env=ENV, timeout=60)
    assert again.returncode == 0 and again.stdout.count(" skip ") == 15
    # the patch-16 cells (collect also lists MixPro's patch-14 DeiT cells, which a default plan does not run)
    cells = {(c["table"], c["row"], c["column"], c["method"]): c for c in T.collect(work) if c.get("patch") != 14}
    with open(osp.join(work, "test", "deit-s_mixpro_8xb128-300e_in1k", "metrics.json")) as f:
        top1 = json.load(f)["metrics"]["top1"]
    assert cells[("1", "DeiT-S", "top-1", "mixpro")]["ours"] == top1
    for key in [("2", "Linear", "mIoU +MS", "mixpro"), ("2", "Segmenter mask head", "mIoU", "mixpro"),
                ("3", "PVT-S", "mask AP75", "mixpro"), ("1", "PVT-S", "top-1", "mixpro")]:
        assert cells[key]["ours"] is not None and 0 <= cells[key]["ours"] <= 100, key
    assert cells[("2", "Linear", "mIoU", "baseline")]["ours"] is None
