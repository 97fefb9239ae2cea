"""TokenMixup (Choi et al., NeurIPS 2022): token-level mixing inside a vision transformer, guided by its attention;
semantics and design decisions in docs/methods.md, "TokenMixup".

HTM (:class:`HorizontalTokenMixup`, :func:`horizontal_token_mixup`) mixes the tokens entering one block, and the soft
targets (B,K), of the easy samples (ScoreNet difficulty ≤ τ) with those of Hungarian-assigned partners; VTM
(:class:`VerticalTokenMixup`) appends lower blocks' top-κ salient tokens to one block's keys/values. Both act in
training only and are registered in :data:`TOKEN_MIXERS` ('htm', 'vtm'). A :class:`TokenMixup` attaches them with
forward hooks for one forward (:meth:`TokenMixup.feed`, a fresh :class:`TokenMixupContext`) and returns what they add
to the step (:meth:`TokenMixup.result`). Backbones: ``blocks`` of pre-norm blocks with ``norm1`` and an ``attn`` with a
fused ``qkv``, ``num_heads`` and ``scale`` (timm ViT/DeiT, CCT; else TypeError), a CLS token first or no prefix tokens
(else ValueError); not compatible with activation checkpointing (its recomputation would replay the hooks).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import cls_attention_from_qkv
from .labels import mixed_targets
from .mixing import MixBatch
from .registry import TOKEN_MIXERS, call_with_options

POOLS = ("cls", "mean", "attention")

__all__ = ["POOLS", "saliency_from_qkv", "block_saliency", "assign_partners", "horizontal_token_mixup", "HTMResult",
           "TokenMixupContext", "TokenMixupResult", "HorizontalTokenMixup", "VerticalTokenMixup", "TokenMixup",
           "build_token_mixup"]


# ------------------------------------------------------------------------------------------------------ saliency
def saliency_from_qkv(qkv: torch.Tensor, num_heads: int, scale: float, num_prefix_tokens: int = 1,
                      q_norm: Optional[nn.Module] = None, k_norm: Optional[nn.Module] = None,
                      max_elements: int = 1 << 25) -> torch.Tensor:
    """(B,T,3·H·D) fused qkv → (B, T − num_prefix_tokens) float32 token saliency, head-averaged.

    With prefix tokens (CLS first): the CLS query's attention row (:func:`cls_attention_from_qkv`, O(T)). Without: the
    attention averaged over all queries (the column means of the attention matrix), built in query chunks of at most
    ``max_elements`` scores so memory stays bounded. Computed in fp32 with autocast off.
    """
    if num_prefix_tokens:
        return cls_attention_from_qkv(qkv, num_heads, scale, num_prefix_tokens, q_norm, k_norm)
    b, t, c3 = qkv.shape
    q, k, _ = qkv.float().reshape(b, t, 3, num_heads, c3 // (3 * num_heads)).permute(2, 0, 3, 1, 4).unbind(0)
    with torch.autocast(qkv.device.type, enabled=False):
        if q_norm is not None:
            q = q_norm(q)
        if k_norm is not None:
            k = k_norm(k)
        q, k = q * scale, k
        chunk = max(1, max_elements // max(1, b * num_heads * t))
        total = torch.zeros(b, num_heads, t, device=qkv.device)
        for start in range(0, t, chunk):
            total += (q[:, :, start:start + chunk] @ k.transpose(-2, -1)).softmax(dim=-1).sum(dim=2)
        return total.mean(dim=1) / t


def _attention_of(block: nn.Module) -> nn.Module:
    attn = getattr(block, "attn", None)
    if getattr(block, "norm1", None) is None or attn is None or not all(
            hasattr(attn, a) for a in ("qkv", "num_heads", "scale")):
        raise TypeError(f"TokenMixup needs pre-norm transformer blocks with `norm1` and a self-attention `attn` with a "
                        f"fused `qkv` projection, `num_heads` and `scale` (timm ViT / CCT style); "
                        f"{type(block).__name__} has not")
    return attn


@torch.no_grad()
def block_saliency(block: nn.Module, tokens: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """(B,N) detached saliency of ``tokens`` (B,T,C) — the input of ``block`` — under ``block``'s own attention: one
    extra qkv projection of ``block.norm1(tokens)``, then :func:`saliency_from_qkv`; all in fp32 (autocast off)."""
    attn = _attention_of(block)
    with torch.autocast(tokens.device.type, enabled=False):
        qkv = attn.qkv(block.norm1(tokens.float()))
    return saliency_from_qkv(qkv, attn.num_heads, attn.scale, num_prefix_tokens, getattr(attn, "q_norm", None),
                             getattr(attn, "k_norm", None))


# ------------------------------------------------------------------------------------------------- HTM (functional)
def assign_partners(gain: torch.Tensor) -> torch.Tensor:
    """(R,D) gains, R ≤ D → (R,) long column per row maximising the total gain, all columns distinct (Hungarian)."""
    from scipy.optimize import linear_sum_assignment  # scipy is a dependency; imported where it is used

    if gain.shape[0] > gain.shape[1]:
        raise ValueError(f"more receivers ({gain.shape[0]}) than donors ({gain.shape[1]})")
    rows, cols = linear_sum_assignment(gain.detach().double().cpu().numpy(), maximize=True)
    out = torch.empty(gain.shape[0], dtype=torch.long)
    out[torch.as_tensor(rows, dtype=torch.long)] = torch.as_tensor(cols, dtype=torch.long)
    return out.to(gain.device)


@dataclass
class HTMResult:
    """tokens (B,T,C) and targets (B,K) after HTM, in the input's batch order; partner (B,) (i itself when sample i
    is not mixed); mask (B,N) bool, True = patch token taken from the partner; mixed (B,) bool = mask.any(1)."""

    tokens: torch.Tensor
    targets: torch.Tensor
    partner: torch.Tensor
    mask: torch.Tensor
    mixed: torch.Tensor


def horizontal_token_mixup(tokens: torch.Tensor, targets: torch.Tensor, saliency: torch.Tensor,
                           receivers: torch.Tensor, rho: float, num_prefix_tokens: int = 1,
                           donors: Optional[torch.Tensor] = None) -> HTMResult:
    """HTM's mixing step for given saliency and receivers (docs/methods.md, "TokenMixup").

    tokens (B,T,C) with ``num_prefix_tokens`` leading prefix tokens (never mixed) and N = T − prefix patch tokens;
    targets (B,K) soft targets; saliency (B,N) ≥ 0; receivers (B,) bool; donors (B,) bool or None (= every sample).
    The partner of receiver i maximises, jointly over receivers, Σ_i Σ_n max(0, s_j,n − s_i,n − ρ).
    """
    b, t, c = tokens.shape
    n = t - num_prefix_tokens
    if saliency.shape != (b, n):
        raise ValueError(f"saliency {tuple(saliency.shape)} does not match {b} samples of {n} patch tokens")
    if targets.shape[0] != b:
        raise ValueError(f"targets {tuple(targets.shape)} do not match a batch of {b}")
    device = tokens.device
    partner = torch.arange(b, device=device)
    mask = torch.zeros(b, n, dtype=torch.bool, device=device)
    receiver_idx = receivers.nonzero().flatten()
    donor_idx = torch.arange(b, device=device) if donors is None else donors.nonzero().flatten()
    if receiver_idx.numel() and donor_idx.numel():
        sal = saliency.float()
        excess = sal[donor_idx][None] - sal[receiver_idx][:, None] - rho  # (R,D,N)
        cols = assign_partners(excess.clamp_min(0).sum(-1))
        partner[receiver_idx] = donor_idx[cols]
        mask[receiver_idx] = excess[torch.arange(receiver_idx.numel(), device=device), cols] > 0
    mixed = mask.any(dim=1)
    patches = tokens[:, num_prefix_tokens:]
    patches = torch.where(mask.unsqueeze(-1), patches[partner], patches)
    out_tokens = torch.cat([tokens[:, :num_prefix_tokens], patches], dim=1)
    sal = saliency.to(targets.dtype)
    own = (sal * (~mask)).sum(1)
    taken = (sal[partner] * mask).sum(1)
    weight = (own / (own + taken).clamp_min(1e-12)).unsqueeze(1)
    out_targets = torch.where(mixed.unsqueeze(1), weight * targets + (1 - weight) * targets[partner], targets)
    return HTMResult(out_tokens, out_targets, partner, mask, mixed)


# ------------------------------------------------------------------------------------------------------ modules
@dataclass
class TokenMixupContext:
    """The state of one training forward, shared by the TokenMixup modules of one model while it runs.

    targets: (B,K) current soft targets (HTM layers replace them in forward order) or None;
    scorenet_losses: λ_sn-weighted ScoreNet losses, one per HTM layer that ran;
    mixed: (B,) bool, samples some HTM layer changed; easy: (B,) bool, samples some HTM layer found easy;
    vertical_tokens: VTM's kept tokens per lower block index, (B,κ,C) each.
    """

    targets: Optional[torch.Tensor] = None
    scorenet_losses: List[torch.Tensor] = field(default_factory=list)
    mixed: Optional[torch.Tensor] = None
    easy: Optional[torch.Tensor] = None
    vertical_tokens: Dict[int, torch.Tensor] = field(default_factory=dict)

    def record(self, easy: torch.Tensor, mixed: torch.Tensor) -> None:
        self.easy = easy if self.easy is None else self.easy | easy
        self.mixed = mixed if self.mixed is None else self.mixed | mixed


@TOKEN_MIXERS.register("htm")
class HorizontalTokenMixup(nn.Module):
    """HTM at one transformer block (docs/methods.md, "TokenMixup"); holds the ScoreNet, not the block.

    Args:
        block: the block whose input tokens are mixed (kept by reference, not registered as a submodule).
        dim: token width C. num_classes: K of the ScoreNet.
        tau: difficulty threshold (difficulty = score_scale · ScoreNet CE). rho: saliency-difference threshold.
        pool: ScoreNet pooling, 'cls' (CLS token), 'mean' (patch tokens) or 'attention' (learned attention pooling of
            the patch tokens, as CCT's sequence pooling); None: 'cls' with prefix tokens, 'attention' without.
        num_prefix_tokens: leading prefix tokens (CLS first) of the sequence; 0 for CCT.
        lambda_sn: weight of the ScoreNet loss. score_scale: CE → difficulty factor (reference: 0.1).
        scorenet_stopgrad: the ScoreNet sees detached tokens (its loss does not reach the backbone).
        donors: 'all' (reference) or 'easy'.
    """

    def __init__(self, block: nn.Module, dim: int, num_classes: int, tau: float = 0.2, rho: float = 0.005,
                 pool: Optional[str] = None, num_prefix_tokens: int = 1, lambda_sn: float = 0.001,
                 score_scale: float = 0.1, scorenet_stopgrad: bool = False, donors: str = "all"):
        super().__init__()
        _attention_of(block)
        pool = ("cls" if num_prefix_tokens else "attention") if pool is None else pool
        if pool not in POOLS:
            raise ValueError(f"HTM pool must be one of {POOLS}, got {pool!r}")
        if pool == "cls" and num_prefix_tokens < 1:
            raise ValueError("HTM pool='cls' needs a CLS token; use pool='mean' or 'attention' for models without one")
        if donors not in ("all", "easy"):
            raise ValueError(f"HTM donors must be 'all' or 'easy', got {donors!r}")
        if lambda_sn < 0 or score_scale <= 0:
            raise ValueError(f"HTM lambda_sn must be >= 0 and score_scale > 0, got {lambda_sn}, {score_scale}")
        self._block = [block]  # a plain list: the backbone keeps its parameter names, the block is not ours
        self.tau, self.rho, self.pool = tau, rho, pool
        self.num_prefix_tokens, self.lambda_sn, self.score_scale = num_prefix_tokens, lambda_sn, score_scale
        self.scorenet_stopgrad, self.donors = scorenet_stopgrad, donors
        self.pool_attn = nn.Linear(dim, 1) if pool == "attention" else None
        self.fc = nn.Linear(dim, num_classes)
        for m in (self.pool_attn, self.fc):
            if m is not None:
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def block(self) -> nn.Module:
        return self._block[0]

    def scorenet(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,T,C) → (B,K) ScoreNet logits."""
        if self.pool == "cls":
            pooled = tokens[:, 0]
        else:
            patches = tokens[:, self.num_prefix_tokens:]
            if self.pool == "mean":
                pooled = patches.mean(dim=1)
            else:
                weights = self.pool_attn(patches).softmax(dim=1)  # (B,N,1)
                pooled = (weights * patches).sum(dim=1)
        return self.fc(pooled)

    def mix(self, tokens: torch.Tensor, context: TokenMixupContext) -> torch.Tensor:
        """One HTM step on the block's input ``tokens`` (B,T,C): updates ``context`` and returns the mixed tokens."""
        targets = context.targets
        if targets is None or targets.dim() != 2 or targets.shape[0] != tokens.shape[0]:
            raise ValueError(f"HTM needs the current soft targets (B,K) for the {tokens.shape[0]} samples of the "
                             f"batch, got {None if targets is None else tuple(targets.shape)}")
        logits = self.scorenet(tokens.detach() if self.scorenet_stopgrad else tokens).float()
        ce = F.cross_entropy(logits, targets.float(), reduction="none")
        context.scorenet_losses.append(self.lambda_sn * ce.mean())
        easy = self.score_scale * ce.detach() <= self.tau
        if not bool(easy.any()):
            context.record(easy, torch.zeros_like(easy))
            return tokens
        saliency = block_saliency(self.block, tokens.detach(), self.num_prefix_tokens)
        result = horizontal_token_mixup(tokens, targets, saliency, easy, self.rho, self.num_prefix_tokens,
                                        easy if self.donors == "easy" else None)
        context.targets = result.targets
        context.record(easy, result.mixed)
        return result.tokens

    def attach(self, context: TokenMixupContext) -> list:
        """Hook HTM onto the block for one forward; returns the hook handles (remove them afterwards)."""
        def pre_hook(block, args):
            if not block.training:
                return None
            return (self.mix(args[0], context),) + tuple(args[1:])
        return [self.block.register_forward_pre_hook(pre_hook)]

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, rho={self.rho}, pool={self.pool!r}, num_prefix_tokens={self.num_prefix_tokens}, "
                f"lambda_sn={self.lambda_sn}, score_scale={self.score_scale}, donors={self.donors!r}")


@TOKEN_MIXERS.register("vtm")
class VerticalTokenMixup(nn.Module):
    """VTM: blocks ``0..layer-1`` keep their top-``kappa`` input tokens by saliency; ``blocks[layer]``'s attention
    attends over its own tokens plus those (keys/values only). No parameters; blocks kept by reference.

    ``stopgrad`` detaches the kept tokens (reference option, off by default). ``sources`` restricts the contributing
    lower blocks (default: all blocks below ``layer``)."""

    def __init__(self, blocks: Sequence[nn.Module], layer: int, kappa: int, num_prefix_tokens: int = 1,
                 stopgrad: bool = False, sources: Optional[Sequence[int]] = None):
        super().__init__()
        blocks = list(blocks)
        if not 1 <= layer < len(blocks):
            raise ValueError(f"VTM layer must be in [1, {len(blocks) - 1}] for {len(blocks)} blocks (it needs lower "
                             f"blocks to take tokens from), got {layer}")
        if kappa < 1:
            raise ValueError(f"VTM kappa must be >= 1, got {kappa}")
        sources = list(range(layer)) if sources is None else sorted(set(sources))
        if not sources or any(not 0 <= s < layer for s in sources):
            raise ValueError(f"VTM sources must be block indices below layer {layer}, got {sources}")
        for block in blocks[:layer + 1]:
            _attention_of(block)
        self._blocks = blocks
        self.layer, self.kappa, self.num_prefix_tokens, self.stopgrad = layer, kappa, num_prefix_tokens, stopgrad
        self.sources = sources

    def _keep_tokens(self, index: int, context: TokenMixupContext) -> list:
        block = self._blocks[index]
        attn = block.attn
        seen = {}

        def keep_input(_norm, args):
            if block.training:
                seen["x"] = args[0]

        def keep_top(_qkv, _args, qkv):
            x = seen.pop("x", None)
            if x is None or not block.training:
                return
            with torch.no_grad():
                sal = saliency_from_qkv(qkv.detach(), attn.num_heads, attn.scale, self.num_prefix_tokens,
                                        getattr(attn, "q_norm", None), getattr(attn, "k_norm", None))
            top = sal.topk(min(self.kappa, sal.shape[1]), dim=1).indices
            patches = x[:, self.num_prefix_tokens:]
            kept = patches.gather(1, top.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
            context.vertical_tokens[index] = kept.detach() if self.stopgrad else kept

        return [block.norm1.register_forward_pre_hook(keep_input), attn.qkv.register_forward_hook(keep_top)]

    def attach(self, context: TokenMixupContext) -> list:
        """Hook VTM onto the blocks for one forward; returns the hook handles (remove them afterwards)."""
        handles = []
        for index in self.sources:
            handles += self._keep_tokens(index, context)
        block = self._blocks[self.layer]
        own_tokens = []

        def extend(_attn, args):
            kept = [context.vertical_tokens[i] for i in self.sources if i in context.vertical_tokens]
            if not block.training or not kept:
                return None
            x = args[0]
            extra = block.norm1(torch.cat(kept, dim=1))
            own_tokens.append(x.shape[1])
            return (torch.cat([x, extra.to(x.dtype)], dim=1),) + tuple(args[1:])

        def truncate(_attn, _args, out):
            if not own_tokens:
                return None
            return out[:, :own_tokens.pop()]

        handles.append(block.attn.register_forward_pre_hook(extend))
        handles.append(block.attn.register_forward_hook(truncate))
        return handles

    def extra_repr(self) -> str:
        return (f"layer={self.layer}, kappa={self.kappa}, sources={self.sources}, "
                f"num_prefix_tokens={self.num_prefix_tokens}, stopgrad={self.stopgrad}")


@dataclass(frozen=True)
class TokenMixupResult:
    """What HTM adds to a training step: ``targets`` (B,K) its soft targets, which replace the label policy's;
    ``scorenet`` 0-d Σ λ_sn·ScoreNet CE (0 when no HTM layer ran), added to the loss; ``mixed`` 0-d detached fraction
    of the samples it changed."""

    targets: torch.Tensor
    scorenet: torch.Tensor
    mixed: torch.Tensor


class TokenMixup(nn.Module):
    """The TokenMixup of one model: its HTM and VTM modules, attached per forward by :meth:`feed`.

    An instance without modules is the 'off' switch: ``feed`` does nothing and, as without HTM, :meth:`result` is None
    (the label policy's loss holds), so the training step has one code path with or without TokenMixup."""

    def __init__(self, horizontal: Sequence[HorizontalTokenMixup] = (), vertical: Sequence[VerticalTokenMixup] = (),
                 num_classes: Optional[int] = None, smoothing: float = 0.1):
        super().__init__()
        self.horizontal = nn.ModuleList(horizontal)
        self.vertical = nn.ModuleList(vertical)
        if self.horizontal and num_classes is None:
            raise ValueError("HTM needs num_classes for its targets")
        self.num_classes, self.smoothing = num_classes, smoothing

    @property
    def active(self) -> bool:
        return len(self.horizontal) + len(self.vertical) > 0

    @contextlib.contextmanager
    def feed(self, batch: MixBatch, labels: torch.Tensor) -> Iterator[TokenMixupContext]:
        """Attach the modules for one forward of ``batch.images``. HTM starts from the area targets of the (image-mixed)
        batch, ``mixed_targets(labels, batch.partner, batch.lam_area)``; yields the forward's context."""
        targets = None
        if len(self.horizontal):
            targets = mixed_targets(labels, batch.partner, batch.lam_area, self.num_classes, self.smoothing)
        context = TokenMixupContext(targets=targets)
        handles = []
        try:
            for module in list(self.horizontal) + list(self.vertical):
                handles += module.attach(context)
            yield context
        finally:
            for handle in handles:
                handle.remove()

    def result(self, context: TokenMixupContext) -> Optional[TokenMixupResult]:
        """HTM's part of the step whose forward ``context`` recorded; None without HTM (the policy's labels hold)."""
        if not len(self.horizontal):
            return None
        zero = context.targets.new_zeros(())
        scorenet = sum(context.scorenet_losses) if context.scorenet_losses else zero
        mixed = context.mixed.float().mean().detach() if context.mixed is not None else zero
        return TokenMixupResult(context.targets, scorenet, mixed)


def _prefix_tokens(backbone: nn.Module) -> int:
    has_cls = getattr(backbone, "cls_token", None) is not None
    prefix = int(getattr(backbone, "num_prefix_tokens", 1 if has_cls else 0))
    if prefix and not has_cls:
        raise ValueError(f"{type(backbone).__name__} has {prefix} prefix tokens but no CLS token: TokenMixup needs "
                         f"either a CLS token first or no prefix tokens")
    return prefix


def build_token_mixup(backbone: nn.Module, cfg: Union[None, dict, Sequence[dict]], num_classes: int,
                      smoothing: float = 0.1) -> TokenMixup:
    """:class:`TokenMixup` for ``backbone`` from config: None (off), one dict or a list of dicts naming a
    :data:`TOKEN_MIXERS` entry, ``dict(type='htm', layer=L, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None,
    score_scale=0.1, scorenet_stopgrad=False, donors='all')`` / ``dict(type='vtm', layer=L, kappa=80, stopgrad=False,
    sources=None)``. ``layer`` indexes ``backbone.blocks`` from 0; the builder fills ``block(s)``, ``dim``,
    ``num_classes`` and ``num_prefix_tokens``. ValueError for an unknown type, a bad layer or an unknown key."""
    if not cfg:
        return TokenMixup(num_classes=num_classes, smoothing=smoothing)
    blocks = getattr(backbone, "blocks", None)
    if not isinstance(blocks, (nn.ModuleList, nn.Sequential)) or not len(blocks):
        raise ValueError(f"TokenMixup needs a backbone with a sequence of transformer `blocks`; "
                         f"{type(backbone).__name__} has none")
    prefix = _prefix_tokens(backbone)
    modules = []
    for item in [cfg] if isinstance(cfg, dict) else list(cfg):
        kind, factory, options = TOKEN_MIXERS.split(item)
        layer = options.pop("layer", None)
        if not isinstance(layer, int) or not 0 <= layer < len(blocks):
            raise ValueError(f"token_mixup ({kind}): layer must be a block index in [0, {len(blocks) - 1}], "
                             f"got {layer!r}")
        defaults = dict(block=blocks[layer], blocks=blocks, layer=layer, num_classes=num_classes,
                        dim=_attention_of(blocks[layer]).qkv.in_features, num_prefix_tokens=prefix)
        modules.append(call_with_options(factory, options, f"token_mixup ({kind})", defaults,
                                         reserved=("block", "blocks", "dim", "num_classes", "num_prefix_tokens")))
    return TokenMixup([m for m in modules if isinstance(m, HorizontalTokenMixup)],
                      [m for m in modules if not isinstance(m, HorizontalTokenMixup)], num_classes, smoothing)
