"""CCT-7/3x1: size, shapes, the classifier contract, TokenMixup on a model without a CLS token, the CIFAR configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.models.cct import CCT, cct_7_3x1
from mixpro_core import build_token_mixup, forward_with_attention, has_cls_attention, no_mix

from classification.foundation.host import ROOT


def test_parameter_count_and_output_shape():
    model = cct_7_3x1()
    assert sum(p.numel() for p in model.parameters()) == 3_783_269  # CIFAR-100 head
    assert sum(p.numel() for p in cct_7_3x1(num_classes=10).parameters()) == 3_760_139  # the paper's 3.76M
    assert len(model.blocks) == 7 and model.blocks[0].attn.num_heads == 4 and model.embed_dim == 256
    assert model.blocks[0].mlp.fc1.out_features == 512 and model.num_tokens == 256
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 100)
    assert model.forward_features(x).shape == (2, 256, 256)


def test_classifier_contract_and_registration():
    model = MODELS.build(dict(type="cct_7_3x1", num_classes=7, drop_path_rate=0.0))
    assert isinstance(model, CCT) and model.token_stride == 2 and model.num_prefix_tokens == 0
    assert not model.has_cls_attention and not has_cls_attention(model)
    logits, attn = forward_with_attention(model, torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7) and attn is None
    sine = cct_7_3x1(pos_embed="sine")
    assert "pos_embed" not in dict(sine.named_parameters()) and sine(torch.randn(1, 3, 32, 32)).shape == (1, 100)
    with pytest.raises(ValueError, match="pos_embed"):
        cct_7_3x1(pos_embed="rope")


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = cct_7_3x1(num_classes=5, drop_path_rate=0.0, attn_drop_rate=0.0)
    ckpt = cct_7_3x1(num_classes=5, drop_path_rate=0.0, attn_drop_rate=0.0)
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 32, 32)
    for model in (plain, ckpt):
        model(x).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_tokenmixup_on_cct_uses_query_mean_saliency_and_sequence_pooling():
    torch.manual_seed(0)
    model = cct_7_3x1(num_classes=5, drop_path_rate=0.0, attn_drop_rate=0.0).train()
    tm = build_token_mixup(model, [dict(type="htm", layer=2, tau=10.0, rho=0.0), dict(type="vtm", layer=2, kappa=80)],
                           num_classes=5, smoothing=0.1)
    htm = tm.horizontal[0]
    assert htm.pool == "attention" and htm.num_prefix_tokens == 0
    x, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    with tm.feed(no_mix(x), labels) as context:
        logits = model(x)
    assert logits.shape == (3, 5) and context.mixed.any()
    assert sorted(context.vertical_tokens) == [0, 1] and context.vertical_tokens[0].shape == (3, 80, 256)
    torch.testing.assert_close(context.targets.sum(1), torch.ones(3))
    model.eval()
    with tm.feed(no_mix(x), labels):
        evaluated = model(x)
    assert torch.equal(evaluated, model(x))


@pytest.mark.parametrize("method", ["htm", "vtm"])
@pytest.mark.parametrize("epochs", [300, 1500])
def test_cifar100_configs_carry_the_papers_settings(method, epochs):
    """docs/methods.md, "TokenMixup": CCT-7/3x1 on CIFAR-100, HTM at layer 2 with τ 0.2, ρ 0.005, λ_sn 0.001; VTM at
    layer 2 with κ 80; the
    CCT recipe (AdamW 6e-4, wd 0.06, warm-up 10) with the cosine ending at 300 or 1500 epochs, then 10 cool-down."""
    cfg = Config.fromfile(osp.join(ROOT, f"configs/classification/cct-7-3x1_{method}_1xb128-{epochs}e_cifar100.py"))
    assert cfg.model.backbone.type == "cct_7_3x1" and cfg.model.num_classes == 100
    expected = (dict(type="htm", layer=2, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None) if method == "htm"
                else dict(type="vtm", layer=2, kappa=80))
    assert dict(cfg.model.token_mixup) == expected
    assert cfg.optim_wrapper.optimizer.lr == 6e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.06
    warmup, cosine = cfg.param_scheduler
    # the cosine's period is mmengine's default T_max = end − begin
    assert (warmup.end, cosine.begin, cosine.end, cosine.get("T_max"), cosine.eta_min) == (10, 10, epochs, None, 1e-5)
    assert cfg.train_cfg.max_epochs == epochs + 10 and cfg.train_dataloader.batch_size == 128
