"""MS-MLP: parameter counts, the mixing-and-shifting operation on a hand-checkable tensor, the classifier contract and
its configs, the dense backbone (shapes, loading a MixClassifier checkpoint through init_cfg) and one training
iteration of its Mask R-CNN (mmdet) and UPerNet (mmseg) configs on tiny inputs."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import classification.register_all  # noqa: F401  (registration)
from classification.models.msmlp import (KERNELS, MSBlock, MSMLP, MSMLPBackbone, from_official_state_dict, group_sizes,
                                         ms_mlp_base, ms_mlp_small, ms_mlp_tiny)
from mixpro_core import forward_with_attention, has_cls_attention, mixed_targets, soft_target_cross_entropy

from classification.foundation.host import ROOT
DET_CONFIG = osp.join(ROOT, "configs/detection/mask-rcnn_ms-mlp-t_fpn_8xb2-1x_coco.py")
SEG_CONFIG = osp.join(ROOT, "configs/segmentation/upernet_ms-mlp-t_8xb2-160k_ade20k-512x512.py")
CLS_LEAVES = [f"ms-mlp-{s}_{m}_8xb128-300e_in1k.py" for s in "tsb" for m in ("baseline", "mixpro")]
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


def _count(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------- parameter counts
# Measured with num_classes=1000. Published (seed README): 28M / 50M / 88M, the counts truncated to whole millions
# (Base's 88.70M would round to 89M). Small and Base are within 1%; Tiny cannot be: the parts docs/methods.md,
# "MS-MLP" fixes outside
# the token mixing (stem, C→4C→C MLPs, 2×2 downsampling convs, head) already hold 28.26M (+0.92%), and the depthwise
# convolutions of the two branches add 0.40M. See the MS-MLP docstring.
@pytest.mark.parametrize("factory, exact, published, tol", [
    (ms_mlp_tiny, 28_656_232, 28e6, 0.025), (ms_mlp_small, 50_303_752, 50e6, 0.01),
    (ms_mlp_base, 88_696_792, 88e6, 0.01)])
def test_parameter_counts(factory, exact, published, tol):
    with torch.device("meta"):
        model = factory(num_classes=1000)
    count = _count(model)
    assert count == exact
    assert int(count // 1e6) == int(published // 1e6)  # the published figure, truncated
    assert abs(count - published) / published < tol, count / 1e6
    mixing = sum(p.numel() for n, p in model.named_parameters() if ".mixing." in n)
    if factory is ms_mlp_tiny:
        assert count - mixing > 28e6 * 1.009  # why Tiny cannot be within 1% of the published 28M


def test_variants_follow_the_spec():
    with torch.device("meta"):
        tiny, small, base = ms_mlp_tiny(), ms_mlp_small(), ms_mlp_base()
    assert (tiny.dims, tiny.depths) == ((96, 192, 384, 768), (3, 3, 9, 3))
    assert (small.dims, small.depths) == ((96, 192, 384, 768), (3, 3, 27, 3))
    assert (base.dims, base.depths) == ((128, 256, 512, 1024), (3, 3, 27, 3))
    for model, rate in ((tiny, 0.1), (small, 0.4), (base, 0.5)):
        last = model.stages[-1][-1]
        assert last.drop_path.drop_prob == pytest.approx(rate) and isinstance(model.stages[0][0].drop_path,
                                                                               torch.nn.Identity)
        assert [blocks[0].mixing.kernels for blocks in model.stages] == [tuple(k) for k in KERNELS]
        assert all(blk.mixing.shifts == (-2, -1, 0, 1, 2) for stage in model.stages for blk in stage)
    assert tiny.stages[0][0].mlp.fc1.out_features == 4 * 96
    # downsampling: 2×2 stride-2 conv, then LN (the published order)
    assert isinstance(tiny.downsamples[0][0], torch.nn.Conv2d) and tiny.downsamples[0][0].stride == (2, 2)
    assert isinstance(tiny.downsamples[0][1], torch.nn.LayerNorm) and tiny.downsamples[0][1].normalized_shape == (192,)
    assert torch.all(MSBlock(96, KERNELS[0]).gamma == 1e-6)
    # torch.chunk sizes, as the published model splits
    assert group_sizes(96, 5) == (20, 20, 20, 20, 16) and group_sizes(768, 5) == (154, 154, 154, 154, 152)
    assert group_sizes(10, 5) == (2,) * 5 and group_sizes(9, 5) == (2, 2, 2, 2, 1)
    for bad in (4, 12, 7):  # fewer than 5 channels, or chunks that leave an empty group (12 → 3,3,3,3)
        with pytest.raises(ValueError, match="non-empty groups"):
            group_sizes(bad, 5)
    assert [c.weight.shape for c in tiny.stages[1][0].mixing.mix_h] == [
        (39, 1, 1, 1), (39, 1, 3, 3), (39, 1, 3, 3), (39, 1, 5, 5), (36, 1, 7, 7)]


# ------------------------------------------------------------------------------------------ mixing and shifting
def _set_convs(convs, identity: bool):
    """Depthwise convs → identity (centre tap 1, the 'delta' kernel) or → zero."""
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()
            if identity:
                k = conv.kernel_size[0]
                conv.weight[:, 0, k // 2, k // 2] = 1.0


def test_shift_with_identity_convs_rolls_each_group():
    # 9 channels → groups of 2,2,2,2,1 channels shifted by -2,-1,0,1,2; kernels 1,3,3,5,7 (delta kernels)
    block = MSBlock(9, kernels=(1, 3, 3, 5, 7))
    mixing = block.mixing
    assert mixing.splits == (2, 2, 2, 2, 1)
    c, h, w = torch.meshgrid(torch.arange(9.), torch.arange(5.), torch.arange(5.), indexing="ij")
    x = (100 * c + 10 * h + w)[None]  # x[0, c, h, w] = 100c + 10h + w
    shift_of_channel = [-2, -2, -1, -1, 0, 0, 1, 1, 2]

    _set_convs(mixing.mix_w, identity=True)
    _set_convs(mixing.mix_h, identity=False)
    out_w = mixing(x)  # branch 1 alone: rolls along W
    assert out_w[0, 0, 0].tolist() == [2., 3., 4., 0., 1.]  # row 0 of channel 0 rolled by -2
    assert out_w[0, 8, 1].tolist() == [813., 814., 810., 811., 812.]  # row 1 of channel 8 rolled by +2
    for ch, d in enumerate(shift_of_channel):
        torch.testing.assert_close(out_w[0, ch], torch.roll(x[0, ch], d, dims=1), rtol=0, atol=0)

    _set_convs(mixing.mix_w, identity=False)
    _set_convs(mixing.mix_h, identity=True)
    out_h = mixing(x)  # branch 2 alone: rolls along H
    assert out_h[0, 8, :, 0].tolist() == [830., 840., 800., 810., 820.]  # column 0 of channel 8 rolled by +2
    assert out_h[0, 2, :, 4].tolist() == [214., 224., 234., 244., 204.]  # channel 2 (group 1) rolled by -1
    for ch, d in enumerate(shift_of_channel):
        torch.testing.assert_close(out_h[0, ch], torch.roll(x[0, ch], d, dims=0), rtol=0, atol=0)

    _set_convs(mixing.mix_w, identity=True)
    torch.testing.assert_close(mixing(x), out_w + out_h, rtol=0, atol=0)  # the branches are summed


def test_mixing_shifts_then_convolves():
    """The order of docs/methods.md, "MS-MLP" (and the published model's): roll each group, then its depthwise conv
    (zero padding)."""
    torch.manual_seed(0)
    mixing = MSBlock(15, kernels=(1, 3, 3, 5, 7)).mixing
    x = torch.randn(2, 15, 6, 6)
    groups = torch.split(x, mixing.splits, dim=1)
    expected, other_order = [], []
    for g, d, cw, ch in zip(groups, mixing.shifts, mixing.mix_w, mixing.mix_h):
        expected.append(cw(torch.roll(g, d, 3)) + ch(torch.roll(g, d, 2)))
        other_order.append(torch.roll(cw(g), d, 3) + torch.roll(ch(g), d, 2))
    with torch.no_grad():
        torch.testing.assert_close(mixing(x), torch.cat(expected, 1))
        assert not torch.allclose(mixing(x), torch.cat(other_order, 1), atol=1e-4)


def _official_tiny_state(seed=0):
    """Random tensors under the published MS-MLP-Tiny's parameter names and shapes (its code's layout: torch.chunk
    groups, dwconv_lr / dwconv_td per group, pwconv1/2, gamma, stage-trailing downsample proj + norm)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"patch_embed.proj.weight": (96, 3, 4, 4), "patch_embed.proj.bias": (96,),
              "patch_embed.norm.weight": (96,), "patch_embed.norm.bias": (96,)}
    for i, (depth, kernels) in enumerate(zip((3, 3, 9, 3), KERNELS)):
        c = 96 * 2 ** i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            for k, (size, chunk) in enumerate(zip(kernels, torch.chunk(torch.zeros(c), 5))):
                for branch in ("dwconv_lr", "dwconv_td"):
                    shapes[f"{p}{branch}.{k}.weight"] = (len(chunk), 1, size, size)
                    shapes[f"{p}{branch}.{k}.bias"] = (len(chunk),)
            shapes.update({f"{p}norm.weight": (c,), f"{p}norm.bias": (c,), f"{p}pwconv1.weight": (4 * c, c),
                           f"{p}pwconv1.bias": (4 * c,), f"{p}pwconv2.weight": (c, 4 * c), f"{p}pwconv2.bias": (c,),
                           f"{p}gamma": (c,)})
        if i < 3:
            p = f"layers.{i}.downsample."
            shapes.update({f"{p}proj.weight": (2 * c, c, 2, 2), f"{p}proj.bias": (2 * c,),
                           f"{p}norm.weight": (2 * c,), f"{p}norm.bias": (2 * c,)})
    shapes.update({"norm.weight": (768,), "norm.bias": (768,), "head.weight": (1000, 768), "head.bias": (1000,)})
    return {k: torch.randn(v, generator=g) for k, v in shapes.items()}


def test_official_checkpoint_loads_tensor_for_tensor(tmp_path):
    state = _official_tiny_state()
    assert sum(v.numel() for v in state.values()) == 28_656_232  # the published layout has our parameter count
    ours = from_official_state_dict(state)
    model = ms_mlp_tiny()
    assert set(ours) == set(model.state_dict())
    path = str(tmp_path / "msmlp_tiny_official.pth")
    torch.save({"model": state}, path)
    loaded = ms_mlp_tiny(pretrained=path).state_dict()
    pairs = [("layers.1.blocks.2.dwconv_lr.4.weight", "stages.1.2.mixing.mix_w.4.weight"),
             ("layers.3.blocks.0.dwconv_td.0.bias", "stages.3.0.mixing.mix_h.0.bias"),
             ("layers.2.downsample.proj.weight", "downsamples.2.0.weight"),
             ("layers.0.downsample.norm.bias", "downsamples.0.1.bias"), ("patch_embed.norm.weight", "stem.1.weight"),
             ("layers.2.blocks.8.pwconv2.weight", "stages.2.8.mlp.fc2.weight"), ("layers.0.blocks.1.gamma",
                                                                                 "stages.0.1.gamma")]
    for official, own in pairs:
        assert torch.equal(loaded[own], state[official]), own
    assert all(torch.equal(loaded[k], v) for k, v in ours.items())
    backbone = MSMLPBackbone(depths=(3, 3, 9, 3), init_cfg=dict(type="Pretrained", checkpoint=path))
    missing, dropped = backbone.load_classifier_checkpoint(path)
    assert all(k.startswith("out_norms.") for k in missing) and set(dropped) == {"norm.weight", "norm.bias",
                                                                                 "head.weight", "head.bias"}
    assert from_official_state_dict(ours) == ours  # our names pass through


def test_block_is_one_residual_branch_with_layer_scale():
    torch.manual_seed(0)
    block = MSBlock(10, kernels=(1, 3, 3, 5, 7)).eval()
    x = torch.randn(2, 10, 4, 4)
    with torch.no_grad():
        y = block.mixing(x).permute(0, 2, 3, 1)
        y = block.mlp.fc2(F.gelu(block.mlp.fc1(F.layer_norm(y, (10,), eps=1e-6))))
        torch.testing.assert_close(block(x), x + 1e-6 * y.permute(0, 3, 1, 2))


# ------------------------------------------------------------------------------------------ classifier contract
def _small_classifier(**kw):
    torch.manual_seed(0)
    return MSMLP(embed_dim=10, depths=(1, 1, 2, 1), num_classes=7, **kw)


def test_classifier_contract_and_grad_checkpointing():
    model = _small_classifier()
    assert model.token_stride == 32 and not has_cls_attention(model)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 4])
    logits, attn = forward_with_attention(model, x)
    assert logits.shape == (2, 7) and attn is None
    assert model(torch.randn(1, 3, 96, 64)).shape == (1, 7)
    ckpt = _small_classifier()
    ckpt.set_grad_checkpointing(True)
    for m in (model, ckpt):
        m.eval()  # no drop path: both compute the same function
        F.cross_entropy(m(x), y).backward()
    for (name, a), b in zip(model.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.mark.parametrize("leaf", CLS_LEAVES)
def test_classification_leaves_recipe_and_one_step(leaf):
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification", leaf))
    size, method = leaf.split("_")[0][-1], leaf.split("_")[1]
    assert cfg.model.backbone.type == {"t": "ms_mlp_tiny", "s": "ms_mlp_small", "b": "ms_mlp_base"}[size]
    assert cfg.model.backbone.drop_path_rate == {"t": 0.1, "s": 0.4, "b": 0.5}[size]
    assert cfg.optim_wrapper.optimizer == dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05,
                                               fused=True)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0) and cfg.auto_scale_lr.base_batch_size == 1024
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.eta_min, cosine.end, cfg.train_cfg.max_epochs) == (20, 1e-5, 300, 300)
    assert cfg.train_dataloader.batch_size == 128 and cfg.model.smoothing == 0.1
    assert cfg.model.mix_defaults.mask_size == 32
    cfg.model.backbone.depths = (1, 1, 1, 1)  # one step at the config's widths, kept fast
    cfg.model.num_classes = 10
    model = MODELS.build(cfg.model)
    assert type(model.method.policy).__name__ == {"baseline": "AreaLabels", "mixpro": "PALLabels"}[method]
    assert not model.method.use_attention  # no CLS token: area labels
    maskmix = model.method.mixer.find("maskmix")
    assert (maskmix is not None) == (method == "mixpro")
    assert maskmix is None or maskmix.options == dict(mask_size=32, patch_size=32, alpha=1.0)
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 10, (4,))
    loss = model(x, y, mode="loss")["loss"]
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.backbone.parameters())


def test_mixpro_without_cls_token_trains_maskmix_batches_with_the_area_label_loss():
    """PAL has no attention on MS-MLP: a MaskMix step's loss is exactly the smoothed area-label loss."""
    cfg = dict(type="MixClassifier", num_classes=10, mix_defaults=dict(mask_size=32),
               backbone=dict(type="ms_mlp_tiny", embed_dim=32, depths=(1, 1, 1, 1), drop_path_rate=0.0),
               mix=[dict(type="maskmix", prob=1.0)], label_policy=dict(type="PALLabels"))
    model = MODELS.build(cfg).eval()
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    generator = model._mix_generator()
    loss = model(x, y, mode="loss")["loss"]
    batch = model.method.mixer(x, y, model.backbone, generator)
    assert batch.token_exact
    expected = soft_target_cross_entropy(model.backbone(batch.images),
                                         mixed_targets(y, batch.partner, batch.lam_area, 10, 0.1))
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------ dense backbone
def test_dense_backbone_output_shapes():
    with torch.device("meta"):
        assert _count(MSMLPBackbone()) == _count(ms_mlp_tiny(num_classes=0)) - 2 * 768 + 2 * (96 + 192 + 384 + 768)
    torch.manual_seed(0)
    backbone = MSMLPBackbone(embed_dim=96, depths=(1, 1, 1, 1)).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(2, 96, 16, 16), (2, 192, 8, 8), (2, 384, 4, 4), (2, 768, 2, 2)]
    assert not hasattr(backbone, "head") and set(backbone.out_norms) == {"0", "1", "2", "3"}
    for classifier_path in (backbone.forward_head, backbone.forward_with_attention):
        with pytest.raises(AttributeError, match="no classification head"):
            classifier_path(feats[-1])
    partial_out = MSMLPBackbone(embed_dim=96, depths=(1, 1, 1, 1), out_indices=(1, 3)).eval()
    with torch.no_grad():
        assert [f.shape[1] for f in partial_out(torch.randn(1, 3, 64, 64))] == [192, 768]
    with pytest.raises(ValueError, match="out_indices"):
        MSMLPBackbone(out_indices=(4,))
    with pytest.raises(ValueError, match="init_cfg"):
        MSMLPBackbone(init_cfg=dict(type="Kaiming"))


def _registry(task):
    if task == "mmdet":
        import detection  # noqa: F401  (registers MSMLPBackbone in mmdet's MODELS)
        from mmdet.registry import MODELS as registry
    else:
        import segmentation  # noqa: F401  (registers MSMLPBackbone in mmseg's MODELS)
        from mmseg.registry import MODELS as registry
    init_default_scope(task)
    return registry


@pytest.mark.parametrize("task", ["mmdet", "mmseg"])
def test_mixclassifier_checkpoint_loads_through_init_cfg(tmp_path, task):
    from mmengine.logging import HistoryBuffer
    source = MODELS.build(dict(type="MixClassifier", num_classes=10,
                               backbone=dict(type="ms_mlp_tiny", embed_dim=32, depths=(1, 1, 2, 1)),
                               mix=None, mix_defaults=dict(mask_size=32)))
    hub = HistoryBuffer()
    hub.update(1.0)
    path = str(tmp_path / "epoch_300.pth")  # a Runner checkpoint: `backbone.` keys, message hub, meta
    torch.save({"state_dict": source.state_dict(), "message_hub": {"log_scalars": {"loss": hub}},
                "meta": {"epoch": 300}}, path)
    config = Config.fromfile(DET_CONFIG if task == "mmdet" else SEG_CONFIG)
    cfg = config.model.backbone  # the config's backbone at reduced width and depth (same key layout)
    cfg.embed_dim, cfg.depths = 32, [1, 1, 2, 1]
    cfg.init_cfg.checkpoint = path
    assert cfg.init_cfg == dict(type="Pretrained", checkpoint=path)
    backbone = _registry(task).build(cfg)
    assert isinstance(backbone, MSMLPBackbone)
    missing, dropped = backbone.load_classifier_checkpoint(path)
    assert sorted(missing) == sorted(f"out_norms.{i}.{p}" for i in range(4) for p in ("weight", "bias"))
    # the classifier's mixing step counter is reported like the other non-backbone keys
    assert set(dropped) == {"norm.weight", "norm.bias", "head.weight", "head.bias", "mix_step"}
    fresh = _registry(task).build(cfg)
    fresh.init_weights()  # what mmengine's model initialisation calls
    assert fresh.is_init
    for key, value in fresh.state_dict().items():
        if not key.startswith("out_norms."):
            assert torch.equal(value, source.backbone.state_dict()[key]), key
    fresh.eval()
    source.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats, y = fresh(x), x
        for i in range(4):
            y = source.backbone.forward_stage(i, y)
            torch.testing.assert_close(feats[i], F.layer_norm(y.permute(0, 2, 3, 1), (y.shape[1],), eps=1e-6)
                                       .permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
    cfg.depths = [1, 1, 1, 1]  # another architecture: refused with the keys named
    with pytest.raises(ValueError, match=r"does not fit MSMLPBackbone: 27 not in the model: stages\.2\.1\."):
        _registry(task).build(cfg).init_weights()


# ---------------------------------------------------------------------------------------- downstream configs
def test_detection_config_recipe_matches_the_pvt_configs():
    cfg = Config.fromfile(DET_CONFIG)
    pvt = Config.fromfile(osp.join(ROOT, "configs/detection/mask-rcnn_pvt-t_mixpro_fpn_8xb2-1x_coco.py"))
    for key in ("optim_wrapper", "param_scheduler", "train_cfg", "auto_scale_lr", "default_hooks", "custom_imports",
                "train_dataloader", "val_evaluator"):
        assert cfg[key] == pvt[key], key
    assert cfg.default_scope == "mmdet" and cfg.model.neck.in_channels == [96, 192, 384, 768]
    assert {k: v for k, v in cfg.model.items() if k != "backbone" and k != "neck"} == \
        {k: v for k, v in pvt.model.items() if k != "backbone" and k != "neck"}
    assert cfg.model.backbone.init_cfg == dict(type="Pretrained",
                                               checkpoint="checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth")


def test_segmentation_config_recipe():
    cfg = Config.fromfile(SEG_CONFIG)
    assert cfg.default_scope == "mmseg" and cfg.custom_imports.imports == ["segmentation"]
    assert cfg.optim_wrapper.optimizer == dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.power, poly.eta_min, poly.end) == (
        "LinearLR", 1500, "PolyLR", 1.0, 0.0, 160000)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
    assert cfg.model.decode_head.type == "UPerHead" and cfg.model.decode_head.in_channels == [96, 192, 384, 768]
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.default_hooks.checkpoint.backend_args == dict(backend="atomic_local")
    assert cfg.model.backbone.init_cfg.checkpoint == "checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth"


def _train_one_iteration(model, optim_cfg, data):
    from mmengine.optim import build_optim_wrapper
    model.init_weights()
    model.train()
    before = model.backbone.stem[0].weight.detach().clone()
    log = model.train_step(data, build_optim_wrapper(model, optim_cfg))
    assert all(torch.isfinite(v).all() for v in log.values()), log
    assert not torch.equal(before, model.backbone.stem[0].weight), "the backbone was not updated"
    return log


@pytest.mark.slow  # ~2 s alone, more on a loaded machine
def test_detection_config_trains_one_iteration():
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.backbone.init_cfg = None  # the checkpoint does not exist here
    model = _registry("mmdet").build(cfg.model)
    torch.manual_seed(0)
    data = demo_mm_inputs(2, [(3, 64, 64), (3, 64, 64)], num_items=[2, 1], num_classes=80, with_mask=True)
    log = _train_one_iteration(model, cfg.optim_wrapper, data)
    assert {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_mask"} <= set(log)


@pytest.mark.slow  # ~2 s alone, more on a loaded machine
def test_segmentation_config_trains_one_iteration():
    from mmengine.model import revert_sync_batchnorm
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (64, 64)  # pad to 64², not to the 512² crop
    model = revert_sync_batchnorm(_registry("mmseg").build(cfg.model))  # the Runner does this without DDP
    torch.manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(sample)
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                data_samples=samples)
    log = _train_one_iteration(model, cfg.optim_wrapper, data)
    assert {"decode.loss_ce", "aux.loss_ce"} <= set(log)
