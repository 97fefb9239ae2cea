"""tools/paper_tables.py: the plan's jobs, order and dependencies (bash script run with every output present or a
failing step; slurm script run against a fake sbatch), the quick overrides, the collector on metrics.json files
written by tools/test.py's own writer in the plan's layout, and one slow end-to-end run of a --quick plan."""
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
from classification.experiments.reproduction import paper_cli, paper_plan as P, paper_tables as T

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory):
    """The default rows (Tables 2 and 3), all three methods, 8 GPUs: (work root, jobs, script folder)."""
    work = str(tmp_path_factory.mktemp("plan") / "w")
    assert paper_cli.main(["plan", "--work-root", work, "--gpus", "8"]) == 0
    with open(osp.join(work, "plan", "jobs.json")) as f:
        jobs = [P.Job(**{k: tuple(v) if isinstance(v, list) else v for k, v in j.items()}) for j in json.load(f)]
    return work, jobs, osp.join(work, "plan")


def _by_name(jobs):
    return {j.name: j for j in jobs}


# ------------------------------------------------------------------------------------------------ rows, numbers
def test_every_table1_row_has_its_three_configs_and_the_paper_numbers():
    for row in T.TABLE1:
        for m in T.METHODS:
            assert osp.isfile(osp.join(ROOT, "configs", "classification", row.stem(m) + ".py")), row.stem(m)
    assert T.paper_value("1", "DeiT-S", "top-1", "mixpro") == 81.3
    assert T.paper_value("1", "CaiT-XXS", "top-1", "transmix") == 79.8
    assert T.paper_value("2", "Linear", "mIoU +MS", "transmix") == 50.3
    assert T.paper_value("2", "Segmenter mask head", "mIoU", "baseline") == 49.7
    assert T.paper_value("3", "PVT-S", "mask AP75", "mixpro") == 41.7
    assert T.paper_value("3", "PVT-S", "box AP50", "transmix") == 63.8
    assert len(T.PAPER) == 14 + 4 + 6


def test_rows_resolve_groups_and_names_and_reject_unknown_ones():
    assert P.resolve_rows(["table2,table3"]) == ([], ["ade20k-linear", "ade20k-mask", "coco-mask-rcnn"])
    assert P.resolve_rows(["xcit-t24", "deit-t", "ade20k-mask"]) == (["deit-t", "xcit-t24"], ["ade20k-mask"])
    assert P.resolve_rows(["table1"])[0] == [r.model for r in T.TABLE1]
    with pytest.raises(ValueError, match="unknown row 'deit-q'"):
        P.resolve_rows(["deit-q"])


def test_a_missing_table1_config_is_an_error_only_when_its_row_is_asked(tmp_path, monkeypatch):
    shutil.copytree(osp.join(ROOT, "configs"), tmp_path / "configs",
                    ignore=lambda d, names: [n for n in names if n.startswith("xcit-t24_")])
    monkeypatch.setattr(P, "ROOT", str(tmp_path))
    assert len(P.build_jobs(str(tmp_path / "w"), ["deit-t"], gpus=1)) == 6
    with pytest.raises(FileNotFoundError, match=r"Table 1 row XCiT-T, baseline: config "
                                                r"configs/classification/xcit-t24_baseline_8xb128-400e_in1k.py"):
        P.build_jobs(str(tmp_path / "w"), ["deit-t,xcit-t24"], gpus=1)


# ------------------------------------------------------------------------------------------------ plan
def test_plan_orders_and_links_the_jobs_of_every_method(default_plan):
    work, jobs, _ = default_plan
    names = [j.name for j in jobs]
    assert len(names) == len(set(names)) == 3 * (2 + 2 + 2 + 3 + 5)  # per method: pretrain+test ×2, 2 convert, ...
    position = {n: i for i, n in enumerate(names)}
    for j in jobs:
        assert all(position[n] < position[j.name] for n in j.needs), j.name
    job = _by_name(jobs)
    for m in T.METHODS:
        deit, pvt = f"deit-s_{m}_8xb128-300e_in1k", f"pvt-s_{m}_8xb128-300e_in1k"
        chains = [(deit, "mmseg-vit", f"segmenter-{h}_deit-s_{m}_8xb1-160k_ade20k-512x512", ["", "_ms"])
                  for h in ("linear", "mask")] + [(pvt, "mmdet-pvt", f"mask-rcnn_pvt-s_{m}_fpn_8xb2-1x_coco", [""])]
        for backbone, target, ft, tests in chains:
            pre, conv, fine = f"pretrain.{backbone}", f"convert.{backbone}_{target}", f"finetune.{ft}"
            assert job[f"test.{backbone}"].needs == (pre,) and job[conv].needs == (pre,)
            assert job[fine].needs == (conv,)
            assert position[pre] < position[conv] < position[fine]
            for suffix in tests:
                t = job[f"test.{ft}{suffix}"]
                assert t.needs == (fine,) and position[fine] < position[t.name]
                assert t.args[:2] == (f"configs/{'detection' if 'rcnn' in ft else 'segmentation'}/{ft}{suffix}.py",
                                      job[fine].output)
                assert t.output == osp.join(work, "test", ft + suffix, "metrics.json")
            assert job[pre].output == osp.join(work, "pretrain", backbone, "epoch_300.pth")
            assert job[conv].args[:4] == (job[pre].output, osp.join(work, "checkpoints", f"{backbone}_{target}.pth"),
                                          "--to", target)
            assert f"model.backbone.init_cfg.checkpoint={job[conv].output}" in job[fine].args
        assert job[f"convert.{deit}_mmseg-vit"].args[4:] == ("--img-size", "512", "512")
    assert job["finetune.segmenter-mask_deit-s_mixpro_8xb1-160k_ade20k-512x512"].output.endswith("/iter_160000.pth")
    assert job["finetune.mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco"].output.endswith("/epoch_12.pth")


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
    order = {n: i for i, (n, _, _) in enumerate(steps)}
    for m in T.METHODS:
        for kind_order in (["pretrain.deit-s", "convert.deit-s", "finetune.segmenter-linear", "test.segmenter-linear"],
                           ["pretrain.pvt-s", "convert.pvt-s", "finetune.mask-rcnn", "test.mask-rcnn"]):
            idx = [min(i for n, i in order.items() if n.startswith(k) and f"_{m}_" in n) for k in kind_order]
            assert idx == sorted(idx), (m, kind_order)
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
                           "ade20k-mask", "--methods", "mixpro"]) == 0
    run = subprocess.run(["bash", str(tmp_path / "w" / "plan" / "one_node.sh")], capture_output=True, text=True,
                         env=dict(ENV, PYTHON="true"), timeout=60)  # the data step "succeeds" without writing
    assert run.returncode == 1
    assert f"data.quick finished without {tmp_path}/w/data/quick-data.json" in run.stderr
    assert "start pretrain" not in run.stdout


FAKE_SBATCH = """#!/usr/bin/env bash
n=$(( $(wc -l < "$SBATCH_LOG" 2>/dev/null || echo 0) + 101 ))
printf '%s\\0' "$@" | base64 -w0 >> "$SBATCH_LOG"; echo >> "$SBATCH_LOG"
echo "$n;cluster"
"""


def _submit_slurm(script, tmp_path, tag):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    log = tmp_path / f"sbatch-{tag}.log"
    run = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60,
                         env=dict(ENV, PATH=f"{bin_dir}:{os.environ['PATH']}", SBATCH_LOG=str(log), PARTITION="gpu"))
    assert run.returncode == 0, run.stderr
    calls = []
    for line in log.read_text().splitlines():
        args = base64.b64decode(line).decode().split("\0")[:-1]
        opt = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
        deps = opt["--dependency"].split(":") if "--dependency" in opt else ["afterok"]
        assert deps[0] == "afterok"
        calls.append(dict(id=str(100 + len(calls) + 1), name=opt["--job-name"], args=args, deps=deps[1:],
                          wrap=args[args.index("--wrap") + 1]))
    return calls


def test_slurm_script_submits_every_job_after_the_jobs_it_needs(default_plan, tmp_path):
    work, jobs, folder = default_plan
    script = osp.join(folder, "slurm.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    for line in open(script):  # statically: each job waits for the variables of the jobs it needs
        if line.startswith("j"):
            i, needs = re.match(r'j(\d+)=\$\(submit \d+ \S+ \S+ "[^"]*" "([^"]*)"', line).groups()
            assert needs.split() == [f"$j{[j.name for j in jobs].index(n) + 1}" for n in jobs[int(i) - 1].needs]
    calls = _submit_slurm(script, tmp_path, "all")
    assert [c["name"] for c in calls] == [j.name for j in jobs]
    id_of = {c["name"]: c["id"] for c in calls}
    for job, call in zip(jobs, calls):
        assert sorted(call["deps"]) == sorted(id_of[n] for n in job.needs), job.name
        assert "--partition=gpu" in call["args"] and "--parsable" in call["args"]
        if job.kind in ("pretrain", "finetune"):
            assert call["wrap"].startswith(f"tools/slurm_train.sh gpu {job.name} {job.args[0]} 8 ")
            assert {"--ntasks=8", "--gres=gpu:8", "--requeue"} <= set(call["args"])
        elif job.kind == "test":
            assert call["wrap"].startswith(f"tools/dist_test.sh {job.args[0]} {job.args[1]} 8 ")
        else:
            assert "tools/convert_checkpoint.py" in call["wrap"] and not any("gres" in a for a in call["args"])
    done = _by_name(jobs)["pretrain.deit-s_baseline_8xb128-300e_in1k"]
    os.makedirs(osp.dirname(done.output), exist_ok=True)
    open(done.output, "w").close()
    try:
        again = _submit_slurm(script, tmp_path, "again")
    finally:
        os.remove(done.output)
    assert done.name not in [c["name"] for c in again] and len(again) == len(jobs) - 1
    convert = next(c for c in again if c["name"] == "convert.deit-s_baseline_8xb128-300e_in1k_mmseg-vit")
    assert convert["deps"] == []  # what it needed is done: no dependency


def test_slurm_job_waits_for_every_job_it_needs_and_spans_nodes_beyond_gpus_per_node(tmp_path):
    work = str(tmp_path / "w")
    assert paper_cli.main(["plan", "--work-root", work, "--gpus", "12", "--quick", "--rows", "ade20k-mask",
                           "--methods", "mixpro"]) == 0
    calls = {c["name"]: c for c in _submit_slurm(osp.join(work, "plan", "slurm.sh"), tmp_path, "quick")}
    fine = calls["finetune.segmenter-mask_deit-s_mixpro_8xb1-160k_ade20k-512x512"]
    assert sorted(fine["deps"]) == sorted([calls["convert.deit-s_mixpro_8xb128-300e_in1k_mmseg-vit"]["id"],
                                           calls["data.quick"]["id"]])  # two jobs: afterok:A:B
    assert {"--nodes=2", "--ntasks=12", "--ntasks-per-node=8", "--gres=gpu:8",
            "--export=ALL,GPUS_PER_NODE=8"} <= set(fine["args"])  # 12 GPUs: two nodes of at most 8
    test = calls["test.segmenter-mask_deit-s_mixpro_8xb1-160k_ade20k-512x512_ms"]
    assert "--gres=gpu:8" in test["args"] and " iter_4.pth 8 " in test["wrap"].replace("/", " ")


# ------------------------------------------------------------------------------------------------ quick
def test_quick_options_shrink_the_real_configs_where_their_pipelines_put_the_scales():
    cfg = P.load_config("configs/segmentation/segmenter-mask_deit-s_mixpro_8xb1-160k_ade20k-512x512.py", "t")
    P.apply_options(cfg, P.quick_options(cfg, "segmentation", True, "/d"))
    types = {t["type"]: t for t in cfg.train_dataloader.dataset.pipeline}
    assert types["RandomCrop"]["crop_size"] == (64, 64) and types["RandomResize"]["scale"] == (256, 64)
    assert cfg.val_dataloader is None and cfg.train_cfg.max_iters == P.QUICK_SEG_ITERS
    assert cfg.train_dataloader.dataset.data_root == "/d/composite" and cfg.model.data_preprocessor.size == (64, 64)
    det = P.load_config("configs/detection/mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco.py", "t")
    P.apply_options(det, P.quick_options(det, "detection", False, "/d"))
    resize = next(t for t in det.test_dataloader.dataset.pipeline if t["type"] == "Resize")
    assert resize["scale"] == (256, 64) and det.test_evaluator.ann_file == "/d/composite/annotations/instances_val.json"
    assert det.model.backbone.pretrain_img_size == 64 and det.model.test_cfg.rcnn.score_thr == 0.0
    assert P.quick_train_args(det) == ("--epochs", "1") and det.train_cfg.max_epochs == 1


# ------------------------------------------------------------------------------------------------ collect
def test_collect_prints_ours_the_paper_and_the_difference_and_marks_what_is_not_run(default_plan, tmp_path):
    plan_root, jobs, _ = default_plan
    work = str(tmp_path / "w")
    job = _by_name(jobs)

    def _write(test_job, metrics):  # at the plan's output path, moved under this test's own work root
        folder = osp.dirname(test_job.output.replace(plan_root, work))
        os.makedirs(folder)
        write_metrics(folder, test_job.args[0], test_job.args[1], metrics)

    _write(job["test.deit-s_mixpro_8xb128-300e_in1k"], {"top1": 80.95, "top5": 95.1})
    _write(job["test.segmenter-linear_deit-s_baseline_8xb1-160k_ade20k-512x512"], {"aAcc": 80.0, "mIoU": 49.0})
    _write(job["test.segmenter-linear_deit-s_baseline_8xb1-160k_ade20k-512x512_ms"], {"mIoU": 49.8})
    _write(job["test.segmenter-mask_deit-s_mixpro_8xb1-160k_ade20k-512x512"], {"mIoU": 51.3})
    coco = dict(zip([k for _, k in T.COCO_COLUMNS], (0.409, 0.637, 0.442, 0.384, 0.607, 0.413)))
    _write(job["test.mask-rcnn_pvt-s_transmix_fpn_8xb2-1x_coco"], dict(coco, **{"coco/bbox_mAP_s": 0.2}))
    out, js = tmp_path / "tables.md", tmp_path / "cells.json"
    assert paper_cli.main(["collect", work, "--out", str(out), "--json", str(js)]) == 0
    lines = out.read_text().splitlines()

    def after(label, n=3):
        i = next(i for i, line in enumerate(lines) if line.startswith(f"| {label} | ours |"))
        return [[c.strip() for c in line.strip("|").split("|")][2:] for line in lines[i:i + n]]

    assert after("DeiT-S") == [["—", "—", "80.95"], ["79.8", "80.7", "81.3"], ["not run", "not run", "-0.35"]]
    assert after("DeiT-T")[0] == ["—", "—", "—"] and after("DeiT-T")[2] == ["not run"] * 3
    assert after("Linear") == [["49.00 (49.80)", "— (—)", "— (—)"],
                               ["49.1 (49.6)", "49.7 (50.3)", "50.3 (50.9)"],
                               ["-0.10 (+0.20)", "not run (not run)", "not run (not run)"]]
    mask = after("Segmenter mask head")
    assert mask[0][2] == "51.30 (—)" and mask[2][2] == "+0.20 (not run)"
    assert after("TransMix-PVT-S") == [["40.90", "63.70", "44.20", "38.40", "60.70", "41.30"],
                                       ["40.9", "63.8", "44.0", "38.4", "60.7", "41.3"],
                                       ["+0.00", "-0.10", "+0.20", "+0.00", "+0.00", "+0.00"]]
    assert after("PVT-S", 1)[0] == ["—"] * 3 and after("MixPro-PVT-S", 1)[0] == ["—"] * 6
    assert "Runs with metrics: 5 of 57; not run yet: 41 in Table 1, 9 in Table 2, 2 in Table 3" in lines[-1]
    cells = json.loads(js.read_text())["cells"]
    cell = next(c for c in cells if c["row"] == "PVT-S" and c["column"] == "box AP75" and c["method"] == "transmix")
    assert cell["ours"] == pytest.approx(44.2) and cell["paper"] == 44.0 and cell["diff"] == pytest.approx(0.2)
    assert cell["source"] == job["test.mask-rcnn_pvt-s_transmix_fpn_8xb2-1x_coco"].output.replace(plan_root, work)
    assert sum(c["ours"] is not None for c in cells) == 1 + 2 + 1 + 6


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
    cells = {(c["table"], c["row"], c["column"], c["method"]): c for c in T.collect(work)}
    with open(osp.join(work, "test", "deit-s_mixpro_8xb128-300e_in1k", "metrics.json")) as f:
        top1 = json.load(f)["metrics"]["top1"]
    assert cells[("1", "DeiT-S", "top-1", "mixpro")]["ours"] == top1
    for key in [("2", "Linear", "mIoU +MS", "mixpro"), ("2", "Segmenter mask head", "mIoU", "mixpro"),
                ("3", "PVT-S", "mask AP75", "mixpro"), ("1", "PVT-S", "top-1", "mixpro")]:
        assert cells[key]["ours"] is not None and 0 <= cells[key]["ours"] <= 100, key
    assert cells[("2", "Linear", "mIoU", "baseline")]["ours"] is None
