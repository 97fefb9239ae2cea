"""Training-step bookkeeping without host↔device synchronisation: deferred reads and the deferred non-finite guard.

- :class:`DeferredReadback`: device scalars copied to pinned host memory with ``non_blocking=True`` and an event,
  read later (once the event has fired, or by waiting on that event only): no stream synchronisation.
- :class:`DeferredNonFiniteGuard`: the non-finite-loss guard of
  :class:`~classification.models.mix_classifier.MixClassifier` when the optimiser can skip an update on the device. The
  rank-agreed finite flag (a device all-reduce: the host is not blocked) feeds a sticky device latch ``ok``; the loss
  given to backward is multiplied by ``where(ok, 1, nan)`` (×1.0 is exact, so a good step is unchanged; after a failure
  every gradient is NaN) and the optimiser gets ``found_inf = 1 − ok``. torch's fused Adam/AdamW/SGD (``fused=True``)
  then skip the update of the parameters and of their state (moments, step count) on the device; under fp16 AMP the loss
  scaler finds the NaN gradients and skips the step itself. So neither the failed step nor any later one changes the
  model before the host notices (:meth:`check`, at the latest at the next logging interval or checkpoint save) and
  raises FloatingPointError naming the failed iteration; no checkpoint is written after it.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator, Optional, Tuple

import torch


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


class DeferredNonFiniteGuard:
    """The device side of the deferred guard (see the module docstring) for one optimiser.

    ``optimizer`` must skip its update when given ``found_inf`` (``_step_supports_amp_scaling``: torch's fused
    optimisers) or ``scaled`` must be True (fp16 AMP: the loss scaler skips steps with non-finite gradients)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaled: bool = False):
        if not (scaled or getattr(optimizer, "_step_supports_amp_scaling", False)):
            raise ValueError(f"{type(optimizer).__name__} cannot skip an update on the device: use a fused "
                             f"optimiser (fused=True) or fp16 AMP, or keep the per-step host check")
        self.optimizer, self.scaled = optimizer, scaled
        self.ok: Optional[torch.Tensor] = None  # float 1/0 on the device, sticky at 0
        self.readback = DeferredReadback()

    def arm(self, loss: torch.Tensor, finite: torch.Tensor, step: int) -> torch.Tensor:
        """The loss for backward given the rank-agreed ``finite`` flag (0-d float 1/0) of iteration ``step``."""
        self.ok = finite if self.ok is None else self.ok * finite
        if not self.scaled:
            self.optimizer.found_inf = 1.0 - self.ok
        self.readback.push(step, torch.stack([self.ok, loss.detach().float()]))
        return loss * torch.where(self.ok > 0, 1.0, float("nan")).to(loss.dtype)

    def check(self, wait: bool, rank: int = 0) -> None:
        """Raise FloatingPointError for the first failed iteration among those read back (all of them when
        ``wait``)."""
        for step, (ok, loss) in self.readback.pop(wait):
            if not ok:
                self.readback = DeferredReadback()
                raise FloatingPointError(
                    f"non-finite training loss ({loss} on rank {rank}) at iteration {step} (the model's mix_step): "
                    f"the optimiser skipped that update and every later one on the device; the last checkpoint "
                    f"in the work dir is the last good state (resume with --resume after lowering the lr or "
                    f"checking the data)")
