#!/usr/bin/env python
"""Micro-benchmarks. Each subcommand measures in one process, same inputs, warm-up then the median of N runs.

    python tools/benchmark.py mix  [--batch 128 --size 224 --repeats 20 --device cpu]

``mix``: mask generation + mixing of our batched ``maskmix`` against a straightforward per-sample numpy
implementation of the same semantics (numpy permutation per sample, repeat to pixels, copy to the device — the way
the reference code builds masks), and the other mixers for scale.
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
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
