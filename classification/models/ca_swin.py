"""CA-Swin: Swin Transformer with class attention in place of its global average pooling (TransMix, Chen et al.,
CVPR 2022, Sec. 4.5), composed from timm's ``SwinTransformer`` and CaiT's ``LayerScaleBlockClassAttn``.

Stages 1–4 are timm's Swin stages, except that the last ``class_attn_depth`` blocks of stage 4 are replaced by as
many class-attention blocks: a learned CLS token (B,1,C) attends over [CLS, stage-4 tokens] and only the CLS is
updated (layer scale, no drop path); LayerNorm → linear head on the CLS. One block (the default) keeps Swin's
parameters and cuts the MACs by the difference between a 7×7-token Swin block and a one-query block: the TransMix
table's 28.3M / 4.2G (T) and 49.6M / 8.5G (S). Choices and measurements: docs/methods.md, "CA-Swin".
Registered in mmengine's MODELS as ca_swin_tiny / ca_swin_small. PAL / TransMix attention (in ATTENTION_FORWARDS):
the last class-attention block's CLS row over the (H/32)·(W/32) stage-4 tokens, row-major, head-averaged, from the
same forward pass; ``token_stride`` = 32.
"""
from __future__ import annotations

import inspect
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from timm.layers import trunc_normal_
from timm.models.cait import LayerScaleBlockClassAttn
from timm.models.swin_transformer import SwinTransformer

from mixpro_core import ATTENTION_FORWARDS, attention_key

from .vits import class_attention_forward
from .weight_init import init_transformer_weights
from .pretrained import load_pretrained


# options passed on to timm's SwinTransformer, which would silently swallow unknown ones in its **kwargs
_SWIN_OPTIONS = set(inspect.signature(SwinTransformer.__init__).parameters) - {"self", "kwargs", "global_pool"}


class CASwinTransformer(SwinTransformer):
    """Swin whose stage 4 ends in CaiT class-attention blocks; ``forward(x (B,3,H,W)) -> logits (B,num_classes)``.

    ``depths`` are Swin's (the replaced blocks included); ``class_attn_init`` is the layer-scale initial value.
    Other keyword arguments go to timm's ``SwinTransformer`` (``global_pool`` is fixed: the CLS token).
    """

    def __init__(self, depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 class_attn_depth: int = 1, class_attn_init: float = 1e-5, **kwargs):
        unknown = sorted(set(kwargs) - _SWIN_OPTIONS)
        if unknown:
            raise ValueError(f"CA-Swin: unknown option(s) {unknown}; timm's SwinTransformer takes "
                             f"{sorted(_SWIN_OPTIONS)}")
        if not 1 <= class_attn_depth <= depths[-1]:
            raise ValueError(f"class_attn_depth={class_attn_depth}: must be 1..{depths[-1]} (the last stage's depth "
                             f"in depths={tuple(depths)})")
        swin_depths = (*depths[:-1], depths[-1] - class_attn_depth)
        super().__init__(depths=swin_depths, num_heads=num_heads, global_pool="", **kwargs)
        dim = self.num_features
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks_token_only = nn.ModuleList(
            LayerScaleBlockClassAttn(dim, num_heads[-1], qkv_bias=True, init_values=class_attn_init)
            for _ in range(class_attn_depth))
        trunc_normal_(self.cls_token, std=.02)
        self.blocks_token_only.apply(init_transformer_weights)
        self.token_stride = self.feature_info[-1]["reduction"]
        self.has_cls_attention = True

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) → normed tokens (B, 1 + (H/32)·(W/32), C): the CLS first, then stage 4's tokens row-major."""
        x = self.layers(self.patch_embed(x)).flatten(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        for blk in self.blocks_token_only:
            cls = blk(x, cls)
        return self.norm(torch.cat((cls, x), dim=1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B,T,C) → logits (B,num_classes) from the CLS (or its features with ``pre_logits``)."""
        return super().forward_head(x[:, 0], pre_logits=pre_logits)


@ATTENTION_FORWARDS.register(attention_key(CASwinTransformer))
def _ca_swin_forward_with_attention(model, images):
    return class_attention_forward(model, images, model.blocks_token_only[-1])


def _ca_swin(pretrained: Optional[str], **kw) -> CASwinTransformer:
    model = CASwinTransformer(**kw)
    if pretrained:
        load_pretrained(model, pretrained)
    return model


@MODELS.register_module()
def ca_swin_tiny(pretrained: Optional[str] = None, **kw) -> CASwinTransformer:
    """CA-Swin-T (Swin-T: dim 96, depths 2-2-6-2, heads 3-6-12-24, window 7, patch 4): 28.29M parameters."""
    return _ca_swin(pretrained, **dict(dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)), **kw))


@MODELS.register_module()
def ca_swin_small(pretrained: Optional[str] = None, **kw) -> CASwinTransformer:
    """CA-Swin-S (Swin-S: dim 96, depths 2-2-18-2, heads 3-6-12-24, window 7, patch 4): 49.60M parameters."""
    return _ca_swin(pretrained, **dict(dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)), **kw))
