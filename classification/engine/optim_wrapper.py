"""The optimiser wrappers of classification training (``optim_wrapper.type``): ``GuardedOptimWrapper`` and, for
``--amp``, ``GuardedAmpOptimWrapper`` — mmengine's wrappers that also own the non-finite-loss guard: its finite flag,
the norm of ``clip_grad`` and the count of updates that names a failed iteration; and ``DeferredReadback`` (device
values read on the host later, without a stream synchronisation).

``update_params(loss)``: count the update, take the loss's finite flag, agreed across ranks (a device ``all_reduce``
min), then mmengine's update. By default the host reads the flag before backward: FloatingPointError naming the
iteration (the count), nothing updated; the clipping norm goes to ``train/<grad_name>``. With ``defer=True`` (the
classification schedules' config) the norm stays on the device for a reader (``pop_grad_norm``) and, when the optimiser
can skip an update on the device (``fused=True``, or an enabled loss scaler), so does the flag: that update and every
later one are skipped there, and ``check(wait)`` raises the FloatingPointError once the flag is read back — called by
the reader (``SyncFreeRuntimeInfoHook``) and by :meth:`~GuardedOptimWrapper.state_dict`, so no checkpoint is written
after a failed update (docs/methods.md, "Non-finite-loss guard").
"""
from __future__ import annotations

import warnings
from collections import deque
from typing import Iterator, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_rank
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

__all__ = ["DeferredReadback", "GuardedOptimWrapper", "GuardedAmpOptimWrapper"]

ADVICE = ("the last checkpoint in the work dir is the last good state (resume with --resume after lowering the lr or "
          "checking the data)")
UPDATES_KEY = "guarded_updates"
"""Key of the update count in the wrapper's state dict (the ``optimizer`` entry of a checkpoint)."""


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
    """mmengine's ``OptimWrapper`` (same options) with the guard and the norm capture of the module docstring.

    Args:
        defer: keep the norm and, where the optimiser can skip on the device, the finite flag on the device for a
            reader that calls :meth:`pop_grad_norm` after each update and :meth:`check` (``SyncFreeRuntimeInfoHook``);
            False: host reads, as mmengine.

    State: :attr:`updates`, the ``update_params`` calls so far (one per training iteration: the failed iteration's
    number), saved in :meth:`state_dict` under ``guarded_updates`` and restored by :meth:`load_state_dict`, so a
    resumed run names the iteration an uninterrupted one would.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1,
                 clip_grad: Optional[dict] = None, defer: bool = False):
        super().__init__(optimizer, accumulative_counts, clip_grad)
        self._start_guard(defer)

    def _start_guard(self, defer: bool) -> None:
        self.updates = 0
        self._defer = defer
        self._ok: Optional[torch.Tensor] = None  # deferred: float 1/0 on the device, sticky at 0
        self._flags = DeferredReadback()  # deferred: (update count, [ok, loss]) of each update_params
        self._grad_norm: Optional[torch.Tensor] = None
        device = self.optimizer.param_groups[0]["params"][0].device
        if defer and not self.deferred and device.type != "cpu":  # on the CPU a host read costs no synchronisation
            print_log(f"{type(self.optimizer).__name__} cannot skip an update on the device: the non-finite-loss guard "
                      f"reads the loss on the host every step (set fused=True in the optimiser config to avoid that "
                      f"synchronisation)", logger="current")

    @property
    def _scaled(self) -> bool:
        """Whether an enabled loss scaler steps (and skips) the optimiser."""
        scaler = getattr(self, "loss_scaler", None)
        return scaler is not None and scaler.is_enabled()

    @property
    def deferred(self) -> bool:
        """Whether the non-finite guard runs on the device: ``defer=True`` and an optimiser that can skip an update
        there (fused, or stepped by an enabled loss scaler)."""
        return self._defer and (self._scaled or getattr(self.optimizer, "_step_supports_amp_scaling", False))

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        """mmengine's update of ``loss`` after the guard (module docstring)."""
        self.updates += 1
        finite = torch.isfinite(loss.detach()).float()
        all_reduce(finite, op="min")
        if self.deferred:
            self._ok = finite if self._ok is None else self._ok * finite
            self._flags.push(self.updates, torch.stack([self._ok.double(), loss.detach().double()]))
            loss = loss * torch.where(self._ok > 0, 1.0, float("nan")).to(loss.dtype)  # ×1.0 is exact
        elif not bool(finite):
            raise FloatingPointError(
                f"non-finite training loss ({float(loss.detach())} on rank {get_rank()}) at iteration {self.updates} "
                f"(counted by the optimiser wrapper): stopping before the optimiser step; {ADVICE}")
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs) -> None:
        """mmengine's step; deferred without a loss scaler, a fused optimiser given ``found_inf = 1 − ok``."""
        if not self.deferred or self._scaled:
            return super().step(**kwargs)
        self.optimizer.found_inf = 1.0 - self._ok  # read by torch's fused optimisers, as GradScaler sets it
        try:
            super().step(**kwargs)
        finally:
            del self.optimizer.found_inf

    def _clip_grad(self) -> None:
        """mmengine's clipping, the norm kept on the device when deferred (:meth:`pop_grad_norm`).

        Overrides mmengine 0.10.7's private ``_clip_grad``, its only hook between the (loss-scaler-unscaled)
        gradients and the optimiser step, called by both ``OptimWrapper.step`` and ``AmpOptimWrapper.step``. The
        public alternatives do not fit: ``step`` would have to re-implement both wrappers' steps (unscale, scaler
        step and update), and mmengine reads whatever the public ``clip_func`` returns with ``float()`` (a host
        synchronisation) unless it returns None, so keeping the norm there means a clip function that hides it."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.requires_grad and p.grad is not None]
        if not params:
            return
        norm = self.clip_func(params, **self.clip_grad_kwargs)  # None: clipping by value
        if norm is not None and self._defer:
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
        for step, (ok, loss) in self._flags.pop(wait):
            if not ok:
                self._flags = DeferredReadback()
                raise FloatingPointError(
                    f"non-finite training loss ({loss} on rank {get_rank()}) at iteration {step} (counted by the "
                    f"optimiser wrapper): the optimiser skipped that update and every later one on the device; "
                    f"{ADVICE}")

    def state_dict(self) -> dict:
        """mmengine's state with :attr:`updates`, after every deferred flag is read (:meth:`check`): a failed
        update raises here, before a checkpoint holds its state."""
        self.check(wait=True)
        return {**super().state_dict(), UPDATES_KEY: self.updates}

    def load_state_dict(self, state_dict: dict) -> None:
        """mmengine's load and :attr:`updates`; a state saved before the wrapper counted them keeps the count and
        warns."""
        state_dict = dict(state_dict)
        if UPDATES_KEY in state_dict:
            self.updates = int(state_dict.pop(UPDATES_KEY))
        else:
            warnings.warn(f"the optimiser state has no {UPDATES_KEY} (saved before {type(self).__name__} counted its "
                          f"updates): a non-finite loss is named by iterations counted from {self.updates}",
                          stacklevel=2)
        super().load_state_dict(state_dict)


@OPTIM_WRAPPERS.register_module()
class GuardedAmpOptimWrapper(GuardedOptimWrapper, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` (same options) with the guard of :class:`GuardedOptimWrapper` (``defer`` as
    there); under an enabled loss scaler the guard's NaN gradients make the scaler skip the step (counted by
    ``AmpSkippedStepsHook``)."""

    def __init__(self, loss_scale="dynamic", dtype=None, use_fsdp: bool = False, defer: bool = False, **kwargs):
        AmpOptimWrapper.__init__(self, loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
        self._start_guard(defer)
