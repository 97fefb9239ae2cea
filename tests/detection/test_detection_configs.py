"""Detection configs: every config parses with the recipe and builds its Mask R-CNN, the composite-data config trains
one iteration and evaluates bbox + segm mAP through tools/train.py, and a PVT v1 classifier converted with mmdet's
``pvt_convert`` loads into the backbone through ``init_cfg`` with every tensor in place."""
import glob
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PVT_CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs/detection/mask-rcnn_pvt-*.py")))
TINY_VIT_CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs/detection/mask-rcnn_tiny-vit_*.py")))
COMPOSITE = osp.join(ROOT, "configs/detection/mask-rcnn_pvt-t_scratch_fpn_1xb2-6e_composite-128.py")
COMPOSITE_PRETRAINED = osp.join(ROOT, "configs/detection/mask-rcnn_pvt-t_pretrained_fpn_1xb2-6e_composite-128.py")
FMNIST_ROOT = "/usr/share/datasets/fashion-mnist"
# mmdet's PVT logs through the deprecated Logger.warn when it loads a checkpoint
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

needs_fmnist = pytest.mark.needs_data(osp.join(FMNIST_ROOT, "train-images-idx3-ubyte.gz"))

PVT_V1 = dict(type="StrictPyramidVisionTransformer", pretrain_img_size=224, embed_dims=64, num_heads=[1, 2, 5, 8],
              mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2],
              paddings=[0, 0, 0, 0], use_abs_pos_embed=True, norm_after_stage=False, use_conv_ffn=False,
              drop_path_rate=0.1, convert_weights=False)


def _build_model(cfg):
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    import detection  # noqa: F401  (safe checkpoint loading)
    init_default_scope("mmdet")
    return MODELS.build(cfg.model)


@pytest.mark.parametrize("path", PVT_CONFIGS, ids=[osp.basename(p) for p in PVT_CONFIGS])
def test_config_parses_with_the_recipe_and_builds(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    assert cfg.default_scope == "mmdet"
    assert cfg.custom_imports == dict(imports=["detection"], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.backend_args == dict(backend="atomic_local")
    backbone = cfg.model.backbone
    assert {k: backbone[k] for k in PVT_V1} == PVT_V1
    depth = name.split("_")[1]
    assert backbone.num_layers == {"pvt-t": [2, 2, 2, 2], "pvt-s": [3, 4, 6, 3]}[depth]
    assert cfg.model.neck.in_channels == [64, 128, 320, 512]
    assert cfg.val_evaluator.metric == ["bbox", "segm"]
    method = name.split("_")[2]
    if "composite" in name:
        assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == 10
        assert len(cfg.train_dataloader.dataset.metainfo.classes) == 10
        assert cfg.val_dataloader.dataset.ann_file == "annotations/instances_val.json"
    else:
        assert cfg.optim_wrapper.optimizer == dict(type="AdamW", lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4)
        warmup, steps = cfg.param_scheduler
        assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.end) == ("LinearLR", 0.001, False, 500)
        assert (steps.type, steps.milestones, steps.gamma) == ("MultiStepLR", [8, 11], 0.1)
        assert cfg.train_cfg.max_epochs == 12 and cfg.train_dataloader.batch_size == 2
        assert cfg.train_dataloader.dataset.data_root == "data/coco/"
        assert cfg.train_dataloader.dataset.pipeline[2].scale == (1333, 800)
        assert cfg.model.neck.out_channels == 256 and cfg.model.roi_head.bbox_head.num_classes == 80
    if method == "scratch":
        assert backbone.get("init_cfg") is None
    elif method == "pretrained":
        assert backbone.init_cfg == dict(type="Pretrained", checkpoint=cfg.pretrained_ckpt)
    else:
        assert backbone.init_cfg == dict(
            type="Pretrained", checkpoint=f"checkpoints/{depth}_{method}_8xb128-300e_in1k_mmdet-pvt.pth")
    cfg.model.backbone.init_cfg = None  # the checkpoints do not exist here
    model = _build_model(cfg)
    assert len(model.backbone.layers) == 4
    assert [len(stage[1]) - 1 for stage in model.backbone.layers] == backbone.num_layers  # pos_embed + blocks


def _composite_run_options(tmp_path, num_train: int, num_val: int = 2, seed: int = 0):
    """--cfg-options for a one-epoch run on a fresh tiny composite set: in-process loaders on its files, COCO
    evaluation against its val annotations, validation and logging every epoch / iteration."""
    from classification.transfer.downstream_data.composite import make_composite
    data = str(tmp_path / "composite")
    make_composite(data, num_train=num_train, num_val=num_val, size=128, seed=seed, verbose=False)
    ann_val = osp.join(data, "annotations", "instances_val.json")
    loaders = [f"{split}_dataloader.{key}" for split in ("train", "val", "test")
               for key in ("num_workers=0", "persistent_workers=False", f"dataset.data_root={data}")]
    return [*loaders, f"val_evaluator.ann_file={ann_val}", f"test_evaluator.ann_file={ann_val}",
            "train_cfg.max_epochs=1", "train_cfg.val_interval=1", "default_hooks.logger.interval=1"]


def _run(cmd, timeout=300, **env):
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", **env),
                          capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log


@needs_fmnist
@pytest.mark.slow
def test_composite_config_trains_and_evaluates_bbox_and_segm(tmp_path):
    log = _run([sys.executable, "tools/train.py", COMPOSITE, "--work-dir", str(tmp_path / "work"), "--cfg-options",
                *_composite_run_options(tmp_path, num_train=4)])
    assert "Epoch(train) [1][2/2]" in log  # 4 images, 2 per batch
    assert "coco/bbox_mAP" in log and "coco/segm_mAP" in log, log[-3000:]
    assert osp.isfile(tmp_path / "work" / "epoch_1.pth")


def _mmdet_pvt_state_dict(classifier):
    """What tools/convert_checkpoint.py --to mmdet-pvt writes, done by hand with mmdet's own pvt_convert."""
    from mmdet.models.backbones.pvt import pvt_convert
    state = OrderedDict((k, v) for k, v in classifier.state_dict().items()
                        if not k.startswith(("head.", "norm.", "cls_token")))
    assert state["pos_embed4"].shape[1] == 1 + 7 * 7  # the CLS entry, which pvt_convert strips at 224
    return pvt_convert(state)


def test_converted_pvt_checkpoint_loads_through_init_cfg(tmp_path):
    from classification.models.pvt import pvt_tiny
    torch.manual_seed(0)
    source = pvt_tiny(num_classes=10)
    converted = _mmdet_pvt_state_dict(source)
    ckpt = str(tmp_path / "pvt-t_mmdet-pvt.pth")
    torch.save(converted, ckpt)

    cfg = Config.fromfile(COMPOSITE_PRETRAINED)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    assert cfg.model.backbone.convert_weights is False
    model = _build_model(cfg)
    model.init_weights()
    backbone = model.backbone.state_dict()
    assert set(converted) == set(backbone), "converted keys and mmdet's PVT keys differ"
    for key, value in converted.items():
        assert torch.equal(backbone[key], value), key
    torch.testing.assert_close(model.backbone.layers[0][0].projection.weight, source.patch_embed1.proj.weight,
                               rtol=0, atol=0)
    torch.testing.assert_close(model.backbone.layers[3][1][0].pos_embed, source.pos_embed4[:, 1:], rtol=0, atol=0)
    # the loaded backbone gives the source's stage features (mmdet's PVT and ours are the same network)
    model.backbone.eval()
    source.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.backbone(x)
        assert [f.shape[1:] for f in feats] == [(64, 56, 56), (128, 28, 28), (320, 14, 14), (512, 7, 7)]
        y = x
        for i in range(3):  # stage 4 of the classifier also attends to its CLS token
            tokens, hw = source.forward_stage(i, y)
            y = tokens.transpose(1, 2).reshape(1, -1, *hw)
            torch.testing.assert_close(feats[i], y, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("path", TINY_VIT_CONFIGS, ids=[osp.basename(p) for p in TINY_VIT_CONFIGS])
def test_tiny_vit_pyramid_config_builds_strides_4_to_64(path):
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.type == "mmseg.StrictVisionTransformer" and cfg.model.backbone.patch_size == 8
    assert {"segmentation", "mmseg.models"} <= set(cfg.custom_imports.imports)
    assert cfg.model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    cfg.model.backbone.init_cfg = None
    model = _build_model(cfg)
    feats = model.extract_feat(torch.randn(2, 1, 128, 128))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 128 // s, 128 // s) for s in (4, 8, 16, 32, 64)]


def test_converted_tiny_vit_loads_into_the_detector_backbone(tmp_path):
    """The Fashion-MNIST classifier (32×32, 4×4 tokens) → mmseg-vit file converted for the detector's 16×16 tokens
    (--img-size 128 128) → Mask R-CNN backbone through init_cfg (strict): every tensor in place."""
    from classification.models.vits import tiny_vit
    torch.manual_seed(0)
    classifier = tiny_vit(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2)
    src, ckpt = tmp_path / "cls.pth", tmp_path / "mmseg-vit.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in classifier.state_dict().items()}}, src)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "tools/convert_checkpoint.py", str(src), str(ckpt), "--to", "mmseg-vit",
                    "--img-size", "128", "128"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    cfg = Config.fromfile(osp.join(ROOT, "configs/detection/"
                                         "mask-rcnn_tiny-vit_fmnist-mixpro_pyramid_1xb4-12e_composite-128.py"))
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = _build_model(cfg)
    model.init_weights()
    backbone = model.backbone
    torch.testing.assert_close(backbone.patch_embed.projection.weight, classifier.patch_embed.proj.weight,
                               rtol=0, atol=0)
    torch.testing.assert_close(backbone.layers[3].attn.attn.in_proj_weight, classifier.blocks[3].attn.qkv.weight,
                               rtol=0, atol=0)
    torch.testing.assert_close(backbone.cls_token, classifier.cls_token, rtol=0, atol=0)
    assert backbone.pos_embed.shape == (1, 1 + 16 * 16, 64)


@needs_fmnist
@pytest.mark.slow
def test_tiny_vit_composite_config_trains_and_evaluates(tmp_path):
    config = osp.join(ROOT, "configs/detection/mask-rcnn_tiny-vit_scratch_pyramid_1xb4-12e_composite-128.py")
    log = _run([sys.executable, "tools/train.py", config, "--work-dir", str(tmp_path / "work"), "--cfg-options",
                *_composite_run_options(tmp_path, num_train=4), "train_dataloader.batch_size=2"])
    assert "Epoch(train) [1][2/2]" in log and "coco/bbox_mAP" in log and "coco/segm_mAP" in log, log[-3000:]


@needs_fmnist
@pytest.mark.slow
def test_detection_dist_train_two_gloo_processes(tmp_path):
    """tools/dist_train.sh runs a detection config unchanged: 2 gloo ranks on the CPU, then COCO evaluation."""
    import random
    config = osp.join(ROOT, "configs/detection/mask-rcnn_tiny-vit_scratch_pyramid_1xb4-12e_composite-128.py")
    log = _run(["bash", "tools/dist_train.sh", config, "2", "--work-dir", str(tmp_path / "work"), "--cfg-options",
                *_composite_run_options(tmp_path, num_train=8, seed=3), "train_dataloader.batch_size=2"],
               timeout=600, PORT=str(random.randint(20000, 40000)))
    assert "× 2 process(es)" in log and "coco/bbox_mAP" in log, log[-3000:]
    assert "Epoch(train) [1][2/2]" in log  # 8 images over 2 ranks × 2 per batch
