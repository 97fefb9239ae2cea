"""Convert a classification checkpoint into a downstream backbone's format (``tools/convert_checkpoint.py SRC DST
--to {mmseg-vit,mmdet-pvt,timm,safetensors} [--img-size H W] [--ema] [--keep-head]``). SRC: any layout of
:mod:`classification.foundation.checkpoint_sources` (ours, timm's, DeiT / official MixPro / PVT v1 releases), named in the
report.

- mmseg-vit: timm ViT -> mmseg ``VisionTransformer`` names; build it with ``patch_bias=True``, ``final_norm=True``,
  LN eps 1e-6. ``--img-size H W`` resizes the position grid bicubically (logged): our configs load strictly.
- mmdet-pvt: PVT v1 -> mmdet names through mmdet's ``pvt_convert`` (``head``, ``norm``, ``cls_token`` and the CLS
  entry of ``pos_embed4`` dropped). timm / safetensors: the headless backbone state (``--keep-head``: with the
  classifier head, e.g. to score converted EMA weights with tools/test.py). CA-Swin: timm / safetensors only.
Keys outside our wrapper's ``backbone.`` are dropped; DST is written atomically; the report lists converted, dropped,
missing, unexpected and mismatched keys. Errors print one ``error: ...`` line and exit with status 2.
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

from classification.foundation.atomic import atomic_write
from classification.foundation.checkpoint_sources import detect_architecture, read_checkpoint_source
from classification.foundation.checkpoints import compare_state_dicts, install_safe_checkpoint_loading
from classification.transfer.convert_models import (build_mmdet_pvt, build_mmseg_vit, build_timm_backbone, pair,
                                                    square_grid)

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
    layout: Optional[str] = None
    converted: int = 0
    dropped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    checked_with: Optional[str] = None
    missing: Optional[List[str]] = None
    unexpected: Optional[List[str]] = None
    mismatched: Optional[List[str]] = None

    def format(self) -> str:
        lines = ([f"source layout: {self.layout}"] if self.layout else []) + [
                 f"architecture: {self.architecture}, target: {self.target}",
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
        h, w = pair(img_size)
        grid = (h // patch[0], w // patch[1])
        pos_embed = new_state["pos_embed"]
        before = tuple(pos_embed.shape)
        n = before[1] - 1
        src = tuple(int(s) for s in src_grid) if src_grid else square_grid(n, "pos_embed")
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
def convert_to_timm(state: StateDict, keep_head: bool = False) -> Tuple[StateDict, ConversionReport]:
    """The bare backbone state dict (classifier head dropped unless ``keep_head``), contiguous tensors."""
    arch = detect_architecture(state)
    kept, dropped = (OrderedDict(state), []) if keep_head else split_head(state)
    report = ConversionReport(target="timm", architecture=arch, converted=len(kept), dropped=dropped)
    return OrderedDict((k, v.contiguous()) for k, v in kept.items()), report


def export_safetensors(state: StateDict, path: str, source: Optional[str] = None,
                       keep_head: bool = False) -> ConversionReport:
    """Write the backbone tensors of ``state`` (head dropped unless ``keep_head``) to ``path`` as safetensors,
    atomically.

    Metadata: ``{"format": "pt", "source": source}``. Tensors are made contiguous; tensors sharing storage are
    copied (safetensors refuses shared storage).
    """
    from safetensors.torch import save_file

    tensors, report = convert_to_timm(state, keep_head)
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
def check_against(model: torch.nn.Module, new_state: StateDict, report: ConversionReport, name: str) -> None:
    """Fill the report's key lists: how ``new_state`` differs from ``model``'s state dict
    (:func:`classification.foundation.checkpoints.compare_state_dicts`, the comparison of the strict loader)."""
    differences = compare_state_dicts(model.state_dict(), new_state)
    report.checked_with = name
    report.missing, report.unexpected = differences.missing, differences.unexpected
    report.mismatched = [f"{k} {ckpt} vs {own}" for k, ckpt, own in differences.mismatched]


# -------------------------------------------------------------------------------------------------- CLI
def convert_file(src: str, dst: str, to: str, img_size: Optional[Sequence[int]] = None,
                 check: bool = True, ema: bool = False, keep_head: bool = False) -> ConversionReport:
    """Read ``src`` (its EMA weights with ``ema``), convert to ``to`` (timm / safetensors: with the classifier head
    when ``keep_head``, a file tools/test.py and a classifier's ``pretrained=`` read), check against the target model
    (when ``check``), write ``dst``."""
    if to not in TARGETS:
        raise ValueError(f"unknown target {to!r}; choose from {', '.join(TARGETS)}")
    if img_size is not None and to != "mmseg-vit":
        raise ValueError("--img-size is only supported with --to mmseg-vit")
    if keep_head and to not in ("timm", "safetensors"):
        raise ValueError("--keep-head applies to --to timm / safetensors (the downstream backbones have no "
                         "classifier head)")
    source = read_checkpoint_source(src, ema)
    state, outside = source.state, source.dropped
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
        new_state, report = convert_to_timm(state, keep_head)
        report.target = to
        classes = _head_classes(state, src) if keep_head else 0
        build = (lambda: build_timm_backbone(state, classes),
                 f"{_type_name(report.architecture)} classifier with its {classes}-class head" if keep_head
                 else f"headless {report.architecture} classifier backbone")
        payload = new_state
    report.layout = source.layout
    report.notes = source.notes + report.notes
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
        export_safetensors(new_state, dst, source=src, keep_head=keep_head)
    else:
        atomic_write(dst, lambda tmp: _torch_save(payload, tmp))
    return report


def _head_classes(state: StateDict, src: str) -> int:
    """The class count of the classifier head in ``state`` (``head.weight``: (classes, features))."""
    head = state.get("head.weight")
    if head is None:
        raise ValueError(f"{src}: --keep-head, but the checkpoint has no classifier head ('head.weight')")
    return int(head.shape[0])


def _type_name(architecture: str) -> str:
    return {"vit": "VisionTransformer", "pvt": "PyramidVisionTransformerV1", "ca-swin": "CASwinTransformer"}[
        architecture]


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
    parser.add_argument("src", help="a classification checkpoint: ours, timm's (.pth / .safetensors), or a DeiT / "
                                    "official MixPro / PVT v1 release")
    parser.add_argument("dst", help="output file")
    parser.add_argument("--to", required=True, choices=TARGETS)
    parser.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"),
                        help="mmseg-vit only: resize the position grid for a backbone built with this img_size")
    parser.add_argument("--ema", action="store_true",
                        help="read the EMA weights (timm's 'state_dict_ema', DeiT's 'model_ema')")
    parser.add_argument("--keep-head", action="store_true",
                        help="timm / safetensors: keep the classifier head (a file tools/test.py can score)")
    parser.add_argument("--no-check", action="store_true", help="skip building the target model")
    args = parser.parse_args(argv)
    try:
        report = convert_file(args.src, args.dst, args.to, img_size=args.img_size, check=not args.no_check,
                              ema=args.ema, keep_head=args.keep_head)
    except (ValueError, FileNotFoundError, OSError) as err:
        msg = _one_line(err)
        if args.src not in msg and isinstance(err, ValueError):
            msg = f"{args.src}: {msg}"
        print(f"error: {msg}", file=sys.stderr)
        return 2
    print(report.format())
    print(f"written: {args.dst}")
    return 0
