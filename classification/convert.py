"""Convert a MixPro classification checkpoint into the format of a downstream backbone
(``tools/convert_checkpoint.py``).

    python tools/convert_checkpoint.py SRC DST --to {mmseg-vit,mmdet-pvt,timm,safetensors} [--img-size H W]

Targets
  mmseg-vit    our timm-style ViT / DeiT  -> mmseg ``VisionTransformer`` names (``{'state_dict': ..., 'meta': ...}``).
               Build the mmseg backbone with ``patch_bias=True`` (timm's patch conv has a bias, mmseg's default has
               none), ``final_norm=True`` and ``norm_cfg=dict(type='LN', eps=1e-6)`` (timm's eps).
               ``--img-size H W`` resizes the position grid bicubically for a backbone built with that img_size;
               without it, mmseg resizes ``pos_embed`` itself (``init_weights`` through ``init_cfg`` at load time,
               and at forward time for other input sizes), but a plain ``load_state_dict`` needs equal shapes.
  mmdet-pvt    our PVT v1 -> mmdet ``PyramidVisionTransformer`` names through mmdet's own ``pvt_convert``
               (the classifier's ``head``, final ``norm`` and ``cls_token`` are dropped, and so is the CLS entry of
               ``pos_embed4``). mmdet converts again when ``convert_weights=True``; that is a no-op on these keys.
  timm         the bare backbone state dict (classifier head dropped), loadable by ``model.load_state_dict``.
  safetensors  the same tensors in a ``.safetensors`` file (metadata ``format=pt``, ``source=SRC``).
CA-Swin checkpoints convert to timm / safetensors only: mmseg and mmdet have no CA-Swin backbone (one error line).

SRC is read with weights-only loading; when its keys carry our wrapper's ``backbone.`` prefix, everything outside
the backbone (mixing-only parameters) is dropped. DST is written atomically. The report lists the converted tensors,
the dropped keys and the keys missing, unexpected or of another shape in the target backbone.
Errors (unreadable file, wrong architecture) print one ``error: ...`` line and exit with status 2.
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from timm.layers import resample_abs_pos_embed

from classification.checkpoints import compare_state_dicts
from classification.engine import atomic_write, install_safe_checkpoint_loading
from classification.models.weights import read_backbone_state  # weights-only; one-line errors naming the file

TARGETS = ("mmseg-vit", "mmdet-pvt", "timm", "safetensors")
_TARGET_ARCH = {"mmseg-vit": "vit", "mmdet-pvt": "pvt"}
_HEAD_PREFIXES = ("head.", "head_dist.", "head_drop.", "fc_norm.", "attn_pool.")  # classifier side, not backbone

StateDict = Dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------- report
@dataclass
class ConversionReport:
    """What a conversion did; ``missing`` / ``unexpected`` / ``mismatched`` are None until checked against a model."""

    target: str
    architecture: str
    converted: int = 0
    dropped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    checked_with: Optional[str] = None
    missing: Optional[List[str]] = None
    unexpected: Optional[List[str]] = None
    mismatched: Optional[List[str]] = None

    def format(self) -> str:
        lines = [f"architecture: {self.architecture}, target: {self.target}",
                 f"converted tensors: {self.converted}",
                 f"dropped keys ({len(self.dropped)}): {', '.join(self.dropped) if self.dropped else '-'}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.checked_with is None:
            lines.append("target model: not checked")
        else:
            lines.append(f"checked against {self.checked_with}:")
            lines.append(f"  missing keys ({len(self.missing)}): {', '.join(self.missing) or '-'}")
            lines.append(f"  unexpected keys ({len(self.unexpected)}): {', '.join(self.unexpected) or '-'}")
            if self.mismatched:
                lines.append(f"  shape mismatches ({len(self.mismatched)}): {', '.join(self.mismatched)}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------- architecture
def detect_architecture(state: StateDict) -> str:
    """'vit' (timm ``VisionTransformer`` names), 'pvt' (official PVT v1 names) or 'ca-swin' (our CA-Swin: timm
    Swin stages + ``blocks_token_only``); ValueError otherwise."""
    if "blocks.0.attn.qkv.weight" in state:
        return "vit"
    if "block1.0.attn.q.weight" in state:
        return "pvt"
    if "blocks_token_only.0.attn.q.weight" in state and "layers.0.blocks.0.attn.qkv.weight" in state:
        return "ca-swin"
    if any(k.startswith("layers.") for k in state):
        raise ValueError("the checkpoint is already in mmseg/mmdet format (keys 'layers.*'); nothing to convert")
    sample = ", ".join(sorted(state)[:6])
    raise ValueError(f"unknown architecture: neither 'blocks.0.attn.qkv.weight' (vit) nor "
                     f"'block1.0.attn.q.weight' (pvt) found; keys start with: {sample}")


def _require(state: StateDict, expected: str, target: str) -> None:
    found = detect_architecture(state)
    if found == "ca-swin":
        raise ValueError(f"CA-Swin has no {target} backbone (mmseg / mmdet have no CA-Swin); a CA-Swin checkpoint "
                         f"converts only --to timm or --to safetensors")
    if found != expected:
        raise ValueError(f"the checkpoint holds a '{found}' backbone, but --to {target} expects '{expected}'")


def split_head(state: StateDict) -> Tuple[StateDict, List[str]]:
    """``(backbone, dropped)``: the state without the classifier head (``head.*`` and timm's head-side modules)."""
    kept, dropped = OrderedDict(), []
    for k, v in state.items():
        if k.startswith(_HEAD_PREFIXES) or k in ("head", "head_dist"):
            dropped.append(k)
        else:
            kept[k] = v
    return kept, dropped


# ----------------------------------------------------------------------------------------- ViT -> mmseg
_VIT_BLOCK_MAP = {  # timm block-relative name -> mmseg TransformerEncoderLayer name
    "norm1.weight": "ln1.weight", "norm1.bias": "ln1.bias",
    "attn.qkv.weight": "attn.attn.in_proj_weight", "attn.qkv.bias": "attn.attn.in_proj_bias",
    "attn.proj.weight": "attn.attn.out_proj.weight", "attn.proj.bias": "attn.attn.out_proj.bias",
    "norm2.weight": "ln2.weight", "norm2.bias": "ln2.bias",
    "mlp.fc1.weight": "ffn.layers.0.0.weight", "mlp.fc1.bias": "ffn.layers.0.0.bias",
    "mlp.fc2.weight": "ffn.layers.1.weight", "mlp.fc2.bias": "ffn.layers.1.bias",
}
_VIT_TOP_MAP = {
    "cls_token": "cls_token", "pos_embed": "pos_embed",
    "patch_embed.proj.weight": "patch_embed.projection.weight", "patch_embed.proj.bias": "patch_embed.projection.bias",
    "patch_embed.norm.weight": "patch_embed.norm.weight", "patch_embed.norm.bias": "patch_embed.norm.bias",
    "norm_pre.weight": "ln_pre.weight", "norm_pre.bias": "ln_pre.bias",  # mmseg pre_norm=True
    "norm.weight": "ln1.weight", "norm.bias": "ln1.bias",  # mmseg final_norm=True ('ln1' on the backbone)
}
_VIT_UNSUPPORTED = {"dist_token": "a distillation token", "reg_token": "register tokens"}


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"img_size must be one or two integers, got {size}")
    return size


def _square_grid(num: int, what: str) -> Tuple[int, int]:
    side = math.isqrt(num)
    if side * side != num:
        raise ValueError(f"{what} has {num} grid entries, which is not a square grid; cannot infer its shape")
    return side, side


def convert_to_mmseg_vit(state: StateDict, img_size: Optional[Union[int, Sequence[int]]] = None,
                         src_grid: Optional[Sequence[int]] = None) -> Tuple[StateDict, ConversionReport]:
    """Our timm-style ViT state (prefixes already stripped) -> mmseg ``VisionTransformer`` state and a report.

    ``img_size`` (int or (H, W)): the target backbone's img_size; the position grid is resized bicubically to it
    (CLS entry kept). Without it pos_embed keeps its size (mmseg's ``init_weights`` resizes at load time).
    Block parameters with no mmseg counterpart (layer scale, q/k norm) raise ValueError rather than being lost.
    """
    _require(state, "vit", "mmseg-vit")
    report = ConversionReport(target="mmseg-vit", architecture="vit")
    for key, what in _VIT_UNSUPPORTED.items():
        if key in state:
            raise ValueError(f"the ViT checkpoint has {what} ('{key}'), which mmseg's VisionTransformer lacks")
    if "cls_token" not in state or "pos_embed" not in state:
        raise ValueError("the ViT checkpoint has no cls_token / pos_embed; mmseg's VisionTransformer needs both")
    n_pos = state["pos_embed"].shape[1]
    if math.isqrt(n_pos) ** 2 == n_pos and math.isqrt(n_pos - 1) ** 2 != n_pos - 1:
        raise ValueError("pos_embed does not hold a CLS entry (timm no_embed_class); mmseg expects 1 + N entries")

    new_state = OrderedDict()
    for k, v in state.items():
        if k in _VIT_TOP_MAP:
            new_state[_VIT_TOP_MAP[k]] = v
        elif k.startswith("blocks."):
            _, idx, rest = k.split(".", 2)
            if rest not in _VIT_BLOCK_MAP:
                raise ValueError(f"'{k}' has no counterpart in mmseg's VisionTransformer "
                                 f"(layer scale / q-k norm are not supported)")
            new_state[f"layers.{idx}.{_VIT_BLOCK_MAP[rest]}"] = v
        else:
            report.dropped.append(k)  # head, fc_norm and anything else outside the backbone

    if img_size is not None:
        patch = state["patch_embed.proj.weight"].shape[-2:]
        h, w = _pair(img_size)
        grid = (h // patch[0], w // patch[1])
        pos_embed = new_state["pos_embed"]
        before = tuple(pos_embed.shape)
        n = before[1] - 1
        src = tuple(int(s) for s in src_grid) if src_grid else _square_grid(n, "pos_embed")
        if src[0] * src[1] != n:
            raise ValueError(f"pos_embed has {n} grid entries, not {src[0]}x{src[1]}")
        # bicubic, align_corners=False and no antialiasing: what mmseg's own resize_pos_embed computes
        new_state["pos_embed"] = resample_abs_pos_embed(pos_embed, new_size=list(grid), old_size=list(src),
                                                        num_prefix_tokens=1, interpolation="bicubic",
                                                        antialias=False)
        if tuple(new_state["pos_embed"].shape) != before:
            report.notes.append(f"pos_embed resized bicubically {before} -> {tuple(new_state['pos_embed'].shape)} "
                                f"for img_size {h}x{w} (CLS entry kept)")
    report.converted = len(new_state)
    if "ln1.weight" not in new_state:
        report.notes.append("no final norm in the checkpoint: build the backbone with final_norm=False")
    return new_state, report


# ------------------------------------------------------------------------------------------ PVT -> mmdet
def convert_to_mmdet_pvt(state: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Our PVT v1 state -> mmdet ``PyramidVisionTransformer`` state (via mmdet's ``pvt_convert``) and a report."""
    _require(state, "pvt", "mmdet-pvt")
    from mmdet.models.backbones.pvt import pvt_convert

    report = ConversionReport(target="mmdet-pvt", architecture="pvt")
    kept = OrderedDict()
    for k, v in state.items():
        if k.startswith(("head.", "norm.")) or k in ("head", "cls_token"):
            report.dropped.append(k)
        elif k.startswith(("pos_embed", "patch_embed", "block")):
            kept[k] = v
        else:
            report.dropped.append(k)  # not part of PVT v1: pvt_convert would pass it through unchanged
    # pos_embed4 carries the CLS entry (our stage 4 runs on [cls, patches]); mmdet's converter strips it only at
    # exactly 1 + 7·7 entries (224 input), so strip it here for every other size.
    pos4 = kept.get("pos_embed4")
    if pos4 is not None and "cls_token" in state and pos4.shape[1] != 50:
        kept["pos_embed4"] = pos4[:, 1:]
        report.notes.append(f"CLS entry stripped from pos_embed4 ({pos4.shape[1]} -> {pos4.shape[1] - 1} entries)")
    new_state = pvt_convert(kept)
    report.converted = len(new_state)
    return new_state, report


# ------------------------------------------------------------------------------------ timm / safetensors
def convert_to_timm(state: StateDict) -> Tuple[StateDict, ConversionReport]:
    """The bare backbone state dict (classifier head dropped), contiguous tensors."""
    arch = detect_architecture(state)
    kept, dropped = split_head(state)
    report = ConversionReport(target="timm", architecture=arch, converted=len(kept), dropped=dropped)
    return OrderedDict((k, v.contiguous()) for k, v in kept.items()), report


def export_safetensors(state: StateDict, path: str, source: Optional[str] = None) -> ConversionReport:
    """Write the backbone tensors of ``state`` (head dropped) to ``path`` as safetensors, atomically.

    Metadata: ``{"format": "pt", "source": source}``. Tensors are made contiguous; tensors sharing storage are
    copied (safetensors refuses shared storage).
    """
    from safetensors.torch import save_file

    tensors, report = convert_to_timm(state)
    report.target = "safetensors"
    seen = set()
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        ptr = v.untyped_storage().data_ptr()
        if v.numel() and ptr in seen:
            v = v.clone()
        seen.add(v.untyped_storage().data_ptr())
        tensors[k] = v
    metadata = {"format": "pt", "source": str(source) if source is not None else ""}
    atomic_write(path, lambda tmp: save_file(dict(tensors), tmp, metadata=metadata))
    return report


# --------------------------------------------------------------------------------- target model checks
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
        grid = _square_grid(state["pos_embed"].shape[1] - 1, "pos_embed")
        img_size = (grid[0] * patch, grid[1] * patch)
    return VisionTransformer(
        img_size=_pair(img_size), patch_size=patch, in_channels=in_chans, embed_dims=embed,
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
    grid = _square_grid(state["pos_embed1"].shape[1], "pos_embed1")
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


def build_timm_backbone(state: StateDict):
    """A headless model of our classifier family (timm ViT, our PVT v1 or CA-Swin) fitting ``state``."""
    arch = detect_architecture(state)
    if arch == "ca-swin":
        from classification.models.ca_swin import CASwinTransformer

        tables = [state.get(f"layers.{i}.blocks.0.attn.relative_position_bias_table")
                  for i in range(_count_blocks(state, "layers."))]  # ((2w-1)², heads); None: no Swin block left
        swin = [_count_blocks(state, f"layers.{i}.blocks.") for i in range(len(tables))]
        class_attn = _count_blocks(state, "blocks_token_only.")
        proj = state["patch_embed.proj.weight"]
        return CASwinTransformer(
            in_chans=proj.shape[1], patch_size=proj.shape[-1], embed_dim=proj.shape[0], num_classes=0,
            depths=(*swin[:-1], swin[-1] + class_attn), class_attn_depth=class_attn,
            window_size=[7 if t is None else (math.isqrt(t.shape[0]) + 1) // 2 for t in tables],
            num_heads=[1 if t is None else t.shape[1] for t in tables])
    if arch == "pvt":
        from classification.models.pvt import PyramidVisionTransformerV1

        dims = [state[f"patch_embed{i}.proj.weight"].shape[0] for i in range(1, 5)]
        grid = _square_grid(state["pos_embed1"].shape[1], "pos_embed1")
        sr = [state[f"block{i}.0.attn.sr.weight"].shape[-1] if f"block{i}.0.attn.sr.weight" in state else 1
              for i in range(1, 5)]
        return PyramidVisionTransformerV1(
            img_size=grid[0] * 4, in_chans=state["patch_embed1.proj.weight"].shape[1], num_classes=0,
            embed_dims=dims, num_heads=[1] * 4,
            mlp_ratios=[state[f"block{i}.0.mlp.fc1.weight"].shape[0] / d for i, d in enumerate(dims, 1)],
            sr_ratios=sr, depths=[_count_blocks(state, f"block{i}.") for i in range(1, 5)],
            qkv_bias="block1.0.attn.q.bias" in state)
    from timm.models.vision_transformer import VisionTransformer

    proj = state["patch_embed.proj.weight"]
    embed, patch = proj.shape[0], proj.shape[-1]
    has_cls = "cls_token" in state
    grid = _square_grid(state["pos_embed"].shape[1] - int(has_cls), "pos_embed")
    ls = state.get("blocks.0.ls1.gamma")
    return VisionTransformer(
        img_size=grid[0] * patch, patch_size=patch, in_chans=proj.shape[1], num_classes=0, embed_dim=embed,
        depth=_count_blocks(state, "blocks."), num_heads=1,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / embed, qkv_bias="blocks.0.attn.qkv.bias" in state,
        class_token=has_cls, global_pool="token" if has_cls else "avg", fc_norm=False,
        pre_norm="norm_pre.weight" in state, init_values=1e-5 if ls is not None else None)


def check_against(model: torch.nn.Module, new_state: StateDict, report: ConversionReport, name: str) -> None:
    """Fill the report's key lists: how ``new_state`` differs from ``model``'s state dict
    (:func:`classification.checkpoints.compare_state_dicts`, the comparison of the strict loader)."""
    differences = compare_state_dicts(model.state_dict(), new_state)
    report.checked_with = name
    report.missing, report.unexpected = differences.missing, differences.unexpected
    report.mismatched = [f"{k} {ckpt} vs {own}" for k, ckpt, own in differences.mismatched]


# -------------------------------------------------------------------------------------------------- CLI
def convert_file(src: str, dst: str, to: str, img_size: Optional[Sequence[int]] = None,
                 check: bool = True) -> ConversionReport:
    """Read ``src``, convert to ``to``, check against the target model (when ``check``), write ``dst``."""
    if to not in TARGETS:
        raise ValueError(f"unknown target {to!r}; choose from {', '.join(TARGETS)}")
    if img_size is not None and to != "mmseg-vit":
        raise ValueError("--img-size is only supported with --to mmseg-vit")
    state, outside = read_backbone_state(src)
    try:
        detect_architecture(state)
        if to in _TARGET_ARCH:
            _require(state, _TARGET_ARCH[to], to)
    except ValueError as err:
        raise ValueError(f"{src}: {err}") from err

    meta = {"source": osp.abspath(src), "converted_to": to}
    if to == "mmseg-vit":
        new_state, report = convert_to_mmseg_vit(state, img_size=img_size)
        build = (lambda: build_mmseg_vit(state, img_size), "mmseg VisionTransformer")
        payload = {"state_dict": new_state, "meta": meta}
    elif to == "mmdet-pvt":
        new_state, report = convert_to_mmdet_pvt(state)
        build = (lambda: build_mmdet_pvt(state), "mmdet PyramidVisionTransformer")
        payload = {"state_dict": new_state, "meta": meta}
    else:
        new_state, report = convert_to_timm(state)
        report.target = to
        build = (lambda: build_timm_backbone(state), f"headless {report.architecture} classifier backbone")
        payload = new_state
    report.dropped = outside + report.dropped
    if outside:
        report.notes.append(f"{len(outside)} key(s) outside 'backbone.' dropped")

    if check:
        try:
            model = build[0]()
        except Exception as err:  # an unusual shape: the conversion is still written, unchecked
            report.notes.append(f"target model not built ({type(err).__name__}: {err})")
        else:
            check_against(model, new_state, report, build[1])

    if to == "safetensors":
        export_safetensors(new_state, dst, source=src)
    else:
        atomic_write(dst, lambda tmp: _torch_save(payload, tmp))
    return report


def _torch_save(obj, path: str) -> None:
    # through a file object: torch.save names the zip's top folder after a path's basename and rejects some names
    with open(path, "wb") as f:
        torch.save(obj, f)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:397] + "..."


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/convert_checkpoint.py``: 0 on success, 2 with one ``error: ...`` line on stderr."""
    install_safe_checkpoint_loading()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="our checkpoint (mmengine checkpoint or bare state dict)")
    parser.add_argument("dst", help="output file")
    parser.add_argument("--to", required=True, choices=TARGETS)
    parser.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"),
                        help="mmseg-vit only: resize the position grid for a backbone built with this img_size")
    parser.add_argument("--no-check", action="store_true", help="skip building the target model")
    args = parser.parse_args(argv)
    try:
        report = convert_file(args.src, args.dst, args.to, img_size=args.img_size, check=not args.no_check)
    except (ValueError, FileNotFoundError, OSError) as err:
        msg = _one_line(err)
        if args.src not in msg and isinstance(err, ValueError):
            msg = f"{args.src}: {msg}"
        print(f"error: {msg}", file=sys.stderr)
        return 2
    print(report.format())
    print(f"written: {args.dst}")
    return 0
