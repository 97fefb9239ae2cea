"""The optimiser wrappers of classification training (``optim_wrapper.type``): ``GuardedOptimWrapper`` and, for
``--amp``, ``GuardedAmpOptimWrapper`` — mmengine's wrappers that also own the non-finite-loss guard and the norm of
``clip_grad``; and ``DeferredReadback`` (device values read on the host later, without a stream synchronisation).

``update_params(loss)``: the loss's finite flag, agreed across ranks (a device ``all_reduce`` min), then mmengine's
update. By default the host reads the flag before backward: FloatingPointError naming the iteration (the ``mix_step``
buffer of the model given to ``optim_context``), nothing updated; the clipping norm goes to ``train/<grad_name>``.
``defer()`` (called by the reader, ``SyncFreeRuntimeInfoHook``): the norm stays on the device (``pop_grad_norm``) and,
when the optimiser can skip an update on the device (``fused=True``, or an enabled loss scaler), so does the flag: that
update and every later one are skipped there, and ``check(wait)`` raises the FloatingPointError once the flag is read
back (docs/methods.md, "Non-finite-loss guard").
"""
from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_rank
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

__all__ = ["DeferredReadback", "GuardedOptimWrapper", "GuardedAmpOptimWrapper"]

ADVICE = ("the last checkpoint in the work dir is the last good state (resume with --resume after lowering the lr or "
          "checking the data)")


class DeferredReadback:
    """A queue of 1-D device tensors read on the host later, in order, without synchronising the stream."""

    def __init__(self):
        self._pending = deque()  # (tag, host tensor, cuda event or None)

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, tag, values: torch.Tensor) -> None:
        """Start copying ``values`` (1-D) to the host; ``tag`` comes back with them."""
        if values.is_cuda:
            host = values.to("cpu", non_blocking=True)  # pinned destination: an asynchronous copy
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = values, None
        self._pending.append((tag, host, event))

    def pop(self, wait: bool) -> Iterator[Tuple[object, list]]:
        """(tag, values as a list of Python numbers), oldest first: those already copied, or all when ``wait``
        (waiting on each copy's event, not on the stream)."""
        while self._pending:
            tag, host, event = self._pending[0]
            if event is not None and not event.query():
                if not wait:
                    return
                event.synchronize()
            self._pending.popleft()
            yield tag, host.tolist()


@OPTIM_WRAPPERS.register_module()
class GuardedOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` (same options) with the guard and the norm capture of the module docstring."""

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1,
                 clip_grad: Optional[dict] = None):
        super().__init__(optimizer, accumulative_counts, clip_grad)
        self._start_guard()

    def _start_guard(self) -> None:
        self._model = None  # the model given to optim_context (unwrapped): its mix_step names the iteration
        self._keep_norm = self._deferred = self._scaled = False
        self._ok: Optional[torch.Tensor] = None  # deferred: float 1/0 on the device, sticky at 0
        self._flags = DeferredReadback()  # deferred: [ok, loss, mix_step] of each update_params
        self._grad_norm: Optional[torch.Tensor] = None

    @property
    def deferred(self) -> bool:
        """Whether the non-finite guard runs on the device (after :meth:`defer`)."""
        return self._deferred

    def defer(self, enabled: bool = True) -> bool:
        """Keep the norm and, where the optimiser can skip on the device, the finite flag for the caller, who then
        calls :meth:`pop_grad_norm` after each update and :meth:`check`; ``enabled=False`` restores the host reads.
        Returns :attr:`deferred`."""
        scaler = getattr(self, "loss_scaler", None)
        self._scaled = enabled and scaler is not None and scaler.is_enabled()
        self._deferred = self._scaled or (enabled and getattr(self.optimizer, "_step_supports_amp_scaling", False))
        self._keep_norm, self._ok, self._flags, self._grad_norm = enabled, None, DeferredReadback(), None
        device = self.optimizer.param_groups[0]["params"][0].device
        if enabled and not self._deferred and device.type != "cpu":  # on the CPU a host read costs no synchronisation
            print_log(f"{type(self.optimizer).__name__} cannot skip an update on the device: the non-finite-loss guard "
                      f"reads the loss on the host every step (set fused=True in the optimiser config to avoid that "
                      f"synchronisation)", logger="current")
        return self._deferred

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        self._model = model.module if is_model_wrapper(model) else model
        with super().optim_context(model):
            yield

    def _mix_step(self) -> torch.Tensor:
        step = getattr(self._model, "mix_step", None)
        if not isinstance(step, torch.Tensor):
            raise TypeError(f"{type(self).__name__} names a failed iteration by the mix_step buffer of the model given "
                            f"to optim_context (MixClassifier's); {type(self._model).__name__} has none")
        return step

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        """mmengine's update of ``loss`` after the guard (module docstring)."""
        step = self._mix_step()
        finite = torch.isfinite(loss.detach()).float()
        all_reduce(finite, op="min")
        if self._deferred:
            self._ok = finite if self._ok is None else self._ok * finite
            self._flags.push(None, torch.stack([self._ok.double(), loss.detach().double(), step.double()]))
            loss = loss * torch.where(self._ok > 0, 1.0, float("nan")).to(loss.dtype)  # ×1.0 is exact
        elif not bool(finite):
            raise FloatingPointError(
                f"non-finite training loss ({float(loss.detach())} on rank {get_rank()}) at iteration {int(step)} "
                f"(the model's mix_step): stopping before the optimiser step; {ADVICE}")
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs) -> None:
        """mmengine's step; deferred without a loss scaler, a fused optimiser given ``found_inf = 1 − ok``."""
        if not self._deferred or self._scaled:
            return super().step(**kwargs)
        self.optimizer.found_inf = 1.0 - self._ok  # read by torch's fused optimisers, as GradScaler sets it
        try:
            super().step(**kwargs)
        finally:
            del self.optimizer.found_inf

    def _clip_grad(self) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.requires_grad and p.grad is not None]
        if not params:
            return
        norm = self.clip_func(params, **self.clip_grad_kwargs)  # None: clipping by value
        if norm is not None and self._keep_norm:
            self._grad_norm = norm
        elif norm is not None:
            self.message_hub.update_scalar(f"train/{self.grad_name}", float(norm))

    def pop_grad_norm(self) -> dict:
        """``{grad_name: 0-d device tensor}``: the clipping norm of the update since the last call, if any."""
        norm, self._grad_norm = self._grad_norm, None
        return {} if norm is None else {self.grad_name: norm}

    def check(self, wait: bool) -> None:
        """Raise FloatingPointError for the first failed iteration among the deferred flags read back (those copied
        already, or all when ``wait``)."""
        for _, (ok, loss, step) in self._flags.pop(wait):
            if not ok:
                self._flags = DeferredReadback()
                raise FloatingPointError(
                    f"non-finite training loss ({loss} on rank {get_rank()}) at iteration {int(step)} (the model's "
                    f"mix_step): the optimiser skipped that update and every later one on the device; {ADVICE}")


@OPTIM_WRAPPERS.register_module()
class GuardedAmpOptimWrapper(GuardedOptimWrapper, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` (same options) with the guard of :class:`GuardedOptimWrapper`; under an enabled
    loss scaler the guard's NaN gradients make the scaler skip the step (counted by ``AmpSkippedStepsHook``)."""

    def __init__(self, loss_scale="dynamic", dtype=None, use_fsdp: bool = False, **kwargs):
        AmpOptimWrapper.__init__(self, loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
        self._start_guard()
