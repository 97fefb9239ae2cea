"""MaskMix grid: training images mixed by MaskMix across a range of λ, each panel with its labels, λ_area, λ_attn and
the PAL λ, from a trained classifier (``tools/visualize.py``, ``make demo``).

The panels are training images drawn across the classes (:func:`pick_across_classes`: a seeded draw, classes taken
in turn), each mixed with the next panel of another class. Every panel is mixed: panel i keeps k_i of the G mask
cells of its own image, k_i spread evenly over 1 … G−1 (λ_area from about 1/G to 1 − 1/G), the cells chosen at random
(``seed``). The pictures are the mixed images themselves; the partner's cells are hatched and outlined (visible on
grey and colour images alike).
"""
from __future__ import annotations

import argparse
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from mmengine.registry import DATASETS, MODELS

from classification.foundation.checkpoints import install_safe_checkpoint_loading
from classification.engine.config_check import load_config
from classification.foundation.errors import UserError
from classification.models.pretrained import load_classifier
from mixpro_core import MixBatch, ScheduleMethod, attention_lambda, forward_with_attention, maskmix_masks


@dataclass
class MaskMixGrid:
    """What the picture shows: the unmixed ``originals`` (N,C,H,W) with their ``labels`` (N,), the MaskMix ``batch``
    (mixed images, partner, lam_area, masks) and per panel ``lam_attn`` (None without CLS attention) and the PAL
    ``lam``."""

    originals: torch.Tensor
    labels: torch.Tensor
    batch: MixBatch
    lam_attn: Optional[torch.Tensor]
    lam: torch.Tensor


def other_class_partners(labels: torch.Tensor) -> torch.Tensor:
    """(N,) for each sample the next one (cyclically) of another class; the next one when all share a class."""
    n = len(labels)
    partners = []
    for i in range(n):
        order = [(i + d) % n for d in range(1, n)]
        partners.append(next((j for j in order if labels[j] != labels[i]), order[0]))
    return torch.tensor(partners)


def maskmix_range(images: torch.Tensor, partner: torch.Tensor, mask_size: int, patch_size: int,
                  seed: int = 0) -> MixBatch:
    """MaskMix of ``images`` (N,C,H,W) with ``partner`` (N,) at λ spread over the grid: sample i keeps
    ``round(1 + i·(G−2)/(N−1))`` of the G cells, so every sample is mixed (G ≥ 2 cells needed)."""
    n, _, h, w = images.shape
    cells = -(-h // mask_size) * -(-w // mask_size)
    if cells < 2:
        raise UserError(f"a {h}x{w} image holds a single MaskMix cell of {mask_size} px: nothing to mix")
    own = torch.linspace(1, cells - 1, n).round().long()
    generator = torch.Generator().manual_seed(seed)
    pixel_mask, token_mask = maskmix_masks(n, h, w, mask_size, patch_size, generator=generator, own_cells=own)
    mixed = torch.where(pixel_mask.bool(), images, images[partner])
    return MixBatch(mixed, partner, pixel_mask.mean(dim=(1, 2, 3)), pixel_mask, token_mask, "maskmix",
                    token_exact=True)


def maskmix_panels(model, images: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> MaskMixGrid:
    """The grid's data for a :class:`~classification.models.mix_classifier.MixClassifier` ``model`` (eval mode): MaskMix
    with the model's cell and patch sizes (:func:`maskmix_range`), the CLS attention and the λ its label policy trains
    with on the mixed images (PAL's for MixPro: ``LabelPolicy.lam``)."""
    method = model.method
    if not isinstance(method, ScheduleMethod):
        raise UserError(f"the MaskMix grid shows a mixing schedule's labels; the model's method is "
                        f"{type(method).__name__}")
    mixer = method.mixer.find("maskmix")
    options = {**method.mix_defaults, **(getattr(mixer, "options", None) or {})}
    if not options.get("mask_size") or not options.get("patch_size"):
        raise UserError(f"the model has no MaskMix cell size (model.mix_defaults.mask_size): {options}")
    batch = maskmix_range(images, other_class_partners(labels), options["mask_size"], options["patch_size"], seed)
    with torch.no_grad():
        logits, cls_attn = forward_with_attention(model.backbone, batch.images)
        lam_attn = attention_lambda(batch.token_mask, cls_attn) if cls_attn is not None else None
        lam = method.policy.lam(batch, logits, cls_attn, labels)
    return MaskMixGrid(images, labels, batch, lam_attn, lam)


def dataset_labels(dataset) -> Optional[torch.Tensor]:
    """(N,) every sample's label, read without decoding images where the dataset keeps them (``targets``, or
    ImageNetFolder's ``samples``); None otherwise."""
    if getattr(dataset, "targets", None) is not None:
        return torch.as_tensor(dataset.targets).long().flatten()
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return torch.tensor([int(label) for _, label in samples])
    return None


def pick_across_classes(labels: torch.Tensor, num: int, seed: int = 0) -> torch.Tensor:
    """(num,) indices into ``labels`` (N,): a seeded shuffle, grouped by class, then the classes taken in turn
    (class order of first appearance in the shuffle), so that consecutive picks are of different classes while
    classes last; fewer than ``num`` when N < num."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    queues: dict = {}
    for i in order.tolist():
        queues.setdefault(int(labels[i]), []).append(i)
    picked = []
    while len(picked) < num and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < num:
                picked.append(queue.pop(0))
    return torch.tensor(picked)


def maskmix_grid(config: str, checkpoint: str, out: str, num: int = 16, seed: int = 0,
                 ema: bool = False) -> MaskMixGrid:
    """Write a PNG grid of ``num`` training images of ``config`` (:func:`pick_across_classes`) mixed by MaskMix
    (:func:`maskmix_panels`) and return its data. The images are shown with the validation transform (no random
    augmentation); the checkpoint (``ema``: its EMA weights) is loaded strictly
    (:func:`classification.models.pretrained.load_classifier`)."""
    if num < 2:
        raise UserError(f"--num must be at least 2 (MaskMix pairs images), got {num}")
    cfg = load_config(config)
    model = load_classifier(cfg, checkpoint, ema=ema)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, transform=cfg.val_dataloader.dataset.transform))
    labels = dataset_labels(dataset)
    if labels is None:  # labels only by loading: the first 8·num samples are the pool
        labels = torch.tensor([dataset[i]["data_samples"] for i in range(min(len(dataset), 8 * num))])
    items = [dataset[int(i)] for i in pick_across_classes(labels, num, seed)]
    images = torch.stack([it["inputs"] for it in items])
    labels = torch.tensor([it["data_samples"] for it in items])
    if images.dtype == torch.uint8:  # a uint8 transform: normalise as the config's data preprocessor does
        images = MODELS.build(cfg.get("data_preprocessor") or dict(type="ImageNetPreprocessor")).normalize(images)
    grid = maskmix_panels(model, images, labels, seed)
    plot_grid(grid, getattr(dataset, "classes", None), out)
    return grid


def panel_picture(image: torch.Tensor) -> torch.Tensor:
    """A panel's picture: the (C,H,W) image scaled to [0, 1] by its own min and max, as (H,W) for one channel or
    (H,W,C)."""
    image = (image - image.min()) / (image.max() - image.min() + 1e-8)
    return image.permute(1, 2, 0).squeeze(-1)


def plot_grid(grid: MaskMixGrid, class_names: Optional[Sequence[str]], out: str) -> None:
    """The panels, 8 per row: each mixed image (:func:`panel_picture`), titled ``own / partner class`` and ``λa λt
    λ``, the partner's cells hatched and outlined in black and yellow."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batch = grid.batch
    n = batch.images.shape[0]
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.5 * rows), squeeze=False)
    name = (lambda i: class_names[i][:11]) if class_names else str
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        picture = panel_picture(batch.images[i])
        ax.imshow(picture.numpy(), cmap="gray" if picture.dim() == 2 else None, vmin=0, vmax=1)
        partner_cells = (1 - batch.pixel_mask[i, 0]).numpy()
        ax.contourf(partner_cells, levels=[0.5, 1.5], colors="none", hatches=["////"])
        for width, colour in ((2.2, "black"), (1.0, "yellow")):  # an outline that shows on any image
            ax.contour(partner_cells, levels=[0.5], colors=colour, linewidths=width)
        own, other = int(grid.labels[i]), int(grid.labels[batch.partner[i]])
        attn = f"{float(grid.lam_attn[i]):.2f}" if grid.lam_attn is not None else "-"
        ax.set_title(f"{name(own)} / {name(other)}\nλa {float(batch.lam_area[i]):.2f} λt {attn} "
                     f"λ {float(grid.lam[i]):.2f}", fontsize=7)
    fig.suptitle("MaskMix at λ_area from low to high: own / partner class (the partner's cells hatched, outlined); "
                 "λ_area (λa), λ_attn (λt), PAL λ", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> MaskMixGrid:
    """``tools/visualize.py``: write the grid (default: ``maskmix_grid.png`` next to the checkpoint)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default=None, help="PNG path (default: maskmix_grid.png next to the checkpoint)")
    parser.add_argument("--num", type=int, default=16,
                        help="panels: N training images drawn across the classes (at least 2)")
    parser.add_argument("--seed", type=int, default=0, help="which images and cells (λ is fixed per panel)")
    parser.add_argument("--ema", action="store_true",
                        help="the checkpoint's EMA weights (timm's 'state_dict_ema', DeiT's 'model_ema')")
    args = parser.parse_args(argv)
    install_safe_checkpoint_loading()
    out = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)), "maskmix_grid.png")
    grid = maskmix_grid(args.config, args.checkpoint, out, args.num, args.seed, args.ema)
    print(f"wrote {out} ({len(grid.labels)} panels, λ_area {float(grid.batch.lam_area.min()):.2f} to "
          f"{float(grid.batch.lam_area.max()):.2f})")
    return grid
