"""Micro-benchmarks behind ``tools/benchmark.py`` (warm-up, then the median of N runs; compared paths round-robin).

    python tools/benchmark.py mix        [--batch 128 --size 224 --repeats 20]
    python tools/benchmark.py attention  [--model deit_small --batch 32|128 --repeats 10 --amp bf16 --no-grad]
    python tools/benchmark.py step       [--models deit_tiny deit_small --batch 32|128 --repeats 10 --amp bf16]
    python tools/benchmark.py throughput [--model deit_small --batch 32|128 --repeats 10 --amp bf16]
    python tools/benchmark.py train      [--images N --iters 128 --workers W ... --compile --quick]

mix: batched MaskMix vs a per-sample numpy reference; attention: CLS-row capture vs the materialised last-block
attention; step: a training step's time and peak memory per method vs none; throughput: our MixPro step vs timm's; train: end to end
(:mod:`classification.benchmarks.train`). Each prints a Markdown table; what is compared: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import statistics
import sys
from contextlib import nullcontext

import numpy as np
import torch

from classification.benchmarks.common import (MIB, autocast, peak_extra_bytes, report, round_robin, step_targets,
                                              timed)
from classification.benchmarks.train import add_train_arguments, bench_train
from classification.foundation.host import ROOT
from mixpro_core import cutmix, forward_with_attention, maskmix, maskmix_masks, mixup


# ----------------------------------------------------------------------------------------------- mix
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


def bench_mix(args) -> dict:
    device = args.device
    batch = args.batch
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    rng = np.random.default_rng(0)
    s = args.size
    fns = {
        "maskmix masks only (ours, batched)":
            lambda: maskmix_masks(batch, s, s, args.mask_size, args.patch_size, generator=g, device=device),
        "maskmix masks only (per-sample numpy reference)":
            lambda: reference_maskmix_mask(batch, s, s, args.mask_size, rng, device),
        "maskmix (ours, batched: masks + blend)": lambda: maskmix(x, args.mask_size, args.patch_size, generator=g),
        "maskmix (per-sample numpy reference: masks + blend)": lambda: reference_maskmix(x, args.mask_size, rng),
        "cutmix": lambda: cutmix(x, patch_size=args.patch_size, generator=g),
        "mixup": lambda: mixup(x, generator=g),
    }
    ms = {name: timed(fn, args.repeats, warmup=args.warmup, device=device) for name, fn in fns.items()}
    notes = []
    speedup = {}
    for what, ours, ref in (("mask generation", "maskmix masks only (ours, batched)",
                             "maskmix masks only (per-sample numpy reference)"),
                            ("MaskMix (masks + blend)", "maskmix (ours, batched: masks + blend)",
                             "maskmix (per-sample numpy reference: masks + blend)")):
        speedup[what] = ms[ref] / ms[ours]
        notes.append(f"{what}: speed-up over the per-sample numpy reference {speedup[what]:.2f}x")
    return report(args, dict(
        subcommand="mix",
        settings=(f"mix: B={batch}, 3×{s}×{s}, mask_size={args.mask_size}, patch_size={args.patch_size}, "
                  f"device={device}, median of {args.repeats} after {args.warmup} warm-ups"),
        columns=["mixer", "ms / batch"], rows=[[name, f"{t:.1f}"] for name, t in ms.items()], notes=notes,
        data=dict(ms=ms, speedup=speedup)))


# ----------------------------------------------------------------------------------------------- models
STEP_MODELS = {  # name → (backbone config, input (C,H,W), MaskMix cell size)
    "tiny_vit": (dict(type="tiny_vit", img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2,
                      drop_path_rate=0.0), (1, 32, 32), 8),  # the Fashion-MNIST configs' model
    "deit_tiny": (dict(type="deit_tiny"), (3, 224, 224), 32),
    "deit_small": (dict(type="deit_small"), (3, 224, 224), 32),
}
NUM_CLASSES = 10


def build_backbone(name: str, device: str) -> torch.nn.Module:
    import classification.register_all  # noqa: F401  (registration)
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(STEP_MODELS[name][0], num_classes=NUM_CLASSES)).to(device)


def build_classifier(name: str, device: str, smoothing: float = 0.1, **method_keys):
    """A MixClassifier on ``name``'s backbone with the method keys of a config (``mix`` / ``label_policy`` /
    ``token_mixup``, or ``method``) and the model's MaskMix cell size as a mixer default."""
    import classification.register_all  # noqa: F401  (registration)
    from mmengine.registry import MODELS
    backbone, _, mask_size = STEP_MODELS[name]
    torch.manual_seed(0)  # same initial weights for every method
    return MODELS.build(dict(type="MixClassifier", num_classes=NUM_CLASSES, backbone=dict(backbone),
                             mix_defaults=dict(mask_size=mask_size), smoothing=smoothing,
                             **method_keys)).to(device)


def inputs(name: str, batch: int, device: str):
    torch.manual_seed(0)
    shape = STEP_MODELS[name][1]
    return (torch.randn(batch, *shape, device=device),
            torch.randint(0, NUM_CLASSES, (batch,), device=device))


def _default_batch(args) -> int:
    return args.batch or (128 if str(args.device).startswith("cuda") else 32)


def _amp_label(args) -> str:
    return "bf16 autocast" if args.amp else "fp32"


# ----------------------------------------------------------------------------------------------- attention
def materialised_cls_attention(model: torch.nn.Module, images: torch.Tensor):
    """Forward computing the last block's full attention the unfused way; (logits, head-mean CLS→patch row (B,N)).

    The last block runs timm's explicit softmax(q·kᵀ·scale) path; the (B,H,T,T) matrix is caught after the softmax
    (forward hook on ``attn_drop``) and its CLS row is taken — the reference TransMix approach. Other blocks keep
    the fused kernel."""
    attn = model.blocks[-1].attn
    seen = {}
    fused = attn.fused_attn
    attn.fused_attn = False
    handle = attn.attn_drop.register_forward_hook(lambda _m, _i, out: seen.__setitem__("attn", out))
    try:
        logits = model(images)
    finally:
        handle.remove()
        attn.fused_attn = fused
    full = seen.pop("attn")
    return logits, full[:, :, 0, getattr(model, "num_prefix_tokens", 1):].float().mean(1).detach()


def bench_attention(args) -> dict:
    device, batch = args.device, _default_batch(args)
    model = build_backbone(args.model, device)
    model.train(not args.no_grad)
    x, _ = inputs(args.model, batch, device)
    grad = torch.no_grad() if args.no_grad else nullcontext()

    def run(path):
        fn = forward_with_attention if path == "ours" else materialised_cls_attention
        def call():
            with grad, autocast(device, args.amp):
                return fn(model, x)
        return call

    paths = {"ours": run("ours"), "materialised": run("materialised")}
    names = {"ours": "ours: fused attention in every block + CLS row from the last qkv",
             "materialised": "reference: last block unfused, full softmax(QKᵀ) materialised, CLS row taken"}
    with torch.no_grad(), autocast(device, args.amp):  # same seed: same drop-path draws in train mode
        torch.manual_seed(0)
        _, a_ours = forward_with_attention(model, x)
        torch.manual_seed(0)
        _, a_ref = materialised_cls_attention(model, x)
    max_diff = float((a_ours.float() - a_ref.float()).abs().max())
    samples = round_robin({k: (lambda f=f: f()) for k, f in paths.items()}, args.repeats, args.warmup, device)
    ms = {k: statistics.median(v) for k, v in samples.items()}
    peak = {k: peak_extra_bytes(f, device) for k, f in paths.items()}
    blk = model.blocks[-1].attn
    tokens = model.patch_embed.num_patches + model.num_prefix_tokens
    full_bytes = batch * blk.num_heads * tokens * tokens * 4
    row_bytes = batch * blk.num_heads * tokens * 4
    rows = []
    for k in ("ours", "materialised"):
        rows.append([names[k], f"{ms[k]:.1f}", f"{peak[k] / MIB:.1f}",
                     f"{ms[k] / ms['ours']:.2f}x", f"{peak[k] / max(peak['ours'], 1):.2f}x"])
    measured = ("torch.cuda.max_memory_allocated above the allocation at the start of the forward"
                if str(device).startswith("cuda") else
                "peak of the running sum of the CPU allocator's allocation/free events recorded by "
                "torch.profiler(profile_memory=True) during the forward (tensor storage only)")
    mode = "inference (no_grad, eval mode)" if args.no_grad else "training forward (autograd on, train mode)"
    notes = [f"peak memory = {measured}.",
             f"attention tensors (fp32): full last-block attention B·H·T² = {full_bytes / MIB:.2f} MiB; "
             f"CLS row B·H·T = {row_bytes / 1024:.1f} KiB (T = {tokens} tokens, H = {blk.num_heads} heads).",
             f"max |ours − materialised| over the (B,N) CLS attention: {max_diff:.2e}"]
    return report(args, dict(
        subcommand="attention",
        settings=(f"attention: {args.model}, B={batch}, {mode}, {_amp_label(args)}, device={device}, median of "
                  f"{args.repeats} forwards taken round-robin after {args.warmup} warm-up rounds"),
        columns=["path", "ms / forward", "peak memory (MiB)", "time ratio", "memory ratio"], rows=rows, notes=notes,
        data=dict(ms=ms, peak_bytes=peak, max_abs_diff=max_diff, full_attention_bytes=full_bytes,
                  cls_row_bytes=row_bytes, time_ratio=ms["materialised"] / ms["ours"],
                  memory_ratio=peak["materialised"] / max(peak["ours"], 1))))


# ----------------------------------------------------------------------------------------------- step
CUTMIX_ALWAYS = [dict(type="cutmix", prob=1.0)]
STEP_METHODS = {  # method → MixClassifier keys, each pinning the batch kind that the method changes
    "none": dict(mix=[]),
    "mixup": dict(mix=[dict(type="mixup", prob=1.0)]),
    "cutmix": dict(mix=CUTMIX_ALWAYS),
    "resizemix": dict(mix=[dict(type="resizemix", prob=1.0)]),
    "transmix": dict(mix=CUTMIX_ALWAYS, label_policy=dict(type="TransMixLabels")),
    "mixpro": dict(mix=[dict(type="maskmix", prob=1.0)], label_policy=dict(type="PALLabels")),
    "rmix": dict(mix=[dict(type="rmix", prob=1.0)]),
    "rlmix": dict(mix=[dict(type="rlmix", prob=1.0, learn=False)]),  # PPO updates (every 1024 images) left out
    "htm": dict(mix=CUTMIX_ALWAYS, token_mixup=dict(type="htm", layer=2, tau=10.0, rho=0.0)),  # every sample mixed
    "vtm": dict(mix=CUTMIX_ALWAYS, token_mixup=dict(type="vtm", layer=2, kappa=8)),
    "tlalign": dict(method=dict(type="tlalign")),
    "smmix": dict(method=dict(type="smmix", switch_prob=1.0)),  # the SMMix branch (its Mixup branch is 'mixup')
    "tokenmix-area": dict(method=dict(type="tokenmix-area", switch_prob=1.0)),  # the block-mask branch
    "mergemix": dict(method=dict(type="mergemix")),  # two forwards with grad + the ToMe pass on every batch
    "tokenmix": dict(method=dict(type="tokenmix", switch_prob=1.0)),  # block masks + teacher maps (synthetic here)
}
"""The step benchmark's methods; a method registered in ``mixpro_core.METHODS`` but not listed runs with its
defaults (:func:`step_methods`)."""


def step_methods() -> dict:
    """:data:`STEP_METHODS` plus every other registered method (``dict(method=dict(type=name))``)."""
    from mixpro_core import METHODS
    extra = {name: dict(method=dict(type=name)) for name in METHODS.names()
             if name != "schedule" and not any(m.get("method", {}).get("type") == name for m in STEP_METHODS.values())}
    return {**STEP_METHODS, **extra}


def bench_step(args) -> dict:
    device, batch = args.device, _default_batch(args)
    methods = step_methods()
    chosen = args.methods or list(methods)
    unknown = sorted(set(chosen) - set(methods))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; known: {sorted(methods)}")
    chosen = ["none"] + [m for m in chosen if m != "none"]
    rows, data = {m: [m] for m in chosen}, {}
    for name in args.models:
        x, y = inputs(name, batch, device)
        steps = {}
        for method in chosen:
            model = build_classifier(name, device=device, **methods[method])
            targets = step_targets(model, y, NUM_CLASSES)
            steps[method] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4), targets)

        def step(method):
            model, opt, targets = steps[method]
            opt.zero_grad(set_to_none=True)
            with autocast(device, args.amp):
                loss = model(x, targets, mode="loss")["loss"]
            loss.backward()
            opt.step()
        samples = round_robin({m: (lambda m=m: step(m)) for m in steps}, args.repeats, args.warmup, device)
        times = {m: statistics.median(v) for m, v in samples.items()}
        peak = {m: peak_extra_bytes(lambda m=m: step(m), device) for m in steps}
        for m in chosen:
            t, r = times[m], times[m] / times["none"]
            rows[m] += [f"{t:.0f} ({r:.2f}x)" if t >= 10 else f"{t:.1f} ({r:.2f}x)",
                        f"{peak[m] / MIB:.0f} ({peak[m] / peak['none']:.2f}x)"]
        data[name] = dict(ms=times, ratio={m: t / times["none"] for m, t in times.items()}, peak_bytes=peak,
                          peak_ratio={m: v / peak["none"] for m, v in peak.items()})
    notes = ["peak memory: the step's tensor allocations above those alive before it (forward, backward, AdamW; "
             "common.peak_extra_bytes), one step after the timed ones."]
    if {"tlalign", "cutmix"} <= set(chosen):
        notes.append("TL-Align over plain CutMix (step time): " + ", ".join(
            f"{n} {data[n]['ms']['tlalign'] / data[n]['ms']['cutmix']:.2f}x" for n in args.models))
    return report(args, dict(
        subcommand="step",
        settings=(f"step: B={batch}, AdamW, {_amp_label(args)}, device={device}, median of {args.repeats} steps "
                  f"taken round-robin across methods after {args.warmup} warm-up rounds"),
        columns=["method"] + [f"{n}: {what}" for n in args.models for what in ("ms / step (× none)",
                                                                              "peak MiB (× none)")],
        rows=[rows[m] for m in chosen], notes=notes, data=data))


# ----------------------------------------------------------------------------------------------- throughput
def mixpro_method() -> dict:
    """The MixPro method of the configs (schedule, label policy, smoothing), so the benchmark trains what they do."""
    from classification.engine.config_check import load_config
    return load_config(osp.join(ROOT, "configs/classification/_base_/methods/mixpro.py")).method.to_dict()


def bench_throughput(args) -> dict:
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
    device, batch = args.device, _default_batch(args)
    if batch % 2:
        raise SystemExit(f"--batch {batch}: timm's Mixup needs an even batch size")
    x, y = inputs(args.model, batch, device)
    method = mixpro_method()
    ours = build_classifier(args.model, device, method["smoothing"], mix=method["mix"],
                            label_policy=method["label_policy"])
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    plain = build_backbone(args.model, device)
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=1e-4)
    mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                     label_smoothing=method["smoothing"], num_classes=NUM_CLASSES)
    criterion = SoftTargetCrossEntropy()
    np.random.seed(0)

    def step_ours():  # the model advances its own mix_step: a new mixing draw per step, as in training
        images = x.clone()  # a fresh batch per step in both pipelines (timm's Mixup mixes in place)
        ours_opt.zero_grad(set_to_none=True)
        with autocast(device, args.amp):
            loss = ours(images, y, mode="loss")["loss"]
        loss.backward()
        ours_opt.step()

    def step_timm():
        images, targets = mixup_fn(x.clone(), y)
        plain_opt.zero_grad(set_to_none=True)
        with autocast(device, args.amp):
            loss = criterion(plain(images), targets)
        loss.backward()
        plain_opt.step()

    samples = round_robin({"ours": step_ours, "timm": step_timm}, args.repeats, args.warmup, device)
    names = {"ours": "ours: MixClassifier, MixPro (MaskMix 50% / Mixup 25% / CutMix 25%, PAL)",
             "timm": "timm: plain model, timm.data.Mixup (Mixup / CutMix 50/50) + SoftTargetCrossEntropy"}
    stats = {}
    for k, v in samples.items():
        stats[k] = dict(median_ms=statistics.median(v), mean_ms=statistics.fmean(v),
                        img_per_s=1e3 * batch / statistics.fmean(v))
    rows = [[names[k], f"{s['median_ms']:.1f}", f"{s['img_per_s']:.3g}",
             f"{s['img_per_s'] / stats['timm']['img_per_s']:.2f}x"] for k, s in stats.items()]
    return report(args, dict(
        subcommand="throughput",
        settings=(f"throughput: {args.model}, B={batch}, AdamW, {_amp_label(args)}, device={device}, "
                  f"{args.repeats} steps per pipeline taken round-robin after {args.warmup} warm-up rounds; "
                  f"img/s = B / mean step time"),
        columns=["pipeline", "median ms / step", "img/s", "relative throughput"], rows=rows,
        data=dict(stats=stats, ratio=stats["ours"]["img_per_s"] / stats["timm"]["img_per_s"])))


# ----------------------------------------------------------------------------------------------- CLI
def main(argv=None) -> dict:
    """``tools/benchmark.py SUBCOMMAND ...``: parse, run the subcommand, print its report and return it."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def common(p, repeats=10, batch=None, amp=True):
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--repeats", type=int, default=repeats, help=f"timed runs (default {repeats})")
        p.add_argument("--warmup", type=int, default=3, help="untimed runs (rounds) first (default 3)")
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        p.add_argument("--batch", type=int, default=batch,
                       help=f"batch size (default {batch})" if batch else "batch size (default 32 on the CPU, "
                                                                          "128 on a GPU)")
        if amp:
            p.add_argument("--amp", choices=["bf16"], help="bf16 autocast around forward and loss")
        return p

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    mix = common(sub.add_parser("mix", help="mask generation + mixing"), repeats=20, batch=128, amp=False)
    mix.add_argument("--size", type=int, default=224)
    mix.add_argument("--mask-size", type=int, default=32)
    mix.add_argument("--patch-size", type=int, default=16)
    mix.set_defaults(func=bench_mix)
    att = common(sub.add_parser("attention", help="CLS attention capture: ours vs materialised"))
    att.add_argument("--model", default="deit_small", choices=sorted(STEP_MODELS))
    att.add_argument("--no-grad", action="store_true", help="inference forwards instead of training forwards")
    att.set_defaults(func=bench_attention)
    step = common(sub.add_parser("step", help="training step time and peak memory per method, ratio to no mixing"))
    step.add_argument("--models", nargs="+", default=["deit_tiny", "deit_small"], choices=sorted(STEP_MODELS))
    step.add_argument("--methods", nargs="+", help="methods to run (default: every one; 'none' always runs)")
    step.set_defaults(func=bench_step)
    thr = common(sub.add_parser("throughput", help="img/s: our MixPro step vs a timm Mixup step"))
    thr.add_argument("--model", default="deit_small", choices=sorted(STEP_MODELS))
    thr.set_defaults(func=bench_throughput)
    trn = sub.add_parser("train", help="end-to-end img/s: our Runner vs timm's train.py building blocks")
    add_train_arguments(trn)
    trn.set_defaults(func=bench_train)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command != "train" and (args.repeats < 1 or args.warmup < 0):  # train resolves its own defaults
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    return args.func(args)
