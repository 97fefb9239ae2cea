"""MaskMix grid: mixed images with their labels, λ_area, λ_attn and the PAL λ, from a trained classifier."""
from __future__ import annotations

import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import load_checkpoint

from mixpro_core import attention_lambda, build_mixer, forward_with_attention, pal_lambda


def maskmix_grid(config: str, checkpoint: str, out: str, num: int = 16, seed: int = 0) -> str:
    """Write a PNG grid of ``num`` training images mixed by MaskMix with the model's mask/patch sizes.

    Images come from the config's training set, shown with the validation transform (no random augmentation, so
    what is drawn is the image itself); the CLS attention and PAL's progressive factor come from the checkpoint's
    model in eval mode. Returns ``out``.
    """
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location="cpu")
    model.eval()
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, transform=cfg.val_dataloader.dataset.transform))
    items = [dataset[i] for i in range(num)]
    images = torch.stack([it["inputs"] for it in items])
    labels = torch.tensor([it["data_samples"] for it in items])
    if images.dtype == torch.uint8:  # a uint8 transform: normalise as the config's data preprocessor does
        images = MODELS.build(cfg.get("data_preprocessor") or dict(type="ImageNetPreprocessor")).normalize(images)
    mixer = model.mixer.find("maskmix") or build_mixer(dict(type="maskmix"), model.mix_defaults)
    batch = mixer(images, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits, cls_attn = forward_with_attention(model.backbone, batch.images)
        lam_attn = attention_lambda(batch.token_mask, cls_attn) if cls_attn is not None else None
        lam = pal_lambda(batch, logits, cls_attn, labels, model.num_classes, model.policy.smoothing)
    plot_grid(batch, labels, lam_attn, lam, getattr(dataset, "classes", None), out)
    return out


def plot_grid(batch, labels, lam_attn, lam, class_names, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = batch.images.shape[0]
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.5 * rows), squeeze=False)
    name = (lambda i: class_names[i][:10]) if class_names else str
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = batch.images[i]
        img = (img - img.min()) / (img.max() - img.min() + 1e-8)
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[0] == 1 else None)
        own, other = int(labels[i]), int(labels[batch.partner[i]])
        attn = f"{float(lam_attn[i]):.2f}" if lam_attn is not None else "-"
        ax.set_title(f"{name(own)} / {name(other)}\nλa {float(batch.lam_area[i]):.2f} λt {attn} λ {float(lam[i]):.2f}",
                     fontsize=7)
    fig.suptitle("MaskMix: own / partner class; λ_area (λa), λ_attn (λt), PAL λ", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
