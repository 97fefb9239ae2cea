"""MergeMix (Jin et al., arXiv 2510.23479; official classification code in OpenMixup @37e1372,
``openmixup/models/classifiers/mergemix.py`` and ``models/utils/merge.py``): docs/methods.md, "MergeMix".

A ToMe pass over the clean images (:func:`tome_attention_pass`: bipartite soft matching on the head-mean keys after
each block's attention, size-weighted merging, CLS never merged, ``r`` tokens per block from :func:`tome_schedule`,
the original patch → merged token map tracked) scores every patch by the head-summed last-block attention of its
merged token to the CLS; the top int(λ·N) patches of each image stay, the rest come from a partner
(:func:`mergemix_batch`). The loss adds a Mixup (α 0.8) batch's smoothed CE to the mixed batch's (two forwards).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .labels import check_class_count, mixed_cross_entropy
from .method import Method, MethodResult
from .mixing import MixBatch, _check_images, _draw_device, _to_device, mixup, random_partner, sample_beta
from .registry import METHODS


def tome_schedule(num_layers: int, merge_num: int, inflect: float = -0.5) -> List[int]:
    """Tokens merged after each block, as the official config turns ``merge_num`` into a schedule: the base r whose
    linear schedule r·(1−inflect) → r·(1+inflect) (integer steps) sums closest to ``merge_num`` (first r wins a tie,
    the search stops when the gap grows), then the first block (inflect < 0; else the last) takes the remainder so the
    schedule sums to ``merge_num`` exactly. DeiT (12 blocks), merge_num 49 → [12,5,5,4,4,4,3,3,3,2,2,2]."""
    if num_layers < 2:
        raise ValueError(f"a ToMe schedule needs at least 2 blocks, got {num_layers}")

    def linear(r: int) -> List[int]:
        lo = int(r * (1.0 - inflect))
        step = (2 * r - 2 * lo) / (num_layers - 1)
        return [int(lo + step * i) for i in range(num_layers)]

    best, gap = 0, float("inf")
    for r in range(merge_num):
        g = abs(sum(linear(r)) - merge_num)
        if g < gap:
            best, gap = r, g
        elif g > gap:
            break
    schedule = linear(best)
    schedule[0 if inflect < 0 else -1] += merge_num - sum(schedule)
    return schedule


def bipartite_merge(metric: torch.Tensor, r: int, protect_cls: bool = True) -> Tuple[Callable, torch.Tensor]:
    """ToMe's bipartite soft matching of T tokens (metric (B,T,C)) into T − r: (merge, new_index (B,T) long).

    Tokens alternate into sets A (even positions) and B (odd); each A token's most cosine-similar B token is its
    match; the r A tokens with the best matches are merged into their matches (the CLS, position 0, never when
    ``protect_cls``; r ≤ (T − protected)/2). New order: the unmerged A tokens by position (CLS first), then every B
    token. ``merge(x)`` (B,T,C) → (B,T−r,C) sums each merged group; ``new_index[b, t]`` is token t's new position."""
    b, t, _ = metric.shape
    r = min(r, (t - int(protect_cls)) // 2)
    if r <= 0:
        return (lambda x: x), torch.arange(t, device=metric.device).expand(b, t)
    with torch.no_grad():
        m = metric / metric.norm(dim=-1, keepdim=True)
        scores = m[:, ::2] @ m[:, 1::2].transpose(1, 2)
        if protect_cls:
            scores[:, 0] = -float("inf")
        best, match = scores.max(dim=-1)  # per A token
        order = best.argsort(dim=-1, descending=True)
        src, unm = order[:, :r], order[:, r:].sort(dim=-1).values
        dst = match.gather(1, src)
        n_a, n_unm = m[:, ::2].shape[1], unm.shape[1]
        new_index = torch.empty(b, t, dtype=torch.long, device=metric.device)
        rows = torch.arange(b, device=metric.device).view(b, 1)
        new_index[rows, 2 * unm] = torch.arange(n_unm, device=metric.device).expand(b, n_unm)
        n_b = t - n_a
        new_index[:, 1::2] = n_unm + torch.arange(n_b, device=metric.device)
        new_index[rows, 2 * src] = n_unm + dst

    def merge(x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        a, bb = x[:, ::2], x[:, 1::2]
        kept = a.gather(1, unm.unsqueeze(-1).expand(b, n_unm, c))
        moved = a.gather(1, src.unsqueeze(-1).expand(b, r, c))
        return torch.cat([kept, bb.scatter_add(1, dst.unsqueeze(-1).expand(b, r, c), moved)], dim=1)

    return merge, new_index


def _block_attention(block: nn.Module, x: torch.Tensor, need_cls_column: bool):
    """timm ``Block`` attention on x (B,T,C): (attention output (B,T,C) before ls1/drop_path, head-mean keys (B,T,D),
    and with ``need_cls_column`` the head-summed softmax attention of every query to key 0 (B,T), else None)."""
    attn = block.attn
    h = block.norm1(x)
    b, t, _ = h.shape
    q, k, v = attn.qkv(h).reshape(b, t, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    column = None
    if need_cls_column:
        logits = (q * attn.scale) @ k.transpose(-2, -1)
        column = logits.softmax(dim=-1)[..., 0].sum(dim=1)
    out = out.transpose(1, 2).reshape(b, t, -1)
    out = attn.proj_drop(attn.proj(attn.norm(out)))
    return out, k.mean(dim=1), column


@torch.no_grad()
def tome_attention_pass(model: nn.Module, images: torch.Tensor, schedule: Sequence[int],
                        official_last_merge: bool = False) -> torch.Tensor:
    """Patch scores (B,N) from a ToMe forward of a timm ``VisionTransformer`` (CLS token, no other prefix tokens),
    in the model's current mode (the official pass runs in train mode), without gradients.

    Block i: attention (plain, no proportional attention, as officially), residual, then ``schedule[i]`` tokens merged
    (:func:`bipartite_merge` on the head-mean keys; features averaged by token size), then the MLP. Patch p's score is
    the head-summed last-block attention of the token holding p to the CLS, read through the patch → token map as it
    was when that attention was computed; ``official_last_merge`` reads it through the map after the last block's
    own merge instead (the official code's order, which indexes the attention with positions of a later token
    layout)."""
    if getattr(model, "num_prefix_tokens", 1) != 1 or getattr(model, "cls_token", None) is None:
        raise ValueError("the MergeMix ToMe pass needs a ViT with exactly one prefix token, the CLS")
    if len(schedule) != len(model.blocks):
        raise ValueError(f"the ToMe schedule has {len(schedule)} entries for {len(model.blocks)} blocks")
    x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(images))))
    b, t, _ = x.shape
    size = torch.ones(b, t, 1, dtype=x.dtype, device=x.device)
    source = torch.arange(t, device=x.device).expand(b, t)  # original token → current position
    column, read_map = None, source
    last = len(model.blocks) - 1
    for i, (block, r) in enumerate(zip(model.blocks, schedule)):
        out, metric, col = _block_attention(block, x, need_cls_column=i == last)
        x = x + block.drop_path1(block.ls1(out))
        if i == last:
            column, read_map = col, source
        if r > 0:
            merge, new_index = bipartite_merge(metric, r, protect_cls=True)
            source = new_index.gather(1, source)
            x = merge(x * size)
            size = merge(size)
            x = x / size
        x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
    if official_last_merge:
        read_map = source
    return column.gather(1, read_map[:, 1:])


def top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B,N) float {0,1}: 1 on each row's k highest scores (torch.topk's choice among ties)."""
    mask = torch.zeros_like(scores, dtype=torch.float32)
    if k > 0:
        mask.scatter_(1, scores.topk(k, dim=1).indices, 1.0)
    return mask


def derangement(batch_size: int, generator: Optional[torch.Generator] = None, device="cpu",
                tries: int = 10) -> torch.Tensor:
    """(B,) long permutation without a fixed point: the first of up to ``tries`` uniform permutations that has none
    (the official shuffle checks 10 draws), else a random single cycle (:func:`~mixpro_core.mixing.random_partner`),
    so no image is ever its own partner (the official code then returns one more, unchecked draw)."""
    if batch_size < 2:
        raise ValueError(f"mixing needs a batch of at least 2 samples, got batch size {batch_size}")
    for _ in range(tries):
        perm = torch.randperm(batch_size, generator=generator, device=_draw_device(generator))
        if not bool((perm == torch.arange(batch_size, device=perm.device)).any()):
            return _to_device(perm, device)
    return random_partner(batch_size, generator, device)


def mergemix_batch(images: torch.Tensor, scores: torch.Tensor, lam: float, patch_size: int,
                   generator: Optional[torch.Generator] = None) -> MixBatch:
    """x̃ = x·M + x[partner]·(1−M) with M the top-int(λ·N) patches of ``scores`` (B,N) per image (upsampled to
    pixels), partner a :func:`derangement`; lam_area = k/N for every sample."""
    _check_images(images)
    b, _, h, w = images.shape
    gh, gw = h // patch_size, w // patch_size
    if scores.shape != (b, gh * gw):
        raise ValueError(f"scores {tuple(scores.shape)} do not match the {gh}x{gw} token grid of {b} images")
    k = int(lam * gh * gw)
    token_mask = top_k_mask(scores, k).to(images.device)
    pixel_mask = token_mask.view(b, 1, gh, gw).repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
    partner = derangement(b, generator, images.device)
    mixed = torch.where(pixel_mask.bool(), images, images[partner])
    lam_area = torch.full((b,), k / (gh * gw), device=images.device)
    return MixBatch(mixed, partner, lam_area, pixel_mask, token_mask, "mergemix", token_exact=True)


@METHODS.register("mergemix")
class MergeMix(Method):
    """MergeMix's step: λ ~ Beta(α,α); the ToMe pass scores the clean images' patches (:func:`tome_attention_pass`,
    no gradients, the backbone's current mode); :func:`mergemix_batch` keeps each image's top int(λ·N) patches; loss =
    smoothed CE of a Mixup(``mixup_alpha``) batch + smoothed CE of the MergeMix batch mixed by λ_a = k/N (two forwards
    with gradients). ``merge_num`` tokens are merged over the blocks (default N // 4: 49 of DeiT's 196) with
    :func:`tome_schedule`; ``official_last_merge`` reads the last block's attention as the official code does.

    ``lam`` of the result: λ_a = k/N of the MergeMix batch; ``stats``: the two CE terms (``mixup_ce``,
    ``mergemix_ce``)."""

    def __init__(self, backbone: nn.Module, num_classes: int, smoothing: float = 0.1,
                 patch_size: Optional[int] = None, alpha: float = 1.0, mixup_alpha: float = 0.8,
                 merge_num: Optional[int] = None, official_last_merge: bool = False):
        super().__init__(num_classes, smoothing)
        blocks = getattr(backbone, "blocks", None)
        num_patches = getattr(getattr(backbone, "patch_embed", None), "num_patches", None)
        if blocks is None or num_patches is None or getattr(backbone, "cls_token", None) is None or not patch_size:
            raise ValueError(f"mergemix needs a timm-style ViT with a CLS token (blocks, patch_embed.num_patches, "
                             f"a token stride); got {type(backbone).__name__}")
        merge_num = num_patches // 4 if merge_num is None else merge_num
        if not 0 <= merge_num < num_patches:
            raise ValueError(f"merge_num must be in 0..{num_patches - 1}, got {merge_num}")
        self.schedule = tome_schedule(len(blocks), merge_num)
        self.patch_size, self.alpha, self.mixup_alpha = patch_size, alpha, mixup_alpha
        self.official_last_merge = official_last_merge

    def forward(self, backbone, images, labels, generator=None) -> MethodResult:
        lam = sample_beta(self.alpha, generator)
        scores = tome_attention_pass(backbone, images, self.schedule, self.official_last_merge)
        batch = mergemix_batch(images, scores, lam, self.patch_size, generator)
        plain = mixup(images, self.mixup_alpha, generator)
        mixup_logits = backbone(plain.images)
        check_class_count(mixup_logits, self.num_classes, "mergemix")
        mixup_ce = mixed_cross_entropy(mixup_logits, labels, plain.partner, plain.lam_area, self.smoothing)
        mergemix_ce = mixed_cross_entropy(backbone(batch.images), labels, batch.partner, batch.lam_area,
                                          self.smoothing)
        return MethodResult(mixup_ce + mergemix_ce, batch.lam_area,
                            dict(mixup_ce=mixup_ce.detach(), mergemix_ce=mergemix_ce.detach()))
