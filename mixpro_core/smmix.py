"""SMMix (Chen et al., ICCV 2023, "SMMix: Self-Motivated Image Mixing for Vision Transformers"): the model's own
attention picks the regions to mix (docs/methods.md, "SMMix").

Per batch, with probability ``switch_prob``: a clean pass (eval mode, no grad, fp32) gives logits z and the attention
each patch receives in the last block; one window side s is drawn; each image's least-attended s×s window is replaced
by its partner's (flipped batch) most-attended window; λ = (N − s²)/N. The mixed pass trains the logits on the
λ-mixed target, a region head (an extra Linear, ``token_head``) on the kept / pasted regions' mean tokens, and a KL
term towards softmax(λ·z + (1−λ)·z[partner]). Otherwise Mixup (α 0.8, flipped batch). Backbones: timm ViT / DeiT
(one CLS token; ``forward_features`` / ``forward_head``), or any model that registers its clean pass in
:data:`RECEIVED_ATTENTION_FORWARDS`.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import attention_key, received_attention_from_qkv
from .labels import check_class_count, smooth_one_hot, soft_target_cross_entropy
from .method import Method, MethodResult, kl_to_soft_target
from .mixing import _check_images, _randint, _uniform, sample_beta
from .registry import METHODS, Registry

RECEIVED_ATTENTION_FORWARDS = Registry("received_attention_forward")
"""``fn(model, images) -> (logits (B,K), received (B,N))`` per model class (:func:`attention_key`): the clean pass of
SMMix for families other than timm ViT / DeiT."""


def side_choices(side: int, min_ratio: float = 0.25, max_ratio: float = 0.75) -> List[int]:
    """The window sides SMMix draws from on a side×side token grid: int(side·min_ratio) … int(side·max_ratio) (the
    official 3…10 on DeiT's 14×14 grid; 1…3 on a 4×4 grid), clipped to 1 … side."""
    lo, hi = max(1, int(side * min_ratio)), min(side, int(side * max_ratio))
    if lo > hi:
        raise ValueError(f"SMMix: no window side in [{side}·{min_ratio}, {side}·{max_ratio}] on a {side}x{side} grid")
    return list(range(lo, hi + 1))


def window_search(scores: torch.Tensor, side: int, window: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per image, the positions (B,) of the window×window window (stride 1, inside the side×side grid, row-major
    position index over the (side−window+1)² placements) with the smallest and the largest sum of ``scores``
    (B, side²); ties go to the first position."""
    sums = F.unfold(scores.float().reshape(-1, 1, side, side), window, stride=1).sum(dim=1)
    return sums.argmin(dim=1), sums.argmax(dim=1)


def window_tokens(position: torch.Tensor, side: int, window: int) -> torch.Tensor:
    """(B,) window positions (:func:`window_search`) → (B, window²) row-major token indices of each window."""
    placements = side - window + 1
    corner = (position // placements) * side + position % placements
    offsets = (torch.arange(window, device=position.device)[:, None] * side
               + torch.arange(window, device=position.device)[None, :]).flatten()
    return corner[:, None] + offsets[None, :]


def smmix_images(images: torch.Tensor, patch_size: int, scores: torch.Tensor, window: int,
                 partner: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SMMix's image mixing: image i's least-attended window (by ``scores`` (B,N)) receives, token for token in
    row-major order, the most-attended window of image ``partner[i]``. → (mixed images (B,C,H,W), pasted (B,N) bool,
    True = token from the partner). Square images, sides multiples of ``patch_size``."""
    _check_images(images)
    b, c, h, w = images.shape
    if h != w or h % patch_size:
        raise ValueError(f"SMMix needs square images whose side is a multiple of patch_size={patch_size}, got {h}x{w}")
    side = h // patch_size
    low, high = window_search(scores, side, window)
    target, source = window_tokens(low, side, window), window_tokens(high, side, window)[partner]
    patches = images.reshape(b, c, side, patch_size, side, patch_size).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(b, side * side, -1)
    rows = torch.arange(b, device=images.device)[:, None]
    mixed = patches.clone()
    mixed[rows, target] = patches[partner[:, None], source]
    mixed = mixed.reshape(b, side, side, c, patch_size, patch_size).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
    pasted = torch.zeros(b, side * side, dtype=torch.bool, device=images.device)
    pasted[rows, target] = True
    return mixed, pasted


def _vit_received_attention(model: nn.Module, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """timm ViT: logits and the last block's patch-received attention from its fused qkv (one hooked forward)."""
    attn = model.blocks[-1].attn
    captured = {}
    handle = attn.qkv.register_forward_hook(lambda _m, _i, out: captured.__setitem__("qkv", out))
    try:
        logits = model(images)
    finally:
        handle.remove()
    return logits, received_attention_from_qkv(captured["qkv"], attn.num_heads, attn.scale, 1,
                                               getattr(attn, "q_norm", None), getattr(attn, "k_norm", None))


def clean_pass(model: nn.Module, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SMMix's motivation pass: (logits z (B,K), received attention (B,N)) of the unmixed ``images`` with the model
    in eval mode, without grad, in fp32 (autocast off); the model's training mode is restored afterwards."""
    forward = _vit_received_attention
    for klass in type(model).__mro__:
        if attention_key(klass) in RECEIVED_ATTENTION_FORWARDS:
            forward = RECEIVED_ATTENTION_FORWARDS.get(attention_key(klass))
            break
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            logits, received = forward(model, images.float())
    finally:
        model.train(training)
    return logits.float(), received.float()


def _region_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,N,C) tokens, (B,N) bool → (B,C) mean of the masked tokens."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1)


@METHODS.register("smmix")
class SMMix(Method):
    """SMMix with its Mixup switch (see the module docstring; docs/methods.md, "SMMix").

    Options (official defaults): ``switch_prob`` 0.5 — the probability of an SMMix batch, else Mixup;
    ``mixup_alpha`` 0.8; window sides int(side·``min_side_ratio``) … int(side·``max_side_ratio``) (0.25 / 0.75).
    ``token_head`` (Linear(C, K), truncated-normal 0.02 init) is a child: saved as ``method.token_head.*``, trained by
    the optimiser; unused on Mixup batches, so DDP needs ``find_unused_parameters=True``. ``lam`` = λ of the batch;
    logged on SMMix batches: ``smmix_region`` (the ½-weighted region CE) and ``smmix_kl`` (the consistency term).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, smoothing: float = 0.1, switch_prob: float = 0.5,
                 mixup_alpha: float = 0.8, min_side_ratio: float = 0.25, max_side_ratio: float = 0.75,
                 patch_size: Optional[int] = None):
        super().__init__(num_classes, smoothing)
        custom = any(attention_key(k) in RECEIVED_ATTENTION_FORWARDS for k in type(backbone).__mro__)
        attn = getattr(getattr(backbone, "blocks", [None])[-1], "attn", None) if getattr(backbone, "blocks", None) \
            else None
        if not custom and (attn is None or not all(hasattr(attn, a) for a in ("qkv", "num_heads", "scale"))
                           or getattr(backbone, "num_prefix_tokens", None) != 1):
            raise ValueError(f"SMMix needs a timm ViT/DeiT with one CLS token (blocks[-1].attn with a fused qkv) or a "
                             f"clean pass registered in RECEIVED_ATTENTION_FORWARDS; {type(backbone).__name__} has "
                             f"neither")
        if not all(callable(getattr(backbone, f, None)) for f in ("forward_features", "forward_head")):
            raise ValueError(f"SMMix needs forward_features (final-normed tokens, CLS first) and forward_head on "
                             f"{type(backbone).__name__}")
        if not patch_size:
            raise ValueError("SMMix needs the backbone's patch size (its token_stride)")
        if not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"SMMix switch_prob must be in [0, 1], got {switch_prob}")
        side_choices(14, min_side_ratio, max_side_ratio)  # the ratios are checked once on DeiT's grid
        self.switch_prob, self.mixup_alpha, self.patch_size = switch_prob, mixup_alpha, patch_size
        self.min_side_ratio, self.max_side_ratio = min_side_ratio, max_side_ratio
        width = getattr(backbone, "num_features", None) or getattr(backbone, "embed_dim")
        self.token_head = nn.Linear(width, num_classes)
        nn.init.trunc_normal_(self.token_head.weight, std=0.02)
        nn.init.zeros_(self.token_head.bias)

    def forward(self, backbone, images, labels, generator=None) -> MethodResult:
        b = images.shape[0]
        partner = torch.arange(b - 1, -1, -1, device=images.device)
        y = smooth_one_hot(labels, self.num_classes, self.smoothing)
        if float(_uniform((), generator)) >= self.switch_prob:  # Mixup with the flipped batch
            lam = sample_beta(self.mixup_alpha, generator)
            logits = backbone(torch.lerp(images[partner], images, lam) if lam != 1.0 else images)
            check_class_count(logits, self.num_classes, "SMMix")
            loss = soft_target_cross_entropy(logits, lam * y + (1 - lam) * y[partner])
            return MethodResult(loss, torch.full((b,), lam, device=images.device), {})
        z, scores = clean_pass(backbone, images)
        check_class_count(z, self.num_classes, "SMMix")
        choices = side_choices(images.shape[-1] // self.patch_size, self.min_side_ratio, self.max_side_ratio)
        window = choices[_randint(len(choices), generator)]
        n = scores.shape[1]
        lam = (n - window * window) / n
        mixed, pasted = smmix_images(images, self.patch_size, scores, window, partner)
        tokens = backbone.forward_features(mixed)
        logits = backbone.forward_head(tokens)
        patches = tokens[:, tokens.shape[1] - n:]
        kept_logits = self.token_head(_region_mean(patches, ~pasted))
        pasted_logits = self.token_head(_region_mean(patches, pasted))
        main = soft_target_cross_entropy(logits, lam * y + (1 - lam) * y[partner])
        region = 0.5 * (soft_target_cross_entropy(kept_logits, y) + soft_target_cross_entropy(pasted_logits, y[partner]))
        consistency = kl_to_soft_target(logits, lam * z + (1 - lam) * z[partner])
        stats = dict(smmix_region=region.detach(), smmix_kl=consistency.detach())
        return MethodResult(main + region + consistency, torch.full((b,), lam, device=images.device), stats)

    def extra_repr(self) -> str:
        return (f"switch_prob={self.switch_prob}, mixup_alpha={self.mixup_alpha}, min_side_ratio={self.min_side_ratio}, "
                f"max_side_ratio={self.max_side_ratio}, patch_size={self.patch_size}")
