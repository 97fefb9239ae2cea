"""Top-k accuracy as an mmengine metric (one result per sample, so distributed padding is trimmed correctly)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from classification.foundation.errors import UserError


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> torch.Tensor:
    """(B,K) logits, (B,) labels → (B, len(topk)) bool: is the label among the k highest logits."""
    maxk = min(max(topk), logits.shape[1])
    hit = logits.topk(maxk, dim=1).indices == labels.view(-1, 1)
    return torch.stack([hit[:, :min(k, maxk)].any(dim=1) for k in topk], dim=1)


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """top-k accuracy in percent, keys ``top1``, ``top5`` (for ``topk=(1, 5)``)."""

    default_prefix = ""
    DEFAULT_TOPK = (1, 5)

    def __init__(self, topk: Sequence[int] = DEFAULT_TOPK, collect_device: str = "cpu", prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    @classmethod
    def check_class_count(cls, where: str, metric_cfg: Mapping, num_classes: int) -> None:
        """UserError when the metric config ``metric_cfg`` (config key ``where``) asks for a top-k with k at least
        ``num_classes`` (> 1): every prediction would be a hit, 100 without meaning
        (:func:`classification.engine.config_check.check_class_counts`)."""
        topk = metric_cfg.get("topk", cls.DEFAULT_TOPK)
        topk = [topk] if isinstance(topk, int) else list(topk)
        too_large = [k for k in topk if k >= num_classes]
        if too_large and num_classes > 1:
            raise UserError(f"{where}.topk={tuple(topk)}: top-{too_large[0]} of {num_classes} classes counts every "
                            f"prediction as a hit; use k below {num_classes}, e.g. {where}.topk=(1,)")

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            labels = out["labels"].to(out["logits"].device)
            self.results.extend(map(tuple, topk_correct(out["logits"], labels, self.topk).cpu().tolist()))

    def compute_metrics(self, results: list) -> dict:
        hits = torch.tensor(results, dtype=torch.float64)
        return {f"top{k}": float(hits[:, i].mean() * 100) for i, k in enumerate(self.topk)}
