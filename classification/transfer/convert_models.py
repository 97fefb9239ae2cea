"""The target models of :mod:`classification.transfer.convert`, built from a state dict's shapes so that a conversion
can be checked key for key: mmseg's ``VisionTransformer``, mmdet's ``PyramidVisionTransformer`` and a headless
classifier (timm ViT, our PVT v1, CA-Swin), and the position-grid helpers they share with the converters."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch

from classification.foundation.checkpoint_sources import detect_architecture

StateDict = dict


def pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"img_size must be one or two integers, got {size}")
    return size


def square_grid(num: int, what: str) -> Tuple[int, int]:
    side = math.isqrt(num)
    if side * side != num:
        raise ValueError(f"{what} has {num} grid entries, which is not a square grid; cannot infer its shape")
    return side, side


def _count_blocks(state: StateDict, prefix: str) -> int:
    return len({k[len(prefix):].split(".", 1)[0] for k in state if k.startswith(prefix)})


def build_mmseg_vit(state: StateDict, img_size: Optional[Union[int, Sequence[int]]] = None):
    """An mmseg ``VisionTransformer`` whose parameter names and shapes fit the converted ViT ``state`` (timm names
    given). num_heads is not stored in weights and does not change parameter shapes, so 1 is used."""
    from mmseg.models.backbones import VisionTransformer

    proj = state["patch_embed.proj.weight"]
    embed, in_chans, patch = proj.shape[0], proj.shape[1], proj.shape[-1]
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    if hidden % embed:
        raise ValueError(f"mlp hidden size {hidden} is not a multiple of {embed}")
    if img_size is None:
        grid = square_grid(state["pos_embed"].shape[1] - 1, "pos_embed")
        img_size = (grid[0] * patch, grid[1] * patch)
    return VisionTransformer(
        img_size=pair(img_size), patch_size=patch, in_channels=in_chans, embed_dims=embed,
        num_layers=_count_blocks(state, "blocks."), num_heads=1, mlp_ratio=hidden // embed,
        qkv_bias="blocks.0.attn.qkv.bias" in state, with_cls_token=True, output_cls_token=False,
        norm_cfg=dict(type="LN", eps=1e-6), patch_bias="patch_embed.proj.bias" in state,
        patch_norm="patch_embed.norm.weight" in state, pre_norm="norm_pre.weight" in state,
        final_norm="norm.weight" in state)


def build_mmdet_pvt(state: StateDict):
    """An mmdet ``PyramidVisionTransformer`` fitting our PVT v1 ``state`` (official names). Per-stage widths are
    ``embed_dims * num_heads[i]`` in mmdet; heads do not change shapes, so gcd / width ratios are used."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformer

    dims = [state[f"patch_embed{i}.proj.weight"].shape[0] for i in range(1, 5)]
    base = math.gcd(*dims)
    patches = [state[f"patch_embed{i}.proj.weight"].shape[-1] for i in range(1, 5)]
    grid = square_grid(state["pos_embed1"].shape[1], "pos_embed1")
    sr = [state[f"block{i}.0.attn.sr.weight"].shape[-1] if f"block{i}.0.attn.sr.weight" in state else 1
          for i in range(1, 5)]
    mlp = []
    for i, d in enumerate(dims, 1):
        hidden = state[f"block{i}.0.mlp.fc1.weight"].shape[0]
        if hidden % d:
            raise ValueError(f"stage {i}: mlp hidden size {hidden} is not a multiple of {d}")
        mlp.append(hidden // d)
    return PyramidVisionTransformer(
        pretrain_img_size=grid[0] * patches[0], in_channels=state["patch_embed1.proj.weight"].shape[1],
        embed_dims=base, num_layers=[_count_blocks(state, f"block{i}.") for i in range(1, 5)],
        num_heads=[d // base for d in dims], patch_sizes=patches, strides=patches, sr_ratios=sr,
        mlp_ratios=mlp, qkv_bias="block1.0.attn.q.bias" in state)


def build_timm_backbone(state: StateDict, num_classes: int = 0):
    """A model of our classifier family (timm ViT, our PVT v1 or CA-Swin) fitting ``state``: headless, or with a
    ``num_classes`` head."""
    arch = detect_architecture(state)
    if arch == "ca-swin":
        from classification.models.ca_swin import CASwinTransformer

        tables = [state.get(f"layers.{i}.blocks.0.attn.relative_position_bias_table")
                  for i in range(_count_blocks(state, "layers."))]  # ((2w-1)², heads); None: no Swin block left
        swin = [_count_blocks(state, f"layers.{i}.blocks.") for i in range(len(tables))]
        class_attn = _count_blocks(state, "blocks_token_only.")
        proj = state["patch_embed.proj.weight"]
        return CASwinTransformer(
            in_chans=proj.shape[1], patch_size=proj.shape[-1], embed_dim=proj.shape[0], num_classes=num_classes,
            depths=(*swin[:-1], swin[-1] + class_attn), class_attn_depth=class_attn,
            window_size=[7 if t is None else (math.isqrt(t.shape[0]) + 1) // 2 for t in tables],
            num_heads=[1 if t is None else t.shape[1] for t in tables])
    if arch == "pvt":
        from classification.models.pvt import PyramidVisionTransformerV1

        dims = [state[f"patch_embed{i}.proj.weight"].shape[0] for i in range(1, 5)]
        grid = square_grid(state["pos_embed1"].shape[1], "pos_embed1")
        sr = [state[f"block{i}.0.attn.sr.weight"].shape[-1] if f"block{i}.0.attn.sr.weight" in state else 1
              for i in range(1, 5)]
        return PyramidVisionTransformerV1(
            img_size=grid[0] * 4, in_chans=state["patch_embed1.proj.weight"].shape[1], num_classes=num_classes,
            embed_dims=dims, num_heads=[1] * 4,
            mlp_ratios=[state[f"block{i}.0.mlp.fc1.weight"].shape[0] / d for i, d in enumerate(dims, 1)],
            sr_ratios=sr, depths=[_count_blocks(state, f"block{i}.") for i in range(1, 5)],
            qkv_bias="block1.0.attn.q.bias" in state)
    from timm.models.vision_transformer import VisionTransformer

    proj = state["patch_embed.proj.weight"]
    embed, patch = proj.shape[0], proj.shape[-1]
    has_cls = "cls_token" in state
    grid = square_grid(state["pos_embed"].shape[1] - int(has_cls), "pos_embed")
    ls = state.get("blocks.0.ls1.gamma")
    return VisionTransformer(
        img_size=grid[0] * patch, patch_size=patch, in_chans=proj.shape[1], num_classes=num_classes, embed_dim=embed,
        depth=_count_blocks(state, "blocks."), num_heads=1,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / embed, qkv_bias="blocks.0.attn.qkv.bias" in state,
        class_token=has_cls, global_pool="token" if has_cls else "avg", fc_norm=False,
        pre_norm="norm_pre.weight" in state, init_values=1e-5 if ls is not None else None)
