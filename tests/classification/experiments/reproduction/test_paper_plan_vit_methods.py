"""tools/paper_tables.py plan for the ViT mixing methods (#35): their DeiT-S downstream rows (Pascal Context, ADE20K)
and SMMix's PVT-S Mask R-CNN, each fine-tune job loading the converted checkpoint of its own method's pretraining;
every downstream config names, in its header and its checkpoint, the classification config of its own method; the
method check wants the rows' test configs too; a --quick plan gives TokenMix stand-in teacher label maps."""
import glob
import os.path as osp
import re

import pytest
import torch

from classification.experiments.reproduction import paper_plan as P
from classification.experiments.reproduction import paper_tables as T
from classification.foundation.host import ROOT

VIT_METHODS = ("tlalign", "smmix", "tokenmix", "tokenmix-area", "mergemix")


@pytest.fixture(scope="module")
def vit_plan(tmp_path_factory):
    """(work root, jobs by name) of the five methods on Table 2 and the ADE20K extra, 8 GPUs."""
    work = str(tmp_path_factory.mktemp("vit") / "w")
    return work, {j.name: j for j in P.build_jobs(work, ["table2", "ade20k"], VIT_METHODS, gpus=8)}


def _option(job, key):
    (value,) = [a.split("=", 1)[1] for a in job.args if a.startswith(key + "=")]
    return value


def test_tlalign_pascal_context_mask_fine_tunes_the_converted_tlalign_deit_s(vit_plan):
    work, jobs = vit_plan
    stem, backbone = "segmenter-mask_deit-s_tlalign_8xb2-80k_pascal-context-480x480", "deit-s_tlalign_8xb128-300e_in1k"
    pre = jobs[f"pretrain.{backbone}"]
    assert pre.args[0] == f"configs/classification/{backbone}.py"
    assert pre.output == f"{work}/pretrain/{backbone}/epoch_300.pth"
    conv = jobs[f"convert.{backbone}_mmseg-vit-480"]
    assert conv.args == (pre.output, f"{work}/checkpoints/{backbone}_mmseg-vit-480.pth", "--to", "mmseg-vit",
                         "--img-size", "480", "480")
    fine = jobs[f"finetune.{stem}"]
    assert fine.args[0] == f"configs/segmentation/{stem}.py" and fine.needs == (conv.name,)
    assert _option(fine, "model.backbone.init_cfg.checkpoint") == f"{work}/checkpoints/{backbone}_mmseg-vit-480.pth"
    for suffix in ("", "_ms"):
        test = jobs[f"test.{stem}{suffix}"]
        assert test.args[:2] == (f"configs/segmentation/{stem}{suffix}.py", f"{work}/finetune/{stem}/iter_80000.pth")
        assert test.needs == (fine.name,)


def test_every_fine_tune_of_the_vit_methods_loads_its_own_methods_pretraining(vit_plan):
    work, jobs = vit_plan
    # per method: pretrain + test, converts at 480 and 512, 4 fine-tunes + 8 tests; DeepLabv3+: train + 2 tests
    assert len(jobs) == 5 * (2 + 2 + 4 + 8) + 3
    fines = [j for j in jobs.values() if j.kind == "finetune" and "deit-s" in j.name]
    assert sorted({j.name.split("_")[2] for j in fines}) == sorted(VIT_METHODS) and len(fines) == 20
    for fine in fines:
        method = fine.name.split("_")[2]
        (conv,) = [jobs[n] for n in fine.needs]
        assert conv.args[0] == f"{work}/pretrain/deit-s_{method}_8xb128-300e_in1k/epoch_300.pth", fine.name
        assert _option(fine, "model.backbone.init_cfg.checkpoint") == conv.output
        assert osp.basename(conv.output).startswith(f"deit-s_{method}_8xb128-300e_in1k_mmseg-vit-")


def test_smmix_coco_mask_rcnn_fine_tunes_the_converted_smmix_pvt_s(tmp_path):
    work = str(tmp_path / "w")
    jobs = {j.name: j for j in P.build_jobs(work, ["coco-mask-rcnn"], ["smmix"], gpus=8)}
    backbone, stem = "pvt-s_smmix_8xb128-300e_in1k", "mask-rcnn_pvt-s_smmix_fpn_8xb2-1x_coco"
    assert sorted(jobs) == sorted([f"pretrain.{backbone}", f"test.{backbone}", f"convert.{backbone}_mmdet-pvt",
                                   f"finetune.{stem}", f"test.{stem}"])
    assert jobs[f"pretrain.{backbone}"].args[0] == f"configs/classification/{backbone}.py"
    conv = jobs[f"convert.{backbone}_mmdet-pvt"]
    assert conv.args == (f"{work}/pretrain/{backbone}/epoch_300.pth", f"{work}/checkpoints/{backbone}_mmdet-pvt.pth",
                         "--to", "mmdet-pvt")
    fine = jobs[f"finetune.{stem}"]
    assert fine.args[0] == f"configs/detection/{stem}.py" and fine.needs == (conv.name,)
    assert _option(fine, "model.backbone.init_cfg.checkpoint") == f"{work}/checkpoints/{backbone}_mmdet-pvt.pth"
    assert jobs[f"test.{stem}"].args[:2] == (f"configs/detection/{stem}.py", f"{work}/finetune/{stem}/epoch_12.pth")


def _downstream_configs():
    """(row, method, fine-tune config path relative to the repository) of every method with a config of the row."""
    found = []
    for row in T.DOWNSTREAM.values():
        pattern = re.escape(row.stem("METHOD")).replace("METHOD", "([a-z0-9-]+)") + r"\.py"
        for path in sorted(glob.glob(osp.join(ROOT, "configs", row.folder, row.stem("*") + ".py"))):
            m = re.fullmatch(pattern, osp.basename(path))
            if m:
                found.append((row, m.group(1), osp.relpath(path, ROOT)))
    return found


def test_every_downstream_config_names_and_loads_its_own_methods_classification_checkpoint():
    """Header (the classification config and the convert command) and init_cfg agree on the method of the file's
    name, for every method's fine-tune config and its test configs (which load the same backbone)."""
    configs = _downstream_configs()
    assert {m for _, m, _ in configs} >= set(T.METHODS) | set(VIT_METHODS)
    assert {m for row, m, _ in configs if row.key == "coco-mask-rcnn"} == set(T.METHODS) | {"smmix"}
    for row, method, path in configs:
        backbone = T.TABLE1_BY_MODEL[row.backbone].stem(method)
        cfg = P.plan_config(path, "test")
        checkpoint = cfg.model.backbone.init_cfg.checkpoint
        size = "-480" if "pascal-context" in row.key else ""  # the ADE20K configs name the 512 file without its size
        assert checkpoint == f"checkpoints/{backbone}_{row.target}{size}.pth", path
        with open(osp.join(ROOT, path)) as f:
            header = "".join(line for line in f if line.startswith("#"))
        assert f"configs/classification/{backbone}.py" in header, path
        assert f"work_dirs/{backbone}/epoch_300.pth \\\n#       {checkpoint} --to {row.target}" in header, path
        for suffix in row.tests[1:]:
            tta = P.plan_config(path.replace(".py", f"{suffix}.py"), "test")
            assert tta.model.type == "SegTTAModel" and tta.model.module.backbone.init_cfg.checkpoint == checkpoint


def test_the_method_check_wants_the_rows_test_configs(tmp_path, monkeypatch):
    stem = T.DOWNSTREAM["pascal-context-linear"].stem("newmix")
    for path in ("configs/classification/deit-s_newmix_8xb128-300e_in1k.py", f"configs/segmentation/{stem}.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    monkeypatch.setattr(P, "ROOT", str(tmp_path))
    with pytest.raises(ValueError, match=rf"^method 'newmix' has no config for the rows asked: "
                                         rf"configs/segmentation/{stem}_ms.py$"):
        P.check_methods(["newmix"], ["pascal-context-linear"])
    (tmp_path / f"configs/segmentation/{stem}_ms.py").write_text("")
    P.check_methods(["newmix"], ["pascal-context-linear"])


def test_quick_tokenmix_reads_stand_in_teacher_maps_of_the_quick_imagenet(tmp_path):
    """The quick plan points TokenMix's label_root at the quick data's maps: one per training image, every cell the
    image's class first at 0.9, then the next four class ids at 0.025 each; the real dataset reads them."""
    from classification.data.label_maps import ImageNetLabelMaps
    from classification.data.synthetic_imagenet import make_synthetic_imagenet
    cfg = P.plan_config("configs/classification/deit-s_tokenmix_8xb128-300e_in1k.py", "test")
    options = P.quick_options(cfg, "classification", True, "/d")
    assert "train_dataloader.dataset.label_root=/d/imagenet_label_maps" in options
    P.apply_options(cfg, options)
    assert cfg.train_dataloader.dataset.label_root == "/d/imagenet_label_maps"
    area = P.plan_config("configs/classification/deit-s_tokenmix-area_8xb128-300e_in1k.py", "test")
    assert not any("label_root" in o for o in P.quick_options(area, "classification", True, "/d"))

    imagenet, maps = str(tmp_path / "imagenet"), str(tmp_path / "maps")
    make_synthetic_imagenet(imagenet, classes=2, train_per_class=2, val_per_class=1, min_side=16, max_side=20,
                            processes=1)
    P.make_quick_label_maps(imagenet, maps)
    assert len(glob.glob(osp.join(maps, "*", "*.pt"))) == 4
    dataset = ImageNetLabelMaps(imagenet, maps, transform=None)
    for i in range(len(dataset)):
        sample = dataset[i]["data_samples"]
        c = sample["labels"]
        assert sample["label_scores"].shape == sample["label_indices"].shape == (5, 14, 14)
        for k, (score, index) in enumerate(zip([0.9, 0.025, 0.025, 0.025, 0.025], [c, c + 1, c + 2, c + 3, c + 4])):
            assert torch.allclose(sample["label_scores"][k], torch.tensor(score), atol=1e-3)
            assert torch.equal(sample["label_indices"][k], torch.full((14, 14), index))


def test_collect_lists_the_downstream_results_of_other_methods_apart_from_the_papers_cells(vit_plan, tmp_path):
    from classification.engine.launch import write_metrics
    from classification.experiments.reproduction.stats import display_name
    plan_root, jobs = vit_plan
    work = str(tmp_path / "w")

    def write(job, metrics):  # metrics.json at the plan's output of ``job``, moved under ``work``
        write_metrics(osp.dirname(job.output.replace(plan_root, work)), job.args[0], job.args[1], metrics)

    mask = "segmenter-mask_deit-s_tlalign_8xb2-80k_pascal-context-480x480"
    write(jobs[f"test.{mask}"], {"mIoU": 50.25})
    write(jobs[f"test.{mask}_ms"], {"mIoU": 51.5})
    write(jobs["test.segmenter-linear_deit-s_tokenmix-area_8xb1-160k_ade20k-512x512"], {"mIoU": 40.0})
    coco = [0.41, 0.63, 0.44, 0.38, 0.6, 0.405]
    write_metrics(str(tmp_path / "w" / "test" / "mask-rcnn_pvt-s_smmix_fpn_8xb2-1x_coco"), "c.py", "k.pth",
                  dict(zip([k for _, k in T.COCO_COLUMNS], coco)))
    assert T.other_methods(work, downstream=True) == ["smmix", "tlalign", "tokenmix-area"]
    cells = {(c["row"], c["column"], c["method"]): c for c in T.collect(work)}
    tla = cells[("Segmenter mask head", "mIoU +MS", "tlalign")]
    assert (tla["table"], tla["ours"], tla["paper"], tla["diff"]) == ("2", 51.5, None, None)
    assert cells[("PVT-S", "mask AP75", "smmix")]["ours"] == pytest.approx(40.5)
    assert cells[("Linear", "mIoU", "tlalign")]["ours"] is None  # planned nowhere here: a cell without a result
    lines = T.markdown(list(T.collect(work)), work).splitlines()
    assert f"| Table 2 | Segmenter mask head | {display_name('tlalign')} | 50.25 (51.50) |" + "  |" * 6 in lines
    assert (f"| Table 3 | PVT-S | {display_name('smmix')} |  | 41.00 | 63.00 | 44.00 | 38.00 | 60.00 | 40.50 |"
            in lines)
    assert f"| extra | Linear (ADE20K) | {display_name('tokenmix-area')} | 40.00 (—) |" + "  |" * 6 in lines
    section = lines[lines.index("## Other methods on the downstream rows (not in the MixPro paper): ours (%)"):]
    assert len([line for line in section if line.startswith(("| Table ", "| extra |"))]) == 3  # with a result only
    # the paper's run count is the paper's: 42 Table 1 runs, 14 Table 2, 5 Table 3, 12 extras, none with metrics
    assert "Runs with metrics: 0 of 73;" in lines[-1]
