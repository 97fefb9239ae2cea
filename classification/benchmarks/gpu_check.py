"""The steps of ``tools/gpu_check.sh``: short training runs of every task on synthetic data, and the Markdown report.

    python -m classification.benchmarks.gpu_check env            --out R/env.json
    python -m classification.benchmarks.gpu_check classification --out R/cls.json
                                                  [--device cuda --amp bf16 --steps 3 --batch 32]
    python -m classification.benchmarks.gpu_check segmentation   --out R/seg.json [--iters 20 --size 512]
    python -m classification.benchmarks.gpu_check detection      --out R/det.json [--iters 20 --size 800]
    python -m classification.benchmarks.gpu_check report R      --out report.md

Each item trains a config a few steps on random batches, then evaluates once; ``--out`` gets the JSON (name, status
pass / fail / skipped, seconds, details) after every item. What each task runs: docs/clusters.md, "GPU check".
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import platform
import statistics
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch

from classification.benchmarks.common import step_targets, sync
from classification.foundation.atomic import atomic_write_text
from classification.foundation.host import ROOT

SEGMENTERS = ["segmenter-mask_deit-t_mixpro_8xb1-160k_ade20k-512x512.py",
              "segmenter-linear_deit-t_mixpro_8xb1-160k_ade20k-512x512.py"]
DETECTOR = "mask-rcnn_pvt-t_mixpro_fpn_8xb2-1x_coco.py"
SKIP_NO_CUDA_OPS = "skipped: mmcv without CUDA ops"


# ------------------------------------------------------------------------------------------------ bookkeeping
class Results:
    """Items of one step, rewritten to ``path`` (JSON) after each one."""

    def __init__(self, path: str, step: str):
        self.path, self.step, self.items = path, step, []
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def add(self, name: str, status: str, seconds: float, **details) -> None:
        self.items.append(dict(name=name, status=status, seconds=round(seconds, 2), **details))
        if _rank() == 0:
            atomic_write_text(self.path, json.dumps(dict(step=self.step, items=self.items), indent=1))
        print(f"[{self.step}] {status:7s} {name} ({seconds:.1f} s) {details}", flush=True)

    def run(self, name: str, fn: Callable[[], dict]) -> None:
        """``fn()`` → details; an exception is a failure with its last line, and the next item still runs."""
        t0 = time.perf_counter()
        try:
            details = fn()
        except Exception as e:  # noqa: BLE001  (every failure is reported, the check goes on)
            traceback.print_exc()
            self.add(name, "fail", time.perf_counter() - t0, error=f"{type(e).__name__}: {e}"[:300])
            return
        self.add(name, "pass", time.perf_counter() - t0, **details)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _timed_steps(step: Callable[[], dict], iters: int, device: str, warmup: int) -> dict:
    """Run ``step`` ``iters`` times; median seconds per iteration after ``warmup``; the last loss must be finite."""
    times, losses = [], None
    for _ in range(iters):
        t0 = time.perf_counter()
        losses = step()
        sync(device)
        times.append(time.perf_counter() - t0)
    total = float(losses["loss"])  # the summed loss the optimiser stepped on (mmengine's parse_losses)
    if not torch.isfinite(torch.tensor(total)):
        raise FloatingPointError(f"non-finite loss after {iters} iterations: {losses}")
    kept = times[warmup:] or times
    return dict(iters=iters, loss=round(total, 4), median_iter_ms=round(1000 * statistics.median(kept), 1),
                first_iter_ms=round(1000 * times[0], 1))


def _optim_wrapper(model, cfg, amp: Optional[str]):
    from mmengine.optim import build_optim_wrapper
    wrapper = dict(cfg.optim_wrapper)
    if amp:
        wrapper.update(type="GuardedAmpOptimWrapper" if wrapper.get("type") == "GuardedOptimWrapper" else
                       "AmpOptimWrapper", dtype="bfloat16" if amp == "bf16" else "float16")
    return build_optim_wrapper(model, wrapper)


@contextmanager
def _scope(name: str):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(name):
        yield


# ------------------------------------------------------------------------------------------------ environment
def check_environment(device: str) -> dict:
    info = dict(host=platform.node(), python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), device=device,
                gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
    for name in ("torchvision", "timm", "mmengine", "mmcv", "mmseg", "mmdet", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except Exception as e:  # noqa: BLE001
            info[name] = f"missing ({type(e).__name__})"
    info["mmcv_cuda_ops"] = mmcv_cuda_ops()
    return info


def mmcv_cuda_ops() -> bool:
    """Whether mmcv's CUDA kernels run here: NMS of two boxes on the GPU (False without a GPU, without mmcv's ops
    or with a CPU-only mmcv). Runs a kernel rather than asking ``mmcv.ops.get_compiling_cuda_version``, which
    crashed with SIGSEGV on an H200 with torch 2.11 + CUDA 13.0 while NMS and RoIAlign ran (docs/benchmarks.md)."""
    if not torch.cuda.is_available():
        return False
    try:
        from mmcv.ops import nms
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]], device="cuda")
        _, keep = nms(boxes, torch.tensor([0.9, 0.8], device="cuda"), iou_threshold=0.5)
    except Exception:  # noqa: BLE001  (no mmcv / no ops / "not compiled with GPU support")
        return False
    return keep.tolist() == [0]


# ------------------------------------------------------------------------------------------------ classification
def classification_configs(quick: bool) -> List[str]:
    """Every classification config (``quick``: the Fashion-MNIST ones)."""
    pattern = "*_fmnist.py" if quick else "*.py"
    return sorted(glob.glob(osp.join(ROOT, "configs/classification", pattern)))


def classification_item(path: str, device: str, amp: Optional[str], steps: int, batch: int) -> dict:
    from mmengine.registry import MODELS

    from classification.engine.config_check import load_config
    cfg = load_config(path)
    model_cfg = cfg.model
    if cfg.get("data_preprocessor") is not None:
        model_cfg.setdefault("data_preprocessor", cfg.data_preprocessor)
    with _scope(cfg.get("default_scope") or "mmengine"):
        model = MODELS.build(model_cfg).to(device)
    if torch.distributed.is_initialized():
        from mmengine.model import MMDistributedDataParallel
        model = MMDistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if device == "cuda" else None)
    optim = _optim_wrapper(model, cfg, amp)
    backbone = cfg.model.backbone
    size = backbone.get("img_size", 224)
    size = size if isinstance(size, (tuple, list)) else (size, size)
    chans = backbone.get("in_chans", backbone.get("in_channels", 3))
    classes = cfg.model.get("num_classes", 1000)
    gen = torch.Generator().manual_seed(_rank())
    uint8 = cfg.get("data_preprocessor") is not None

    def step():
        x = torch.randint(0, 256, (batch, chans, *size), generator=gen, dtype=torch.uint8)
        x = x if uint8 else x.float().div_(255).sub_(0.5).div_(0.25)
        y = torch.randint(0, classes, (batch,), generator=gen).to(device)
        return model.train_step(dict(inputs=x.to(device), data_samples=step_targets(model, y, classes)),
                                optim_wrapper=optim)

    model.train()
    return dict(batch=batch, size=f"{chans}x{size[0]}x{size[1]}", **_timed_steps(step, steps, device, warmup=1))


def run_classification(args) -> None:
    results = Results(args.out, "classification")
    if args.launcher_ddp:
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if args.device == "cuda" else "gloo")
    configs = args.configs or classification_configs(args.quick)
    for path in configs:
        results.run(osp.basename(path), lambda: classification_item(path, args.device, args.amp, args.steps,
                                                                    args.batch))
    if args.launcher_ddp:
        torch.distributed.destroy_process_group()


# ------------------------------------------------------------------------------------------------ segmentation
def _seg_batch(batch: int, size: int, classes: int, gen: torch.Generator):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        # blocky label maps (16×16 cells), so the loss sees regions rather than per-pixel noise
        cells = torch.randint(0, classes, (1, size // 16, size // 16), generator=gen)
        sample.gt_sem_seg = PixelData(data=cells.repeat_interleave(16, 1).repeat_interleave(16, 2))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def segmentation_item(path: str, device: str, amp: Optional[str], iters: int, batch: int, size: int) -> dict:
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import MODELS

    from classification.engine.config_check import load_config
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None  # no pretrained checkpoint: random weights
    cfg.model.data_preprocessor.size = (size, size)
    cfg.model.backbone.img_size = (size, size)
    cfg.model.test_cfg.update(crop_size=(size, size), stride=(size, size))
    with _scope("mmseg"):
        model = MODELS.build(cfg.model).to(device)
        optim = _optim_wrapper(model, cfg, amp)
        classes = cfg.model.decode_head.num_classes
        gen = torch.Generator().manual_seed(0)
        model.train()
        train = _timed_steps(lambda: model.train_step(_seg_batch(batch, size, classes, gen), optim_wrapper=optim),
                             iters, device, warmup=3)
        model.eval()
        metric = IoUMetric(iou_metrics=["mIoU"])
        metric.dataset_meta = dict(classes=[str(i) for i in range(classes)])
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(2):
                data = _seg_batch(batch, size, classes, gen)
                metric.process(data, [s.to_dict() for s in model.test_step(data)])
        sync(device)
        miou = metric.compute_metrics(metric.results)["mIoU"]
    return dict(batch=batch, crop=f"{size}x{size}", amp=amp or "fp32", **train,
                eval_images=2 * batch, eval_s=round(time.perf_counter() - t0, 2), mIoU=round(float(miou), 2))


def run_segmentation(args) -> None:
    results = Results(args.out, "segmentation")
    configs = args.configs or [osp.join(ROOT, "configs/segmentation", c) for c in SEGMENTERS]
    for path in configs:
        if args.device == "cuda" and not mmcv_cuda_ops():
            results.add(osp.basename(path), "skipped", 0.0, reason=SKIP_NO_CUDA_OPS)
            continue
        results.run(osp.basename(path), lambda: segmentation_item(path, args.device, args.amp, args.iters,
                                                                  args.batch, args.size))


# ------------------------------------------------------------------------------------------------ detection
def _det_batch(batch: int, height: int, width: int, classes: int, gen: torch.Generator):
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        n = 6
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([width * 0.7, height * 0.7])
        wh = (0.1 + 0.2 * torch.rand(n, 2, generator=gen)) * torch.tensor([width, height])
        boxes = torch.cat([xy, xy + wh], 1).floor()
        masks = np.zeros((n, height, width), np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            masks[i, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, classes, (n,), generator=gen),
                                           masks=BitmapMasks(masks, height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def detection_item(path: str, device: str, amp: Optional[str], iters: int, batch: int, size: int) -> dict:
    from mmdet.registry import MODELS

    from classification.engine.config_check import load_config
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None
    height, width = size, size * 4 // 3 // 32 * 32  # an 800-px short side, 4:3 (COCO-like)
    with _scope("mmdet"):
        model = MODELS.build(cfg.model).to(device)
        optim = _optim_wrapper(model, cfg, amp)
        classes = cfg.model.roi_head.bbox_head.num_classes
        gen = torch.Generator().manual_seed(0)
        model.train()
        train = _timed_steps(lambda: model.train_step(_det_batch(batch, height, width, classes, gen),
                                                      optim_wrapper=optim), iters, device, warmup=3)
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            preds = model.test_step(_det_batch(batch, height, width, classes, gen))
        sync(device)
    return dict(batch=batch, image=f"{height}x{width}", amp=amp or "fp32", **train, eval_images=batch,
                eval_s=round(time.perf_counter() - t0, 2),
                detections=sum(len(p.pred_instances) for p in preds))


def run_detection(args) -> None:
    results = Results(args.out, "detection")
    for path in args.configs or [osp.join(ROOT, "configs/detection", DETECTOR)]:
        if args.device == "cuda" and not mmcv_cuda_ops():
            results.add(osp.basename(path), "skipped", 0.0, reason=SKIP_NO_CUDA_OPS)
            continue
        results.run(osp.basename(path), lambda: detection_item(path, args.device, args.amp, args.iters, args.batch,
                                                               args.size))


# ------------------------------------------------------------------------------------------------ report
def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _read_json(path: str):
    """The JSON at ``path``; None when it is missing, empty or cut short (a step that crashed, e.g. with SIGSEGV,
    leaves the file it had opened empty: its log and status tell the story)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_report(results_dir: str, out: str) -> Dict[str, int]:
    """One Markdown report from ``results_dir``: env.json, the step table steps.tsv (name, status, seconds, log) that
    tools/gpu_check.sh writes, each step's items (<step>.json) or else the tail of its log (the benchmarks).
    Returns counts: item statuses ('pass', 'fail', 'skipped') and 'step <status>' for steps without items or
    that did not pass."""
    env_path = osp.join(results_dir, "env.json")
    env = _read_json(env_path) or {}
    lines = ["# MixPro GPU check", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", "", "## Machine", ""]
    lines += [f"- {k}: {_cell(v)}" for k, v in env.items()] or ["- (env step did not run)"]
    counts: Dict[str, int] = {}
    steps_path = osp.join(results_dir, "steps.tsv")
    steps = [line.rstrip("\n").split("\t") for line in open(steps_path)] if osp.isfile(steps_path) else []
    lines += ["", "## Steps", "", "| step | status | seconds |", "|---|---|---|"]
    for name, status, seconds, _ in steps:
        lines.append(f"| {name} | {status} | {seconds} |")
    for name, status, seconds, log in steps:
        path = osp.join(results_dir, name + ".json")
        if name == "env" and status == "pass" or status == "not run (--only)":
            continue  # the Machine section above / a step left out on purpose
        lines += ["", f"### {name}: {status} ({seconds} s)", ""]
        data = _read_json(path)
        if data is not None:
            items = data["items"]
            keys = [k for k in dict.fromkeys(k for it in items for k in it) if k not in ("name", "status", "seconds")]
            lines += ["| item | status | seconds | " + " | ".join(keys) + " |", "|---" * (3 + len(keys)) + "|"]
            for it in items:
                counts[it["status"]] = counts.get(it["status"], 0) + 1
                lines.append(f"| {_cell(it['name'])} | {it['status']} | {it['seconds']} | "
                             + " | ".join(_cell(it.get(k, "")) for k in keys) + " |")
        elif osp.isfile(log):
            tail = open(log, errors="replace").read().splitlines()[-25:]
            lines += ["```", *tail, "```"]
        if status != "pass" or data is None:  # a step cut off or failing counts beside its items
            counts[f"step {status}"] = counts.get(f"step {status}", 0) + 1
    atomic_write_text(out, "\n".join(lines) + "\n")
    return counts


# ------------------------------------------------------------------------------------------------ command line
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["env", "classification", "segmentation", "detection", "report"])
    parser.add_argument("results_dir", nargs="?", help="report: the directory of the step results")
    parser.add_argument("--out", required=True, help="JSON results (report: the Markdown file)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=["bf16", "fp16"], help="mixed precision (classification: bf16 by default "
                                                                 "on cuda)")
    parser.add_argument("--configs", nargs="+", help="config files (default: the step's set)")
    parser.add_argument("--quick", action="store_true", help="small CPU-sized runs (tests of the check itself)")
    parser.add_argument("--steps", type=int, default=3, help="classification: iterations per config")
    parser.add_argument("--iters", type=int, default=20, help="segmentation/detection: iterations")
    parser.add_argument("--batch", type=int, help="default: classification 32, segmentation 8, detection 2")
    parser.add_argument("--size", type=int, help="crop (segmentation, default 512) / short side (detection, 800)")
    parser.add_argument("--launcher-ddp", action="store_true", help="classification under torchrun: DDP")
    args = parser.parse_args(argv)
    defaults = dict(classification=(32, None), segmentation=(8, 512), detection=(2, 800))
    if args.quick:
        defaults = dict(classification=(4, None), segmentation=(1, 64), detection=(1, 128))
        args.steps, args.iters = 1, 2
    batch, size = defaults.get(args.step, (None, None))
    args.batch = args.batch or batch
    args.size = args.size or size
    if args.step == "classification" and args.amp is None and args.device == "cuda":
        args.amp = "bf16"
    if args.device.startswith("cuda") and not torch.cuda.is_available() and args.step != "report":
        parser.error("--device cuda: torch sees no CUDA device")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.step == "env":
        Results(args.out, "env")  # creates the folder
        atomic_write_text(args.out, json.dumps(check_environment(args.device), indent=1))
        return 0
    if args.step == "report":
        counts = write_report(args.results_dir, args.out)
        print(f"report: {args.out} ({counts})")
        return 1 if any(bad in k for k in counts for bad in ("fail", "timeout", "not run (budget")) else 0
    dict(classification=run_classification, segmentation=run_segmentation, detection=run_detection)[args.step](args)
    data = _read_json(args.out) or dict(items=[])
    return 1 if any(it["status"] == "fail" for it in data["items"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
