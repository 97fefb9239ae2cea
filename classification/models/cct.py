"""Compact Convolutional Transformer (Hassani et al., 2021), CCT-7/3x1 for 32×32 inputs — TokenMixup's CIFAR model,
registered in mmengine's MODELS as cct_7_3x1.

:class:`CCT`: ``forward(x (B,C,32,32)) -> logits (B,K)``; a convolutional tokenizer (32×32 → 16×16 = 256 tokens,
``token_stride`` 2), positional embedding, 7 :class:`CCTBlock` layers (post-attention normalisation of the residual
stream), final LayerNorm and sequence pooling (no CLS token: ``has_cls_attention = False``). Layer settings, the
parameter count (3,760,139 with 10 classes) and the block's exact formula: docs/methods.md, "CCT". Attribute names
follow our classifier contract and timm (``blocks[i].norm1`` / ``attn.qkv`` / ``num_heads`` / ``scale``), so
mixpro_core's TokenMixup hooks and attention helpers work on it unchanged.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from timm.layers import DropPath, Mlp
from timm.models import checkpoint_seq
from timm.models.vision_transformer import Attention

from .weight_init import init_transformer_weights
from .pretrained import load_pretrained

__all__ = ["CCT", "CCTBlock", "cct_7_3x1"]


class CCTBlock(nn.Module):
    """CCT's transformer encoder layer, (B,N,dim) → (B,N,dim): ``x = x + drop_path(attn(norm1(x)))``, then
    ``x = norm2(x)`` (the residual stream itself is normalised) and ``x + drop_path(mlp(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, attn_drop: float = 0.1, drop: float = 0.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=False, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = self.norm2(x)
        return x + self.drop_path(self.mlp(x))


def _sinusoidal(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -(2 * (torch.arange(dim) // 2)).float() / dim)[None]
    angles = position * freq
    pe = torch.empty(length, dim)
    pe[:, 0::2], pe[:, 1::2] = angles[:, 0::2].sin(), angles[:, 1::2].cos()
    return pe.unsqueeze(0)


class CCT(nn.Module):
    """Compact Convolutional Transformer with sequence pooling (no CLS token)."""

    num_prefix_tokens = 0
    cls_token = None

    def __init__(self, img_size: int = 32, in_chans: int = 3, num_classes: int = 100, embed_dim: int = 256,
                 depth: int = 7, num_heads: int = 4, mlp_ratio: float = 2.0, kernel_size: int = 3,
                 num_conv_layers: int = 1, conv_channels: int = 64, pos_embed: str = "learnable",
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.1, drop_path_rate: float = 0.1):
        super().__init__()
        if pos_embed not in ("learnable", "sine", "none"):
            raise ValueError(f"pos_embed must be 'learnable', 'sine' or 'none', got {pos_embed!r}")
        stride, padding = max(1, kernel_size // 2 - 1), max(1, kernel_size // 2)
        widths = [in_chans] + [conv_channels] * (num_conv_layers - 1) + [embed_dim]
        layers = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False), nn.ReLU(inplace=True),
                       nn.MaxPool2d(3, 2, 1)]
        self.tokenizer = nn.Sequential(*layers)
        grid = img_size
        for _ in range(num_conv_layers):
            grid = (grid + 2 * padding - kernel_size) // stride + 1
            grid = (grid + 2 - 3) // 2 + 1
        self.grid_size, self.num_tokens = grid, grid * grid
        self.token_stride = img_size // grid
        self.has_cls_attention = False
        self.embed_dim, self.num_classes = embed_dim, num_classes
        if pos_embed == "learnable":
            self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.2)
        elif pos_embed == "sine":
            self.register_buffer("pos_embed", _sinusoidal(self.num_tokens, embed_dim), persistent=False)
        else:
            self.pos_embed = None
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*[CCTBlock(embed_dim, num_heads, mlp_ratio, attn_drop_rate, drop_rate, r)
                                      for r in rates])
        self.norm = nn.LayerNorm(embed_dim)
        self.attention_pool = nn.Linear(embed_dim, 1)
        self.head = nn.Linear(embed_dim, num_classes)
        self.grad_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        init_transformer_weights(m, trunc_normal=nn.init.trunc_normal_)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) → (B,N,dim) normalised tokens."""
        x = self.tokenizer(x).flatten(2).transpose(1, 2)
        if self.pos_embed is not None:
            if x.shape[1] != self.num_tokens:
                raise ValueError(f"{x.shape[1]} tokens, but the positional embedding was built for "
                                 f"{self.num_tokens} (img_size mismatch)")
            x = x + self.pos_embed
        x = self.pos_drop(x)
        x = checkpoint_seq(self.blocks, x) if self.grad_checkpointing and self.training else self.blocks(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Sequence pooling + head: (B,N,dim) → (B,K)."""
        weights = self.attention_pool(x).softmax(dim=1)  # (B,N,1)
        return self.head((weights * x).sum(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@MODELS.register_module()
def cct_7_3x1(pretrained: Optional[str] = None, **kw) -> CCT:
    """CCT-7/3x1 for 32×32 images (CIFAR): 7 layers, 4 heads, dim 256, MLP ratio 2, one 3×3 conv, learnable
    positional embedding, sequence pooling. ``pretrained``: a local checkpoint file (no downloads)."""
    kw.setdefault("num_classes", 100)
    model = CCT(embed_dim=256, depth=7, num_heads=4, mlp_ratio=2.0, kernel_size=3, num_conv_layers=1, **kw)
    if pretrained:
        load_pretrained(model, pretrained)
    return model
