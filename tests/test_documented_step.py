"""docs/development.md's plain-PyTorch training step ("A training step with any method ...") runs as written: taken
from the page and executed in a fresh namespace; its loss is the label policy's loss of the mixed batch, recomputed here
from the block's own objects, and the backward pass reaches the model."""
import os.path as osp
import re

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def step_block() -> str:
    text = open(osp.join(ROOT, "docs", "development.md"), encoding="utf-8").read()
    after = text.split("A training step with any method", 1)[1]
    return re.search(r"```python\n(.*?)```", after, flags=re.S).group(1)


def test_the_documented_training_step_runs_as_written():
    code = step_block()
    namespace = {}
    exec(compile(code, "docs/development.md (training step)", "exec"), namespace)  # nothing defined beforehand
    model, batch, loss, policy = (namespace[k] for k in ("model", "batch", "loss", "policy"))
    images, labels = namespace["images"], namespace["labels"]
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert batch.images.shape == images.shape and batch.lam_area.shape == labels.shape
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad), "backward did not reach the model"
    with torch.no_grad():  # the same loss from the block's objects: its policy on its mixed batch
        from mixpro_core import forward_with_attention
        logits, cls_attn = forward_with_attention(model, batch.images)
        torch.testing.assert_close(policy(batch, logits, cls_attn, labels).loss, loss.detach())
