"""MS-MLP (Mix-Shift-MLP, Zheng et al. 2022), registered in mmengine's MODELS as ms_mlp_tiny / _small / _base.

:class:`MSMLP`: ``forward(x (B,3,H,W)) -> logits (B,K)``, a 4-stage MLP whose MS-blocks (:class:`MSBlock`) mix tokens
by rolling channel groups and depthwise convolutions (:class:`MSMixing`); block semantics, layout and parameter counts:
docs/methods.md, "MS-MLP". Official checkpoints load tensor for tensor through :func:`from_official_state_dict`.
No CLS token: ``has_cls_attention = False`` (PAL falls back to area labels); ``token_stride = 32``, the stride of the
last feature map, so MaskMix cells must be multiples of 32 px.
:class:`MSMLPBackbone`: the same network as a dense backbone for mmseg / mmdet (stage outputs of ``out_indices``, each
through its own LayerNorm; loads our classification checkpoints through ``init_cfg=dict(type='Pretrained', ...)``);
the ``segmentation`` and ``detection`` packages register it in mmseg's and mmdet's MODELS.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from timm.layers import DropPath, LayerNorm2d, Mlp
from torch.utils.checkpoint import checkpoint

from classification.foundation.checkpoints import load_state_dict_strict

from .weight_init import init_transformer_weights
from .pretrained import load_pretrained, read_backbone_state

LayerNorm = partial(nn.LayerNorm, eps=1e-6)
ChannelsFirstLayerNorm = partial(LayerNorm2d, eps=1e-6)

SHIFTS = (-2, -1, 0, 1, 2)
KERNELS = ((1, 1, 3, 5, 7), (1, 3, 3, 5, 7), (1, 5, 5, 5, 7), (1, 7, 7, 7, 7))


def group_sizes(channels: int, groups: int) -> Tuple[int, ...]:
    """Channel counts of ``groups`` consecutive groups, the sizes of ``torch.chunk``: ⌈C/groups⌉ each, the last one
    the rest (96 → 20,20,20,20,16). This is the official split, so official checkpoints have our shapes. Widths whose
    chunks leave fewer than ``groups`` non-empty groups (e.g. 12 → 3,3,3,3) are refused."""
    size = -(-channels // groups) if channels > 0 else 0
    last = channels - size * (groups - 1)
    if channels < groups or last < 1:
        raise ValueError(f"MS-MLP cannot chunk {channels} channels into {groups} non-empty groups of ⌈C/{groups}⌉ "
                         f"(torch.chunk sizes); use a width such as a multiple of {groups}")
    return (size,) * (groups - 1) + (last,)


class MSMixing(nn.Module):
    """Mixing and shifting token mixer: (B,C,H,W) → (B,C,H,W).

    ``out = cat_i[conv_w_i(roll(x_i, d_i, W))] + cat_i[conv_h_i(roll(x_i, d_i, H))]`` with x_i the i-th channel
    group, conv_*_i depthwise k_i×k_i convolutions and d_i = ``shifts[i]``.
    """

    def __init__(self, dim: int, kernels: Sequence[int], shifts: Sequence[int] = SHIFTS):
        super().__init__()
        if len(kernels) != len(shifts):
            raise ValueError(f"one kernel per shift group: got kernels {list(kernels)} and shifts {list(shifts)}")
        if any(k % 2 == 0 or k < 1 for k in kernels):
            raise ValueError(f"kernel sizes must be odd and positive (same-size output), got {list(kernels)}")
        self.splits = group_sizes(dim, len(shifts))
        self.shifts = tuple(int(s) for s in shifts)
        self.kernels = tuple(int(k) for k in kernels)

        def depthwise(c: int, k: int) -> nn.Conv2d:
            return nn.Conv2d(c, c, kernel_size=k, padding=k // 2, groups=c)

        self.mix_w = nn.ModuleList(depthwise(c, k) for c, k in zip(self.splits, self.kernels))
        self.mix_h = nn.ModuleList(depthwise(c, k) for c, k in zip(self.splits, self.kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for group, shift, conv_w, conv_h in zip(torch.split(x, self.splits, dim=1), self.shifts, self.mix_w,
                                                self.mix_h):
            out.append(conv_w(torch.roll(group, shift, dims=3)) + conv_h(torch.roll(group, shift, dims=2)))
        return torch.cat(out, dim=1)


class MSBlock(nn.Module):
    """MS-block, (B,C,H,W) → (B,C,H,W): ``x + drop_path(γ · MLP(LN(MSMixing(x))))`` (docs/methods.md, "MS-MLP")."""

    def __init__(self, dim: int, kernels: Sequence[int], shifts: Sequence[int] = SHIFTS, mlp_ratio: float = 4.,
                 drop: float = 0., drop_path: float = 0., layer_scale_init: float = 1e-6):
        super().__init__()
        self.mixing = MSMixing(dim, kernels, shifts)
        self.norm = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mixing(x).permute(0, 2, 3, 1)  # (B,H,W,C)
        y = self.gamma * self.mlp(self.norm(y))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class MSMLP(nn.Module):
    """MS-MLP classifier: ``forward(x (B,3,H,W)) -> logits (B,num_classes)``.

    Any input size whose sides are multiples of 32 gives whole feature maps (other sizes work too, with the stride-2
    convolutions dropping the last odd row/column). ``forward_with_attention`` returns ``(logits, None)``.

    Args:
        depths: blocks per stage. dims: stage widths (``embed_dim·2^i`` when only ``embed_dim`` is given).
        kernels: per stage, the depthwise kernel of each of the ``len(shifts)`` channel groups.
        shifts: roll distance of each channel group (tokens).
        drop_path_rate: stochastic depth of the last block (linear from 0).
        layer_scale_init: initial value of the per-channel layer scale γ.
    """

    has_cls_attention = False
    token_stride = 32

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, embed_dim: int = 96,
                 depths: Sequence[int] = (3, 3, 9, 3), dims: Optional[Sequence[int]] = None,
                 kernels: Sequence[Sequence[int]] = KERNELS, shifts: Sequence[int] = SHIFTS, mlp_ratio: float = 4.,
                 drop_rate: float = 0., drop_path_rate: float = 0.1, layer_scale_init: float = 1e-6):
        super().__init__()
        dims = tuple(dims) if dims is not None else tuple(embed_dim * 2 ** i for i in range(len(depths)))
        if not (len(depths) == len(dims) == len(kernels)):
            raise ValueError(f"depths {list(depths)}, dims {list(dims)} and kernels {[list(k) for k in kernels]} "
                             f"must have one entry per stage")
        self.depths, self.dims = tuple(depths), dims
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.grad_checkpointing = False
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
                                  ChannelsFirstLayerNorm(dims[0]))
        self.downsamples = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2), ChannelsFirstLayerNorm(dims[i]))
            for i in range(1, len(dims)))
        dpr = [drop_path_rate * k / max(sum(depths) - 1, 1) for k in range(sum(depths))]
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.stages.append(nn.Sequential(*(
                MSBlock(dims[i], kernels[i], shifts, mlp_ratio, drop_rate, dpr[start + j], layer_scale_init)
                for j in range(depth))))
        self.norm = LayerNorm(dims[-1])
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module):
        init_transformer_weights(m, truncated=(nn.Linear, nn.Conv2d))

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True):
        self.grad_checkpointing = enable

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Stage i (0-based): (B,C_{i-1},H,W) (the image for i = 0) → downsample → blocks → (B,C_i,H',W')."""
        x = self.stem(x) if i == 0 else self.downsamples[i - 1](x)
        for blk in self.stages[i]:
            if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) → last feature map (B, C_4, H/32, W/32) (no norm)."""
        for i in range(len(self.stages)):
            x = self.forward_stage(i, x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (B,C,h,w) → global average pool → LN → logits (B,num_classes)."""
        return self.head(self.head_drop(self.norm(x.mean((2, 3)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_attention(self, x: torch.Tensor) -> Tuple[torch.Tensor, None]:
        """The classifier contract: no CLS token, so no attention (area labels)."""
        return self(x), None


class MSMLPBackbone(MSMLP):
    """MS-MLP as a dense backbone (mmseg / mmdet): ``forward(x) -> tuple`` of the ``out_indices`` stage maps, stage i
    of shape (B, C_i, H/2^(i+2), W/2^(i+2)), each through its own LayerNorm ``out_norms.<i>``. No ``norm`` / ``head``.

    ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` loads a classification checkpoint of ours (a MixClassifier
    Runner checkpoint with ``backbone.`` keys, or a bare MS-MLP state dict) or of the published MS-MLP code (renamed
    by :func:`from_official_state_dict`) in :meth:`init_weights`: the classifier's
    ``norm``/``head`` are dropped, and every backbone tensor must be present with the right shape (only the new
    ``out_norms`` may be missing) — anything else raises ValueError naming the keys. ``init_cfg=None`` keeps the
    random initialisation.
    """

    def __init__(self, out_indices: Sequence[int] = (0, 1, 2, 3), init_cfg: Optional[dict] = None, **kwargs):
        super().__init__(num_classes=0, **kwargs)
        del self.norm, self.head_drop, self.head
        num_stages = len(self.stages)
        self.out_indices = tuple(int(i) for i in out_indices)
        if not self.out_indices or any(not 0 <= i < num_stages for i in self.out_indices):
            raise ValueError(f"out_indices {list(out_indices)} must name stages in 0..{num_stages - 1}")
        self.out_norms = nn.ModuleDict({str(i): ChannelsFirstLayerNorm(self.dims[i]) for i in self.out_indices})
        if init_cfg is not None and (not isinstance(init_cfg, dict) or init_cfg.get("type") != "Pretrained"
                                     or not init_cfg.get("checkpoint")):
            raise ValueError(f"MSMLPBackbone.init_cfg must be None or dict(type='Pretrained', checkpoint=PATH), "
                             f"got {init_cfg!r}")
        self.init_cfg = init_cfg
        self.is_init = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i in range(max(self.out_indices) + 1):
            x = self.forward_stage(i, x)
            if i in self.out_indices:
                outs.append(self.out_norms[str(i)](x))
        return tuple(outs)

    def forward_head(self, x):
        raise AttributeError("MSMLPBackbone has no classification head (norm/head are dropped): use MSMLP")

    def forward_with_attention(self, x):
        raise AttributeError("MSMLPBackbone has no classification head (norm/head are dropped): use MSMLP")

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint (see the class docstring); called by mmengine's model initialisation."""
        if self.init_cfg is not None:
            self.load_classifier_checkpoint(self.init_cfg["checkpoint"])
        self.is_init = True

    def load_classifier_checkpoint(self, path: str) -> Tuple[list, list]:
        """Load the MS-MLP classifier weights at ``path``; returns ``(missing, dropped)`` key lists.

        Strict (:func:`classification.foundation.checkpoints.load_state_dict_strict`) with the backbone's own
        ``out_norms.*`` as the only keys that may be absent (they are new: ``missing``); ``dropped`` holds the
        checkpoint keys not used (the classifier's ``norm``/``head`` and non-backbone keys of a Runner checkpoint).
        Anything else that does not fit raises CheckpointMismatchError naming the keys and shapes.
        """
        state, dropped = read_backbone_state(path)
        state = from_official_state_dict(state)
        classifier_only = sorted(k for k in state if k.startswith(("norm.", "head.")))
        state = {k: v for k, v in state.items() if k not in classifier_only}
        report = load_state_dict_strict(self, state, path, partial=["out_norms"])
        return report.kept_initial, classifier_only + dropped


_OFFICIAL_RENAMES = (  # (pattern, replacement) on the published model's parameter names, applied in order
    (r"^patch_embed\.proj\.", "stem.0."),
    (r"^patch_embed\.norm\.", "stem.1."),
    (r"^layers\.(\d+)\.downsample\.proj\.", r"downsamples.\1.0."),
    (r"^layers\.(\d+)\.downsample\.norm\.", r"downsamples.\1.1."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.dwconv_lr\.", r"stages.\1.\2.mixing.mix_w."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.dwconv_td\.", r"stages.\1.\2.mixing.mix_h."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.pwconv1\.", r"stages.\1.\2.mlp.fc1."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.pwconv2\.", r"stages.\1.\2.mlp.fc2."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),  # norm, gamma
)


def from_official_state_dict(state: dict) -> dict:
    """A state dict of the published MS-MLP code (``patch_embed.*``, ``layers.<i>.blocks.<j>.dwconv_lr|dwconv_td|
    pwconv1|pwconv2|norm|gamma``, ``layers.<i>.downsample.proj|norm``, ``norm``, ``head``) with our names: the
    left-right
    convolutions are our W branch (``mix_w``), the top-down ones the H branch (``mix_h``), stage i's trailing
    downsampling our ``downsamples.<i>``. Tensors are unchanged (same shapes by construction); a state dict with
    our names comes back as it is."""
    if not any(k.startswith(("patch_embed.", "layers.")) for k in state):
        return dict(state)
    out = {}
    for key, value in state.items():
        for pattern, repl in _OFFICIAL_RENAMES:
            key, n = re.subn(pattern, repl, key)
            if n:
                break
        out[key] = value
    return out


def _ms_mlp(pretrained: Optional[str], **kw) -> MSMLP:
    """``pretrained``: our checkpoint, or one of the published MS-MLP code (renamed by
    :func:`from_official_state_dict`)."""
    model = MSMLP(**kw)
    if pretrained:
        load_pretrained(model, pretrained, convert=from_official_state_dict)
    return model


@MODELS.register_module()
def ms_mlp_tiny(pretrained: Optional[str] = None, **kw) -> MSMLP:
    """MS-MLP-Tiny: dim 96, depths [3,3,9,3], drop path 0.1."""
    kw = {"embed_dim": 96, "depths": (3, 3, 9, 3), "drop_path_rate": 0.1, **kw}
    return _ms_mlp(pretrained, **kw)


@MODELS.register_module()
def ms_mlp_small(pretrained: Optional[str] = None, **kw) -> MSMLP:
    """MS-MLP-Small: dim 96, depths [3,3,27,3], drop path 0.4."""
    kw = {"embed_dim": 96, "depths": (3, 3, 27, 3), "drop_path_rate": 0.4, **kw}
    return _ms_mlp(pretrained, **kw)


@MODELS.register_module()
def ms_mlp_base(pretrained: Optional[str] = None, **kw) -> MSMLP:
    """MS-MLP-Base: dim 128, depths [3,3,27,3], drop path 0.5."""
    kw = {"embed_dim": 128, "depths": (3, 3, 27, 3), "drop_path_rate": 0.5, **kw}
    return _ms_mlp(pretrained, **kw)
