"""PVT v1 (Pyramid Vision Transformer, Wang et al. 2021) classifier with a CLS token joining in stage 4, registered
in mmengine's MODELS as pvt_tiny / pvt_small / pvt_medium / pvt_large.

Parameter names follow the official PVT v1 classifier (``patch_embed{i}``, ``pos_embed{i}``, ``block{i}.{j}.attn.q``,
``.attn.kv``, ``.attn.sr``, ``.attn.norm``, ``.mlp.fc1`` …, ``norm``, ``cls_token``, ``head``) so that mmdet's
``PyramidVisionTransformer`` backbone loads our checkpoints through ``mmdet.models.backbones.pvt.pvt_convert``.

Every attention uses fused ``F.scaled_dot_product_attention``. ``forward_with_attention`` additionally returns the
head-averaged CLS→patch attention of the last stage-4 block, built from that block's CLS query and keys (O(N)).
SMMix's clean pass (:func:`received_attention`, registered in ``mixpro_core.RECEIVED_ATTENTION_FORWARDS``) scores
the stage-4 patches by the attention they receive from the stage-4 patch queries of the last block, as the official
SMMix PVT does.
All LayerNorms use eps 1e-6 (the official classifier leaves the patch-embed and spatial-reduction norms at 1e-5;
mmdet's backbone uses 1e-6 everywhere, which we match).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_
from torch.utils.checkpoint import checkpoint

from mixpro_core import RECEIVED_ATTENTION_FORWARDS
from mixpro_core.attention import attention_key, cls_row_attention, received_attention_from_qkv

from .weight_init import init_transformer_weights

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


class SRAttention(nn.Module):
    """Spatial-reduction attention: queries from all N tokens, keys/values from the (sr×sr-pooled) H×W grid."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_drop: float = 0., sr_ratio: int = 1):
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = LayerNorm(dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], return_qk: bool = False):
        """x (B,N,C) with N = H·W (plus a leading CLS only when sr_ratio == 1) → (B,N,C).

        With ``return_qk``: also ``(q_cls (B,heads,D), k (B,heads,T,D))`` detached, T the number of keys.
        """
        b, n, c = x.shape
        heads, d = self.num_heads, c // self.num_heads
        q = self.q(x).reshape(b, n, heads, d).transpose(1, 2)  # (B,h,N,D)
        if self.sr_ratio > 1:
            assert n == hw[0] * hw[1], "spatial reduction needs exactly H·W tokens (no CLS)"
            x = self.sr(x.transpose(1, 2).reshape(b, c, *hw)).flatten(2).transpose(1, 2)
            x = self.norm(x)  # (B,T,C), T = H·W / sr²
        k, v = self.kv(x).reshape(b, -1, 2, heads, d).permute(2, 0, 3, 1, 4).unbind(0)  # (B,h,T,D) each
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))
        if return_qk:
            return out, (q[:, :, 0].detach(), k.detach())
        return out


class Block(nn.Module):
    """Pre-norm transformer block on (B,N,C) with SR attention."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, drop_path: float,
                 sr_ratio: int):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = SRAttention(dim, num_heads, qkv_bias, drop, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)  # timm: fc1 → GELU → fc2, parameter names fc1/fc2

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], return_qk: bool = False):
        """(B,N,C) → (B,N,C); with ``return_qk`` also the attention's ``(q_cls, k)``."""
        a = self.attn(self.norm1(x), hw, return_qk)
        a, qk = a if return_qk else (a, None)
        x = x + self.drop_path(a)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, qk) if return_qk else x


class PatchEmbed(nn.Module):
    """(B,Cin,H,W) → conv (kernel = stride = patch) → LayerNorm → (B, H/p·W/p, C), (H/p, W/p)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class PyramidVisionTransformerV1(nn.Module):
    """PVT v1 classifier: 4 stages at strides 4/8/16/32; stage 4 runs on [cls, patches]; logits from the CLS token.

    ``forward(x (B,3,H,W)) -> (B,num_classes)``; ``forward_with_attention(x) -> (logits, cls_attn (B,(H/32)·(W/32)))``.
    """

    has_cls_attention = True
    token_stride = 32

    def __init__(self, img_size=224, in_chans: int = 3, num_classes: int = 1000,
                 embed_dims: Sequence[int] = (64, 128, 320, 512), num_heads: Sequence[int] = (1, 2, 5, 8),
                 mlp_ratios: Sequence[float] = (8, 8, 4, 4), sr_ratios: Sequence[int] = (8, 4, 2, 1),
                 depths: Sequence[int] = (2, 2, 2, 2), drop_rate: float = 0., drop_path_rate: float = 0.1,
                 qkv_bias: bool = True):
        super().__init__()
        assert sr_ratios[-1] == 1, "stage 4 carries the CLS token, so it cannot use spatial reduction"
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dims[-1]
        self.depths = tuple(depths)
        self.grad_checkpointing = False
        img_size = to_2tuple(img_size)
        dpr = [drop_path_rate * k / max(sum(depths) - 1, 1) for k in range(sum(depths))]  # linear 0 → rate
        self.grids = []
        for i in range(4):
            stride = 4 * 2 ** i
            grid = (img_size[0] // stride, img_size[1] // stride)
            self.grids.append(grid)
            setattr(self, f"patch_embed{i + 1}",
                    PatchEmbed(4 if i == 0 else 2, in_chans if i == 0 else embed_dims[i - 1], embed_dims[i]))
            setattr(self, f"pos_embed{i + 1}",
                    nn.Parameter(torch.zeros(1, grid[0] * grid[1] + (i == 3), embed_dims[i])))
            start = sum(depths[:i])
            setattr(self, f"block{i + 1}", nn.ModuleList(
                Block(embed_dims[i], num_heads[i], mlp_ratios[i], qkv_bias, drop_rate, dpr[start + j], sr_ratios[i])
                for j in range(depths[i])))
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = LayerNorm(embed_dims[-1])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims[-1]))
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()

        for i in range(4):
            trunc_normal_(getattr(self, f"pos_embed{i + 1}"), std=.02)
        trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module):
        init_transformer_weights(m)
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed1", "pos_embed2", "pos_embed3", "pos_embed4", "cls_token"}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True):
        self.grad_checkpointing = enable

    def get_classifier(self) -> nn.Module:
        return self.head

    def _pos_embed(self, i: int, hw: Tuple[int, int]) -> torch.Tensor:
        """Stage-i (0-based) position embedding (1, H·W, C), bilinearly resized when (H,W) ≠ the img_size grid."""
        pos = getattr(self, f"pos_embed{i + 1}")
        if i == 3:
            pos = pos[:, 1:]
        grid = self.grids[i]
        if tuple(hw) == grid:
            return pos
        pos = pos.reshape(1, grid[0], grid[1], -1).permute(0, 3, 1, 2)
        return F.interpolate(pos, size=hw, mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)

    def _run_block(self, blk: Block, x: torch.Tensor, hw: Tuple[int, int], return_qk: bool = False):
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return checkpoint(blk, x, hw, return_qk, use_reentrant=False)
        return blk(x, hw, return_qk)

    def forward_stage(self, i: int, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Stages 1–3 (i = 0, 1, 2): (B,Cin,H,W) → tokens (B, h·w, C_i) (no final norm), (h, w)."""
        x, hw = getattr(self, f"patch_embed{i + 1}")(x)
        x = self.pos_drop(x + self._pos_embed(i, hw))
        for blk in getattr(self, f"block{i + 1}"):
            x = self._run_block(blk, x, hw)
        return x, hw

    def forward_features(self, x: torch.Tensor, return_qk: bool = False):
        """(B,3,H,W) → final-normed tokens (B, 1 + (H/32)·(W/32), 512); with ``return_qk`` also the last
        block's detached ``(q_cls (B,8,64), k (B,8,T,64))``."""
        b = x.shape[0]
        for i in range(3):
            x, hw = self.forward_stage(i, x)
            x = x.transpose(1, 2).reshape(b, -1, *hw)
        x, hw = self.patch_embed4(x)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        pos = torch.cat([self.pos_embed4[:, :1], self._pos_embed(3, hw)], dim=1)
        x = self.pos_drop(x + pos)
        qk = None
        last = len(self.block4) - 1
        for j, blk in enumerate(self.block4):
            if return_qk and j == last:
                x, qk = self._run_block(blk, x, hw, True)
            else:
                x = self._run_block(blk, x, hw)
        x = self.norm(x)
        return (x, qk) if return_qk else x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B,T,C) → logits (B,num_classes) from the CLS token."""
        return self.head(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) → logits (B,num_classes)."""
        return self.forward_head(self.forward_features(x))

    def forward_with_attention(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W) → (logits (B,K), cls_attn (B,(H/32)·(W/32))).

        ``cls_attn`` is the last stage-4 block's CLS→patch attention, head-averaged, detached, CLS column dropped
        (rows sum to 1 − attention on CLS), patches in row-major order.
        """
        feats, (q_cls, k) = self.forward_features(x, return_qk=True)
        with torch.no_grad():
            cls_attn = cls_row_attention(q_cls, k, self.block4[-1].attn.scale)[:, 1:]
        return self.forward_head(feats), cls_attn


def received_attention(model: PyramidVisionTransformerV1, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SMMix's clean pass on PVT v1: (logits (B,K), received (B,(H/32)·(W/32))), ``received`` = the last stage-4
    block's softmax(q·kᵀ·scale) with the CLS row and column dropped, averaged over heads and patch queries (the
    official SMMix PVT's ``attn[:, :, 1:, 1:].mean((1, 2))``), built in query chunks from the block's q and kv
    projections (stage 4 has no spatial reduction, so its keys are all 1 + H·W tokens)."""
    attn = model.block4[-1].attn
    captured = {}
    handles = [attn.q.register_forward_hook(lambda _m, _i, out: captured.__setitem__("q", out)),
               attn.kv.register_forward_hook(lambda _m, _i, out: captured.__setitem__("kv", out))]
    try:
        logits = model(images)
    finally:
        for handle in handles:
            handle.remove()
    qkv = torch.cat([captured["q"], captured["kv"]], dim=-1)  # (B,T,3C): q | k | v, each heads × D
    return logits, received_attention_from_qkv(qkv, attn.num_heads, attn.scale, 1)


RECEIVED_ATTENTION_FORWARDS.register(attention_key(PyramidVisionTransformerV1))(received_attention)


def _pvt_classifier(name: str, depths: Tuple[int, int, int, int], doc: str):
    """Register ``name`` in MODELS: ``factory(**kw)`` builds a :class:`PyramidVisionTransformerV1` with the variant's
    stage ``depths`` (the variants differ in nothing else) and ``kw``."""
    def factory(**kw) -> PyramidVisionTransformerV1:
        return PyramidVisionTransformerV1(depths=depths, **kw)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return MODELS.register_module(name=name, module=factory)


pvt_tiny = _pvt_classifier("pvt_tiny", (2, 2, 2, 2), "PVT-Tiny, 13.2M parameters.")
pvt_small = _pvt_classifier("pvt_small", (3, 4, 6, 3), "PVT-Small, 24.5M parameters.")
pvt_medium = _pvt_classifier("pvt_medium", (3, 4, 18, 3), "PVT-Medium, 44.2M parameters.")
pvt_large = _pvt_classifier("pvt_large", (3, 8, 27, 3), "PVT-Large, 61.4M parameters.")
