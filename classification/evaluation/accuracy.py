"""Top-k accuracy as an mmengine metric (one result per sample, so distributed padding is trimmed correctly)."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> torch.Tensor:
    """(B,K) logits, (B,) labels → (B, len(topk)) bool: is the label among the k highest logits."""
    maxk = min(max(topk), logits.shape[1])
    hit = logits.topk(maxk, dim=1).indices == labels.view(-1, 1)
    return torch.stack([hit[:, :min(k, maxk)].any(dim=1) for k in topk], dim=1)


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """top-k accuracy in percent, keys ``top1``, ``top5`` (for ``topk=(1, 5)``)."""

    default_prefix = ""

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = "cpu", prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            labels = out["labels"].to(out["logits"].device)
            self.results.extend(map(tuple, topk_correct(out["logits"], labels, self.topk).cpu().tolist()))

    def compute_metrics(self, results: list) -> dict:
        hits = torch.tensor(results, dtype=torch.float64)
        return {f"top{k}": float(hits[:, i].mean() * 100) for i, k in enumerate(self.topk)}
