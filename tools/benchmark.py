#!/usr/bin/env python
"""Micro-benchmarks. Each subcommand measures in one process, same inputs, warm-up then the median of N runs.

    python tools/benchmark.py mix  [--batch 128 --size 224 --repeats 20 --device cpu]
    python tools/benchmark.py step [--models tiny_vit deit_tiny --batch 32 --repeats 10 --device cpu]

``mix``: mask generation + mixing of our batched ``maskmix`` against a straightforward per-sample numpy
implementation of the same semantics (numpy permutation per sample, repeat to pixels, copy to the device — the way
the reference code builds masks), and the other mixers for scale.
``step``: one full training step (mix, forward with CLS attention when the method needs it, loss, backward, AdamW
step) of the MixClassifier for each method, as a ratio to the step without mixing. Each method is pinned to the
batch kind it changes (transmix: CutMix batches with attention labels; mixpro: MaskMix batches with PAL).
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time

import numpy as np
import torch

from mixpro_core import cutmix, maskmix, maskmix_masks, mixup


def timed(fn, repeats: int, warmup: int = 3, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def reference_maskmix_mask(b: int, h: int, w: int, mask_size: int, rng: np.random.Generator,
                           device) -> torch.Tensor:
    """Per-sample numpy MaskMix mask with the same semantics, built as the reference code builds it."""
    rows, cols = math.ceil(h / mask_size), math.ceil(w / mask_size)
    cells = rows * cols
    k = max(1, math.ceil(cells * rng.beta(1.0, 1.0)))
    masks = np.zeros((b, 1, h, w), dtype=np.float32)
    for i in range(b):
        flat = np.zeros(cells, dtype=np.float32)
        flat[rng.permutation(cells)[:k]] = 1.0
        grid = flat.reshape(rows, cols).repeat(mask_size, axis=0).repeat(mask_size, axis=1)
        masks[i, 0] = grid[:h, :w]
    return torch.from_numpy(masks).to(device)


def reference_maskmix(images: torch.Tensor, mask_size: int, rng: np.random.Generator) -> torch.Tensor:
    """Reference mask + the reference blend x·M + x[partner]·(1−M)."""
    b, _, h, w = images.shape
    mask = reference_maskmix_mask(b, h, w, mask_size, rng, images.device)
    partner = torch.from_numpy(rng.permutation(b)).to(images.device)
    return images * mask + images[partner] * (1 - mask)


def header() -> str:
    return (f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"python {platform.python_version()}, torch {torch.__version__}")


def bench_mix(args) -> None:
    device = args.device
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    rng = np.random.default_rng(0)
    b, s = args.batch, args.size
    rows = [
        ("maskmix masks only (ours, batched)",
         lambda: maskmix_masks(b, s, s, args.mask_size, args.patch_size, generator=g, device=device)),
        ("maskmix masks only (per-sample numpy reference)",
         lambda: reference_maskmix_mask(b, s, s, args.mask_size, rng, device)),
        ("maskmix (ours, batched)", lambda: maskmix(x, args.mask_size, args.patch_size, generator=g)),
        ("maskmix (per-sample numpy reference)", lambda: reference_maskmix(x, args.mask_size, rng)),
        ("cutmix", lambda: cutmix(x, patch_size=args.patch_size, generator=g)),
        ("mixup", lambda: mixup(x, generator=g)),
    ]
    print(header())
    print(f"mix: B={args.batch}, 3x{args.size}x{args.size}, mask_size={args.mask_size}, "
          f"patch_size={args.patch_size}, device={device}, median of {args.repeats}")
    results = {name: timed(fn, args.repeats, device=device) for name, fn in rows}
    print("| mixer | ms / batch |\n|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.1f} |")
    for what in ("maskmix masks only", "maskmix"):
        ratio = results[f"{what} (per-sample numpy reference)"] / results[f"{what} (ours, batched)"]
        print(f"{what}: speed-up over the per-sample numpy reference {ratio:.2f}x")


# method → (MixSchedule arguments, label policy) pinning the batch kind each method changes
STEP_METHODS = {
    "none": (dict(maskmix_prob=0.0, mixup_alpha=0.0, cutmix_alpha=0.0), "AreaLabels"),
    "mixup": (dict(maskmix_prob=0.0, cutmix_alpha=0.0), "AreaLabels"),
    "cutmix": (dict(maskmix_prob=0.0, mixup_alpha=0.0), "AreaLabels"),
    "transmix": (dict(maskmix_prob=0.0, mixup_alpha=0.0), "TransMixLabels"),
    "mixpro": (dict(maskmix_prob=1.0), "PALLabels"),
}
STEP_MODELS = {  # name → (backbone config, input (C,H,W), MaskMix cell size)
    "tiny_vit": (dict(type="tiny_vit", patch_size=7, embed_dim=64, depth=4, num_heads=2), (1, 28, 28), 7),
    "deit_tiny": (dict(type="deit_tiny"), (3, 224, 224), 32),
    "deit_small": (dict(type="deit_small"), (3, 224, 224), 32),
}


def bench_step(args) -> None:
    import classification  # noqa: F401  (registers the models)
    from mmengine.registry import MODELS
    device = args.device
    print(header())
    print(f"step: B={args.batch}, AdamW, device={device}, median of {args.repeats} round-robin steps after 3 warm-up rounds")
    print("| model | " + " | ".join(STEP_METHODS) + " |\n|---|" + "---|" * len(STEP_METHODS))
    for name in args.models:
        backbone, shape, mask_size = STEP_MODELS[name]
        torch.manual_seed(0)
        x = torch.randn(args.batch, *shape, device=device)
        y = torch.randint(0, 10, (args.batch,), device=device)
        steps = {}
        for method, (mix, policy) in STEP_METHODS.items():
            torch.manual_seed(0)  # same initial weights for every method
            model = MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(backbone),
                                      mix=dict(mix, mask_size=mask_size), label_policy=dict(type=policy))).to(device)
            steps[method] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

        def step(method):
            model, opt = steps[method]
            opt.zero_grad(set_to_none=True)
            model(x, y, mode="loss")["loss"].backward()
            opt.step()
        # round-robin over the methods so that drift (thermal, allocator, other load) hits all of them alike
        samples = {m: [] for m in steps}
        for r in range(3 + args.repeats):
            for method in steps:
                t = timed(lambda: step(method), repeats=1, warmup=0, device=device)
                if r >= 3:
                    samples[method].append(t)
        times = {m: statistics.median(v) for m, v in samples.items()}
        base = times["none"]
        print(f"| {name} | " + " | ".join(f"{t:.0f} ms ({t / base:.2f}x)" for t in times.values()) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    mix = sub.add_parser("mix", help="mask generation + mixing")
    mix.add_argument("--batch", type=int, default=128)
    mix.add_argument("--size", type=int, default=224)
    mix.add_argument("--mask-size", type=int, default=32)
    mix.add_argument("--patch-size", type=int, default=16)
    mix.add_argument("--repeats", type=int, default=20)
    mix.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    mix.set_defaults(func=bench_mix)
    step = sub.add_parser("step", help="training step per method, ratio to no mixing")
    step.add_argument("--models", nargs="+", default=["tiny_vit", "deit_tiny"], choices=sorted(STEP_MODELS))
    step.add_argument("--batch", type=int, default=32)
    step.add_argument("--repeats", type=int, default=10)
    step.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    step.set_defaults(func=bench_step)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
