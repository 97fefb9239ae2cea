"""CA-Swin (classification/models/ca_swin.py): timm's Swin with its last block replaced by a CaiT class-attention
block, its bad options, and the tools around a classifier (robustness suites, checkpoint converter). Its attention
capture is checked against the materialised attention in test_models_and_wrapper.py, its Table 1 rows and a MixPro
step in test_table1.py."""
import os.path as osp

import numpy as np
import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import classification.register_all  # noqa: F401  (registration)
from classification.experiments.robustness.evaluate import evaluate_robustness
from classification.experiments.robustness.suites import imagenet_wnids
from classification.models.ca_swin import ca_swin_small, ca_swin_tiny
from classification.transfer import convert

from classification.foundation.host import ROOT
MIXPRO_T = osp.join(ROOT, "configs/classification/ca-swin-t_mixpro_8xb128-300e_in1k.py")


@pytest.mark.parametrize("ours,swin,last", [(ca_swin_tiny, "swin_tiny_patch4_window7_224", "layers.3.blocks.1."),
                                            (ca_swin_small, "swin_small_patch4_window7_224", "layers.3.blocks.1.")])
def test_ca_swin_is_swin_with_its_last_block_replaced_by_class_attention(ours, swin, last):
    with torch.device("meta"):
        model, reference = ours(), timm.create_model(swin)
    own = {k: v.shape for k, v in model.state_dict().items()}
    added = {k for k in own if k == "cls_token" or k.startswith("blocks_token_only.")}
    kept = {k: v.shape for k, v in reference.state_dict().items() if not k.startswith(last)}
    assert {k: v for k, v in own.items() if k not in added} == kept
    assert {k.split(".")[1] for k in added - {"cls_token"}} == {"0"}  # one class-attention block
    assert model.blocks_token_only[0].attn.num_heads == 24  # stage 4's heads (head dim 32, as Swin's)
    assert model.token_stride == 32 and model.has_cls_attention


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match=r"class_attn_depth=3: must be 1\.\.2"):
        ca_swin_tiny(class_attn_depth=3)
    with pytest.raises(ValueError, match="class_attn_depth=0"):
        ca_swin_tiny(class_attn_depth=0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['drop_path'\]"):  # timm's **kwargs would drop it
        ca_swin_tiny(drop_path=0.2)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['global_pool'\]"):
        ca_swin_tiny(global_pool="avg")


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ca_swin_tiny(img_size=64, depths=(1, 1, 1, 2), num_classes=10).eval()  # eval: no drop path
    ckpt = ca_swin_tiny(img_size=64, depths=(1, 1, 1, 2), num_classes=10).eval()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    assert all(stage.grad_checkpointing for stage in ckpt.layers)
    x = torch.randn(2, 3, 64, 64)
    for model in (plain, ckpt):
        model(x).logsumexp(-1).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def tiny_checkpoint(tmp_path):
    """A 64² CA-Swin-T (one Swin block per stage + the class-attention block) saved like a Runner checkpoint."""
    torch.manual_seed(0)
    model = MODELS.build(dict(Config.fromfile(MIXPRO_T).model, num_classes=10))
    model.backbone = ca_swin_tiny(img_size=64, depths=(1, 1, 1, 2), num_classes=10)
    path = tmp_path / "ca-swin.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path, model


def test_converter_exports_ca_swin_to_timm_and_refuses_mmseg_mmdet_in_one_line(tmp_path, capsys):
    src, model = tiny_checkpoint(tmp_path)
    report = convert.convert_file(str(src), str(tmp_path / "timm.pth"), "timm")
    assert report.architecture == "ca-swin" and report.missing == report.unexpected == report.mismatched == []
    assert {"head.fc.weight", "head.fc.bias"} <= set(report.dropped)
    state = torch.load(tmp_path / "timm.pth", weights_only=True)
    torch.testing.assert_close(state["blocks_token_only.0.attn.q.weight"],
                               model.backbone.blocks_token_only[0].attn.q.weight)
    for target in ("mmseg-vit", "mmdet-pvt"):
        assert convert.main([str(src), str(tmp_path / "out.pth"), "--to", target]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"error: {src}: CA-Swin has no {target} backbone")
        assert "--to timm or --to safetensors" in err
    assert not (tmp_path / "out.pth").exists()


def write_images(folder, count, size=64):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_robustness_suites_run_on_ca_swin(tmp_path):
    """Occlusion (one 32-px patch per stage-4 token at 64²), patch shuffle and FGSM on a CA-Swin checkpoint."""
    src, _ = tiny_checkpoint(tmp_path)
    for wnid in imagenet_wnids()[:2]:
        write_images(tmp_path / "data" / "val" / wnid, 2)
    config = tmp_path / "ca_swin_64.py"
    config.write_text(
        f'_base_ = ["{MIXPRO_T}"]\n'
        'model = dict(num_classes=10, backbone=dict(img_size=64, depths=(1, 1, 1, 2)))\n'
        f'test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict('
        f'root="{tmp_path / "data"}", transform=dict(input_size=64, uint8=False)))\n')
    result = evaluate_robustness(str(config), str(src), ["occlusion", "shuffle", "fgsm"], device="cpu",
                                 progress=False)
    assert set(result["occlusion"]) == {f"0.{k}" for k in range(10)}  # 4 patches of 32 px: drops 0, 0, 0, 1, ...
    assert set(result["shuffle"]) == {"2x2", "4x4", "8x8", "16x16"} and set(result["fgsm"]) == {"1/255", "2/255",
                                                                                                "4/255"}
    assert all(0 <= v <= 100 for suite in ("occlusion", "shuffle", "fgsm") for v in result[suite].values())
