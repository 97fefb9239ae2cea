"""CCT-7/3x1: size, shapes, the classifier contract, and TokenMixup on a model without a CLS token."""
import pytest
import torch
from mmengine.registry import MODELS

import classification  # noqa: F401  (registration)
from classification.models.cct import CCT, cct_7_3x1
from mixpro_core import build_token_mixup, forward_with_attention, has_cls_attention, no_mix


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
