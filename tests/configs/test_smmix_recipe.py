"""The SMMix ImageNet configs hold the official recipe (ChenMnZ/SMMix main.py defaults; docs/methods.md, "SMMix"):
DeiT-T/S and PVT-T/S/M/L alike — lr 5e-4 per 512 images, weight decay 0.05, 5 warm-up epochs from 1e-6, cosine to
1e-5, no clipping, drop path 0.1, no random erasing, no repeated augmentation, no EMA, DDP looking for the region
head's unused parameters; the weight decay of the position embeddings follows each official model's
no_weight_decay() (DeiT: none on pos_embed; PVT: cls_token only, so pos_embed1…4 decay), checked on the optimiser's
real parameter groups."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.engine.config_check import load_config

MODELS_ = ("deit-t", "deit-s", "pvt-t", "pvt-s", "pvt-m", "pvt-l")


def config(model):
    return load_config(f"configs/classification/{model}_smmix_8xb128-300e_in1k.py")


@pytest.mark.parametrize("model", MODELS_)
def test_the_smmix_recipe(model):
    cfg = config(model)
    total = cfg.train_dataloader.batch_size * 8
    assert cfg.optim_wrapper.optimizer.lr * total / cfg.auto_scale_lr.base_batch_size == pytest.approx(5e-4 * total / 512)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05 and cfg.optim_wrapper.clip_grad is None
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ("LinearLR", 0, 5)
    assert warmup.start_factor * cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-6)
    assert (cosine.type, cosine.begin, cosine.end, cosine.eta_min) == ("CosineAnnealingLR", 5, 300, 1e-5)
    assert cfg.train_cfg.max_epochs == 300 and cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.data_preprocessor.re_prob == 0.0 and cfg.train_dataloader.sampler.type == "DefaultSampler"
    assert not any("EMA" in h.type for h in cfg.get("custom_hooks", []))
    assert cfg.model.method.type == "smmix" and cfg.model_wrapper_cfg.find_unused_parameters


@pytest.mark.parametrize("model, decayed", [("deit-t", set()), ("pvt-t", {f"pos_embed{i}" for i in range(1, 5)})])
def test_position_embeddings_decay_as_in_the_official_model(model, decayed):
    cfg = config(model)
    net = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(net, cfg.optim_wrapper)
    decay = {id(p): group["weight_decay"] for group in wrapper.optimizer.param_groups for p in group["params"]}
    embeddings = {name.split(".")[-1]: decay[id(p)] for name, p in net.named_parameters()
                  if "pos_embed" in name or "cls_token" in name}
    assert embeddings == {name: (0.05 if name in decayed else 0.0) for name in embeddings} and "cls_token" in embeddings
    assert decay[id(net.method.token_head.weight)] == 0.05 and decay[id(net.method.token_head.bias)] == 0.0
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
